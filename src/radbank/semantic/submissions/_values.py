"""Values as a submission writes them, read into literals, codes and UIDs: JSON numbers as
written (`_JsonNumber`), numbers typed as JSON-LD types them, codes of the accepted
`VOCABULARIES`, dates and date literals, patient IDs; and how a value or an IRI is shown
in a message. A value that cannot be read raises `_Bad` with the reason.
"""

from __future__ import annotations

import datetime
import math
import re
from decimal import Decimal

import pyoxigraph as ox

from radbank.semantic.submissions._draft import _DATE, _DATETIME, _DATETIME_STAMP, _Bad, _Uid
from radbank.semantic.vocabulary import (
    DCM,
    DCT,
    FOAF,
    PROV,
    QUDT,
    RB,
    RDF,
    RDFS,
    SCT,
    SKOS,
    UNIT,
    XSD,
    concept_iri,
)


class _JsonNumber(str):
    """A JSON number with a fraction or exponent, as written, until `_number` types it (a
    float would turn 1e400 into infinity before anyone could say so)."""


_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?"
)
_OTHER_DATE = re.compile(r"\d{1,2}[./-]\d{1,2}[./-](\d{4}|\d{2})|\d{4}/\d{1,2}/\d{1,2}")
_CODE = re.compile(r"(SCT|DCM|DUO):[0-9]+")
_INTEGER = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+)")
_DOUBLE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)[eE][+-]?[0-9]+")
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")


def _typed(datatype: str, text: str) -> ox.Literal:
    return ox.Literal(text, datatype=ox.NamedNode(datatype))


def _string(text: str) -> ox.Literal:
    return ox.Literal(text)


def _number(value: object, *, text_allowed: bool) -> ox.Literal:
    """A JSON number, or (from CSV) a number written as text, typed as JSON-LD types a
    JSON number: xsd:integer without a fractional part, else xsd:double (canonical form),
    so that JSON, CSV and JSON-LD give the same literal."""
    if isinstance(value, bool):
        raise _Bad(f"{value!r} is not a number")
    if isinstance(value, int):
        return _numeric(value)
    if not (isinstance(value, _JsonNumber) or (isinstance(value, str) and text_allowed)):
        raise _Bad(f"{_shown(value)} is not a number")
    text = value.strip()
    if re.fullmatch(r"[+-]?[0-9]+", text):
        try:
            return _numeric(int(text))
        except ValueError:  # more digits than Python converts
            raise _Bad(f"{text[:40]}... is too long a number") from None
    if _DECIMAL.fullmatch(text) or _DOUBLE.fullmatch(text):
        return _numeric(float(text))
    if re.fullmatch(r"[+-]?[0-9]+,[0-9]+", text):
        raise _Bad(f"{text[:40]} is not a number: write the decimal separator as a point")
    raise _Bad(f"{_shown(value)} is not a number")


def _numeric(number: int | float) -> ox.Literal:
    try:
        if isinstance(number, float) and number.is_integer() and abs(number) < 1e21:
            number = int(number)
        if isinstance(number, int) and abs(number) < 10**21:
            return _typed(XSD + "integer", str(number))
        number = float(number)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise _Bad("too large a number")
    _, digits, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = f"{digits[0]}.{''.join(map(str, digits[1:])) or '0'}"
    sign = "-" if number < 0 else ""
    return _typed(XSD + "double", f"{sign}{mantissa}E{len(digits) - 1 + exponent}")


def _shown(value: object) -> str:
    if isinstance(value, str):
        return repr(value[:60])
    if isinstance(value, dict | list):
        return "a JSON " + ("object" if isinstance(value, dict) else "array")
    if value is None:
        return "null"
    return str(value)[:60]


_CURIES = {
    XSD: "xsd:",
    RB: "radbank:",
    PROV: "prov:",
    DCT: "dcterms:",
    QUDT: "qudt:",
    RDFS: "rdfs:",
    RDF: "rdf:",
    FOAF: "foaf:",
    SKOS: "skos:",
    DCM: "dcm:",
    "https://schema.org/": "schema:",
    "http://schema.org/": "schema:",
}


def _curie(iri: str) -> str:
    for namespace, prefix in _CURIES.items():
        if iri.startswith(namespace):
            return prefix + iri[len(namespace) :]
    return iri


# The vocabularies whose IRIs a submission may use as values (codes, units, classes). An
# IRI elsewhere could name anything, a patient's record in a hospital system included.
VOCABULARIES = (
    SCT,
    DCM,
    "http://loinc.org/",
    "https://loinc.org/",
    "http://purl.obolibrary.org/obo/",  # NCIt, DUO, UBERON...
    "http://ncicb.nci.nih.gov/",
    "http://id.who.int/icd/",
    "http://www.radlex.org/",
    "http://radlex.org/",
    UNIT,
    QUDT,
    RB,
    PROV,
    DCT,
    RDF,
    RDFS,
    XSD,
    SKOS,
    FOAF,
)


def _code(value: object) -> ox.NamedNode:
    """A concept: "SCT:<code>", "DCM:<code>", "DUO:<code>" or an IRI of `VOCABULARIES`."""
    if isinstance(value, dict) and set(value) == {"code"}:
        value = value["code"]
    if isinstance(value, str):
        text = value.strip()
        if _CODE.fullmatch(text):
            return ox.NamedNode(concept_iri(text))
        if text.startswith(VOCABULARIES):
            try:
                return ox.NamedNode(text)
            except ValueError:  # not an IRI: spaces, control characters, brackets
                pass
    raise _Bad(
        f"{_shown(value)} is not a code: write SCT:<code>, DCM:<code> or the IRI of a concept "
        "of SNOMED CT, DICOM, LOINC, NCIt (OBO), ICD or RadLex"
    )


def _value(value: object, *, from_csv: bool) -> ox.Literal | ox.NamedNode:
    """A form field's or an outcome's value: number, boolean, date, date-time, code, text."""
    if isinstance(value, dict):
        return _code(value)
    if isinstance(value, bool):
        return _typed(XSD + "boolean", "true" if value else "false")
    if isinstance(value, int | _JsonNumber):
        return _number(value, text_allowed=False)
    if not isinstance(value, str):
        raise _Bad(f"{_shown(value)} is not a value: write a number, true/false, text or a date")
    stripped = value.strip()
    if _CODE.fullmatch(stripped):
        return _code(stripped)
    if _ISO_DATE.fullmatch(stripped):
        return _typed(_DATE, stripped)
    if _ISO_DATETIME.fullmatch(stripped):
        try:  # "2024-03-01T10:30" has no seconds, which xsd:dateTime requires
            moment = datetime.datetime.fromisoformat(stripped.replace("Z", "+00:00"))
        except ValueError:
            raise _Bad(f"{stripped!r} is not a date-time: write 2024-03-01T10:30:00") from None
        return _typed(_DATETIME, moment.isoformat())
    if _OTHER_DATE.fullmatch(stripped):
        raise _Bad(
            f"{stripped[:40]!r} looks like a date: write dates as YYYY-MM-DD so that they can "
            "be shifted like the dates of the images"
        )
    if from_csv:
        if stripped.lower() in ("true", "false"):
            return _typed(XSD + "boolean", stripped.lower())
        if (
            _INTEGER.fullmatch(stripped)
            or _DECIMAL.fullmatch(stripped)
            or _DOUBLE.fullmatch(stripped)
        ):
            return _number(stripped, text_allowed=True)
        return _string(stripped)
    return _string(value)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{_shown(value)} is not text")
    return value.strip()


def _date_value(value: object) -> ox.Literal:
    """A date field: YYYY-MM-DD (an impossible one, 2024-02-30, is refused when shifted)."""
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        return _typed(_DATE, value.strip())
    raise _Bad(f"{_shown(value)} is not a date: write YYYY-MM-DD, e.g. 2024-03-01")


_ZONE = r"(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])?"
_PARTIAL_DATE_FORMS = {
    XSD + "gYear": r"-?[0-9]{4}" + _ZONE,
    XSD + "gYearMonth": r"-?[0-9]{4}-(0[1-9]|1[0-2])" + _ZONE,
    XSD + "gMonthDay": r"--(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])" + _ZONE,
    XSD + "gDay": r"---(0[1-9]|[12][0-9]|3[01])" + _ZONE,
    XSD + "gMonth": r"--(0[1-9]|1[0-2])" + _ZONE,
}


def _moment(literal: ox.Literal) -> datetime.date | datetime.datetime | None:
    """The date or date-time of a date literal (None for a valid partial date, gYear...);
    _Bad when it is not one."""
    datatype = literal.datatype.value
    text = literal.value.strip()
    if datatype in _PARTIAL_DATE_FORMS:
        if re.fullmatch(_PARTIAL_DATE_FORMS[datatype], text) is None:
            raise _Bad(f"{text[:40]!r} is not a valid {_curie(datatype)}")
        return None
    try:
        if datatype == _DATE:
            if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}" + _ZONE, text) is None:
                raise ValueError
            return datetime.date.fromisoformat(text[:10])
        form = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?" + _ZONE
        zoned = re.search(r"(Z|[+-][0-9]{2}:[0-9]{2})$", text) is not None
        if re.fullmatch(form, text) is None or (datatype == _DATETIME_STAMP and not zoned):
            raise ValueError
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        example = "2024-03-01" if datatype == _DATE else "2024-03-01T10:30:00+01:00"
        what = "date" if datatype == _DATE else "date-time"
        raise _Bad(f"{text[:40]!r} is not a {what}: write it as {example}") from None


def _uid(value: object) -> _Uid:
    text = _text(value)
    if len(text) > 64 or _UID.fullmatch(text) is None:
        raise _Bad(f"{text[:80]!r} is not a DICOM UID (digits and dots, at most 64 characters)")
    return _Uid(text)


def _uids(value: object) -> list[_Uid]:
    """One UID, a JSON array of UIDs, or (CSV) UIDs separated by spaces."""
    if isinstance(value, list):
        return [_uid(item) for item in value]
    return [_uid(part) for part in _text(value).split()]


def _patient_id(value: object, what: str) -> str:
    text = _text(value) if not isinstance(value, int) or isinstance(value, bool) else str(value)
    if not text or len(text) > 64 or any(ord(c) < 32 for c in text) or "\\" in text:
        raise _Bad(f"{what} is 1 to 64 characters, no backslash or control characters")
    return text
