"""Local users, passwords, personal API tokens, project roles and sign-in throttling, on a
node's real index (SQLite, then PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from radbank.app import Services
from radbank.governance.identities import (
    USER_FAILURES_ALLOWED,
    InvalidCredentials,
    InvalidIdentity,
    SignInRefused,
)
from radbank.governance.policy import Action, Resource, can
from radbank.index import UserExists
from radbank.projects import create_project

PASSWORD = "correct horse battery staple"


def _user(node: Services, name: str = "ana", **kwargs: object):  # noqa: ANN202
    return node.identities.create_user(
        name, password=PASSWORD, actor="test", source="local", **kwargs
    )


def _project(node: Services, name: str) -> None:
    create_project(node.index, name, keys=node.keys, trail=node.trail, actor="test")


def test_a_user_signs_in_and_uses_a_personal_token(node: Services) -> None:
    user = _user(node, display_name="Ana Researcher")
    assert node.identities.sign_in("ana", PASSWORD, address="10.0.0.5").id == user.id
    issued = node.identities.issue_token(user, name="laptop", actor="ana", source="10.0.0.5")
    assert issued.secret.startswith(f"rbk_{issued.token.token_id}_")
    caller = node.identities.principal_for_token(issued.secret)
    assert caller.name == "ana" and caller.via == "api-token"
    assert caller.scopes == frozenset({"read", "write", "manage"})


def test_passwords_are_stored_as_argon2id_and_secrets_nowhere(
    node: Services, tmp_path: Path
) -> None:
    user = _user(node)
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    issued = node.identities.issue_token(user, name="t", actor="ana", source="local")
    node.identities.principal_for_token(issued.secret)
    stored = node.index.get_token(issued.token.token_id)
    assert stored is not None
    assert (
        stored.secret_sha256 == hashlib.sha256(issued.secret.split("_", 2)[2].encode()).hexdigest()
    )
    trail = json.dumps([r.detail for r in node.trail.records()]) + " ".join(
        r.actor for r in node.trail.records()
    )
    assert PASSWORD not in trail and issued.secret not in trail
    # The SQLite index (in the data directory) holds neither the password nor the token.
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert PASSWORD.encode() not in data, path
            assert issued.secret.encode() not in data, path


@pytest.mark.parametrize(
    ("name", "password", "reason"),
    [
        ("ana", "short", "at least 12 characters"),
        ("ana", "x" * 2000, "at most 1024 bytes"),
        ("../etc", PASSWORD, "invalid user name"),
        ("", PASSWORD, "invalid user name"),
        ("a b", PASSWORD, "invalid user name"),
    ],
)
def test_bad_names_and_passwords_are_refused_with_the_reason(
    node: Services, name: str, password: str, reason: str
) -> None:
    with pytest.raises(InvalidIdentity, match=reason):
        node.identities.create_user(name, password=password, actor="t", source="local")
    assert node.index.list_users() == []


def test_node_roles_and_duplicate_names(node: Services) -> None:
    with pytest.raises(InvalidIdentity, match="unknown node role 'steward'"):
        _user(node, node_roles=["steward"])
    _user(node, node_roles=["auditor"])
    with pytest.raises(UserExists):
        _user(node)


def test_wrong_passwords_lock_the_name_then_the_right_one_works_again(node: Services) -> None:
    _user(node)
    for _ in range(USER_FAILURES_ALLOWED):
        with pytest.raises(InvalidCredentials, match="unknown user name or wrong password"):
            node.identities.sign_in("ana", "wrong password!", address="10.0.0.9")
    with pytest.raises(SignInRefused) as refused:
        node.identities.sign_in("ana", PASSWORD, address="10.0.0.9")
    assert refused.value.retry_after >= 1
    # The lock ends: pretend its time has passed.
    node.index.clear_login_failures(["user:ana", "address:10.0.0.9"])
    assert node.identities.sign_in("ana", PASSWORD, address="10.0.0.9").name == "ana"
    outcomes = [r.outcome for r in node.trail.records() if r.action == "auth.sign-in"]
    assert outcomes == ["denied"] * (USER_FAILURES_ALLOWED + 1) + ["success"]


def test_unknown_users_fail_like_wrong_passwords(node: Services) -> None:
    with pytest.raises(InvalidCredentials, match="unknown user name or wrong password"):
        node.identities.sign_in("nobody", PASSWORD, address="10.0.0.9")
    tokens_only = node.identities.create_user("svc", actor="t", source="local")
    assert tokens_only.password_hash is None
    with pytest.raises(InvalidCredentials, match="unknown user name or wrong password"):
        node.identities.sign_in("svc", PASSWORD, address="10.0.0.9")


def test_revoked_expired_and_disabled_tokens_stop_working(node: Services) -> None:
    user = _user(node)
    issued = node.identities.issue_token(user, name="t", actor="ana", source="local")
    node.identities.revoke_token(issued.token.token_id, actor="ana", source="local")
    with pytest.raises(InvalidCredentials, match="was revoked"):
        node.identities.principal_for_token(issued.secret)

    secret = "A" * 43
    node.index.add_token(
        user_id=user.id,
        token_id="00000000000000aa",
        name="old",
        secret_sha256=hashlib.sha256(secret.encode()).hexdigest(),
        scopes=["read"],
        expires_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    with pytest.raises(InvalidCredentials, match="expired on"):
        node.identities.principal_for_token(f"rbk_00000000000000aa_{secret}")

    fresh = node.identities.issue_token(user, name="t2", actor="ana", source="local")
    node.identities.set_disabled("ana", True, actor="admin", source="local")
    with pytest.raises(InvalidCredentials, match="disabled"):
        node.identities.principal_for_token(fresh.secret)
    with pytest.raises(InvalidCredentials):
        node.identities.sign_in("ana", PASSWORD, address="10.0.0.1")


@pytest.mark.parametrize(
    "secret",
    [
        "rbk_0000000000000000_" + "B" * 43,  # well-formed, unknown id
        "not-a-token",
        "rbk_' OR 1=1 --",
        "",
    ],
)
def test_forged_tokens_identify_nobody(node: Services, secret: str) -> None:
    with pytest.raises(InvalidCredentials, match="invalid or expired token"):
        node.identities.principal_for_token(secret)


def test_a_token_with_the_right_id_and_a_wrong_secret_is_refused(node: Services) -> None:
    issued = node.identities.issue_token(_user(node), name="t", actor="ana", source="local")
    forged = issued.secret[:-4] + ("AAAA" if not issued.secret.endswith("AAAA") else "BBBB")
    with pytest.raises(InvalidCredentials, match="invalid or expired token"):
        node.identities.principal_for_token(forged)


def test_project_roles_reach_the_policy_and_expire(node: Services) -> None:
    _project(node, "ct")
    _project(node, "mr")
    user = _user(node)
    project = node.index.get_project("ct")
    assert project is not None
    node.index.grant_role(project.id, user.id, "researcher", granted_by="steward")
    caller = node.identities.principal_for_user(user)
    assert can(caller, Action.READ, Resource("ct"))
    assert not can(caller, Action.READ, Resource("mr"))
    assert not can(caller, Action.WRITE, Resource("ct"))

    node.index.grant_role(
        project.id,
        user.id,
        "researcher",
        granted_by="steward",
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    assert not can(node.identities.principal_for_user(user), Action.READ, Resource("ct"))


def test_scopes_narrow_what_a_token_may_do(node: Services) -> None:
    _project(node, "ct")
    user = _user(node)
    project = node.index.get_project("ct")
    assert project is not None
    node.index.grant_role(project.id, user.id, "steward", granted_by="admin")
    read_only = node.identities.issue_token(
        user, name="r", scopes=["read"], actor="ana", source="local"
    )
    caller = node.identities.principal_for_token(read_only.secret)
    assert can(caller, Action.READ, Resource("ct"))
    assert not can(caller, Action.MANAGE, Resource("ct"))
    with pytest.raises(InvalidIdentity, match="token scopes must be some of"):
        node.identities.issue_token(user, name="x", scopes=["root"], actor="ana", source="local")
    with pytest.raises(InvalidIdentity, match="1 to 365 days"):
        node.identities.issue_token(user, name="x", days=0, actor="ana", source="local")


def test_old_failures_are_forgotten(node: Services) -> None:
    _user(node)
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    for _ in range(USER_FAILURES_ALLOWED + 3):
        node.index.record_login_failure(["user:ana"], lambda n: timedelta(seconds=n), long_ago)
    # An hour later the count starts again: one more failure does not lock the name.
    node.index.record_login_failure(
        ["user:ana"], lambda n: timedelta(0) if n < 2 else timedelta(hours=1)
    )
    locked = node.index.login_locked_until(["user:ana"])
    assert locked is not None and locked <= datetime.now(UTC)
    assert node.identities.sign_in("ana", PASSWORD, address="10.0.0.1").name == "ana"


def test_issuer_accounts_have_no_password(node: Services) -> None:
    node.index.create_user("dr.oidc", source="oidc", oidc_subject="https://idp#1")
    with pytest.raises(InvalidIdentity, match="has no password"):
        node.identities.set_password("dr.oidc", PASSWORD, actor="admin", source="local")
