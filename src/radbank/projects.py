"""Projects: the unit that owns data, a pseudonymisation key and a de-identification profile."""

from __future__ import annotations

import re
import secrets

from radbank.dicom.deid import PROFILE_NAMES
from radbank.index import Index, Project

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class InvalidProject(ValueError):
    """A project name or setting that cannot be accepted; the message says why."""


def validate_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidProject(
            f"invalid project name {name[:80]!r}: use 1-63 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def create_project(
    index: Index, name: str, *, title: str = "", description: str = "", profile: str = "basic"
) -> Project:
    validate_name(name)
    if profile not in PROFILE_NAMES:
        raise InvalidProject(
            f"unknown de-identification profile {profile!r}; choose one of {', '.join(PROFILE_NAMES)}"
        )
    return index.create_project(
        name,
        title=title or name,
        description=description,
        profile=profile,
        key_salt=secrets.token_bytes(32),
    )
