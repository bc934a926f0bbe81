"""QIDO-RS query parameters (PS3.18 8.3.4 and 10.6) parsed and validated into a QidoQuery.

Pure: what may be matched at which level, and which values are acceptable for each VR.
Matching itself (PS3.4 C.2.2.2) is the index's job; every value here is kept literal, so
quotes, `;`, `%`, `_` or `--` in a value are just characters to match.

Parameter names: `limit`, `offset`, `includefield`, `fuzzymatching` (PS3.18 8.3.4), and
`accept`/`charset` (PS3.18 8.3.3.1), which are media type negotiation handled by the
router and ignored here; everything else must be a matching attribute, given as keyword
(`PatientID`) or tag (`00100020`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from radbank.dicom.uids import is_valid_uid

Level = Literal["study", "series", "instance"]
MatchKind = Literal["universal", "single", "wildcard", "list", "range"]

MAX_VALUE_LENGTH = 1024

STUDY_MATCHING = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "ReferringPhysicianName",
    "StudyDescription",
    "ModalitiesInStudy",
)
SERIES_MATCHING = (
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "SeriesDate",
    "SeriesTime",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
)
INSTANCE_MATCHING = (
    "SOPInstanceUID",
    "SOPClassUID",
    "InstanceNumber",
    "Rows",
    "Columns",
    "BitsAllocated",
    "NumberOfFrames",
    "AcquisitionDateTime",
)
# A query at one level may also match on the attributes of the levels above it.
QUERYABLE: dict[str, tuple[str, ...]] = {
    "study": STUDY_MATCHING,
    "series": STUDY_MATCHING + SERIES_MATCHING,
    "instance": STUDY_MATCHING + SERIES_MATCHING + INSTANCE_MATCHING,
}

_WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_INTEGER_VRS = frozenset({"IS", "US", "UL", "SS", "SL"})
_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_TM = re.compile(r"(\d\d)(\d\d)?(\d\d)?(\.\d{1,6})?")
_DT = re.compile(r"(\d{4})(\d\d)?(\d\d)?(\d\d)?(\d\d)?(\d\d)?(\.\d{1,6})?([+-]\d{4})?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LARGEST_INTEGER = 2**31 - 1
_IGNORED_PARAMETERS = frozenset({"accept", "charset"})
_FORMATS = {
    "DA": "use YYYYMMDD, or a range like 20240101-20241231, -20241231 or 20240101-",
    "TM": "use HH, HHMM, HHMMSS or HHMMSS.FFFFFF (24-hour clock), or a range like 0800-1700",
    "DT": "use YYYYMMDDHHMMSS.FFFFFF&ZZXX (trailing parts optional), or a range start-end",
}


class QueryError(ValueError):
    """A QIDO-RS query the node cannot answer; the message names the parameter and the fix."""


@dataclass(frozen=True)
class AttributeFilter:
    """One matching key (PS3.4 C.2.2.2).

    kind and the parsed parts:
    - universal: empty value or only `*`s; the attribute is only returned.
    - single: values = (the value,); DA/TM/DT single values also fill lower == upper.
    - wildcard: values = (the pattern with `*` and `?`,); string VRs only.
    - list: values = the alternatives (UID list matching, or a list of code strings).
    - range: lower/upper inclusive bounds as given, None when open (DA, TM, DT).
    """

    keyword: str
    tag: str
    vr: str
    value: str
    kind: MatchKind
    values: tuple[str, ...] = ()
    lower: str | None = None
    upper: str | None = None


@dataclass(frozen=True)
class QidoQuery:
    level: Level
    study_instance_uid: str | None
    series_instance_uid: str | None
    filters: tuple[AttributeFilter, ...]
    include_fields: frozenset[str]
    """Keywords; "GGGGEEEE" for elements without a keyword (private tags)."""
    include_all: bool
    limit: int | None
    """None when the request gave no limit; otherwise at most parse_qido's max_limit."""
    offset: int
    fuzzy_matching: bool


def parse_qido(
    level: Level,
    params: list[tuple[str, str]],
    *,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    max_limit: int = 1000,
) -> QidoQuery:
    """Validate QIDO-RS query parameters (already URL-decoded, in request order).

    A limit above max_limit is lowered to max_limit rather than refused (an origin server
    may return fewer results than asked, PS3.18 8.3.4.4); the router may add a Warning.
    """
    if level not in QUERYABLE:
        raise QueryError(f"unknown query level {level!r}; expected study, series or instance")
    if level == "study" and (study_instance_uid or series_instance_uid):
        raise QueryError("a study-level query cannot be scoped to a study or series")
    if series_instance_uid and level != "instance":
        raise QueryError("only an instance-level query can be scoped to a series")
    for name, uid in (("study", study_instance_uid), ("series", series_instance_uid)):
        if uid is not None and not is_valid_uid(uid):
            raise QueryError(f"the {name} UID in the path, {_shown(uid)}, is not a valid UID")

    filters: dict[str, AttributeFilter] = {}
    include_fields: set[str] = set()
    include_all = False
    limit: int | None = None
    offset = 0
    fuzzy = False
    seen_controls: set[str] = set()
    for name, value in params:
        if len(value) > MAX_VALUE_LENGTH:
            raise QueryError(
                f"the value of {_shown(name)} is {len(value)} characters long; at most "
                f"{MAX_VALUE_LENGTH} are accepted"
            )
        control = name.lower()
        if control in ("limit", "offset", "fuzzymatching"):
            if control in seen_controls:
                raise QueryError(f"{control} is given more than once; give it once")
            seen_controls.add(control)
        if control == "includefield":
            all_fields, fields = _parse_includefield(value)
            include_all = include_all or all_fields
            include_fields.update(fields)
        elif control == "limit":
            limit = min(_integer_at_least("limit", value, minimum=1), max_limit)
        elif control == "offset":
            offset = _integer_at_least("offset", value, minimum=0)
        elif control == "fuzzymatching":
            if value.lower() not in ("true", "false"):
                raise QueryError(f"fuzzymatching must be true or false, not {_shown(value)}")
            fuzzy = value.lower() == "true"
        elif control in _IGNORED_PARAMETERS:
            continue
        else:
            keyword, tag, vr = _matching_attribute(name, level)
            parsed = _parse_filter(keyword, tag, vr, value)
            if keyword in filters:
                # Each value of a repeated UID key is an item of the UID list (PS3.18 8.3.4.1).
                if vr != "UI":
                    raise QueryError(
                        f"{keyword} is given more than once; give one value (several UIDs "
                        "may be given as a list)"
                    )
                parsed = _joined_uid_lists(filters[keyword], parsed)
            filters[keyword] = parsed
    return QidoQuery(
        level=level,
        study_instance_uid=study_instance_uid,
        series_instance_uid=series_instance_uid,
        filters=tuple(filters.values()),
        include_fields=frozenset(include_fields),
        include_all=include_all,
        limit=limit,
        offset=offset,
        fuzzy_matching=fuzzy,
    )


def _parse_includefield(value: str) -> tuple[bool, set[str]]:
    include_all = False
    fields: set[str] = set()
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if item.lower() == "all":
            include_all = True
            continue
        if "." in item:
            raise QueryError(
                f"includefield {_shown(item)}: attributes inside sequences cannot be selected; "
                "name the top-level sequence instead"
            )
        tag = _tag_of(item)
        if tag is None:
            raise QueryError(
                f"includefield {_shown(item)} is neither a DICOM keyword nor an 8-digit hex tag"
            )
        fields.add(keyword_for_tag(tag) or f"{tag:08X}")
    return include_all, fields


def _integer_at_least(name: str, value: str, *, minimum: int) -> int:
    if not value.isascii() or not value.isdigit():
        raise QueryError(f"{name} must be an integer of at least {minimum}, not {_shown(value)}")
    number = int(value)
    if number < minimum:
        raise QueryError(f"{name} must be an integer of at least {minimum}, not {value}")
    if number > _LARGEST_INTEGER:
        raise QueryError(f"{name} must be at most {_LARGEST_INTEGER}, not {value}")
    return number


def _matching_attribute(name: str, level: Level) -> tuple[str, str, str]:
    if "." in name:
        raise QueryError(
            f"{_shown(name)}: matching on attributes inside sequences is not supported; "
            f"query one of the top-level attributes {', '.join(QUERYABLE[level])}"
        )
    tag = _tag_of(name)
    if tag is None:
        hint = next((k for k in QUERYABLE[level] if k.lower() == name.lower()), None)
        raise QueryError(
            f"unknown query parameter {_shown(name)}"
            + (f"; did you mean {hint}?" if hint else "")
            + "; expected limit, offset, includefield, fuzzymatching or a DICOM keyword or tag"
        )
    keyword = keyword_for_tag(tag)
    if keyword not in QUERYABLE[level]:
        raise QueryError(
            f"{keyword or name} ({tag:08X}) cannot be matched in a {level}-level query; "
            f"the matching attributes are {', '.join(QUERYABLE[level])}"
        )
    return keyword, f"{tag:08X}", dictionary_VR(tag)


def _tag_of(name: str) -> int | None:
    """The tag of a keyword or hex tag; private tags (odd group) have no dictionary entry."""
    if not _TAG.fullmatch(name):
        return tag_for_keyword(name)
    tag = int(name, 16)
    if keyword_for_tag(tag) or (tag >> 16) % 2:
        return tag
    return None


def _joined_uid_lists(first: AttributeFilter, second: AttributeFilter) -> AttributeFilter:
    """One UID list of two keys for the same attribute; an empty value adds nothing."""
    if first.kind == "universal":
        return second
    if second.kind == "universal":
        return first
    uids = tuple(dict.fromkeys(first.values + second.values))
    return replace(
        first,
        value=f"{first.value},{second.value}",
        kind="list" if len(uids) > 1 else "single",
        values=uids,
    )


def _parse_filter(keyword: str, tag: str, vr: str, value: str) -> AttributeFilter:
    def made(
        kind: MatchKind,
        values: tuple[str, ...] = (),
        lower: str | None = None,
        upper: str | None = None,
    ) -> AttributeFilter:
        return AttributeFilter(keyword, tag, vr, value, kind, values, lower, upper)

    if _CONTROL.search(value):
        raise QueryError(f"{keyword}: the value contains control characters")
    if vr == "PN" and "=" in value:
        value = _alphabetic_group(keyword, value)
    if not value.strip("*"):
        return made("universal")  # `*` matches any value, an empty one included
    wildcard = "*" in value or "?" in value
    if vr == "UI":
        if wildcard:
            raise QueryError(f"{keyword}: wildcards are not allowed in UIDs; give the full UID")
        uids = _split_list(value)
        for uid in uids:
            if not is_valid_uid(uid):
                raise QueryError(
                    f"{keyword}: {_shown(uid)} is not a valid UID (digits and dots, at most 64 "
                    "characters); separate several UIDs with commas"
                )
        return made("list" if len(uids) > 1 else "single", uids)
    if vr in ("DA", "TM", "DT"):
        if wildcard:
            raise QueryError(f"{keyword}: wildcards are not allowed in {vr} values; use a range")
        lower, upper, is_range = _parse_range(keyword, vr, value.strip())
        if is_range:
            return made("range", (), lower, upper)
        return made("single", (value.strip(),), lower, upper)
    if vr in _INTEGER_VRS:
        if wildcard:
            raise QueryError(f"{keyword}: wildcards are not allowed in {vr} values")
        if not re.fullmatch(r"[+-]?\d{1,12}", value.strip()):
            raise QueryError(f"{keyword}: {_shown(value)} is not an integer")
        return made("single", (str(int(value)),))
    if "\\" in value or (vr == "CS" and "," in value):
        if vr != "CS":
            raise QueryError(
                f"{keyword}: a backslash separates values, and several values are only "
                "accepted for UIDs and code strings; match with wildcards instead"
            )
        codes = _split_list(value)
        if wildcard:
            raise QueryError(f"{keyword}: wildcards cannot be combined with a list of values")
        return made("list" if len(codes) > 1 else "single", codes)
    if wildcard:
        if vr not in _WILDCARD_VRS:
            raise QueryError(f"{keyword}: wildcards are not allowed in {vr} values")
        return made("wildcard", (value,))
    return made("single", (value,))


def _alphabetic_group(keyword: str, value: str) -> str:
    """The alphabetic group of a person name given with its ideographic and phonetic
    groups ("Yamada^Tarou=山田^太郎=やまだ^たろう"): names are matched on that group, as
    the index holds it; the other groups are not matched (PS3.4 C.2.2.2.1 leaves their
    matching to the implementation)."""
    alphabetic, _, others = value.partition("=")
    if not alphabetic.strip() and others.strip("=* "):
        raise QueryError(
            f"{keyword}: person names are matched on their alphabetic group (before the "
            "first '='), and this value gives none; give it, or a pattern such as *"
        )
    return alphabetic


def _split_list(value: str) -> tuple[str, ...]:
    items = [item.strip() for item in re.split(r"[\\,]", value)]
    if any(not item for item in items):
        raise QueryError(f"empty item in the list {_shown(value)}")
    return tuple(dict.fromkeys(items))


def _parse_range(keyword: str, vr: str, value: str) -> tuple[str | None, str | None, bool]:
    """(lower, upper, is_range); a DT value's `-` may also start a UTC offset."""
    check = {"DA": _check_da, "TM": _check_tm, "DT": _check_dt}[vr]
    if "-" not in value or (vr == "DT" and _valid(check, value)):
        check(keyword, value)
        return value, value, False
    for position in (i for i, char in enumerate(value) if char == "-"):
        lower, upper = value[:position], value[position + 1 :]
        if (lower or upper) and all(not part or _valid(check, part) for part in (lower, upper)):
            if lower and upper and _range_key(vr, lower) > _range_key(vr, upper):
                raise QueryError(
                    f"{keyword}: the range {_shown(value)} ends before it starts; give start-end"
                )
            return lower or None, upper or None, True
    if value.count("-") == 1:
        for part in value.split("-"):
            if part:
                check(keyword, part)
    raise QueryError(f"{keyword}: {_shown(value)} is not a {vr} value or range; {_FORMATS[vr]}")


def _range_key(vr: str, value: str) -> str:
    if vr == "DT":
        return value[:-5] if len(value) > 5 and value[-5] in "+-" else value
    return value


def _valid(check: Callable[[str, str], None], value: str) -> bool:
    try:
        check("", value)
    except QueryError:
        return False
    return True


def _check_da(keyword: str, value: str) -> None:
    if not re.fullmatch(r"\d{8}", value):
        raise QueryError(f"{keyword}: {_shown(value)} is not a date; {_FORMATS['DA']}")
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError as exc:
        raise QueryError(f"{keyword}: {value} is not a calendar date ({exc})") from None


def _check_tm(keyword: str, value: str) -> None:
    match = _TM.fullmatch(value)
    if not match or not _time_parts_valid(match.group(1), match.group(2), match.group(3)):
        raise QueryError(f"{keyword}: {_shown(value)} is not a time; {_FORMATS['TM']}")
    if match.group(4) and not match.group(3):
        raise QueryError(f"{keyword}: {value}: fractional seconds need HHMMSS before them")


def _check_dt(keyword: str, value: str) -> None:
    match = _DT.fullmatch(value)
    bad = QueryError(f"{keyword}: {_shown(value)} is not a date-time; {_FORMATS['DT']}")
    if not match:
        raise bad
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    parts = [month, day, hour, minute, second, fraction]
    # Each component needs the ones before it.
    if any(later and not earlier for earlier, later in zip(parts, parts[1:], strict=False)):
        raise bad
    try:
        date(int(year), int(month or 1), int(day or 1))
    except ValueError as exc:
        raise QueryError(f"{keyword}: {value} is not a calendar date-time ({exc})") from None
    if hour and not _time_parts_valid(hour, minute, second):
        raise bad
    if offset and not (int(offset[1:3]) <= 14 and int(offset[3:]) < 60):
        raise bad


def _time_parts_valid(hour: str, minute: str | None, second: str | None) -> bool:
    return int(hour) < 24 and int(minute or 0) < 60 and int(second or 0) < 61


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")
