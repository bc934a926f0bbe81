"""Dose: irradiation events and study summaries extracted at ingest, water-equivalent
diameters of CT images, versions of a project's dose rows (for in-memory column readers),
reference DRLs loaded by users.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Frozen copies of the column types of this revision (not imported from _schema, which moves on).
TEXT = sa.String().with_variant(sa.String(collation="C"), "postgresql")
TIME = sa.DateTime(timezone=True)
TYPES = {"text": TEXT, "real": sa.Float, "integer": sa.Integer, "datetime": TEXT}

# The dose table's columns at this revision (radbank.dicom.dose.table.COLUMNS).
EVENT_COLUMNS = (
    ("study_instance_uid", "text"),
    ("sop_instance_uid", "text"),
    ("series_instance_uid", "text"),
    ("irradiation_event_uid", "text"),
    ("source", "text"),
    ("template", "text"),
    ("kind", "text"),
    ("modality", "text"),
    ("event_datetime", "datetime"),
    ("manufacturer", "text"),
    ("model_name", "text"),
    ("station_name", "text"),
    ("device_observer_uid", "text"),
    ("procedure", "text"),
    ("protocol", "text"),
    ("acquisition_type", "text"),
    ("target_region", "text"),
    ("target_region_code", "text"),
    ("phantom", "text"),
    ("ctdivol_mgy", "real"),
    ("dlp_mgycm", "real"),
    ("scan_length_mm", "real"),
    ("kvp", "real"),
    ("tube_current_ma", "real"),
    ("max_tube_current_ma", "real"),
    ("exposure_time_s", "real"),
    ("rotation_time_s", "real"),
    ("single_collimation_mm", "real"),
    ("total_collimation_mm", "real"),
    ("pitch", "real"),
    ("ctdivol_alert_mgy", "real"),
    ("dlp_alert_mgycm", "real"),
    ("ctdivol_notification_mgy", "real"),
    ("dlp_notification_mgycm", "real"),
    ("dap_gym2", "real"),
    ("dose_rp_gy", "real"),
    ("exposure_mas", "real"),
    ("irradiation_duration_s", "real"),
    ("pulses", "real"),
    ("fluoro_mode", "text"),
    ("field_area_m2", "real"),
    ("agd_mgy", "real"),
    ("entrance_dose_mgy", "real"),
    ("entrance_exposure_rp_mgy", "real"),
    ("hvl_mm", "real"),
    ("compression_thickness_mm", "real"),
    ("dlp_total_mgycm", "real"),
    ("events_total", "integer"),
    ("dap_total_gym2", "real"),
    ("fluoro_dap_total_gym2", "real"),
    ("acquisition_dap_total_gym2", "real"),
    ("dose_rp_total_gy", "real"),
    ("fluoro_time_total_s", "real"),
    ("radionuclide", "text"),
    ("radiopharmaceutical", "text"),
    ("administered_activity_mbq", "real"),
    ("route", "text"),
    ("administration_datetime", "datetime"),
    ("organ_doses", "text"),
    ("effective_dose_msv", "real"),
    ("effective_dose_source", "text"),
    ("patient_age_years", "real"),
    ("patient_sex", "text"),
    ("patient_weight_kg", "real"),
    ("findings", "text"),
    ("value_sources", "text"),
)


def _project() -> sa.Column:
    return sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False)


def _study() -> sa.Column:
    return sa.Column("study_pk", sa.Integer, sa.ForeignKey("studies.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "dose_events",
        sa.Column("id", sa.Integer, primary_key=True),
        _project(),
        _study(),
        sa.Column("pseudonym", TEXT),
        sa.Column("study_date", TEXT),
        sa.Column("device_key", TEXT, nullable=False),
        sa.Column("event_key", TEXT, nullable=False),
        sa.Column("ssde_mgy", sa.Float),
        *(sa.Column(name, TYPES[kind]) for name, kind in EVENT_COLUMNS),
        sa.UniqueConstraint(
            "project_id", "study_pk", "source", "event_key", name="uq_dose_events_key"
        ),
    )
    op.create_index("ix_dose_events_study", "dose_events", ["study_pk"])
    op.create_index("ix_dose_events_subject", "dose_events", ["project_id", "pseudonym"])
    op.create_index(
        "ix_dose_events_modality", "dose_events", ["project_id", "modality", "study_date"]
    )
    op.create_index("ix_dose_events_date", "dose_events", ["project_id", "study_date"])
    op.create_index("ix_dose_events_protocol", "dose_events", ["project_id", "protocol"])
    op.create_index("ix_dose_events_device", "dose_events", ["project_id", "device_key"])
    op.create_table(
        "dose_studies",
        sa.Column("id", sa.Integer, primary_key=True),
        _project(),
        sa.Column("study_pk", sa.Integer, sa.ForeignKey("studies.id"), nullable=False, unique=True),
        sa.Column("study_instance_uid", TEXT, nullable=False),
        sa.Column("pseudonym", TEXT),
        sa.Column("study_date", TEXT),
        sa.Column("source", TEXT, nullable=False),
        sa.Column("modality", TEXT),
        sa.Column("device_key", TEXT, nullable=False),
        sa.Column("device", TEXT),
        sa.Column("study_description", TEXT),
        sa.Column("procedure", TEXT),
        sa.Column("protocols", TEXT),
        sa.Column("events", sa.Integer, nullable=False),
        *(
            sa.Column(name, sa.Float)
            for name in (
                "ctdivol_mean_mgy",
                "ctdivol_max_mgy",
                "dlp_total_mgycm",
                "dap_total_gym2",
                "dose_rp_total_gy",
                "fluoro_time_total_s",
                "agd_mgy",
                "administered_activity_mbq",
                "effective_dose_msv",
                "dw_cm",
                "ssde_mgy",
                "patient_age_years",
            )
        ),
        sa.Column("patient_sex", TEXT),
        sa.Column("patient_weight_kg", sa.Float),
        sa.Column("above_notification", sa.Boolean, nullable=False),
    )
    op.create_index("ix_dose_studies_project", "dose_studies", ["project_id", "study_date"])
    op.create_index(
        "ix_dose_studies_subject", "dose_studies", ["project_id", "pseudonym", "study_date"]
    )
    op.create_index(
        "ix_dose_studies_modality", "dose_studies", ["project_id", "modality", "study_date"]
    )
    op.create_table(
        "dose_sizes",
        sa.Column("id", sa.Integer, primary_key=True),
        _project(),
        _study(),
        sa.Column("sop_instance_uid", TEXT, nullable=False),
        sa.Column("dw_cm", sa.Float, nullable=False),
        sa.UniqueConstraint("project_id", "sop_instance_uid", name="uq_dose_sizes_instance"),
    )
    op.create_index("ix_dose_sizes_study", "dose_sizes", ["study_pk"])
    op.create_table(
        "dose_versions",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
        sa.Column("events_version", sa.Integer, nullable=False),
        sa.Column("studies_version", sa.Integer, nullable=False),
    )
    op.create_table(
        "reference_drls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("set_name", TEXT, nullable=False),
        sa.Column("examination", TEXT, nullable=False),
        sa.Column("quantity", TEXT, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("age_band", TEXT, nullable=False),
        sa.Column("source", TEXT, nullable=False),
        sa.Column("loaded_by", TEXT, nullable=False),
        sa.Column("loaded_at", TIME, nullable=False),
        sa.UniqueConstraint(
            "set_name", "examination", "quantity", "age_band", name="uq_reference_drls_row"
        ),
    )


def downgrade() -> None:
    for table in ("reference_drls", "dose_versions", "dose_sizes", "dose_studies", "dose_events"):
        op.drop_table(table)
