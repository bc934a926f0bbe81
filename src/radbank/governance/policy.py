"""The one authorisation decision: `can(principal, action, resource)`. Deny by default.

Until project roles exist, only the node administrator may act; anonymous callers and
unknown tokens are denied everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMINISTER = "administer"


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


ANONYMOUS = Principal("anonymous")
ADMIN = Principal("admin", frozenset({"admin"}))


def can(principal: Principal, action: Action, resource: str) -> bool:
    """Whether principal may perform action on resource (e.g. "project:ct-trial", "node")."""
    return principal.is_admin
