"""The radbank command: a thin shell over the library (serve, demo, project, import, verify)."""

from __future__ import annotations

import io
import os
import sys
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from radbank.app import Services, build_services, recover
from radbank.config import Settings
from radbank.governance.keys import KeyFileError, reset_admin_token
from radbank.governance.policy import ADMIN
from radbank.index import ProjectExists
from radbank.ingest import Item, Outcome, Status
from radbank.offline import deid_command
from radbank.projects import InvalidProject, create_project

app = typer.Typer(help="radbank: a node of a research repository network for images and dose.")
project_app = typer.Typer(help="Create and list projects.")
app.add_typer(project_app, name="project")
app.command("deid")(deid_command)
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


def _open(settings: Settings) -> Services:
    try:
        services, token = build_services(settings)
    except KeyFileError as exc:
        err.print(f"[red]error:[/red] {exc}")
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
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8043)")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: one per core, at most 4)")
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
            title="Demo: synthetic multi-site CT",
            description="Synthetic CT studies of three sites with planted identity, de-identified on ingest.",
            profile="basic-dates",
        )
    project = services.index.get_project(DEMO_PROJECT)
    assert project is not None
    items = []
    for number, dataset in enumerate(demo_studies()):
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        items.append(Item(f"demo-{number:04d}.dcm", buffer.getvalue()))
    outcomes = services.pipeline.ingest(items, project, source="demo", principal=ADMIN)
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
) -> None:
    """Create a project with its own pseudonymisation key and de-identification profile."""
    services = _open(_settings(data_dir))
    try:
        create_project(services.index, name, title=title, description=description, profile=profile)
    except InvalidProject as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except ProjectExists as exc:
        err.print(f"[red]error:[/red] project {name!r} already exists")
        raise typer.Exit(1) from exc
    finally:
        services.close()
    console.print(f"Created project {name!r} (profile {profile}).")


@project_app.command("list")
def project_list(data_dir: DataDir = None) -> None:
    """List projects."""
    services = _open(_settings(data_dir))
    try:
        table = Table("name", "title", "profile", "created")
        for p in services.index.list_projects():
            table.add_row(p.name, p.title, p.profile, p.created_at.isoformat(timespec="seconds"))
        console.print(table)
    finally:
        services.close()


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A DICOM file, a folder or a .zip archive")],
    project: Annotated[str, typer.Option("--project", "-p", help="Target project")],
    data_dir: DataDir = None,
) -> None:
    """De-identify and store every DICOM file of a folder or zip into a project."""
    if not path.exists():
        err.print(f"[red]error:[/red] {path} does not exist")
        raise typer.Exit(2)
    settings = _settings(data_dir)
    services = _open(settings)
    try:
        target = services.index.get_project(project)
        if target is None:
            err.print(
                f"[red]error:[/red] unknown project {project!r} (create it with 'radbank project create')"
            )
            raise typer.Exit(2)
        sources = list(_sources(path))
        outcomes: list[Outcome] = []
        skipped: list[str] = []
        with Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("import", total=len(sources))
            batch: list[Item] = []
            size = 0
            for name, file_size, read in sources:
                if Path(name).name.upper() == "DICOMDIR":
                    skipped.append(name)
                    progress.advance(task)
                    continue
                if file_size > settings.max_instance_bytes:
                    outcomes.append(
                        Outcome(
                            name,
                            Status.REJECTED,
                            f"{name}: {file_size} bytes, larger than the limit of "
                            f"{settings.max_instance_bytes} (RADBANK_MAX_INSTANCE_BYTES)",
                        )
                    )
                    progress.advance(task)
                    continue
                try:
                    data = read()
                except (OSError, zipfile.BadZipFile, zlib.error, RuntimeError) as exc:
                    outcomes.append(Outcome(name, Status.REJECTED, f"{name}: cannot read ({exc})"))
                    progress.advance(task)
                    continue
                batch.append(Item(name, data))
                size += len(data)
                if len(batch) >= _BATCH_FILES or size >= _BATCH_BYTES:
                    outcomes += services.pipeline.ingest(
                        batch, target, source="cli-import", principal=ADMIN
                    )
                    progress.advance(task, len(batch))
                    batch, size = [], 0
            if batch:
                outcomes += services.pipeline.ingest(
                    batch, target, source="cli-import", principal=ADMIN
                )
                progress.advance(task, len(batch))
    finally:
        services.close()
    counts = Counter(o.status for o in outcomes)
    console.print(
        f"{counts[Status.STORED]} stored, {counts[Status.DUPLICATE]} duplicate, "
        f"{counts[Status.QUARANTINED]} quarantined, "
        f"{counts[Status.REJECTED] + counts[Status.CONFLICT]} rejected"
        + (f", {len(skipped)} DICOMDIR skipped" if skipped else "")
    )
    for outcome in outcomes:
        if outcome.status in (Status.REJECTED, Status.CONFLICT, Status.QUARANTINED):
            console.print(
                f"  {outcome.status.value}: {outcome.reason}", highlight=False, soft_wrap=True
            )
    if counts[Status.REJECTED] or counts[Status.CONFLICT]:
        raise typer.Exit(1)


def _sources(path: Path) -> Iterator[tuple[str, int, Callable[[], bytes]]]:
    """(name, size, reader) of every file under path, looking inside .zip archives."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if zipfile.is_zipfile(file):
            with zipfile.ZipFile(file) as archive:
                for info in archive.infolist():
                    if not info.is_dir():
                        yield (
                            f"{file}!{info.filename}",
                            info.file_size,
                            (lambda file=file, member=info.filename: _read_member(file, member)),
                        )
        else:
            yield str(file), file.stat().st_size, file.read_bytes


def _read_member(file: Path, member: str) -> bytes:
    with zipfile.ZipFile(file) as archive:
        return archive.read(member)


@app.command()
def verify(data_dir: DataDir = None) -> None:
    """Reconcile index and blob store: missing blobs, orphan blobs, checksum mismatches."""
    import hashlib

    services = _open(_settings(data_dir))
    problems = 0
    try:
        referenced: set[str] = set()
        checked = 0
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
        referenced.update(services.index.iter_quarantine_blob_keys())
        for key in services.store.keys():
            if key not in referenced:
                problems += 1
                console.print(f"orphan blob (no index row): {key}")
    finally:
        services.close()
    console.print(f"verified {checked} instance(s): {problems} problem(s)")
    if problems:
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
