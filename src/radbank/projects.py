"""Projects: the unit that owns data, a pseudonymisation key, de-identification settings
(profile, overrides, pixel rules, OCR check) and, optionally, a pseudonym vault.

Every change made here is validated first (a client's mistake is an InvalidProject naming
the setting and the reason) and recorded in the audit trail in the same transaction.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from radbank.dicom.deid import PROFILE_NAMES, Profile
from radbank.dicom.deid.pixels import PixelRule, parse_pixel_rules
from radbank.governance.audit import AuditTrail
from radbank.governance.duo import validate_conditions
from radbank.governance.identities import InvalidIdentity, validate_project_role
from radbank.governance.keys import NodeKeys
from radbank.governance.policy import is_project_name
from radbank.governance.sitekey import KEY_BYTES, write_key_file
from radbank.index import Index, Project, User


class InvalidProject(ValueError):
    """A project name or setting that cannot be accepted; the message says why."""


def validate_name(name: str) -> str:
    if not is_project_name(name):
        raise InvalidProject(
            f"invalid project name {name[:80]!r}: use 1-63 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def deid_profile(profile: str, overrides: Mapping[str, str]) -> Profile:
    """The de-identification profile of a project: a shipped profile plus its overrides."""
    if profile not in PROFILE_NAMES:
        raise InvalidProject(
            f"unknown de-identification profile {profile!r}; choose one of {', '.join(PROFILE_NAMES)}"
        )
    try:
        return Profile.named(profile).with_overrides(overrides)
    except ValueError as exc:
        raise InvalidProject(f"invalid override: {exc}") from None


def pixel_rules(raw: Sequence[Mapping[str, Any]]) -> tuple[PixelRule, ...]:
    """A project's pixel rules, parsed and checked."""
    try:
        return parse_pixel_rules(list(raw))
    except (ValueError, TypeError) as exc:
        raise InvalidProject(f"invalid pixel rules: {exc}") from None


def create_project(
    index: Index,
    name: str,
    *,
    keys: NodeKeys,
    trail: AuditTrail,
    actor: str,
    source: str = "local",
    title: str = "",
    description: str = "",
    profile: str = "basic",
    imported_key: bytes | None = None,
) -> Project:
    """Create a project. Its key is `imported_key` (e.g. from the key file a site's
    `radbank deid` uses), held wrapped under the master key, or else derived from the
    master key and a fresh random salt. The creation is recorded in the audit trail by
    `actor`. Raises InvalidProject or ProjectExists.
    """
    validate_name(name)
    deid_profile(profile, {})
    if imported_key is not None and len(imported_key) != KEY_BYTES:
        raise InvalidProject(
            f"project {name!r}: an imported key has {KEY_BYTES} bytes, not {len(imported_key)}"
        )

    def key_material() -> tuple[str | None, bytes | None]:
        # Read under the index's key lock: a master key rotation in another process has
        # either not started re-wrapping, or has finished and written its key file.
        ring = keys.ring
        if imported_key is None:
            return ring.master_key_id, None
        wrapped_key, key_id = ring.wrap(name, imported_key)
        return key_id, wrapped_key

    audit = trail.project_event(
        "project.create",
        name,
        actor=actor,
        source=source,
        detail={"profile": profile, "key": "imported" if imported_key else "derived"},
    )
    return index.create_project(
        name,
        title=title or name,
        description=description,
        profile=profile,
        key_salt=secrets.token_bytes(32),
        key_material=key_material,
        audit=audit,
    )


@dataclass(frozen=True)
class SettingsChange:
    """New values of a project's de-identification settings; None leaves one unchanged."""

    profile: str | None = None
    overrides: Mapping[str, str] | None = None
    pixel_rules: Sequence[Mapping[str, Any]] | None = None
    ocr_check: bool | None = None

    def as_json(self) -> dict[str, Any]:
        changed = {
            "profile": self.profile,
            "overrides": dict(self.overrides) if self.overrides is not None else None,
            "pixel_rules": list(self.pixel_rules) if self.pixel_rules is not None else None,
            "ocr_check": self.ocr_check,
        }
        return {key: value for key, value in changed.items() if value is not None}


def update_settings(
    index: Index,
    project: Project,
    change: SettingsChange,
    *,
    trail: AuditTrail,
    actor: str,
    source: str = "local",
) -> Project:
    """Validate and store new settings; the pipeline applies them from the next batch on."""
    deid_profile(
        change.profile if change.profile is not None else project.profile,
        change.overrides if change.overrides is not None else project.overrides,
    )
    if change.pixel_rules is not None:
        pixel_rules(change.pixel_rules)
    return index.update_project_settings(
        project.id,
        profile=change.profile,
        overrides=change.overrides,
        pixel_rules=change.pixel_rules,
        ocr_check=change.ocr_check,
        audit=trail.project_event(
            "project.settings",
            project.name,
            actor=actor,
            source=source,
            detail={"changed": change.as_json()},
        ),
    )


# Licences whose terms let anyone reuse the data (with attribution or share-alike at most);
# any other licence needs an intellectual-property statement saying who holds which rights.
OPEN_LICENCES = frozenset(
    {
        "CC0-1.0",
        "CC-BY-4.0",
        "CC-BY-SA-4.0",
        "PDDL-1.0",
        "ODC-By-1.0",
        "ODbL-1.0",
    }
)
KNOWN_LICENCES = OPEN_LICENCES | {
    "CC-BY-NC-4.0",
    "CC-BY-NC-SA-4.0",
    "CC-BY-ND-4.0",
    "CC-BY-NC-ND-4.0",
}
_LICENCE_REF = re.compile(r"LicenseRef-[A-Za-z0-9.-]{1,64}")


@dataclass(frozen=True)
class DatasetChange:
    """New values of a project's dataset description; None leaves one unchanged."""

    title: str | None = None
    description: str | None = None
    licence: str | None = None
    ip_statement: str | None = None
    data_use: Sequence[str] | None = None
    consent_required: bool | None = None
    open_access: bool | None = None

    def as_json(self) -> dict[str, Any]:
        changed = {
            "title": self.title,
            "description": self.description,
            "licence": self.licence,
            "ip_statement": self.ip_statement,
            "data_use": list(self.data_use) if self.data_use is not None else None,
            "consent_required": self.consent_required,
            "open_access": self.open_access,
        }
        return {key: value for key, value in changed.items() if value is not None}


def validate_dataset(project: Project, change: DatasetChange) -> dict[str, Any]:
    """The changed fields, checked together with what stays; InvalidProject says why not."""
    values = change.as_json()
    licence = values.get("licence", project.licence)
    statement = values.get("ip_statement", project.ip_statement)
    if licence and licence not in KNOWN_LICENCES and not _LICENCE_REF.fullmatch(licence):
        raise InvalidProject(
            f"unknown licence {licence[:80]!r}: use an SPDX or Creative Commons id "
            f"({', '.join(sorted(KNOWN_LICENCES))}) or LicenseRef-<name> with an "
            "intellectual-property statement"
        )
    if licence and licence not in OPEN_LICENCES and not statement.strip():
        raise InvalidProject(
            f"licence {licence!r} is not an open licence: add an ip_statement saying who "
            "holds the rights and on which terms the data may be used"
        )
    if "data_use" in values:
        try:
            validate_conditions(values["data_use"])
        except ValueError as exc:
            raise InvalidProject(f"invalid data_use: {exc}") from None
    return values


def update_dataset(
    index: Index,
    project: Project,
    change: DatasetChange,
    *,
    trail: AuditTrail,
    actor: str,
    source: str = "local",
) -> Project:
    """Validate and store a new dataset description (licence, DUO conditions, consent
    requirement, open access); audited in the same transaction."""
    values = validate_dataset(project, change)
    if not values:
        return project
    return index.update_project_dataset(
        project.id,
        values,
        trail.project_event(
            "project.dataset",
            project.name,
            actor=actor,
            source=source,
            detail={"changed": values},
        ),
    )


class UnknownUser(LookupError):
    """A user name the node does not know."""


def grant_role(
    index: Index,
    project: Project,
    user: str,
    role: str,
    *,
    trail: AuditTrail,
    actor: str,
    source: str = "local",
    days: int | None = None,
    cohort_id: int | None = None,
) -> None:
    """Give `user` a project role (for `days`, or until taken away; a researcher role may be
    limited to a saved cohort); audited. Raises InvalidProject or UnknownUser."""
    try:
        validate_project_role(role)
    except InvalidIdentity as exc:
        raise InvalidProject(str(exc)) from None
    if cohort_id is not None and (
        role != "researcher" or cohort_id not in {c.id for c in index.cohorts(project.id)}
    ):
        raise InvalidProject(
            f"a cohort ({cohort_id}) limits a researcher role of this project only"
        )
    found = _user(index, user)
    index.grant_role(
        project.id,
        found.id,
        role,
        granted_by=actor,
        expires_at=datetime.now(UTC) + timedelta(days=days) if days else None,
        cohort_id=cohort_id,
        audit=trail.project_event(
            "project.grant-role",
            project.name,
            actor=actor,
            source=source,
            detail={"user": user, "role": role, "days": days, "cohort": cohort_id},
        ),
    )


def revoke_role(
    index: Index,
    project: Project,
    user: str,
    role: str,
    *,
    trail: AuditTrail,
    actor: str,
    source: str = "local",
) -> bool:
    """Take a project role away (audited); False when the user did not have it. Raises
    UnknownUser."""
    found = _user(index, user)
    return index.revoke_role(
        project.id,
        found.id,
        role,
        trail.project_event(
            "project.revoke-role",
            project.name,
            actor=actor,
            source=source,
            detail={"user": user, "role": role},
        ),
    )


def _user(index: Index, name: str) -> User:
    found = index.get_user(name)
    if found is None:
        raise UnknownUser(f"no user named {name[:80]!r}; an administrator creates users")
    return found


def export_key(
    keys: NodeKeys, project: Project, out: Path, *, trail: AuditTrail, actor: str
) -> None:
    """Write the project's key to the new key file `out` (0600), for `radbank deid
    --key-file` at a site; never overwrites. Audited."""
    write_key_file(out, keys.project_key(project))
    trail.record(
        "project.export-key",
        actor=actor,
        resource=f"project:{project.name}",
        project=project.name,
        source="local",
        detail={"file": str(out)},
    )
