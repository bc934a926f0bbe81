"""Non-DICOM submissions (dosimetry, organ doses, case report forms, outcomes): one row per
accepted submission and one per subject part of it, whose pseudonymised N-Quads are a blob
(the RDF graph is rebuilt from them, and a subject's parts are erased with the subject).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Frozen copies of the column types of this revision (not imported from _schema, which moves on).
TEXT = sa.String().with_variant(sa.String(collation="C"), "postgresql")
TIME = sa.DateTime(timezone=True)


def _text(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, TEXT, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        _text("submission_id", False),
        _text("kind", False),
        _text("media_type", False),
        _text("name", False),
        _text("submitted_by", False),
        sa.Column("submitted_at", TIME, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("removed_fields", sa.JSON, nullable=False),
        sa.UniqueConstraint("project_id", "submission_id", name="uq_submissions_id"),
    )
    op.create_index("ix_submissions_project", "submissions", ["project_id", "id"])
    op.create_table(
        "submission_parts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("submission_pk", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
        _text("pseudonym"),
        _text("blob_key", False),
        _text("sha256", False),
        sa.Column("quads", sa.Integer, nullable=False),
    )
    op.create_index("ix_submission_parts_subject", "submission_parts", ["project_id", "pseudonym"])
    op.create_index("ix_submission_parts_submission", "submission_parts", ["submission_pk"])
    op.create_index("ix_submission_parts_blob_key", "submission_parts", ["blob_key"])


def downgrade() -> None:
    op.drop_table("submission_parts")
    op.drop_table("submissions")
