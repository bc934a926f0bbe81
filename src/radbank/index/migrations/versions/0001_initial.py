"""Initial schema: projects, studies, series, instances, quarantine.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types of this revision (not imported from _schema, which moves on).
TEXT = sa.String().with_variant(sa.String(collation="C"), "postgresql")


def _text(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, TEXT, nullable=nullable)


STUDY_ORDER = ("study_date", "study_time", "study_instance_uid")
STUDY_MATCHING = (
    "patient_id",
    "patient_name_ci",
    "patient_birth_date",
    "patient_sex",
    "study_time",
    "accession_number",
    "study_id",
    "referring_physician_name_ci",
    "study_description",
)
SERIES_ORDER = ("study_pk", "series_number", "series_instance_uid")
SERIES_MATCHING = (
    "modality",
    "series_number",
    "series_description",
    "series_date",
    "series_time",
    "performed_procedure_step_start_date",
    "performed_procedure_step_start_time",
)


def _indexes(table: str, matching: tuple[str, ...], order: tuple[str, ...]) -> None:
    """The order index, and per matching column one that ends with the order."""
    op.create_index(f"ix_{table}_order", table, ["project_id", *order])
    for column in matching:
        rest = [o for o in order if o != column]
        op.create_index(f"ix_{table}_{column}", table, ["project_id", column, *rest])


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True),
        _text("name", False),
        _text("title", False),
        _text("description", False),
        _text("profile", False),
        sa.Column("key_salt", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        _text("study_instance_uid", False),
        *(
            _text(name)
            for name in (
                "patient_id",
                "patient_name",
                "patient_name_ci",
                "patient_birth_date",
                "patient_sex",
                "study_date",
                "study_time",
                "accession_number",
                "study_id",
                "referring_physician_name",
                "referring_physician_name_ci",
                "study_description",
                "modalities_in_study",
            )
        ),
        sa.Column("number_of_study_related_series", sa.Integer, nullable=False),
        sa.Column("number_of_study_related_instances", sa.Integer, nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.UniqueConstraint("project_id", "study_instance_uid", name="uq_studies_uid"),
    )
    _indexes("studies", STUDY_MATCHING, STUDY_ORDER)

    op.create_table(
        "series",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("study_pk", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
        _text("series_instance_uid", False),
        _text("modality"),
        sa.Column("series_number", sa.Integer),
        _text("series_description"),
        _text("series_date"),
        _text("series_time"),
        _text("performed_procedure_step_start_date"),
        _text("performed_procedure_step_start_time"),
        sa.Column("number_of_series_related_instances", sa.Integer, nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.UniqueConstraint("project_id", "series_instance_uid", name="uq_series_uid"),
    )
    _indexes("series", SERIES_MATCHING, SERIES_ORDER)
    op.create_index("ix_series_study_modality", "series", ["study_pk", "modality"])

    op.create_table(
        "instances",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("study_pk", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
        sa.Column("series_pk", sa.Integer, sa.ForeignKey("series.id"), nullable=False),
        _text("sop_instance_uid", False),
        _text("sop_class_uid", False),
        sa.Column("instance_number", sa.Integer),
        sa.Column("rows", sa.Integer),
        sa.Column("columns", sa.Integer),
        sa.Column("bits_allocated", sa.Integer),
        sa.Column("number_of_frames", sa.Integer),
        _text("acquisition_date_time"),
        _text("transfer_syntax_uid", False),
        _text("blob_key", False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        _text("sha256", False),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        _text("source", False),
        sa.UniqueConstraint("project_id", "sop_instance_uid", name="uq_instances_uid"),
    )
    op.create_index(
        "ix_instances_order", "instances", ["series_pk", "instance_number", "sop_instance_uid"]
    )
    op.create_index("ix_instances_study", "instances", ["study_pk"])
    op.create_index("ix_instances_blob_key", "instances", ["blob_key"])
    for column in (
        "sop_class_uid",
        "instance_number",
        "rows",
        "columns",
        "bits_allocated",
        "number_of_frames",
        "acquisition_date_time",
    ):
        op.create_index(f"ix_instances_{column}", "instances", ["project_id", column])

    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        _text("reason", False),
        _text("source", False),
        _text("blob_key", False),
        _text("sop_instance_uid"),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_quarantine_project", "quarantine", ["project_id", "received_at"])
    op.create_index("ix_quarantine_blob_key", "quarantine", ["blob_key"])


def downgrade() -> None:
    for table in ("quarantine", "instances", "series", "studies", "projects"):
        op.drop_table(table)
