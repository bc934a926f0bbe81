"""Projects: created once per name, found by name, listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from radbank.index import Index, ProjectExists


def test_create_and_get_project(index: Index) -> None:
    created = index.create_project(
        "medirad",
        title="MEDIRAD",
        description="Dose biobank",
        profile="basic-dates",
        key_salt=b"\x00\x01salt\xff",
    )
    found = index.get_project("medirad")
    assert found == created
    assert found.key_salt == b"\x00\x01salt\xff"
    assert found.profile == "basic-dates"
    assert found.created_at.tzinfo is not None
    assert abs(found.created_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_unknown_project_is_none(index: Index) -> None:
    assert index.get_project("nope") is None


def test_project_names_are_unique(index: Index) -> None:
    index.create_project("trial", key_salt=b"a")
    with pytest.raises(ProjectExists, match="trial"):
        index.create_project("trial", key_salt=b"b")
    assert index.get_project("trial").key_salt == b"a"


def test_list_projects_by_name(index: Index) -> None:
    for name in ("zeta", "alpha", "mid"):
        index.create_project(name, key_salt=name.encode())
    assert [p.name for p in index.list_projects()] == ["alpha", "mid", "zeta"]
    assert len({p.id for p in index.list_projects()}) == 3
