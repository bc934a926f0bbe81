"""The one authorisation decision: `can(principal, action, resource)`. Deny by default.

Every HTTP route, DICOMweb query, CLI command and (later) DIMSE operation and SPARQL query
asks this function and nothing else. Who may do what:

| role (where)                 | may                                                       |
|------------------------------|-----------------------------------------------------------|
| admin (node)                 | everything except opening the pseudonym vault             |
| auditor (node)               | read the audit trail                                      |
| steward (project)            | read the data, review quarantine, manage the project      |
|                              | (settings, members, consents, access requests)            |
| contributor (project)        | upload, review the quarantine of the project              |
| researcher (project)         | read the de-identified data                               |
| honest_broker (project)      | open the project's pseudonym vault (re-identification)    |
| anyone, open-access project  | see its description and read its de-identified data       |
| any signed-in user           | see every project's dataset description (the catalogue),  |
|                              | so as to ask for access; never its data or settings        |

The node administrator cannot re-identify: re-identification is the honest broker's alone
(separation of duties). A token may carry scopes that narrow what its holder may do:
"read" (description, data, quarantine, audit), "write" (upload), "manage" (everything that
changes settings, roles or the node, and re-identification). A project role that a grant
gave for a limited time is gone from the principal once it expires (the index filters it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Action(StrEnum):
    DISCOVER = "project.discover"  # see that a project exists and its dataset description
    READ = "data.read"  # QIDO, WADO, metadata, dose tables, SPARQL
    WRITE = "data.write"  # STOW, import, C-STORE
    REVIEW = "quarantine.read"  # what was held back from a project, and why
    MANAGE = "project.manage"  # settings, members, consents, access decisions
    REIDENTIFY = "vault.open"
    CREATE_PROJECT = "project.create"
    ADMINISTER = "node.administer"  # users, tokens of others, node settings
    AUDIT = "audit.read"


class Role(StrEnum):
    ADMIN = "admin"
    AUDITOR = "auditor"
    STEWARD = "steward"
    CONTRIBUTOR = "contributor"
    RESEARCHER = "researcher"
    HONEST_BROKER = "honest_broker"


NODE_ROLES = frozenset({Role.ADMIN, Role.AUDITOR})
PROJECT_ROLES = frozenset({Role.STEWARD, Role.CONTRIBUTOR, Role.RESEARCHER, Role.HONEST_BROKER})

SCOPES: Mapping[str, frozenset[Action]] = {
    "read": frozenset({Action.DISCOVER, Action.READ, Action.REVIEW, Action.AUDIT}),
    "write": frozenset({Action.DISCOVER, Action.WRITE}),
    "manage": frozenset(
        {
            Action.DISCOVER,
            Action.MANAGE,
            Action.REIDENTIFY,
            Action.CREATE_PROJECT,
            Action.ADMINISTER,
        }
    ),
}

_PROJECT_ROLE_ACTIONS: Mapping[str, frozenset[Action]] = {
    Role.STEWARD: frozenset({Action.DISCOVER, Action.READ, Action.REVIEW, Action.MANAGE}),
    Role.CONTRIBUTOR: frozenset({Action.DISCOVER, Action.WRITE, Action.REVIEW}),
    Role.RESEARCHER: frozenset({Action.DISCOVER, Action.READ}),
    Role.HONEST_BROKER: frozenset({Action.DISCOVER, Action.REIDENTIFY}),
}
_NODE_ACTIONS = frozenset({Action.CREATE_PROJECT, Action.ADMINISTER, Action.AUDIT})
_OPEN_ACCESS = frozenset({Action.DISCOVER, Action.READ})


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user (by token, password or OpenID Connect), the node's admin
    token, the command line, or nobody (anonymous)."""

    name: str
    node_roles: frozenset[str] = frozenset()
    project_roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    scopes: frozenset[str] | None = None
    """None: not narrowed; else the token's scopes (keys of SCOPES)."""
    cohorts: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Projects where reading is limited to saved cohorts: project -> the study UIDs the
    caller may see. Searches are filtered to them and other studies answer as unknown."""
    grants: Mapping[str, int] = field(default_factory=dict)
    """project -> the approved access request under which the caller reads there (audited
    with every access)."""
    authenticated: bool = True
    via: str = ""
    """How the caller was recognised: "admin-token", "api-token", "oidc", "local", ""."""

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.node_roles

    def roles_in(self, project: str) -> frozenset[str]:
        return self.project_roles.get(project, frozenset())

    def visible_studies(self, project: str) -> frozenset[str] | None:
        """The studies of the project the caller may read; None: all of them."""
        if self.is_admin:
            return None
        return self.cohorts.get(project)


ANONYMOUS = Principal("anonymous", authenticated=False)
ADMIN = Principal("admin", frozenset({Role.ADMIN}), via="admin-token")


_PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def is_project_name(name: str) -> bool:
    """1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit."""
    return _PROJECT_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class Resource:
    """What is acted on: the node, or one project (with its open-access flag)."""

    project: str | None = None
    open_access: bool = False

    def __str__(self) -> str:
        return f"project:{self.project}" if self.project is not None else "node"


NODE = Resource()


def can(principal: Principal, action: Action, resource: Resource) -> bool:
    """Whether `principal` may perform `action` on `resource`. Deny by default."""
    if principal.scopes is not None and not any(
        action in SCOPES.get(scope, frozenset()) for scope in principal.scopes
    ):
        return False
    if resource.project is None:
        if action not in _NODE_ACTIONS:
            return False
        if principal.is_admin:
            return True
        return action is Action.AUDIT and Role.AUDITOR in principal.node_roles
    if action in _NODE_ACTIONS:
        return False
    if resource.open_access and action in _OPEN_ACCESS:
        return True
    if principal.is_admin and action is not Action.REIDENTIFY:
        return True
    if action is Action.DISCOVER and principal.authenticated:
        return True  # the catalogue: every signed-in user may find a dataset and ask for it
    return any(
        action in _PROJECT_ROLE_ACTIONS.get(role, frozenset())
        for role in principal.roles_in(resource.project)
    )
