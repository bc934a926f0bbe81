"""Reading values from data sets without raising: every reader returns None (and notes
why) where a value is absent or unreadable, so one damaged element costs one value."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable

from pydicom.multival import MultiValue
from pydicom.valuerep import DT

from radbank.dicom.dose._view import DataSetView
from radbank.dicom.dose.model import CodedValue, Finding

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class Findings:
    """The findings of one object, in order, each message once."""

    def __init__(self, sop_instance_uid: str) -> None:
        self.sop_instance_uid = sop_instance_uid
        self._findings: dict[tuple[str, str], Finding] = {}

    def add(self, code: str, message: str) -> None:
        key = (code, message)
        if key not in self._findings:
            self._findings[key] = Finding(code, message, self.sop_instance_uid)

    def extend(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self._findings.setdefault((finding.code, finding.message), finding)

    def all(self) -> tuple[Finding, ...]:
        return tuple(self._findings.values())


def numbers(value: object, label: str, findings: Findings) -> list[float]:
    """Every number in a value: a float, a multi-valued DS/IS, or text that a vendor wrote
    with a separator other than the backslash or with a decimal comma (both noted)."""
    if isinstance(value, float):  # the usual case first, for speed (a DSfloat mostly)
        number = float(value)
        return [number] if number == number and abs(number) != float("inf") else []
    if value is None:
        return []
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    if isinstance(value, MultiValue | list | tuple):
        result: list[float] = []
        for part in value:
            result.extend(numbers(part, label, findings))
        return result
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return [number] if number == number and abs(number) != float("inf") else []
    string = str(value).strip().strip("\x00").strip()
    if not string:
        return []
    if re.fullmatch(r"[-+]?\d+,\d+", string):
        findings.add(
            "decimal-comma",
            f"{label}: {string!r} written with a decimal comma; read as {string.replace(',', '.')}",
        )
        return [float(string.replace(",", "."))]
    parts = [part for part in re.split(r"[\\;,/|]", string) if part.strip()]
    if len(parts) > 1:
        findings.add(
            "multi-value-separator",
            f"{label}: {string!r} holds {len(parts)} values separated by a character other "
            "than the DICOM backslash; each was read",
        )
    result = []
    for part in parts:
        match = _NUMBER.fullmatch(part.strip())
        if match is None:
            findings.add("value-unreadable", f"{label}: {part.strip()!r} is not a number")
            continue
        result.append(float(match.group(0)))
    return result


def number(dataset: DataSetView, keyword: str, findings: Findings, label: str) -> float | None:
    """The single number of an element; the first one (noted) when there are several."""
    values = numbers(dataset.value(keyword), label, findings)
    if not values:
        return None
    if len(values) > 1:
        findings.add(
            "multi-value",
            f"{label}: {len(values)} values where one is expected; the first, {values[0]:g}, "
            "was used",
        )
    return values[0]


def code(dataset: DataSetView, keyword: str) -> CodedValue | None:
    """The first item of a code sequence, or None when it is absent or has no code value."""
    fields = code_fields(dataset, keyword)
    return None if fields is None else CodedValue(*fields)


def code_fields(dataset: DataSetView, keyword: str) -> tuple[str, str, str] | None:
    """`code` as its code value, coding scheme designator and code meaning."""
    try:
        sequence = dataset.items(keyword)
        if not sequence:
            return None
        item = sequence[0]
    except Exception:
        return None
    value = code_value(item)
    if value is None:
        return None
    return value, item.text("CodingSchemeDesignator") or "", item.text("CodeMeaning") or ""


def code_value(item: DataSetView) -> str | None:
    """The code value of a code sequence item, whichever of the three it uses."""
    return item.text("CodeValue") or item.text("LongCodeValue") or item.text("URNCodeValue")


def parse_datetime(value: str | None) -> datetime.datetime | None:
    """A DICOM DT string as a datetime (with its UTC offset when given), None if unreadable."""
    if not value:
        return None
    try:
        parsed = DT(value.strip())
    except Exception:
        return None
    if parsed is None:
        return None
    return datetime.datetime(
        parsed.year,
        parsed.month,
        parsed.day,
        parsed.hour,
        parsed.minute,
        parsed.second,
        parsed.microsecond,
        parsed.tzinfo,
    )


def date_and_time(
    dataset: DataSetView, date_keyword: str, time_keyword: str
) -> datetime.datetime | None:
    """A datetime from a DA and a TM element, None when either is absent or unreadable."""
    date, time = dataset.text(date_keyword), dataset.text(time_keyword)
    if not date or not time:
        return None
    return parse_datetime(date + time.replace(":", ""))
