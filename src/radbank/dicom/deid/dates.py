"""Date arithmetic for de-identification: shifting DA/DT values and deriving Patient's Age."""

from __future__ import annotations

import datetime


def _parse_date(text: str) -> datetime.date | None:
    digits = text.strip().replace(".", "")  # ACR-NEMA dates are "YYYY.MM.DD"
    if len(digits) < 8 or not digits[:8].isdigit():
        return None
    try:
        return datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def _format(date: datetime.date) -> str:
    return f"{date.year:04d}{date.month:02d}{date.day:02d}"


def shift_date(value: str, days: int) -> str:
    """Shift a DA value by `days`; "" if it is not a full date (a partial date would leak)."""
    date = _parse_date(value)
    if date is None or value.strip().replace(".", "")[8:]:
        return ""
    try:
        return _format(date + datetime.timedelta(days=days))
    except OverflowError:
        return ""


def shift_datetime(value: str, days: int) -> str:
    """Shift the date part of a DT value, keeping time and offset; "" without a full date."""
    text = value.strip()
    date = _parse_date(text[:8])
    if date is None:
        return ""
    try:
        return _format(date + datetime.timedelta(days=days)) + text[8:]
    except OverflowError:
        return ""


def patient_age(birth_date: str, study_date: str) -> str | None:
    """Return an AS value ("045Y", "011M", "003W", "005D") or None if it cannot be computed."""
    birth, study = _parse_date(birth_date), _parse_date(study_date)
    if birth is None or study is None or study < birth:
        return None
    months = (study.year - birth.year) * 12 + study.month - birth.month - (study.day < birth.day)
    if months >= 12:
        return f"{min(months // 12, 999):03d}Y"
    if months >= 1:
        return f"{months:03d}M"
    days = (study - birth).days
    if days >= 7:
        return f"{days // 7:03d}W"
    return f"{days:03d}D"
