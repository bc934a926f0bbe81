"""The radbank command: a thin shell over the library (serve, demo, project, import, verify,
keys, vault, audit, user)."""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import io
import json
import os
import signal
import socket
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from radbank.analytics.drl import (
    DEFAULT_MIN_PATIENTS,
    QUANTITIES,
    DrlError,
    parse_reference_csv,
)
from radbank.app import Services, build_services, recover
from radbank.config import Settings
from radbank.dicom.deid.manifest import MANIFEST_NAME, file_tag, read_tags
from radbank.dicom.deid.ocr import tesseract_available
from radbank.dicom.deid.records import IMPLEMENTATION_CLASS_UID
from radbank.dicom.pydicom_warnings import naming_pydicom_warnings, warning_lines, withheld
from radbank.dose_tool import dose_command
from radbank.governance import sitekey
from radbank.governance.audit import Outcome as AuditOutcome
from radbank.governance.consent import InvalidConsent, fhir_bundle
from radbank.governance.identities import (
    DEFAULT_TOKEN_DAYS,
    InvalidIdentity,
)
from radbank.governance.keys import KeyFileError, reset_admin_token, rotate_master_key
from radbank.governance.policy import Action, Principal, Resource, Role, can
from radbank.governance.vault import OpenedEntry, VaultError
from radbank.index import DoseFilter, Project, ProjectExists, SubjectWithdrawn, UserExists
from radbank.ingest import Item, Outcome, Status
from radbank.ingest.pipeline import content_sha256
from radbank.inputs import DICOMDIR_REASON, Input, Inputs, NotAFile, Unread, is_dicomdir, shown_name
from radbank.launcher import reflow_help, settle_heap
from radbank.offline import deid_command
from radbank.projects import (
    DatasetChange,
    InvalidProject,
    SettingsChange,
    UnknownUser,
    create_project,
    export_key,
    grant_role,
    revoke_role,
    update_dataset,
    update_settings,
    validate_dataset,
)
from radbank.semantic.store import QueryRefused, StoreUnavailable
from radbank.semantic.submissions import SubmissionRejected
from radbank.semantic.vocabulary import SUBMISSION_KINDS

app = typer.Typer(help="radbank: a node of a research repository network for images and dose.")
project_app = typer.Typer(help="Create, configure and list projects.")
app.add_typer(project_app, name="project")
app.command("deid")(deid_command)
app.command("dose")(dose_command)
drl_app = typer.Typer(
    help="Diagnostic reference levels (ICRP 135) of a project's dose data, and the reference "
    "DRL sets (national, European) to compare them with."
)
app.add_typer(drl_app, name="drl")
keys_app = typer.Typer(help="The node's master key.")
app.add_typer(keys_app, name="keys")
vault_app = typer.Typer(
    help="The pseudonym vault: original identifiers sealed to the honest broker's key."
)
app.add_typer(vault_app, name="vault")
audit_app = typer.Typer(help="The hash-chained audit trail.")
app.add_typer(audit_app, name="audit")
user_app = typer.Typer(help="Users of the node, their roles and personal API tokens.")
app.add_typer(user_app, name="user")
consent_app = typer.Typer(help="Consent of a project's subjects; withdrawal erases a subject.")
app.add_typer(consent_app, name="consent")
rdf_app = typer.Typer(
    help="The semantic repository: non-DICOM submissions, SPARQL, rebuilding a project's graph."
)
app.add_typer(rdf_app, name="rdf")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DEMO_PROJECT = "demo"
_BATCH_FILES = 64
_BATCH_BYTES = 64 * 1024 * 1024

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", envvar="RADBANK_DATA_DIR", help="Data directory (default ./radbank-data)"
    ),
]


def _settings(data_dir: Path | None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)


def _fail(message: object, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(str(message))}", highlight=False)
    return typer.Exit(code)


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _source() -> str:
    """Where a command-line action comes from, for the audit trail."""
    return f"cli {_local_user()}@{socket.gethostname()}"


def _operator() -> Principal:
    """Whoever runs the command on the node's machine: with the data directory and its key
    file at hand, they administer the node (but, like any admin, cannot re-identify: the
    vault commands need the honest broker's key file)."""
    return Principal(_local_user(), frozenset({Role.ADMIN}), via="local")


def _project(services: Services, name: str, action: Action = Action.MANAGE) -> Project:
    """The project, when the operator may `action` it (the policy decides for the command
    line too)."""
    project = services.index.get_project(name)
    resource = Resource(name, open_access=project.open_access if project else False)
    if not can(_operator(), action, resource):
        raise _fail(f"not allowed to {action} in project {name!r}")
    if project is None:
        raise _fail(f"unknown project {name!r} (create it with 'radbank project create')")
    return project


def _open(settings: Settings) -> Services:
    try:
        services, token = build_services(settings)
    except KeyFileError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    if token:
        console.print(
            f"[bold]Admin API token (shown once, store it safely):[/bold] {token}\n"
            f"Set RADBANK_ADMIN_TOKEN or run 'radbank admin-token --reset' to replace it."
        )
    return services


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[
        str | None,
        typer.Option(envvar="RADBANK_HOST", help="Address to listen on (default 127.0.0.1)"),
    ] = None,
    port: Annotated[
        int | None, typer.Option(envvar="RADBANK_PORT", help="Port (default 8043)")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            envvar="RADBANK_WORKERS", help="Worker processes (default: one per core, at most 4)"
        ),
    ] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Load the demo project first")] = False,
) -> None:
    """Start the node: DICOMweb and REST on HOST:PORT."""
    import uvicorn

    settings = _settings(data_dir, host=host, port=port, workers=workers)
    services = _open(settings)
    removed = recover(services)
    if removed:
        console.print(
            f"Recovered from an interrupted write: removed {removed} unacknowledged blob(s)."
        )
    if demo:
        _load_demo(services)
    services.close()
    # Worker processes build their own services from the same settings.
    os.environ["RADBANK_DATA_DIR"] = str(settings.resolved_data_dir)
    if settings.database_url:
        os.environ["RADBANK_DATABASE_URL"] = settings.database_url
    url = f"http://{settings.host}:{settings.port}"
    console.print(
        f"radbank listening on [bold]{url}[/bold]  (DICOMweb: {url}/dicom-web/projects/<project>, "
        f"OpenAPI: {url}/api/openapi.json)"
    )
    uvicorn.run(
        "radbank.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="warning",
        timeout_graceful_shutdown=10,
        # The client address (audit trail, sign-in throttling) comes from X-Forwarded-For
        # only when the connection is from a trusted reverse proxy.
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
    )


@app.command("admin-token")
def admin_token(
    data_dir: DataDir = None,
    reset: Annotated[bool, typer.Option("--reset", help="Replace the admin token")] = False,
) -> None:
    """Replace the admin API token (the old one stops working at once)."""
    settings = _settings(data_dir)
    if not reset:
        err.print("The admin token is stored only as a hash; use --reset to issue a new one.")
        raise typer.Exit(2)
    _open(settings).close()
    console.print(f"New admin API token (shown once): {reset_admin_token(settings.key_file)}")


def _progress(label: str) -> Progress:
    """A progress bar on stderr (gone when done): label, bar, done/total, time left."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


@app.command()
def demo(data_dir: DataDir = None) -> None:
    """Create the 'demo' project and load a synthetic multi-site CT dataset into it."""
    services = _open(_settings(data_dir))
    try:
        _load_demo(services)
    finally:
        services.close()


def _load_demo(services: Services) -> None:
    from radbank.synthetic import demo_studies

    if services.index.get_project(DEMO_PROJECT) is None:
        create_project(
            services.index,
            DEMO_PROJECT,
            keys=services.keys,
            trail=services.trail,
            actor=_local_user(),
            source=_source(),
            title="Demo: synthetic multi-site CT with dose reports",
            description=(
                "Synthetic CT studies and their radiation dose structured reports from three "
                "sites, with planted identity, de-identified on ingest (profile research-dose: "
                "dates shifted per patient, dose values and acquisition parameters kept)."
            ),
            profile="research-dose",
        )
    project = services.index.get_project(DEMO_PROJECT)
    assert project is not None
    items = []
    for number, dataset in enumerate(demo_studies()):
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        items.append(Item(f"demo-{number:04d}.dcm", buffer.getvalue()))
    outcomes = services.pipeline.ingest(items, project, source="demo", principal=_operator())
    counts = Counter(o.status for o in outcomes)
    console.print(
        f"Demo project '{DEMO_PROJECT}': {counts[Status.STORED]} stored, "
        f"{counts[Status.DUPLICATE]} already present."
    )


@project_app.command("create")
def project_create(
    name: str,
    data_dir: DataDir = None,
    title: Annotated[str, typer.Option(help="Title")] = "",
    description: Annotated[str, typer.Option(help="Description")] = "",
    profile: Annotated[str, typer.Option(help="De-identification profile")] = "basic",
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="Use the project key in this file (as 'radbank deid --key-file' does at the "
            "sites); created with a fresh key when it does not exist",
        ),
    ] = None,
) -> None:
    """Create a project with its own pseudonymisation key and de-identification profile."""
    services = _open(_settings(data_dir))
    created_key_file = False
    try:
        imported: bytes | None = None
        if key_file is not None:
            if services.index.get_project(name) is not None:
                raise ProjectExists(name)
            imported, created_key_file = sitekey.load_or_create_key_file(key_file)
        create_project(
            services.index,
            name,
            keys=services.keys,
            trail=services.trail,
            actor=_local_user(),
            source=_source(),
            title=title,
            description=description,
            profile=profile,
            imported_key=imported,
        )
    except (InvalidProject, sitekey.KeyFileError) as exc:
        _forget(key_file, created_key_file)
        raise _fail(exc) from exc
    except ProjectExists as exc:
        _forget(key_file, created_key_file)
        raise _fail(f"project {name!r} already exists", 1) from exc
    finally:
        services.close()
    if created_key_file:
        console.print(
            f"Created the key file {key_file} with a fresh random key (mode 0600). Sites that "
            f"de-identify for this project use it: radbank deid IN OUT --key-file {key_file}"
        )
    console.print(
        f"Created project {name!r} (profile {profile}"
        + (f", key from {key_file}" if key_file else "")
        + ")."
    )


def _forget(key_file: Path | None, created: bool) -> None:
    """Remove a key file created for a project that was not created: the key protects nothing."""
    if key_file is not None and created:
        key_file.unlink(missing_ok=True)


@project_app.command("list")
def project_list(data_dir: DataDir = None) -> None:
    """List projects."""
    services = _open(_settings(data_dir))
    try:
        table = Table("name", "title", "profile", "vault", "created")
        for p in services.index.list_projects():
            table.add_row(
                p.name,
                p.title,
                p.profile,
                "yes" if p.vault_key_id else "no",
                p.created_at.isoformat(timespec="seconds"),
            )
        console.print(table)
    finally:
        services.close()


def _override(text: str) -> tuple[str, str]:
    key, sep, action = text.partition("=")
    if not sep or not key.strip() or not action.strip():
        raise _fail(
            f"--override {text!r}: write KEY=ACTION, e.g. PatientWeight=keep or "
            "'(0018,1000)=remove'"
        )
    return key.strip(), action.strip()


@project_app.command("set")
def project_set(
    name: str,
    data_dir: DataDir = None,
    profile: Annotated[str | None, typer.Option(help="De-identification profile")] = None,
    override: Annotated[
        list[str] | None,
        typer.Option(
            "--override",
            help="KEY=ACTION: an attribute keyword, tag or path and keep, remove, empty, "
            "dummy, pseudonymise or replace:<value> (repeatable; added to the overrides)",
        ),
    ] = None,
    clear_overrides: Annotated[
        bool, typer.Option("--clear-overrides", help="Remove all overrides first")
    ] = False,
    pixel_rules: Annotated[
        Path | None,
        typer.Option(
            "--pixel-rules",
            help="JSON file with the list of pixel rules (replaces the rules; [] removes them)",
        ),
    ] = None,
    ocr: Annotated[
        bool | None, typer.Option("--ocr/--no-ocr", help="Check pixels for text with OCR")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Dataset title")] = None,
    description: Annotated[str | None, typer.Option(help="Dataset description")] = None,
    licence: Annotated[
        str | None, typer.Option(help="SPDX or Creative Commons licence id, e.g. CC-BY-4.0")
    ] = None,
    ip_statement: Annotated[
        str | None,
        typer.Option("--ip-statement", help="Intellectual-property statement (non-open licences)"),
    ] = None,
    data_use: Annotated[
        list[str] | None,
        typer.Option(
            "--data-use",
            help="GA4GH DUO code of a data-use condition (repeatable; replaces the conditions)",
        ),
    ] = None,
    consent_required: Annotated[
        bool | None,
        typer.Option(
            "--consent-required/--no-consent-required",
            help="Quarantine data of subjects without a valid consent",
        ),
    ] = None,
    open_access: Annotated[
        bool | None,
        typer.Option(
            "--open-access/--no-open-access",
            help="Serve the de-identified data to anonymous readers (read-only, audited)",
        ),
    ] = None,
) -> None:
    """Change a project's dataset description and de-identification settings
    (de-identification changes apply from the next upload on)."""
    overrides = [_override(text) for text in override or []]
    rules: list | None = None
    if pixel_rules is not None:
        try:
            rules = json.loads(pixel_rules.read_text())
        except (OSError, ValueError) as exc:
            raise _fail(f"cannot read pixel rules from {pixel_rules}: {exc}") from exc
    services = _open(_settings(data_dir))
    try:
        project = _project(services, name)
        merged = None
        if overrides or clear_overrides:
            merged = {} if clear_overrides else dict(project.overrides)
            merged.update(overrides)
        change = SettingsChange(profile=profile, overrides=merged, pixel_rules=rules, ocr_check=ocr)
        dataset = DatasetChange(
            title=title,
            description=description,
            licence=licence,
            ip_statement=ip_statement,
            data_use=data_use,
            consent_required=consent_required,
            open_access=open_access,
        )
        if not change.as_json() and not dataset.as_json():
            raise _fail(
                "nothing to change: give --profile, --override, --clear-overrides, "
                "--pixel-rules, --ocr/--no-ocr or a dataset option (--title, --licence, ...)"
            )
        validate_dataset(project, dataset)
        updated = project
        if change.as_json():
            updated = update_settings(
                services.index,
                updated,
                change,
                trail=services.trail,
                actor=_local_user(),
                source=_source(),
            )
        updated = update_dataset(
            services.index,
            updated,
            dataset,
            trail=services.trail,
            actor=_local_user(),
            source=_source(),
        )
    except InvalidProject as exc:
        raise _fail(f"project {name!r}: {exc}") from exc
    finally:
        services.close()
    console.print(f"Project {name!r} updated (settings version {updated.settings_version}).")
    if ocr and not tesseract_available():
        err.print(
            "[yellow]warning:[/yellow] tesseract is not installed on this machine: every "
            "image of this project will be quarantined until it is (apt-get install "
            "tesseract-ocr)"
        )


def project_json(project: Project) -> dict:
    """A project's settings and key state as shown by `project show --json` (no secrets)."""
    return {
        "name": project.name,
        "title": project.title,
        "description": project.description,
        "profile": project.profile,
        "overrides": dict(project.overrides),
        "pixel_rules": [dict(rule) for rule in project.pixel_rules],
        "ocr_check": project.ocr_check,
        "settings_version": project.settings_version,
        "licence": project.licence,
        "ip_statement": project.ip_statement,
        "data_use": list(project.data_use),
        "consent_required": project.consent_required,
        "open_access": project.open_access,
        "key": {
            "held": "wrapped" if project.wrapped_key else "derived",
            "master_key_id": project.key_id,
        },
        "vault": (
            {"key_id": project.vault_key_id, "broker": project.vault_broker}
            if project.vault_key_id
            else None
        ),
        "created_at": project.created_at.isoformat(),
    }


@project_app.command("show")
def project_show(
    name: str,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Show a project's settings, key and vault."""
    services = _open(_settings(data_dir))
    try:
        project = _project(services, name)
    finally:
        services.close()
    shown = project_json(project)
    if as_json:
        console.print_json(data=shown)
        return
    table = Table(show_header=False, box=None)
    overrides = ", ".join(f"{k}={v}" for k, v in sorted(project.overrides.items()))
    rules = [str(rule.get("name", "?")) for rule in project.pixel_rules]
    key = (
        f"wrapped under master key {project.key_id}"
        if project.wrapped_key
        else f"derived from master key {project.key_id or '(the oldest)'}"
    )
    vault = (
        f"sealed to key {project.vault_key_id} of {project.vault_broker!r}"
        if project.vault_key_id
        else "none: original identifiers are not kept, re-identification is impossible"
    )
    for label, value in (
        ("project", project.name),
        ("title", project.title),
        ("profile", f"{project.profile} (settings version {project.settings_version})"),
        ("overrides", overrides or "none"),
        ("pixel rules", f"{len(rules)}: {', '.join(rules)}" if rules else "none"),
        ("OCR check", "on" if project.ocr_check else "off"),
        ("key", key),
        ("vault", vault),
        ("created", project.created_at.isoformat(timespec="seconds")),
    ):
        table.add_row(label, value)
    console.print(table, highlight=False)


@project_app.command("export-key")
def project_export_key(
    name: str,
    out: Annotated[Path, typer.Option("--out", help="New key file to write (never overwritten)")],
    data_dir: DataDir = None,
) -> None:
    """Write the project's key to a key file for 'radbank deid --key-file' at a site."""
    services = _open(_settings(data_dir))
    try:
        project = _project(services, name)
        export_key(services.keys, project, out, trail=services.trail, actor=_local_user())
    except (sitekey.KeyFileError, KeyFileError) as exc:
        raise _fail(exc) from exc
    finally:
        services.close()
    console.print(
        f"Wrote the key of project {name!r} to {out} (mode 0600). Whoever holds it can "
        "compute this project's pseudonyms: hand it only to sites that de-identify for it."
    )


@keys_app.command("rotate")
def keys_rotate(data_dir: DataDir = None) -> None:
    """Replace the master key; project keys are re-wrapped, pseudonyms do not change."""
    settings = _settings(data_dir)
    services = _open(settings)
    try:
        rotation = rotate_master_key(
            settings.key_file,
            services.index,
            services.trail,
            actor=_local_user(),
            source=_source(),
        )
    except KeyFileError as exc:
        raise _fail(exc) from exc
    finally:
        services.close()
    if rotation.resumed:
        console.print("Completed a master key rotation that had been interrupted.")
    console.print(
        f"Master key {rotation.old_key_id} replaced by {rotation.new_key_id}; "
        f"{len(rotation.projects)} project key(s) re-wrapped. Back up {settings.key_file} "
        "now: the old master key no longer opens anything."
    )


ProjectOption = Annotated[str, typer.Option("--project", "-p", help="Project")]
Actor = Annotated[
    str | None,
    typer.Option("--as", help="Name of the person acting (recorded in the audit trail)"),
]
Broker = Annotated[
    str,
    typer.Option(
        "--as",
        help="Your user name: a user of the node with the honest_broker role in the project",
    ),
]


def _honest_broker(services: Services, project: Project, name: str, action: str) -> None:
    """Re-identification needs the broker's key file and a user with the honest_broker role
    in the project: the policy decides the second; a refusal is audited."""
    user = services.index.get_user(name)
    caller = services.identities.principal_for_user(user) if user and not user.disabled else None
    resource = Resource(project.name, open_access=project.open_access)
    if caller is not None and can(caller, Action.REIDENTIFY, resource):
        return
    services.trail.record(
        action,
        actor=name,
        resource=f"project:{project.name}",
        project=project.name,
        detail={"reason": "not an honest broker of the project"},
        source=_source(),
        outcome=AuditOutcome.DENIED,
    )
    raise _fail(
        f"{name!r} is not an honest broker of project {project.name!r} (refusal audited); "
        f"an administrator grants the role: radbank project grant {project.name} {name} "
        "honest_broker",
        1,
    )


Reason = Annotated[str, typer.Option("--reason", help="Why (recorded in the audit trail)")]


@vault_app.command("init")
def vault_init(
    project: ProjectOption,
    out: Annotated[
        Path, typer.Option("--out", help="New file for the honest broker's private key")
    ],
    name: Annotated[str, typer.Option("--name", help="Name of the honest broker")] = "",
    data_dir: DataDir = None,
) -> None:
    """Create the honest broker's key pair; from now on ingest fills the project's vault."""
    services = _open(_settings(data_dir))
    try:
        target = _project(services, project)
        key = services.vault.init(
            target, out, broker=name or _local_user(), actor=_local_user(), source=_source()
        )
    except VaultError as exc:
        raise _fail(exc) from exc
    finally:
        services.close()
    console.print(
        f"Vault of project {project!r} created (key {key.key_id}). The private key is in "
        f"{out} (mode 0600): only it opens the vault. Move it off this node to the honest "
        f"broker and keep a backup; without it the vault cannot be opened."
    )


@vault_app.command("open")
def vault_open(
    project: ProjectOption,
    key: Annotated[Path, typer.Option("--key", help="The honest broker's private key file")],
    actor: Broker,
    pseudonym: Annotated[
        list[str] | None,
        typer.Option("--pseudonym", help="Open only the entries of this pseudonym (repeatable)"),
    ] = None,
    reason: Reason = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    data_dir: DataDir = None,
) -> None:
    """Decrypt and print vault entries (honest broker; audited, also when it fails)."""
    services = _open(_settings(data_dir))
    try:
        target = _project(services, project, Action.DISCOVER)
        _honest_broker(services, target, actor, "vault.open")
        opened = services.vault.open(
            target,
            key,
            actor=actor,
            reason=reason,
            pseudonyms=pseudonym or None,
            source=_source(),
        )
    except VaultError as exc:
        raise _fail(exc, 1) from exc
    finally:
        services.close()
    if as_json:
        console.print_json(data=[_entry_json(entry) for entry in opened])
        return
    for entry in opened:
        identifiers = entry.identifiers
        recorded = entry.recorded_at.isoformat(timespec="seconds") if entry.recorded_at else "?"
        console.print(f"[bold]{entry.pseudonym}[/bold]  (recorded {recorded})", highlight=False)
        others = ", ".join(
            pid + (f" (issuer {issuer})" if issuer else "")
            for pid, issuer in identifiers.other_patient_ids
        )
        for label, value in (
            ("Issuer of Patient ID", identifiers.issuer_of_patient_id),
            ("Patient ID", identifiers.patient_id),
            ("Patient's Name", identifiers.patient_name),
            ("Patient's Birth Date", identifiers.patient_birth_date),
            ("Other Patient IDs", others),
            ("Study Instance UID", identifiers.study_instance_uid),
            ("Accession Number", identifiers.accession_number),
        ):
            console.print(f"  {label:<21} {value}", highlight=False, markup=False)
    console.print(f"{len(opened)} entr{'y' if len(opened) == 1 else 'ies'} opened (audited).")


def _entry_json(entry: OpenedEntry) -> dict:
    return {
        "pseudonym": entry.pseudonym,
        **entry.identifiers.as_json(),
        "recorded_at": entry.recorded_at.isoformat() if entry.recorded_at else None,
    }


@vault_app.command("lookup")
def vault_lookup(
    project: ProjectOption,
    patient_id: Annotated[str, typer.Option("--patient-id", help="The patient's original ID")],
    actor: Broker,
    issuer: Annotated[str, typer.Option("--issuer", help="Issuer of Patient ID")] = "",
    reason: Reason = "",
    data_dir: DataDir = None,
) -> None:
    """Give the pseudonym of a known patient in a project (follow-up linkage by the honest
    broker; audited)."""
    services = _open(_settings(data_dir))
    try:
        target = _project(services, project, Action.DISCOVER)
        _honest_broker(services, target, actor, "vault.lookup")
        found = services.vault.lookup(
            target,
            services.keys.project_key(target),
            patient_id=patient_id,
            issuer=issuer,
            actor=actor,
            reason=reason,
            source=_source(),
        )
    except KeyFileError as exc:
        raise _fail(exc) from exc
    finally:
        services.close()
    console.print(
        f"{found.pseudonym}  ({found.studies} stud{'y' if found.studies == 1 else 'ies'} and "
        f"{found.vault_entries} vault entr{'y' if found.vault_entries == 1 else 'ies'} in "
        f"project {project!r})",
        highlight=False,
    )


@vault_app.command("rotate")
def vault_rotate(
    project: ProjectOption,
    key: Annotated[Path, typer.Option("--key", help="The current private key file")],
    out: Annotated[Path, typer.Option("--out", help="New file for the new private key")],
    name: Annotated[
        str | None, typer.Option("--name", help="Name of the honest broker (default: unchanged)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Seal every vault entry to a new key pair (pseudonyms do not change)."""
    services = _open(_settings(data_dir))
    try:
        target = _project(services, project)
        new, count = services.vault.rotate(
            target, key, out, actor=_local_user(), broker=name, source=_source()
        )
    except VaultError as exc:
        raise _fail(exc, 1) from exc
    finally:
        services.close()
    console.print(
        f"{count} vault entr{'y' if count == 1 else 'ies'} of project {project!r} re-sealed to "
        f"key {new.key_id} in {out}. The old key file no longer opens the vault; destroy it "
        "once the new one is safely stored."
    )


# ------------------------------------------------------------------------- users and roles

Roles = Annotated[
    list[str] | None,
    typer.Option("--role", help="Node role: admin or auditor (repeatable)"),
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@user_app.command("create")
def user_create(
    name: str,
    data_dir: DataDir = None,
    role: Roles = None,
    display_name: Annotated[str, typer.Option("--display-name")] = "",
    password: Annotated[
        bool,
        typer.Option(
            "--password/--no-password",
            help="Ask for a password to sign in with (--no-password: tokens only)",
        ),
    ] = True,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create a local user (project roles are given with 'radbank project grant')."""
    secret = _read_password(password_stdin) if password or password_stdin else None
    services = _open(_settings(data_dir))
    try:
        user = services.identities.create_user(
            name,
            password=secret,
            display_name=display_name,
            node_roles=role or (),
            actor=_local_user(),
            source=_source(),
        )
    except (InvalidIdentity, UserExists) as exc:
        raise _fail(exc) from exc
    finally:
        services.close()
    roles = ", ".join(sorted(user.node_roles)) or "no node role"
    console.print(f"User {user.name!r} created ({roles}).")


@user_app.command("list")
def user_list(data_dir: DataDir = None) -> None:
    """Users, their node roles and project roles."""
    services = _open(_settings(data_dir))
    try:
        table = Table("user", "source", "node roles", "project roles", "status")
        for user in services.index.list_users():
            roles = services.index.user_roles(user.id)
            table.add_row(
                user.name,
                user.source,
                ", ".join(sorted(user.node_roles)),
                "; ".join(f"{p}: {', '.join(sorted(r))}" for p, r in sorted(roles.items())),
                "disabled" if user.disabled else "active",
            )
    finally:
        services.close()
    console.print(table)


@user_app.command("set")
def user_set(
    name: str,
    data_dir: DataDir = None,
    role: Roles = None,
    no_roles: Annotated[bool, typer.Option("--no-roles", help="Take all node roles away")] = False,
    disabled: Annotated[
        bool | None, typer.Option("--disable/--enable", help="Stop or allow sign-in and tokens")
    ] = None,
    password: Annotated[bool, typer.Option("--password", help="Set a new password")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
) -> None:
    """Change a user's node roles, password or status."""
    secret = _read_password(password_stdin) if password or password_stdin else None
    services = _open(_settings(data_dir))
    actor, source = _local_user(), _source()
    try:
        if role is not None or no_roles:
            services.identities.set_node_roles(name, role or (), actor=actor, source=source)
        if secret is not None:
            services.identities.set_password(name, secret, actor=actor, source=source)
        if disabled is not None:
            services.identities.set_disabled(name, disabled, actor=actor, source=source)
    except (InvalidIdentity, LookupError) as exc:
        raise _fail(exc) from exc
    finally:
        services.close()
    console.print(f"User {name!r} updated.")


@user_app.command("token")
def user_token(
    name: str,
    data_dir: DataDir = None,
    token_name: Annotated[str, typer.Option("--name", help="What the token is for")] = "token",
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="read, write or manage (repeatable; default: all)"),
    ] = None,
    days: Annotated[int, typer.Option(help="Days until the token expires")] = DEFAULT_TOKEN_DAYS,
) -> None:
    """Issue a personal API token for a user; it is printed once."""
    services = _open(_settings(data_dir))
    try:
        user = services.identities.require_user(name)
        issued = services.identities.issue_token(
            user, name=token_name, scopes=scope, days=days, actor=_local_user(), source=_source()
        )
    except (InvalidIdentity, LookupError) as exc:
        raise _fail(exc) from exc
    finally:
        services.close()
    err.print(
        f"Token {issued.token.token_id} for {name!r}, scopes "
        f"{', '.join(sorted(issued.token.scopes))}, expires {issued.token.expires_at:%Y-%m-%d}. "
        "Shown once: store it safely."
    )
    print(issued.secret)


@user_app.command("revoke")
def user_revoke(token_id: str, data_dir: DataDir = None) -> None:
    """Revoke a personal API token by its id (it stops working at once)."""
    services = _open(_settings(data_dir))
    try:
        services.identities.revoke_token(token_id, actor=_local_user(), source=_source())
    except LookupError as exc:
        raise _fail(exc) from exc
    finally:
        services.close()
    console.print(f"Token {token_id} revoked.")


@user_app.command("tokens")
def user_tokens(name: str, data_dir: DataDir = None) -> None:
    """A user's tokens (never their secrets)."""
    services = _open(_settings(data_dir))
    try:
        user = services.identities.require_user(name)
        table = Table("id", "name", "scopes", "expires", "last used", "status")
        for token in services.index.list_tokens(user.id):
            table.add_row(
                token.token_id,
                token.name,
                ", ".join(sorted(token.scopes)),
                f"{token.expires_at:%Y-%m-%d}",
                f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never",
                "revoked" if token.revoked_at else "active",
            )
    except LookupError as exc:
        raise _fail(exc) from exc
    finally:
        services.close()
    console.print(table)


@project_app.command("grant")
def project_grant(
    project: str,
    user: str,
    role: Annotated[str, typer.Argument(help="steward, contributor, researcher or honest_broker")],
    data_dir: DataDir = None,
    days: Annotated[
        int | None, typer.Option(help="The role ends after this many days (default: never)")
    ] = None,
) -> None:
    """Give a user a role in a project."""
    services = _open(_settings(data_dir))
    try:
        grant_role(
            services.index,
            _project(services, project),
            user,
            role,
            trail=services.trail,
            actor=_local_user(),
            source=_source(),
            days=days,
        )
    except (InvalidProject, UnknownUser) as exc:
        raise _fail(exc) from exc
    finally:
        services.close()
    until = f" for {days} days" if days else ""
    console.print(f"{user!r} is {role} in project {project!r}{until}.")


@project_app.command("revoke")
def project_revoke(project: str, user: str, role: str, data_dir: DataDir = None) -> None:
    """Take a user's role in a project away."""
    services = _open(_settings(data_dir))
    try:
        removed = revoke_role(
            services.index,
            _project(services, project),
            user,
            role,
            trail=services.trail,
            actor=_local_user(),
            source=_source(),
        )
    except UnknownUser as exc:
        raise _fail(exc) from exc
    finally:
        services.close()
    if not removed:
        raise _fail(f"{user!r} has no role {role!r} in project {project!r}", code=1)
    console.print(f"{user!r} is no longer {role} in project {project!r}.")


@project_app.command("release")
def project_release(
    project: str,
    ids: Annotated[
        list[int] | None,
        typer.Argument(help="Ids of quarantined objects (radbank project quarantine)"),
    ] = None,
    subject: Annotated[
        str | None, typer.Option(help="Release every quarantined object of this pseudonym")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Release reviewed objects from quarantine into the archive."""
    services = _open(_settings(data_dir))
    failed = 0
    try:
        target = _project(services, project)
        chosen = list(ids or [])
        if subject:
            chosen += [
                row["id"]
                for row in services.index.list_quarantine(target.id)
                if row["pseudonym"] == subject
            ]
        if not chosen:
            raise _fail("name quarantined objects by id, or give --subject PSEUDONYM")
        for quarantine_id in chosen:
            outcome = services.pipeline.release(
                target,
                quarantine_id,
                actor=_local_user(),
                source=_source(),
                audit=services.trail.event,
            )
            failed += outcome.status != "stored"
            console.print(f"  {quarantine_id}: {outcome.reason}", highlight=False)
    finally:
        services.close()
    if failed:
        raise typer.Exit(1)


@project_app.command("quarantine")
def project_quarantine(project: str, data_dir: DataDir = None) -> None:
    """Objects held in a project's quarantine, and why."""
    services = _open(_settings(data_dir))
    try:
        target = _project(services, project, Action.REVIEW)
        table = Table("id", "subject", "received", "reason")
        for row in services.index.list_quarantine(target.id):
            table.add_row(
                str(row["id"]),
                row["pseudonym"] or "",
                f"{row['received_at']:%Y-%m-%d %H:%M}",
                row["reason"],
            )
    finally:
        services.close()
    console.print(table)


@project_app.command("members")
def project_members(project: str, data_dir: DataDir = None) -> None:
    """Who has which role in a project."""
    services = _open(_settings(data_dir))
    try:
        target = _project(services, project)
        table = Table("user", "role", "granted by", "since", "until")
        for member in services.index.memberships(project_id=target.id):
            table.add_row(
                member.user,
                member.role,
                member.granted_by,
                f"{member.granted_at:%Y-%m-%d}",
                f"{member.expires_at:%Y-%m-%d}" if member.expires_at else "",
            )
    finally:
        services.close()
    console.print(table)


@consent_app.command("import")
def consent_import(
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV: pseudonym or patient_id[,issuer], status, scope, decided_on, form_reference"
        ),
    ],
    project: Annotated[str, typer.Option("--project", "-p")],
    data_dir: DataDir = None,
) -> None:
    """Record the consent decisions of a site's CSV (all rows or none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {path}: {exc}") from exc
    services = _open(_settings(data_dir))
    try:
        count, erased = services.consents.import_csv(
            _project(services, project), text, actor=_local_user(), source=_source()
        )
    except InvalidConsent as exc:
        for problem in exc.problems:
            err.print(f"  {problem}", highlight=False)
        raise _fail(f"{path}: nothing imported ({len(exc.problems)} problem(s))", code=1) from exc
    finally:
        services.close()
    console.print(f"{count} consent decision(s) recorded in project {project!r}.")
    for report in erased:
        console.print(f"  {report.pseudonym} withdrew: {report.blobs} object(s) erased.")


@consent_app.command("list")
def consent_list(
    project: Annotated[str, typer.Option("--project", "-p")],
    data_dir: DataDir = None,
    fhir: Annotated[bool, typer.Option("--fhir", help="Print a FHIR Consent bundle")] = False,
) -> None:
    """The current consent of every subject of a project."""
    settings = _settings(data_dir)
    services = _open(settings)
    try:
        target = _project(services, project)
        records = list(services.index.current_consents(target.id).values())
    finally:
        services.close()
    if fhir:
        print(json.dumps(fhir_bundle(records, project=project, node=settings.node_name), indent=2))
        return
    table = Table("pseudonym", "status", "scope", "decided on", "form")
    for record in records:
        table.add_row(
            record.pseudonym,
            record.status,
            " ".join(record.scope),
            record.decided_on.isoformat(),
            record.form_reference,
        )
    console.print(table)


@consent_app.command("withdraw")
def consent_withdraw(
    pseudonym: str,
    project: Annotated[str, typer.Option("--project", "-p")],
    reason: Annotated[str, typer.Option(help="e.g. the reference of the subject's letter")] = "",
    data_dir: DataDir = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Withdraw a subject: erase all their data from the project; refuse later uploads."""
    if not yes:
        typer.confirm(
            f"Erase every object, row and record of {pseudonym} in project {project!r}?",
            abort=True,
        )
    services = _open(_settings(data_dir))
    try:
        report = services.consents.withdraw(
            _project(services, project),
            pseudonym,
            actor=_local_user(),
            source=_source(),
            reason=reason,
        )
    finally:
        services.close()
    console.print(
        f"{pseudonym} withdrawn from project {project!r}: {report.blobs} object(s) erased; "
        "later uploads of this subject are refused."
    )


@audit_app.command("verify")
def audit_verify(
    data_dir: DataDir = None,
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            help="ID:HASH of a record noted earlier (from a previous verify): check that the "
            "trail still contains it unchanged",
        ),
    ] = None,
) -> None:
    """Check the audit trail's hash chain: changed, removed or inserted records."""
    expected: tuple[int, str] | None = None
    if anchor is not None:
        record_id, _, digest = anchor.partition(":")
        if not record_id.isdigit() or len(digest) != 64:
            raise _fail(f"--anchor {anchor!r}: write ID:HASH as printed by 'radbank audit verify'")
        expected = (int(record_id), digest)
    services = _open(_settings(data_dir))
    try:
        problems = services.trail.verify(expected)
        head = services.trail.head()
    finally:
        services.close()
    for problem in problems:
        console.print(f"  {problem.kind.value}: {problem}", highlight=False)
    if problems:
        err.print(
            f"[red]The audit trail is broken:[/red] {len(problems)} problem(s). Restore the "
            "audit_events table from a backup and investigate who had write access."
        )
        raise typer.Exit(1)
    if head is None:
        console.print("The audit trail is empty.")
        return
    console.print(
        f"The audit trail is intact: {head.id} record(s). Note the head to check later "
        f"with --anchor: {head.id}:{head.hash}",
        highlight=False,
    )


@audit_app.command("export")
def audit_export(
    data_dir: DataDir = None,
    format: Annotated[
        str, typer.Option("--format", help="fhir-bundle, fhir-ndjson or syslog")
    ] = "fhir-ndjson",
    after: Annotated[int, typer.Option(help="Only records with a larger id")] = 0,
    project: Annotated[str | None, typer.Option(help="Only records of this project")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here (a new file) instead of stdout")
    ] = None,
) -> None:
    """Export audit records as FHIR AuditEvent resources or RFC 5424 syslog lines."""
    from radbank.governance.audit_export import FORMATS, export

    if format not in FORMATS:
        raise _fail(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    settings = _settings(data_dir)
    services = _open(settings)
    try:
        records = services.index.iter_audit(after)
        if project is not None:
            records = (r for r in records if r.project == project)
        target = out.open("x", encoding="utf-8") if out is not None else sys.stdout
        try:
            for chunk in export(records, format, node=settings.node_name):
                target.write(chunk)
        finally:
            if out is not None:
                target.close()
        services.trail.record(
            "audit.export",
            actor=_local_user(),
            resource="node",
            source=_source(),
            detail={"format": format, "after": after, "project": project},
        )
    except FileExistsError as exc:
        raise _fail(f"{out} exists; choose a new file") from exc
    finally:
        services.close()


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A DICOM file, a folder or a .zip archive")],
    project: Annotated[str, typer.Option("--project", "-p", help="Target project")],
    data_dir: DataDir = None,
) -> None:
    """De-identify and store every DICOM file of a folder or zip into a project.

    Exits 1 when anything was rejected or could not be read (each is listed with its
    reason), 0 when everything was stored, found stored already, or quarantined."""
    if not path.exists():
        raise _fail(f"{shown_name(str(path))} does not exist")
    settings = _settings(data_dir)
    services = _open(settings)
    outcomes: list[Outcome] = []
    skipped: list[Unread] = []
    sources: list[Input | Unread] = []
    done = 0  # inputs whose outcome is known
    adopted = 0  # files the site's `radbank deid` wrote under this project's key
    again = 0  # files radbank wrote (de-identified already) without such a tag
    manifests: list[tuple[str, set[str]]] = []
    matched: set[str] = set()  # their tags
    warned: dict[str, dict[str, None]] = {}  # pydicom's warnings by file, in order, once each
    interrupted = False
    try:
        target = _project(services, project, Action.WRITE)
        try:
            services.keys.project_key(target)
        except KeyFileError as exc:
            raise _fail(exc) from exc
        with (
            Inputs(path) as inputs,
            _progress("importing") as progress,
            _deferred_sigint() as stop,
            naming_pydicom_warnings(
                lambda name, text: warned.setdefault(name, {}).update({withheld(text): None})
            ),
        ):
            sources = list(inputs)
            manifests, sources = _site_manifests(sources, outcomes)
            site_tags = {tag for _, tags in manifests for tag in tags}
            site_key = services.keys.project_key(target)
            settle_heap()
            task = progress.add_task("import", total=len(sources))
            batch: list[Item] = []
            size = 0
            for position, source in enumerate(sources, 1):
                item = _item(source, settings.max_instance_bytes, outcomes, skipped)
                if item is not None and site_tags:
                    tag = file_tag(site_key, hashlib.sha256(item.data).digest())
                    if tag in site_tags:
                        item = Item(item.name, item.data, deidentified=True)
                        adopted += 1
                        matched.add(tag)
                if item is not None and not item.deidentified and _written_by_radbank(item.data):
                    again += 1
                if item is not None:
                    batch.append(item)
                    size += len(item.data)
                elif not batch:
                    progress.update(task, completed=position)
                    done = position
                if (
                    position == len(sources)
                    or len(batch) >= _BATCH_FILES
                    or stop.is_set()
                    or (size >= _BATCH_BYTES)
                ):
                    if batch:
                        outcomes += services.pipeline.ingest(
                            batch, target, source="cli-import", principal=_operator()
                        )
                    batch, size = [], 0
                    progress.update(task, completed=position)
                    done = position
                    if stop.is_set():
                        interrupted = True
                        break
    finally:
        services.close()
    counts = Counter(o.status for o in outcomes)
    kinds = Counter(unread.skipped for unread in skipped)
    console.print(
        f"{counts[Status.STORED]} stored, {counts[Status.DUPLICATE]} duplicate, "
        f"{counts[Status.QUARANTINED]} quarantined, "
        f"{counts[Status.REJECTED] + counts[Status.CONFLICT]} rejected"
        + "".join(
            f", {count} {kind}{'s' if count > 1 and kind != 'DICOMDIR' else ''} skipped"
            for kind, count in sorted(kinds.items())
        ),
        highlight=False,
        markup=False,
    )
    if adopted:
        console.print(
            f"{adopted} file(s) de-identified at the site under this project's key (listed in "
            f"{MANIFEST_NAME}) were stored as the site wrote them",
            highlight=False,
            markup=False,
        )
    for name, tags in manifests:
        if tags and not tags & matched:
            console.print(
                f"{name}: none of the {len(tags)} file(s) it lists is under this project's "
                "key (the site used another key), so they were de-identified again",
                highlight=False,
                markup=False,
            )
    if again:
        console.print(
            f"{again} file(s) written by radbank (de-identified already) are not listed in a "
            "deid-manifest.txt under this project's key and were de-identified again, as "
            "originals are: expected for data of another project or node; for files of "
            "`radbank deid` made with this project's key, run it with --manifest and send "
            "OUT/deid-manifest.txt along",
            highlight=False,
            markup=False,
        )
    for outcome in outcomes:
        if outcome.status in (Status.REJECTED, Status.CONFLICT, Status.QUARANTINED):
            console.print(
                f"  {outcome.status.value}: {outcome.reason}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
    for line in warning_lines(warned):
        # A warning may quote a value of the file: escaped like names, it cannot drive
        # the terminal.
        console.print(shown_name(line), highlight=False, markup=False, soft_wrap=True)
    if not sources:
        err.print(f"no files found under {shown_name(str(path))}", highlight=False, markup=False)
    if interrupted:
        err.print(
            f"interrupted: {len(sources) - done} of {len(sources)} input(s) not imported; what "
            "is counted above is stored. Run the same import again to finish it (what is "
            "stored already counts as duplicate).",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(130)
    if counts[Status.REJECTED] or counts[Status.CONFLICT]:
        raise typer.Exit(1)


@contextlib.contextmanager
def _deferred_sigint() -> Iterator[threading.Event]:
    """Ctrl-C sets the event instead of stopping at once, so the batch being stored
    finishes and the summary counts everything stored; a second Ctrl-C stops at once."""
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        err.print(
            "stopping after the files being stored now (Ctrl-C again to stop at once)",
            highlight=False,
            markup=False,
        )

    try:
        previous = signal.signal(signal.SIGINT, handle)
    except ValueError:  # not the main thread: Ctrl-C stays as it is
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _site_manifests(
    sources: list[Input | Unread], outcomes: list[Outcome]
) -> tuple[list[tuple[str, set[str]]], list[Input | Unread]]:
    """The manifests of `radbank deid` among the inputs, with their tags, and the other
    inputs. A manifest that cannot be read is rejected with the reason (its files are then
    de-identified again, as originals would be)."""
    manifests: list[tuple[str, set[str]]] = []
    rest: list[Input | Unread] = []
    for source in sources:
        if not isinstance(source, Input) or PurePosixPath(source.name).name != MANIFEST_NAME:
            rest.append(source)
            continue
        try:
            manifests.append((source.name, read_tags(source.read())))
        except (OSError, NotAFile, ValueError) as exc:
            reason = f"not a manifest of `radbank deid` that can be read ({exc})"
            outcomes.append(Outcome(source.name, Status.REJECTED, f"{source.name}: {reason}"))
    return manifests, rest


def _written_by_radbank(data: bytes) -> bool:
    """Whether a Part 10 file's meta information names radbank as its writer (the file
    meta information comes first and is short)."""
    return data[128:132] == b"DICM" and _RADBANK_WRITER in data[132:1024]


_RADBANK_WRITER = IMPLEMENTATION_CLASS_UID.encode("ascii")


def _item(
    source: Input | Unread, limit: int, outcomes: list[Outcome], skipped: list[Unread]
) -> Item | None:
    """The item to ingest of `source`, or None with what became of it recorded: an input
    that cannot be read, or is too large, is rejected with its reason; a DICOMDIR skipped."""
    if isinstance(source, Unread):
        if source.skipped:
            skipped.append(source)
        else:
            outcomes.append(
                Outcome(source.name, Status.REJECTED, f"{source.name}: {source.reason}")
            )
        return None
    if source.size > limit:
        reason = (
            f"{source.size} bytes, larger than the limit of {limit} (RADBANK_MAX_INSTANCE_BYTES)"
        )
        outcomes.append(Outcome(source.name, Status.REJECTED, f"{source.name}: {reason}"))
        return None
    try:
        data = source.read()
    except NotAFile as exc:
        reason = f"not a file but {exc}; nothing was read from it"
        outcomes.append(Outcome(source.name, Status.REJECTED, f"{source.name}: {reason}"))
        return None
    except OSError as exc:
        reason = f"cannot read it ({exc.strerror or exc})"
        outcomes.append(Outcome(source.name, Status.REJECTED, f"{source.name}: {reason}"))
        return None
    if is_dicomdir(data):
        skipped.append(Unread(source.name, DICOMDIR_REASON, skipped="DICOMDIR"))
        return None
    return Item(source.name, data)


_UNFINISHED = (
    " - written by an ingest that did not finish (an import or server stopped midway); "
    "`radbank serve` removes it when it starts, and importing the same files again adopts it"
)


@app.command()
def verify(data_dir: DataDir = None) -> None:
    """Reconcile index and blob store: missing blobs, orphan blobs, checksum mismatches."""

    services = _open(_settings(data_dir))
    problems = 0
    try:
        referenced: set[str] = set()
        checked = checked_quarantine = checked_parts = 0
        for record in services.index.iter_instances():
            referenced.add(record.blob_key)
            checked += 1
            try:
                data = services.store.get(record.blob_key)
            except FileNotFoundError:
                problems += 1
                console.print(
                    f"missing blob: instance {record.sop_instance_uid} -> {record.blob_key}"
                )
                continue
            if hashlib.sha256(data).hexdigest() != record.sha256:
                problems += 1
                console.print(
                    f"checksum mismatch: instance {record.sop_instance_uid} ({record.blob_key})"
                )
        for project in services.index.list_projects():
            for row in services.index.list_quarantine(project.id):
                referenced.add(row["blob_key"])
                checked_quarantine += 1
                what = f"quarantined object {row['id']} of project {project.name}"
                try:
                    data = services.store.get(row["blob_key"])
                except FileNotFoundError:
                    problems += 1
                    console.print(f"missing blob: {what} -> {row['blob_key']}", markup=False)
                    continue
                if hashlib.sha256(data).hexdigest() != content_sha256(row["blob_key"]):
                    problems += 1
                    console.print(f"checksum mismatch: {what} ({row['blob_key']})", markup=False)
            for part in services.index.iter_submission_parts(project.id):
                referenced.add(part.blob_key)
                checked_parts += 1
                try:
                    data = services.store.get(part.blob_key)
                except FileNotFoundError:
                    problems += 1
                    console.print(f"missing blob: submission part -> {part.blob_key}")
                    continue
                if hashlib.sha256(data).hexdigest() != part.sha256:
                    problems += 1
                    console.print(f"checksum mismatch: submission part {part.blob_key}")
        unfinished = {key for _, keys in services.journal.pending() for key in keys}
        for key in services.store.keys():
            if key not in referenced:
                problems += 1
                console.print(
                    f"orphan blob (no index row): {key}"
                    + (_UNFINISHED if key in unfinished else ""),
                    markup=False,
                    highlight=False,
                )
    finally:
        services.close()
    console.print(
        f"verified {checked} instance(s), {checked_quarantine} quarantined object(s) and "
        f"{checked_parts} submission part(s): {problems} problem(s)"
    )
    if problems:
        raise typer.Exit(1)


def main() -> None:
    reflow_help(app)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


def _dose_filter(
    modality: str | None, date_from: str | None, date_to: str | None, protocol: str | None
) -> DoseFilter:
    equal = {
        name: value for name, value in (("modality", modality), ("protocol", protocol)) if value
    }
    for value in (date_from, date_to):
        if value is not None and not (len(value) == 8 and value.isdigit()):
            raise _fail(f"dates are YYYYMMDD, not {value!r}")
    return DoseFilter(equal=equal, date_from=date_from, date_to=date_to, limit=None)


Modality = Annotated[str | None, typer.Option(help="Only this modality (CT, XA, DX, MG, NM)")]
DateFrom = Annotated[str | None, typer.Option(help="Studies from this date (YYYYMMDD)")]
DateTo = Annotated[str | None, typer.Option(help="Studies up to this date (YYYYMMDD)")]
Protocol = Annotated[str | None, typer.Option(help="Only this protocol (wildcards * ?)")]


@drl_app.command("show")
def drl_show(
    project: str,
    quantity: Annotated[str, typer.Option(help=f"One of {', '.join(QUANTITIES)}")] = "dlp",
    group: Annotated[
        str | None, typer.Option(help="Examination grouping (default: the quantity's)")
    ] = None,
    min_patients: Annotated[
        int, typer.Option(min=1, help="Patients a device needs to count for the DRL")
    ] = DEFAULT_MIN_PATIENTS,
    reference: Annotated[
        str | None, typer.Option(help="Compare with this loaded reference DRL set")
    ] = None,
    modality: Modality = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    data_dir: DataDir = None,
) -> None:
    """DRLs per examination: n, median, quartiles, per-device medians, local DRL (75th
    percentile of device medians) and the reference values."""
    services = _open(_settings(data_dir))
    try:
        target = _project(services, project, Action.READ)
        try:
            levels = services.dose.drls(
                target,
                quantity,
                _dose_filter(modality, date_from, date_to, None),
                group=group,
                min_patients=min_patients,
                reference_set=reference,
            )
        except DrlError as exc:
            raise _fail(exc) from exc
        services.trail.record(
            "dose.drl",
            actor=_local_user(),
            resource=f"project:{target.name}",
            project=target.name,
            source=_source(),
            detail={"quantity": quantity, "group": group, "reference": reference},
        )
    finally:
        services.close()
    if as_json:
        console.print_json(data=[asdict(level) for level in levels])
        return
    unit = QUANTITIES[quantity].unit
    table = Table(
        "examination", "n", "patients", "devices", f"median {unit}", f"Q1-Q3 {unit}",
        f"local DRL {unit}", "reference", "note",
    )  # fmt: skip
    for level in levels:
        references = ", ".join(
            f"{r['set']} {r['value']:g} (x{r['ratio']:.2f})" if r["ratio"] else str(r["value"])
            for r in level.references
        )
        table.add_row(
            level.examination,
            str(level.examinations),
            str(level.patients),
            str(sum(1 for d in level.devices if d.counted)) + f"/{len(level.devices)}",
            f"{level.median:.4g}",
            f"{level.first_quartile:.4g}-{level.third_quartile:.4g}",
            "" if level.local_drl is None else f"{level.local_drl:.4g}",
            references,
            level.note,
        )
    console.print(table)


@drl_app.command("load")
def drl_load(
    csv_file: Annotated[
        Path, typer.Argument(help="CSV: examination,quantity,value,unit[,age_band,source]")
    ],
    name: Annotated[str, typer.Option("--name", help="Name of the reference set, e.g. 'DE 2022'")],
    source: Annotated[str, typer.Option(help="Where the values come from (publication)")] = "",
    data_dir: DataDir = None,
) -> None:
    """Load (or replace) a reference DRL set from CSV: all rows or none."""
    try:
        levels = parse_reference_csv(csv_file.read_text(encoding="utf-8"), name, source)
    except (OSError, UnicodeDecodeError, DrlError) as exc:
        raise _fail(exc) from exc
    services = _open(_settings(data_dir))
    try:
        count = services.index.replace_reference_drls(name, levels, _local_user())
        services.trail.record(
            "dose.reference.load",
            actor=_local_user(),
            resource="node",
            source=_source(),
            detail={"set": name, "rows": count},
        )
    finally:
        services.close()
    console.print(f"loaded {count} reference DRLs as set {name!r}")


@drl_app.command("references")
def drl_references(data_dir: DataDir = None) -> None:
    """The reference DRL sets loaded on this node."""
    services = _open(_settings(data_dir))
    try:
        levels = services.index.reference_drls()
    finally:
        services.close()
    table = Table("set", "examination", "quantity", "value", "age band", "source")
    for level in levels:
        unit = QUANTITIES[level.quantity].unit if level.quantity in QUANTITIES else ""
        table.add_row(
            level.set_name, level.examination, level.quantity, f"{level.value:g} {unit}",
            level.age_band, level.source,
        )  # fmt: skip
    console.print(table)


@app.command("export")
def export_dose(
    project: str,
    table: Annotated[
        str, typer.Option(help="events (one row per irradiation event) or studies")
    ] = "events",
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write CSV to this file")] = None,
    parquet_out: Annotated[
        Path | None, typer.Option("--parquet", help="Write Parquet to this file")
    ] = None,
    modality: Modality = None,
    protocol: Protocol = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    data_dir: DataDir = None,
) -> None:
    """Export a project's dose table (streamed; any size)."""
    if table not in ("events", "studies"):
        raise _fail("--table is events or studies")
    if (csv_out is None) == (parquet_out is None):
        raise _fail("give one of --csv FILE or --parquet FILE")
    out = csv_out or parquet_out
    assert out is not None
    services = _open(_settings(data_dir))
    try:
        target = _project(services, project, Action.READ)
        query = _dose_filter(modality, date_from, date_to, protocol)
        chunks = services.dose.export(target, table, query, "csv" if csv_out else "parquet")
        try:
            with out.open("xb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
        except FileExistsError as exc:
            raise _fail(f"{out} exists; choose a new file") from exc
        services.trail.record(
            "dose.export",
            actor=_local_user(),
            resource=f"project:{target.name}",
            project=target.name,
            source=_source(),
            detail={"table": table, "file": out.name, "modality": modality},
        )
    finally:
        services.close()
    console.print(f"wrote {out}")


_SUBMISSION_TYPES = {
    ".jsonld": "application/ld+json",
    ".json": "application/json",
    ".csv": "text/csv",
}
_RESULT_TYPES = {
    "json": "application/sparql-results+json",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "xml": "application/sparql-results+xml",
    "turtle": "text/turtle",
    "ntriples": "application/n-triples",
}


@rdf_app.command("rebuild")
def rdf_rebuild(
    project: Annotated[str, typer.Option("--project", "-p", help="The project to rebuild")],
    data_dir: DataDir = None,
) -> None:
    """Regenerate the project's RDF graph from the index and the stored objects (dose values
    are read again from the objects) and its stored submissions."""
    services = _open(_settings(data_dir))
    try:
        target = _project(services, project, Action.MANAGE)
        total = services.index.count_instances(target.id)
        with _progress("rebuilding") as progress:
            task = progress.add_task("rebuild", total=total)
            try:
                report = services.graphs.rebuild(target, lambda n: progress.advance(task, n))
            except (StoreUnavailable, FileNotFoundError) as exc:
                raise _fail(f"project {project!r} not rebuilt: {exc}") from exc
        services.trail.record(
            "rdf.rebuild",
            actor=_local_user(),
            resource=f"project:{target.name}",
            project=target.name,
            source=_source(),
            detail={"instances": report.instances, "quads": report.quads},
        )
    finally:
        services.close()
    rate = report.quads / report.seconds if report.seconds else 0
    console.print(
        f"rebuilt graph of project {report.project}: {report.instances} instance(s), "
        f"{report.submissions} submission part(s), {report.quads} triples in "
        f"{report.seconds:.1f} s ({rate:,.0f} triples/s)"
    )


@rdf_app.command("submit")
def rdf_submit(
    file: Annotated[Path, typer.Argument(help="A .jsonld, .json or .csv file")],
    project: Annotated[str, typer.Option("--project", "-p", help="Target project")],
    kind: Annotated[str, typer.Option(help=f"One of {', '.join(SUBMISSION_KINDS)}")],
    media_type: Annotated[
        str | None,
        typer.Option(
            help="application/ld+json, application/json or text/csv (default: by "
            "the file's extension)"
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Validate, pseudonymise and store a non-DICOM submission (dosimetry, organ doses, case
    report forms, outcomes): all of it, or nothing with every problem listed."""
    media = media_type or _SUBMISSION_TYPES.get(file.suffix.lower())
    if media is None:
        raise _fail(f"{file.name}: say what it is with --media-type (extension not known)")
    try:
        body = file.read_bytes()
    except OSError as exc:
        raise _fail(exc) from exc
    services = _open(_settings(data_dir))
    try:
        target = _project(services, project, Action.WRITE)
        try:
            report = services.graphs.submit(
                target, body, media, kind, name=file.name, actor=_local_user(), source=_source()
            )
        except SubmissionRejected as exc:
            err.print(f"[red]rejected:[/red] {file.name}: nothing was stored", highlight=False)
            for violation in exc.violations:
                err.print(f"  {violation}", highlight=False, markup=False)
            raise typer.Exit(1) from exc
        except (SubjectWithdrawn, StoreUnavailable) as exc:
            raise _fail(f"{file.name}: {exc}") from exc
    finally:
        services.close()
    console.print(
        f"stored {file.name} as submission {report.submission_id}: {report.records} "
        f"{kind} record(s) of {report.subjects} subject(s), {report.quads} triples"
    )
    if report.removed_fields:
        console.print(f"identifying fields removed: {', '.join(report.removed_fields)}")


@rdf_app.command("submissions")
def rdf_submissions(project: str, data_dir: DataDir = None) -> None:
    """The project's non-DICOM submissions."""
    services = _open(_settings(data_dir))
    try:
        target = _project(services, project, Action.READ)
        found = services.index.list_submissions(target.id)
    finally:
        services.close()
    table = Table("id", "kind", "name", "records", "subjects", "submitted", "by")
    for item in found:
        table.add_row(
            item.submission_id, item.kind, item.name, str(item.records),
            str(sum(1 for p in item.parts if p.pseudonym)),
            f"{item.submitted_at:%Y-%m-%d %H:%M}", item.submitted_by,
        )  # fmt: skip
    console.print(table)


@rdf_app.command("query")
def rdf_query(
    query: Annotated[str, typer.Argument(help="The SPARQL query, or @FILE to read it from")],
    project: Annotated[
        list[str] | None, typer.Option("--project", "-p", help="Project(s) to query (default all)")
    ] = None,
    result_format: Annotated[
        str, typer.Option("--format", help=f"One of {', '.join(_RESULT_TYPES)}")
    ] = "csv",
    data_dir: DataDir = None,
) -> None:
    """Run a read-only SPARQL query over projects' graphs (and the ontology)."""
    if result_format not in _RESULT_TYPES:
        raise _fail(f"--format {result_format!r}: use one of {', '.join(_RESULT_TYPES)}")
    if query.startswith("@"):
        try:
            query = Path(query[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(exc) from exc
    settings = _settings(data_dir)
    services = _open(settings)
    try:
        names = project or [p.name for p in services.index.list_projects()]
        targets = [_project(services, name, Action.READ) for name in names]
        try:
            result = services.graphs.query(
                query,
                targets,
                _RESULT_TYPES[result_format],
                actor=_local_user(),
                source=_source(),
                timeout_s=settings.sparql_timeout_s,
            )
        except (QueryRefused, StoreUnavailable) as exc:
            raise _fail(exc) from exc
    finally:
        services.close()
    sys.stdout.buffer.write(result.body)
    if not result.body.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")
