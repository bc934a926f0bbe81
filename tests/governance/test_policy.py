"""The one policy decision, as a table: every role x every action x own project / other
project / open-access project / the node, against expectations written out here."""

from __future__ import annotations

import pytest

from radbank.governance.policy import (
    ADMIN,
    ANONYMOUS,
    NODE,
    Action,
    Principal,
    Resource,
    can,
)

OWN, OTHER = Resource("own"), Resource("other")
OPEN = Resource("open", open_access=True)
PROJECT_ACTIONS = [
    Action.DISCOVER,
    Action.READ,
    Action.WRITE,
    Action.REVIEW,
    Action.MANAGE,
    Action.REIDENTIFY,
]
NODE_ACTIONS = [Action.CREATE_PROJECT, Action.ADMINISTER, Action.AUDIT]

IN_OWN_PROJECT = {
    "steward": {Action.DISCOVER, Action.READ, Action.REVIEW, Action.MANAGE},
    "contributor": {Action.DISCOVER, Action.WRITE, Action.REVIEW},
    "researcher": {Action.DISCOVER, Action.READ},
    "honest_broker": {Action.DISCOVER, Action.REIDENTIFY},
}


def _member(role: str) -> Principal:
    return Principal(f"a-{role}", project_roles={"own": frozenset({role})}, via="api-token")


@pytest.mark.parametrize("role", sorted(IN_OWN_PROJECT))
@pytest.mark.parametrize("action", PROJECT_ACTIONS)
def test_project_roles(role: str, action: Action) -> None:
    caller = _member(role)
    assert can(caller, action, OWN) == (action in IN_OWN_PROJECT[role])
    # Elsewhere: the catalogue entry only; the data of an open project too.
    assert can(caller, action, OTHER) == (action is Action.DISCOVER)
    assert can(caller, action, OPEN) == (action in (Action.DISCOVER, Action.READ))
    assert not can(caller, Action.AUDIT, NODE)


@pytest.mark.parametrize("action", PROJECT_ACTIONS + NODE_ACTIONS)
def test_the_admin_may_do_everything_but_re_identify(action: Action) -> None:
    resource = NODE if action in NODE_ACTIONS else OTHER
    assert can(ADMIN, action, resource) == (action is not Action.REIDENTIFY)


@pytest.mark.parametrize("action", PROJECT_ACTIONS + NODE_ACTIONS)
def test_anonymous_callers_read_open_projects_only(action: Action) -> None:
    for resource in (OWN, OTHER, NODE):
        assert not can(ANONYMOUS, action, resource)
    assert can(ANONYMOUS, action, OPEN) == (action in (Action.DISCOVER, Action.READ))


def test_the_auditor_reads_the_trail_and_no_data() -> None:
    auditor = Principal("olga", frozenset({"auditor"}), via="api-token")
    assert can(auditor, Action.AUDIT, NODE)
    assert not can(auditor, Action.ADMINISTER, NODE)
    assert not can(auditor, Action.READ, OTHER)
    assert can(auditor, Action.DISCOVER, OTHER)


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        ({"read"}, {Action.DISCOVER, Action.READ, Action.REVIEW}),
        ({"write"}, {Action.DISCOVER}),
        ({"manage"}, {Action.DISCOVER, Action.MANAGE}),
        (set(), set()),
    ],
)
def test_token_scopes_narrow_a_steward(scopes: set[str], allowed: set[Action]) -> None:
    steward = Principal(
        "ana",
        project_roles={"own": frozenset({"steward"})},
        scopes=frozenset(scopes),
        via="api-token",
    )
    assert {a for a in PROJECT_ACTIONS if can(steward, a, OWN)} == allowed


def test_project_actions_are_never_node_actions() -> None:
    for action in NODE_ACTIONS:
        assert not can(ADMIN, action, OWN)
    for action in PROJECT_ACTIONS:
        assert not can(ADMIN, action, NODE)
