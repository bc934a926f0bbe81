"""The values QIDO-RS matches person names and date-times on, computed again from the stored
attributes: names in lower case without trailing empty components (were case-folded, so a
"ß" became "ss" and `?` could not match it, and "Doe^John^^^" differed from "Doe^John");
date-times with a UTC offset as the UTC moment they name (the offset was dropped).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The functions below are copies of radbank.index._attributes as of this revision, not
# imports: a migration must keep computing what revision 0007 meant when the index code
# changes later.
_BATCH = 1000
_COLUMN_TEXT_MAX = 512
_PATIENT_NAME, _REFERRING, _ACQUISITION_DATE_TIME = "00100010", "00080090", "0008002A"


# Frozen copies of radbank.index._attributes at this revision (which moves on).
def _text(attributes: dict[str, Any], tag: str) -> str | None:
    values = attributes.get(tag, {}).get("Value")
    if not values:
        return None
    value = values[0]
    if isinstance(value, dict):
        value = value.get("Alphabetic")
    if value is None:
        return None
    value = str(value).replace("\x00", "")[:_COLUMN_TEXT_MAX].strip()
    return value or None


def _folded(value: str | None) -> str | None:
    return value.lower().rstrip("^") if value is not None else None


def _comparable_datetime(value: str | None) -> str | None:
    if not value or len(value) <= 5 or value[-5] not in "+-":
        return value
    moment, offset = value[:-5], value[-5:]
    digits, dot, fraction = moment.partition(".")
    if len(digits) not in (10, 12, 14) or not (digits + offset[1:]).isdigit():
        return moment
    try:
        when = datetime(
            int(digits[:4]), int(digits[4:6]), int(digits[6:8]), int(digits[8:10]),
            int(digits[10:12] or 0), int(digits[12:14] or 0),
        )  # fmt: skip
    except ValueError:
        return moment
    minutes = int(offset[1:3]) * 60 + int(offset[3:])
    utc = when - timedelta(minutes=minutes if offset[0] == "+" else -minutes)
    text = (
        f"{utc.year:04d}{utc.month:02d}{utc.day:02d}{utc.hour:02d}{utc.minute:02d}{utc.second:02d}"
    )
    return text[: len(digits)] + dot + fraction


def _columns_of_studies(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        "patient_name_ci": _folded(_text(attributes, _PATIENT_NAME)),
        "referring_physician_name_ci": _folded(_text(attributes, _REFERRING)),
    }


def _columns_of_instances(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        "acquisition_date_time": _comparable_datetime(_text(attributes, _ACQUISITION_DATE_TIME))
    }


def _recompute(
    name: str, names: tuple[str, ...], columns: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    """Set the columns `names` of the rows of table `name` to what `columns` gives of their
    attributes, in batches by primary key; only rows with one of them set can change, and
    rows already right are not written."""
    table = sa.table(name, sa.column("id"), sa.column("attributes"), *map(sa.column, names))
    some = sa.or_(*(table.c[n].is_not(None) for n in names))
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(table.c.id, table.c.attributes, *(table.c[n] for n in names))
            .where(table.c.id > last, some)
            .order_by(table.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            attributes = row.attributes
            if isinstance(attributes, str):
                attributes = json.loads(attributes)
            wanted = columns(attributes or {})
            if any(getattr(row, n) != wanted[n] for n in names):
                connection.execute(table.update().where(table.c.id == row.id).values(**wanted))
        last = rows[-1].id


def upgrade() -> None:
    _recompute("studies", ("patient_name_ci", "referring_physician_name_ci"), _columns_of_studies)
    _recompute("instances", ("acquisition_date_time",), _columns_of_instances)


def downgrade() -> None:
    """The earlier values are not restored: the earlier code matches on these too, only
    less exactly."""
