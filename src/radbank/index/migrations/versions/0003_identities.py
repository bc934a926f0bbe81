"""Users, personal API tokens, project roles, sign-in throttling; projects as datasets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen copies of the column types of this revision (not imported from _schema, which moves on).
TEXT = sa.String().with_variant(sa.String(collation="C"), "postgresql")
TIME = sa.DateTime(timezone=True)


def _text(name: str, nullable: bool = True, **kwargs: object) -> sa.Column:
    return sa.Column(name, TEXT, nullable=nullable, **kwargs)


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(_text("licence", False, server_default=""))
        batch.add_column(_text("ip_statement", False, server_default=""))
        batch.add_column(
            sa.Column("data_use", sa.JSON, nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(
            sa.Column("consent_required", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("open_access", sa.Boolean, nullable=False, server_default=sa.false())
        )

    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        _text("name", False, unique=True),
        _text("display_name", False, server_default=""),
        _text("source", False),
        _text("oidc_subject", unique=True),
        _text("password_hash"),
        sa.Column("node_roles", sa.JSON, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        _text("token_id", False, unique=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        _text("name", False),
        _text("secret_sha256", False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME),
        sa.Column("last_used_at", TIME),
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user_id"])
    op.create_table(
        "project_members",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        _text("role", False),
        _text("granted_by", False),
        sa.Column("granted_at", TIME, nullable=False),
        sa.Column("expires_at", TIME),
        sa.UniqueConstraint("project_id", "user_id", "role", name="uq_project_members_role"),
    )
    op.create_index("ix_project_members_user", "project_members", ["user_id"])
    op.create_table(
        "login_failures",
        _text("key", False, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", TIME, nullable=False),
        sa.Column("locked_until", TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_table("project_members")
    op.drop_table("api_tokens")
    op.drop_table("users")
    with op.batch_alter_table("projects") as batch:
        for column in ("open_access", "consent_required", "data_use", "ip_statement", "licence"):
            batch.drop_column(column)
