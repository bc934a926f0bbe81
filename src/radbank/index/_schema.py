"""Tables of the index. The migrations in migrations/versions create exactly these; a test
compares the migrated database with this metadata."""

from __future__ import annotations

import sqlalchemy as sa

from radbank.dicom.dose import table as dose_table

# On PostgreSQL, "C" collation lets one btree index serve equality, ranges, ordering and
# prefix LIKE; DICOM matching is byte-wise anyway (PN case folding uses *_ci columns).
Text = sa.String().with_variant(sa.String(collation="C"), "postgresql")
Json = sa.JSON()

metadata = sa.MetaData()

# Study and series indexes end with the result order, so an equality match is answered in
# order straight from one index (SQLite picks the order index over an unordered match
# index when it has no statistics). Instances, far more numerous, get plain indexes.
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


def _matching_indexes(
    table: str, columns: tuple[str, ...], order: tuple[str, ...]
) -> list[sa.Index]:
    return [
        sa.Index(f"ix_{table}_{column}", "project_id", column, *(o for o in order if o != column))
        for column in columns
    ]


# studies.study_date and study_time hold '' instead of NULL when the attribute is absent:
# the study order index then has no NULLs, which SQLite and PostgreSQL would place at
# opposite ends. Range matching never matches '' (see _search).

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", Text, nullable=False, unique=True),
    sa.Column("title", Text, nullable=False),
    sa.Column("description", Text, nullable=False),
    sa.Column("profile", Text, nullable=False),
    sa.Column("key_salt", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # De-identification settings; settings_version grows with every change, so services
    # can cache what they build from the settings (compiled profile, pixel rules).
    sa.Column("overrides", Json, nullable=False, server_default=sa.text("'{}'")),
    sa.Column("pixel_rules", Json, nullable=False, server_default=sa.text("'[]'")),
    sa.Column("ocr_check", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("settings_version", sa.Integer, nullable=False, server_default=sa.text("1")),
    # The project key: wrapped (AES-GCM) under the master key key_id, or, when wrapped_key
    # is NULL, derived from key_salt with that master key (NULL key_id: rows older than
    # key ids, derived with the oldest master key of the key file).
    sa.Column("key_id", Text),
    sa.Column("wrapped_key", sa.LargeBinary),
    # The honest broker's public key; the private key never reaches the node.
    sa.Column("vault_public_key", sa.LargeBinary),
    sa.Column("vault_key_id", Text),
    sa.Column("vault_broker", Text),
    # The project as a dataset: licence (SPDX or Creative Commons id), the intellectual
    # property statement where the licence is not open, data-use conditions (GA4GH DUO
    # codes), whether subjects need a valid consent, whether anonymous readers may read.
    sa.Column("licence", Text, nullable=False, server_default=""),
    sa.Column("ip_statement", Text, nullable=False, server_default=""),
    sa.Column("data_use", Json, nullable=False, server_default=sa.text("'[]'")),
    sa.Column("consent_required", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("open_access", sa.Boolean, nullable=False, server_default=sa.false()),
)

studies = sa.Table(
    "studies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("study_instance_uid", Text, nullable=False),
    sa.Column("patient_id", Text),
    sa.Column("patient_name", Text),
    sa.Column("patient_name_ci", Text),
    sa.Column("patient_birth_date", Text),
    sa.Column("patient_sex", Text),
    sa.Column("study_date", Text),
    sa.Column("study_time", Text),
    sa.Column("accession_number", Text),
    sa.Column("study_id", Text),
    sa.Column("referring_physician_name", Text),
    sa.Column("referring_physician_name_ci", Text),
    sa.Column("study_description", Text),
    sa.Column("modalities_in_study", Text),
    sa.Column("number_of_study_related_series", sa.Integer, nullable=False),
    sa.Column("number_of_study_related_instances", sa.Integer, nullable=False),
    sa.Column("attributes", Json, nullable=False),
    sa.UniqueConstraint("project_id", "study_instance_uid", name="uq_studies_uid"),
    sa.Index("ix_studies_order", "project_id", *STUDY_ORDER),
    *_matching_indexes("studies", STUDY_MATCHING, STUDY_ORDER),
)

series = sa.Table(
    "series",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("study_pk", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
    sa.Column("series_instance_uid", Text, nullable=False),
    sa.Column("modality", Text),
    sa.Column("series_number", sa.Integer),
    sa.Column("series_description", Text),
    sa.Column("series_date", Text),
    sa.Column("series_time", Text),
    sa.Column("performed_procedure_step_start_date", Text),
    sa.Column("performed_procedure_step_start_time", Text),
    sa.Column("number_of_series_related_instances", sa.Integer, nullable=False),
    sa.Column("attributes", Json, nullable=False),
    sa.UniqueConstraint("project_id", "series_instance_uid", name="uq_series_uid"),
    sa.Index("ix_series_order", "project_id", *SERIES_ORDER),
    *_matching_indexes("series", SERIES_MATCHING, SERIES_ORDER),
    # ModalitiesInStudy matching and the per-study aggregates.
    sa.Index("ix_series_study_modality", "study_pk", "modality"),
)

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("study_pk", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
    sa.Column("series_pk", sa.Integer, sa.ForeignKey("series.id"), nullable=False),
    sa.Column("sop_instance_uid", Text, nullable=False),
    sa.Column("sop_class_uid", Text, nullable=False),
    sa.Column("instance_number", sa.Integer),
    sa.Column("rows", sa.Integer),
    sa.Column("columns", sa.Integer),
    sa.Column("bits_allocated", sa.Integer),
    sa.Column("number_of_frames", sa.Integer),
    sa.Column("acquisition_date_time", Text),
    sa.Column("transfer_syntax_uid", Text, nullable=False),
    sa.Column("blob_key", Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", Text, nullable=False),
    sa.Column("attributes", Json, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", Text, nullable=False),
    sa.UniqueConstraint("project_id", "sop_instance_uid", name="uq_instances_uid"),
    sa.Index("ix_instances_order", "series_pk", "instance_number", "sop_instance_uid"),
    sa.Index("ix_instances_study", "study_pk"),
    sa.Index("ix_instances_sop_class_uid", "project_id", "sop_class_uid"),
    sa.Index("ix_instances_instance_number", "project_id", "instance_number"),
    sa.Index("ix_instances_rows", "project_id", "rows"),
    sa.Index("ix_instances_columns", "project_id", "columns"),
    sa.Index("ix_instances_bits_allocated", "project_id", "bits_allocated"),
    sa.Index("ix_instances_number_of_frames", "project_id", "number_of_frames"),
    sa.Index("ix_instances_acquisition_date_time", "project_id", "acquisition_date_time"),
    sa.Index("ix_instances_blob_key", "blob_key"),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("reason", Text, nullable=False),
    sa.Column("source", Text, nullable=False),
    sa.Column("blob_key", Text, nullable=False),
    sa.Column("sop_instance_uid", Text),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    # The subject's pseudonym (PatientID of the de-identified object), for erasure.
    sa.Column("pseudonym", Text),
    sa.Index("ix_quarantine_project", "project_id", "received_at"),
    sa.Index("ix_quarantine_blob_key", "blob_key"),
)

# Pseudonym vault: original identifiers sealed to the project's vault key, one row per
# distinct set of identifiers (digest: keyed HMAC of the plaintext, never the plaintext).
vault_entries = sa.Table(
    "vault_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("pseudonym", Text, nullable=False),
    sa.Column("digest", sa.LargeBinary, nullable=False),
    sa.Column("sealed", sa.LargeBinary, nullable=False),
    sa.Column("key_id", Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("project_id", "digest", name="uq_vault_entries_digest"),
    sa.Index("ix_vault_entries_pseudonym", "project_id", "pseudonym"),
)

# Append-only, hash-chained audit trail. Ids are assigned by the appender under the writer
# lock (not by the database), so the chain order is the id order on every backend.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", Text, nullable=False),
    sa.Column("action", Text, nullable=False),
    sa.Column("resource", Text, nullable=False),
    sa.Column("project", Text),
    sa.Column("detail", Json, nullable=False),
    sa.Column("source", Text, nullable=False),
    sa.Column("outcome", Text, nullable=False),
    sa.Column("prev_hash", Text, nullable=False),
    sa.Column("hash", Text, nullable=False),
    sa.Index("ix_audit_events_project", "project", "id"),
    sa.Index("ix_audit_events_time", "time"),
)

# Identities. Local users sign in with a password (argon2id hash) and use personal API
# tokens; users of an OpenID Connect issuer get a row on first use (source "oidc", no
# password) so that project roles can be given to them too.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", Text, nullable=False, unique=True),
    sa.Column("display_name", Text, nullable=False, server_default=""),
    sa.Column("source", Text, nullable=False),
    # "<issuer>#<sub>" of an OpenID Connect user: the name is theirs only for that account.
    sa.Column("oidc_subject", Text, unique=True),
    sa.Column("password_hash", Text),
    sa.Column("node_roles", Json, nullable=False, server_default=sa.text("'[]'")),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Personal API tokens: "rbk_<token_id>_<secret>"; only SHA-256 of the secret is kept (the
# secret is 256 random bits, so a fast hash cannot be reversed by guessing).
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_id", Text, nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("name", Text, nullable=False),
    sa.Column("secret_sha256", Text, nullable=False),
    sa.Column("scopes", Json, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    sa.Index("ix_api_tokens_user", "user_id"),
)

# Project roles of users (steward, contributor, researcher, honest_broker); expires_at set
# for roles that an access grant gives for a limited time.
project_members = sa.Table(
    "project_members",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("role", Text, nullable=False),
    sa.Column("granted_by", Text, nullable=False),
    sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    # Set for a role an access grant limited to a saved cohort of studies.
    sa.Column("cohort_id", sa.Integer, sa.ForeignKey("cohorts.id")),
    # The approved access request that gave the role, recorded with every access it allows.
    sa.Column("access_request_id", sa.Integer),
    sa.UniqueConstraint("project_id", "user_id", "role", name="uq_project_members_role"),
    sa.Index("ix_project_members_user", "user_id"),
)

# Failed sign-ins per user name and per client address, for throttling across processes.
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("key", Text, primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
)

# Consent per subject pseudonym and project: every decision is a row (the current one is
# the newest); scope holds the DUO codes of the purposes consented to.
consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("pseudonym", Text, nullable=False),
    sa.Column("status", Text, nullable=False),
    sa.Column("scope", Json, nullable=False),
    sa.Column("decided_on", sa.Date, nullable=False),
    sa.Column("form_reference", Text, nullable=False),
    sa.Column("recorded_by", Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_consents_subject", "project_id", "pseudonym", "id"),
)

# Tombstones of subjects who withdrew: all their data was erased; uploads are refused.
withdrawals = sa.Table(
    "withdrawals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("pseudonym", Text, nullable=False),
    sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("withdrawn_by", Text, nullable=False),
    sa.Column("erased_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("project_id", "pseudonym", name="uq_withdrawals_subject"),
)

# Saved cohorts: named sets of a project's studies that an access grant can be limited to.
cohorts = sa.Table(
    "cohorts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", Text, nullable=False),
    sa.Column("description", Text, nullable=False),
    sa.Column("study_uids", Json, nullable=False),
    sa.Column("created_by", Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("project_id", "name", name="uq_cohorts_name"),
)

# Access requests of researchers and the stewards' decisions; an approved request gives
# the researcher role until grant_expires_at.
access_requests = sa.Table(
    "access_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("requester", Text, nullable=False),
    sa.Column("purposes", Json, nullable=False),
    sa.Column("attestations", Json, nullable=False),
    sa.Column("description", Text, nullable=False),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("cohort_id", sa.Integer, sa.ForeignKey("cohorts.id")),
    sa.Column("status", Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_by", Text),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.Column("decision_note", Text),
    sa.Column("grant_expires_at", sa.DateTime(timezone=True)),
    sa.Index("ix_access_requests_project", "project_id", "status"),
)

# Dose. One row per irradiation event (or radiopharmaceutical administration, or one row
# for an object with only study-level values), columns named as the dose table of
# radbank.dicom.dose.table says (ctdivol_mgy, dlp_total_mgycm, ...). Events of several or
# cumulative reports of a study are kept once: event_key is the Irradiation Event UID (or,
# for image headers without one, the series and its values). Rows of a study come and go
# with its instances.
_DOSE_TYPES = {"text": Text, "real": sa.Float, "integer": sa.Integer, "datetime": Text}
DOSE_EVENT_COLUMNS = tuple(
    sa.Column(column.key, _DOSE_TYPES[column.kind]) for column in dose_table.COLUMNS
)
dose_events = sa.Table(
    "dose_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("study_pk", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
    sa.Column("pseudonym", Text),
    sa.Column("study_date", Text),
    sa.Column("device_key", Text, nullable=False),
    sa.Column("event_key", Text, nullable=False),
    sa.Column("ssde_mgy", sa.Float),
    *DOSE_EVENT_COLUMNS,
    sa.UniqueConstraint("project_id", "study_pk", "source", "event_key", name="uq_dose_events_key"),
    sa.Index("ix_dose_events_study", "study_pk"),
    sa.Index("ix_dose_events_subject", "project_id", "pseudonym"),
    sa.Index("ix_dose_events_modality", "project_id", "modality", "study_date"),
    sa.Index("ix_dose_events_date", "project_id", "study_date"),
    sa.Index("ix_dose_events_protocol", "project_id", "protocol"),
    sa.Index("ix_dose_events_device", "project_id", "device_key"),
)

# One row per study with dose values: the study's examination as DRLs count it. Values of
# dose reports when the study has one, else of image headers.
dose_studies = sa.Table(
    "dose_studies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("study_pk", sa.Integer, sa.ForeignKey("studies.id"), nullable=False, unique=True),
    sa.Column("study_instance_uid", Text, nullable=False),
    sa.Column("pseudonym", Text),
    sa.Column("study_date", Text),
    sa.Column("source", Text, nullable=False),
    sa.Column("modality", Text),
    sa.Column("device_key", Text, nullable=False),
    sa.Column("device", Text),
    sa.Column("study_description", Text),
    sa.Column("procedure", Text),
    sa.Column("protocols", Text),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("ctdivol_mean_mgy", sa.Float),
    sa.Column("ctdivol_max_mgy", sa.Float),
    sa.Column("dlp_total_mgycm", sa.Float),
    sa.Column("dap_total_gym2", sa.Float),
    sa.Column("dose_rp_total_gy", sa.Float),
    sa.Column("fluoro_time_total_s", sa.Float),
    sa.Column("agd_mgy", sa.Float),
    sa.Column("administered_activity_mbq", sa.Float),
    sa.Column("effective_dose_msv", sa.Float),
    sa.Column("dw_cm", sa.Float),
    sa.Column("ssde_mgy", sa.Float),
    sa.Column("patient_age_years", sa.Float),
    sa.Column("patient_sex", Text),
    sa.Column("patient_weight_kg", sa.Float),
    sa.Column("above_notification", sa.Boolean, nullable=False),
    sa.Index("ix_dose_studies_project", "project_id", "study_date"),
    sa.Index("ix_dose_studies_subject", "project_id", "pseudonym", "study_date"),
    sa.Index("ix_dose_studies_modality", "project_id", "modality", "study_date"),
)

# Water-equivalent diameters of axial CT images (AAPM Report 220), for size-specific dose.
dose_sizes = sa.Table(
    "dose_sizes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("study_pk", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
    sa.Column("sop_instance_uid", Text, nullable=False),
    sa.Column("dw_cm", sa.Float, nullable=False),
    sa.UniqueConstraint("project_id", "sop_instance_uid", name="uq_dose_sizes_instance"),
    sa.Index("ix_dose_sizes_study", "study_pk"),
)

# Bumped whenever dose rows of a project are deleted or changed (not when rows are added):
# readers that keep the dose columns in memory reload them when it moves.
dose_versions = sa.Table(
    "dose_versions",
    metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("events_version", sa.Integer, nullable=False),
    sa.Column("studies_version", sa.Integer, nullable=False),
)

# National or European diagnostic reference levels loaded by a user, to compare with.
reference_drls = sa.Table(
    "reference_drls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("set_name", Text, nullable=False),
    sa.Column("examination", Text, nullable=False),
    sa.Column("quantity", Text, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("age_band", Text, nullable=False),
    sa.Column("source", Text, nullable=False),
    sa.Column("loaded_by", Text, nullable=False),
    sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint(
        "set_name", "examination", "quantity", "age_band", name="uq_reference_drls_row"
    ),
)

# Non-DICOM submissions; each subject's part of one is a blob of pseudonymised N-Quads.
submissions = sa.Table(
    "submissions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("submission_id", Text, nullable=False),
    sa.Column("kind", Text, nullable=False),
    sa.Column("media_type", Text, nullable=False),
    sa.Column("name", Text, nullable=False),
    sa.Column("submitted_by", Text, nullable=False),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("removed_fields", Json, nullable=False),
    sa.UniqueConstraint("project_id", "submission_id", name="uq_submissions_id"),
    sa.Index("ix_submissions_project", "project_id", "id"),
)

submission_parts = sa.Table(
    "submission_parts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("submission_pk", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
    sa.Column("pseudonym", Text),
    sa.Column("blob_key", Text, nullable=False),
    sa.Column("sha256", Text, nullable=False),
    sa.Column("quads", sa.Integer, nullable=False),
    sa.Index("ix_submission_parts_subject", "project_id", "pseudonym"),
    sa.Index("ix_submission_parts_submission", "submission_pk"),
    sa.Index("ix_submission_parts_blob_key", "blob_key"),
)
