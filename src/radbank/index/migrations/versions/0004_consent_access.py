"""Consent records, withdrawal tombstones, saved cohorts, access requests; quarantine rows
name their subject's pseudonym; project roles may be limited to a cohort.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen copies of the column types of this revision (not imported from _schema, which moves on).
TEXT = sa.String().with_variant(sa.String(collation="C"), "postgresql")
TIME = sa.DateTime(timezone=True)


def _text(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, TEXT, nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(_text("pseudonym"))
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        _text("pseudonym", False),
        _text("status", False),
        sa.Column("scope", sa.JSON, nullable=False),
        sa.Column("decided_on", sa.Date, nullable=False),
        _text("form_reference", False),
        _text("recorded_by", False),
        sa.Column("recorded_at", TIME, nullable=False),
    )
    op.create_index("ix_consents_subject", "consents", ["project_id", "pseudonym", "id"])
    op.create_table(
        "withdrawals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        _text("pseudonym", False),
        sa.Column("withdrawn_at", TIME, nullable=False),
        _text("withdrawn_by", False),
        sa.Column("erased_at", TIME),
        sa.UniqueConstraint("project_id", "pseudonym", name="uq_withdrawals_subject"),
    )
    op.create_table(
        "cohorts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        _text("name", False),
        _text("description", False),
        sa.Column("study_uids", sa.JSON, nullable=False),
        _text("created_by", False),
        sa.Column("created_at", TIME, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_cohorts_name"),
    )
    with op.batch_alter_table("project_members") as batch:
        batch.add_column(sa.Column("cohort_id", sa.Integer))
        batch.add_column(sa.Column("access_request_id", sa.Integer))
        batch.create_foreign_key(
            "fk_project_members_cohort_id_cohorts", "cohorts", ["cohort_id"], ["id"]
        )
    op.create_table(
        "access_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        _text("requester", False),
        sa.Column("purposes", sa.JSON, nullable=False),
        sa.Column("attestations", sa.JSON, nullable=False),
        _text("description", False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("cohort_id", sa.Integer, sa.ForeignKey("cohorts.id")),
        _text("status", False),
        sa.Column("created_at", TIME, nullable=False),
        _text("decided_by"),
        sa.Column("decided_at", TIME),
        _text("decision_note"),
        sa.Column("grant_expires_at", TIME),
    )
    op.create_index("ix_access_requests_project", "access_requests", ["project_id", "status"])


def downgrade() -> None:
    op.drop_table("access_requests")
    with op.batch_alter_table("project_members") as batch:
        batch.drop_constraint("fk_project_members_cohort_id_cohorts", type_="foreignkey")
        batch.drop_column("access_request_id")
        batch.drop_column("cohort_id")
    op.drop_table("cohorts")
    op.drop_table("withdrawals")
    op.drop_table("consents")
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("pseudonym")
