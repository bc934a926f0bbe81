"""Project de-identification settings and key columns, the pseudonym vault, the audit trail.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of the column types of this revision (not imported from _schema, which moves on).
TEXT = sa.String().with_variant(sa.String(collation="C"), "postgresql")


def _text(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, TEXT, nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("overrides", sa.JSON, nullable=False, server_default=sa.text("'{}'"))
        )
        batch.add_column(
            sa.Column("pixel_rules", sa.JSON, nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(
            sa.Column("ocr_check", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("settings_version", sa.Integer, nullable=False, server_default=sa.text("1"))
        )
        batch.add_column(_text("key_id"))
        batch.add_column(sa.Column("wrapped_key", sa.LargeBinary))
        batch.add_column(sa.Column("vault_public_key", sa.LargeBinary))
        batch.add_column(_text("vault_key_id"))
        batch.add_column(_text("vault_broker"))

    op.create_table(
        "vault_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        _text("pseudonym", False),
        sa.Column("digest", sa.LargeBinary, nullable=False),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        _text("key_id", False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "digest", name="uq_vault_entries_digest"),
    )
    op.create_index("ix_vault_entries_pseudonym", "vault_entries", ["project_id", "pseudonym"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        _text("actor", False),
        _text("action", False),
        _text("resource", False),
        _text("project"),
        sa.Column("detail", sa.JSON, nullable=False),
        _text("source", False),
        _text("outcome", False),
        _text("prev_hash", False),
        _text("hash", False),
    )
    op.create_index("ix_audit_events_project", "audit_events", ["project", "id"])
    op.create_index("ix_audit_events_time", "audit_events", ["time"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("vault_entries")
    with op.batch_alter_table("projects") as batch:
        for column in (
            "vault_broker",
            "vault_key_id",
            "vault_public_key",
            "wrapped_key",
            "key_id",
            "settings_version",
            "ocr_check",
            "pixel_rules",
            "overrides",
        ):
            batch.drop_column(column)
