"""Cleaning free text (the "C" action on text): keep the description, remove the identity.

A `Cleaner` is built once per object, before anything is removed, from the object's own
identifying values (`collect_identifiers`): every person name anywhere in the object
(patient, physicians, operators, observers, SR PNAME items), the patient's IDs and other
IDs, accession, admission and order numbers, the birth date in common spellings, addresses
and telephone numbers, and, unless the profile retains them, the institution's and the
device's names. `Cleaner.clean` replaces every occurrence of those values, and of generic
patterns (dates, e-mail addresses, telephone numbers, UIDs and runs of seven or more
digits that look like identifiers, codes of letters and five or more digits) by
`PLACEHOLDER`; the rest of the text is kept.

Matching is case-insensitive and on word boundaries. A name is also matched word by word
("Jane", "Doe" of "Doe^Jane"), so "Doe, J." and "JANE DOE" are cleaned; words shorter than
two characters are not matched alone (an initial would erase every such letter), nor are
identifier values shorter than three characters. Numbers that are part of a decimal value
("9.586082") are not identifiers.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Iterable, Iterator

from pydicom import Dataset

from radbank.dicom.deid.profile import Option, dictionary_vr
from radbank.dicom.deid.structured import TEXT_VALUE, identifying_text_item

PLACEHOLDER = "[removed]"
CODE_PLACEHOLDER = "REMOVED"  # CS and AE values allow neither brackets nor lower case

# Values that identify a patient, a visit or an order, at any depth of the object.
_IDENTIFIER_TAGS = frozenset(
    {
        0x00100020,  # Patient ID
        0x00101000,  # Other Patient IDs
        0x00100021,  # Issuer of Patient ID
        0x00101090,  # Medical Record Locator
        0x00080050,  # Accession Number
        0x00200010,  # Study ID
        0x00380010,  # Admission ID
        0x00380060,  # Service Episode ID
        0x00401001,  # Requested Procedure ID
        0x00400009,  # Scheduled Procedure Step ID
        0x00400253,  # Performed Procedure Step ID
        0x00402016,  # Placer Order Number / Imaging Service Request
        0x00402017,  # Filler Order Number / Imaging Service Request
        0x00120040,  # Clinical Trial Subject ID
        0x00120042,  # Clinical Trial Subject Reading ID
        0x00101040,  # Patient's Address
        0x00102154,  # Patient's Telephone Numbers
        0x00080092,  # Referring Physician's Address
        0x00080094,  # Referring Physician's Telephone Numbers
        0x00401102,  # Person's Address
        0x00401103,  # Person's Telephone Numbers
        0x00101005,  # Patient's Birth Name (PN, listed for clarity)
        0x00101060,  # Patient's Mother's Birth Name
        0x00102150,  # Country of Residence
        0x00102152,  # Region of Residence
    }
)
_BIRTH_DATE = 0x00100030
_INSTITUTION_TAGS = frozenset(
    {
        0x00080080,  # Institution Name
        0x00080081,  # Institution Address
        0x00081040,  # Institutional Department Name
        0x00380300,  # Current Patient Location
        0x00380400,  # Patient's Institution Residence
        0x00400243,  # Performed Location
        0x00321033,  # Requesting Service
    }
)
_DEVICE_TAGS = frozenset(
    {
        0x00081010,  # Station Name
        0x00181000,  # Device Serial Number
        0x00181004,  # Plate ID
        0x00181005,  # Generator ID
        0x00181007,  # Cassette ID
        0x00181008,  # Gantry ID
        0x0018700A,  # Detector ID
    }
)

_MONTHS = (
    "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    "sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_GENERIC = re.compile(
    "|".join(
        (
            r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # e-mail address
            r"(?<![\w.])(?:\+|00)\d[\d ()./-]{6,}\d(?![\w])",  # international phone
            r"(?<![\w.])\(?0\d{1,4}\)?[ ./-]?\d{2,4}[ ./-]\d{2,4}(?:[ ./-]\d{2,4})?(?![\w.])",
            r"(?<![\w.])\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?![\w.])",  # North American phone
            r"(?<![\w.])\d+(?:\.\d+){4,}(?![\w.])",  # a UID
            r"(?<![\w.])(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])"
            r"(?![\w.])",  # 2024-03-05
            r"(?<![\w.])(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|[12]\d|3[01])[-/.]"
            r"(?:\d{4}|\d\d)(?![\w.])",  # 05.03.2024, 03/05/24
            rf"(?<![\w.])(?:0?[1-9]|[12]\d|3[01])[ -](?:{_MONTHS})\.?[-, ]*(?:\d{{4}}|\d\d)"
            r"(?![\w.])",  # 5 Mar 2024, 12-May-16
            rf"(?<![\w.])(?:{_MONTHS})\.? (?:0?[1-9]|[12]\d|3[01]),? \d{{4}}(?![\w.])",
            r"(?<![\w.])(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?![\w.])",
            r"(?<![\w.,])\d{7,}(?![\w]|[.,]\d)",  # a long number: an identifier
        )
    ),
    re.IGNORECASE,
)
# A code of letters and five or more digits ("ACC123456", "MRN-00417", "AB12C345"): the
# shape of accession numbers, record numbers and patient IDs, not of descriptions.
_TOKEN = re.compile(r"(?<![\w.])[A-Za-z0-9][A-Za-z0-9_-]*[A-Za-z0-9](?![\w.])")


def _identifier_like(token: str) -> bool:
    digits = sum(character.isdigit() for character in token)
    return digits >= 5 and digits < len(token) - token.count("-") - token.count("_")


class Cleaner:
    """Removes one object's identifying values and generic identifier patterns from text."""

    def __init__(self, names: Iterable[str], identifiers: Iterable[str]) -> None:
        words = {w for w in names if len(w) >= 2} | {v for v in identifiers if len(v) >= 3}
        # Longest first, so that "Doe^Jane" is removed whole before "Doe" is tried.
        alternatives = sorted(words, key=lambda word: (-len(word), word))
        self._specific = (
            re.compile(
                r"(?<![\w])(?:" + "|".join(re.escape(w) for w in alternatives) + r")(?![\w])",
                re.IGNORECASE,
            )
            if alternatives
            else None
        )
        self.values = frozenset(words)

    def clean(self, text: str, placeholder: str = PLACEHOLDER) -> str:
        """Return `text` with every identifying value replaced by `placeholder`."""
        if not text:
            return text
        if self._specific is not None:
            text = self._specific.sub(placeholder, text)
        text = _GENERIC.sub(placeholder, text)
        return _TOKEN.sub(lambda m: placeholder if _identifier_like(m[0]) else m[0], text)


def collect_identifiers(dataset: Dataset, options: frozenset[Option]) -> Cleaner:
    """Build the cleaner of one object from its values, before any is removed."""
    names: set[str] = set()
    identifiers: set[str] = set()
    tags = set(_IDENTIFIER_TAGS)
    if Option.RETAIN_INSTITUTION_IDENTITY not in options:
        tags |= _INSTITUTION_TAGS
    if Option.RETAIN_DEVICE_IDENTITY not in options:
        tags |= _DEVICE_TAGS
    for tag, vr, value in _walk(dataset, frozenset(tags), options):
        if vr == "PN":
            names.update(_name_parts(value))
        elif tag == _BIRTH_DATE:
            identifiers.update(_date_spellings(value))
        elif tag == TEXT_VALUE:
            identifiers.add(value.strip())
        else:
            identifiers.update(part.strip() for part in value.split("\\"))
    return Cleaner(names, identifiers)


def _walk(
    dataset: Dataset, tags: frozenset[int], options: frozenset[Option]
) -> Iterator[tuple[int, str, str]]:
    """Yield (tag, VR, text) of the identifying values, in nested items too; elements that
    cannot identify anyone stay undecoded (private ones are removed or numeric anyway)."""
    for tag in map(int, dataset.keys()):
        if tag & 0x10000:
            continue
        # The dictionary decides, not the element: nothing is decoded that cannot identify.
        vr = _vr(tag)
        if vr == "SQ":
            try:
                items = dataset[tag].value
            except Exception:  # noqa: BLE001 - the engine reports undecodable elements
                continue
            for item in items or ():
                yield from _walk(item, tags, options)
            continue
        if vr != "PN" and tag not in tags and tag != TEXT_VALUE:
            continue
        if tag == TEXT_VALUE and not identifying_text_item(dataset, options):
            continue
        try:
            value = dataset[tag].value
        except Exception:  # noqa: BLE001 - the engine reports undecodable elements
            continue
        for text in _texts(value):
            if text:
                yield tag, vr or "", text


@functools.lru_cache(maxsize=4096)
def _vr(tag: int) -> str | None:
    return dictionary_vr(tag)


def _texts(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bytes):
        return [value.decode("latin-1", "replace").strip("\x00 ")]
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return [str(item).strip() for item in value]  # type: ignore[union-attr]
    return [str(value).strip()]


def _name_parts(value: str) -> set[str]:
    """The full name and every word of its family, given and middle name components, in
    each of its alphabetic, ideographic and phonetic groups."""
    parts = {value}
    for group in value.split("="):
        components = group.split("^")
        parts.add(group)
        for component in components[:3]:  # prefix and suffix ("Dr", "Jr") are not names
            parts.add(component)
            parts.update(re.split(r"[\s,.\-]+", component))
    return {part.strip() for part in parts if part.strip()}


def _date_spellings(value: str) -> set[str]:
    """A date in the spellings people type: 19600214, 1960-02-14, 14.02.1960, 14/02/1960,
    02/14/1960, 14.2.1960, 14 Feb 1960, Feb 14, 1960, 600214, 140260."""
    digits = value.strip().replace(".", "")
    try:
        date = datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return {value.strip()}
    y, m, d = date.year, date.month, date.day
    month = date.strftime("%b")
    return {
        f"{y:04d}{m:02d}{d:02d}",
        f"{y:04d}-{m:02d}-{d:02d}",
        f"{y:04d}/{m:02d}/{d:02d}",
        f"{d:02d}.{m:02d}.{y:04d}",
        f"{d:02d}/{m:02d}/{y:04d}",
        f"{d:02d}-{m:02d}-{y:04d}",
        f"{m:02d}/{d:02d}/{y:04d}",
        f"{d}.{m}.{y}",
        f"{d}/{m}/{y}",
        f"{d} {month} {y}",
        f"{d:02d}-{month}-{y}",
        f"{month} {d}, {y}",
        f"{y % 100:02d}{m:02d}{d:02d}",
        f"{d:02d}{m:02d}{y % 100:02d}",
    }
