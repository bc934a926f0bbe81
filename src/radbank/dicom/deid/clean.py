"""Cleaning free text (the "C" action on text): keep the description, remove the identity.

A `Cleaner` is built once per object, before anything is removed, from the object's own
identifying values (`collect_identifiers`): every person name anywhere in the object
(patient, physicians, operators, observers, SR PNAME items), the patient's IDs and other
IDs, accession, admission and order numbers, the birth date in common spellings, addresses
and telephone numbers, and, unless the profile retains them, the institution's and the
device's names. Two cleanings, chosen per attribute (`is_narrative`, and for SR TEXT items
structured.text_rule):

- descriptors (protocol names, study and series descriptions, device models):
  `Cleaner.clean` replaces every occurrence of those values, and of generic patterns
  (dates, e-mail addresses, telephone numbers, UIDs and runs of seven or more digits that
  look like identifiers, codes of letters and five or more digits) by `PLACEHOLDER`; the
  rest of the text is kept, because dose statistics group by it;
- narrative (comments, history, reasons, findings): `Cleaner.clean_narrative` cleans the
  same way, then keeps only the words of a vocabulary of medical and technical terms
  (data/clean-vocabulary.json, made by tools/make_clean_vocabulary.py, with no common
  given name or surname), numbers of at most four digits, measurements with units,
  radionuclides and punctuation: a name that is nowhere in the object goes too.

Matching is case-insensitive and on word boundaries. A name is also matched word by word
("Jane", "Doe" of "Doe^Jane"), so "Doe, J." and "JANE DOE" are cleaned; words shorter than
two characters are not matched alone (an initial would erase every such letter), nor are
identifier values shorter than three characters. Numbers that are part of a decimal value
("9.586082") are not identifiers.

Reading values for the collection does not go through pydicom's element conversion when
the raw bytes are plain ASCII (`raw_text`): it costs ~40 µs an element, and the identifying
values are read only to be removed.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources

from pydicom import Dataset
from pydicom.datadict import DicomDictionary

from radbank.dicom.deid.profile import Option, dictionary_vr
from radbank.dicom.deid.structured import TEXT_VALUE, identifying_text_item
from radbank.dicom.elements import raw_text

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

# Public attributes that are neither a person name, a sequence nor a value collected above:
# skipped without a look at their VR (most of an object's elements).
_NEVER_IDENTIFYING = frozenset(
    tag
    for tag, entry in DicomDictionary.items()
    if entry[0] not in ("PN", "SQ")
    and tag not in _IDENTIFIER_TAGS | _INSTITUTION_TAGS | _DEVICE_TAGS | {TEXT_VALUE}
)

_MONTHS = (
    "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    "sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
# A pattern ends where no word character follows, nor a decimal part: a date or number at
# the end of a sentence ("on 2024-03-05.") is matched, "9.586082" is not cut in two.
_GENERIC = re.compile(
    "|".join(
        (
            r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # e-mail address
            r"(?<![\w.])(?:\+|00)\d[\d ()./-]{6,}\d(?![\w])",  # international phone
            r"(?<![\w.])\(?0\d{1,4}\)?[ ./-]?\d{2,4}[ ./-]\d{2,4}(?:[ ./-]\d{2,4})?(?!\w|\.\d)",
            r"(?<![\w.])\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\w|\.\d)",  # North American phone
            r"(?<![\w.])\d+(?:\.\d+){4,}(?!\w|\.\d)",  # a UID
            r"(?<![\w.])(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])"
            r"(?!\w|\.\d)",  # 2024-03-05
            r"(?<![\w.])(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|[12]\d|3[01])[-/.]"
            r"(?:\d{4}|\d\d)(?!\w|\.\d)",  # 05.03.2024, 03/05/24
            rf"(?<![\w.])(?:0?[1-9]|[12]\d|3[01])[ -](?:{_MONTHS})\.?[-, ]*(?:\d{{4}}|\d\d)"
            r"(?!\w|\.\d)",  # 5 Mar 2024, 12-May-16
            rf"(?<![\w.])(?:{_MONTHS})\.? (?:0?[1-9]|[12]\d|3[01]),? \d{{4}}(?!\w|\.\d)",
            r"(?<![\w.])(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\w|\.\d)",
            r"(?<![\w.,])\d{7,}(?![\w]|[.,]\d)",  # a long number: an identifier
        )
    ),
    re.IGNORECASE,
)
# A code of letters and five or more digits ("ACC123456", "MRN-00417", "AB12C345"): the
# shape of accession numbers, record numbers and patient IDs, not of descriptions.
_TOKEN = re.compile(r"(?<![\w.])[A-Za-z0-9][A-Za-z0-9_-]*[A-Za-z0-9](?![\w.])")
# Every generic pattern needs a digit or an "@", and an identifier-like code five digits:
# most descriptors have neither, and these searches cost a tenth of the substitutions.
_GENERIC_NEEDS = re.compile(r"[\d@]")
_TOKEN_NEEDS = re.compile(r"[0-9](?:[^0-9]*[0-9]){4}")


def _identifier_like(token: str) -> bool:
    digits = sum(character.isdigit() for character in token)
    return digits >= 5 and digits < len(token) - token.count("-") - token.count("_")


class Cleaner:
    """Removes one object's identifying values and generic identifier patterns from text
    (`clean`, for descriptors) and, from narrative, every word it does not know
    (`clean_narrative`). `keeps_age`: the profile retains patient characteristics, so an
    age in narrative may stay like Patient's Age does."""

    def __init__(
        self, names: Iterable[str], identifiers: Iterable[str], keeps_age: bool = True
    ) -> None:
        self.keeps_age = keeps_age
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
        if _GENERIC_NEEDS.search(text) is None:
            return text
        text = _GENERIC.sub(placeholder, text)
        if _TOKEN_NEEDS.search(text) is None:
            return text
        return _TOKEN.sub(lambda m: placeholder if _identifier_like(m[0]) else m[0], text)

    def clean_narrative(self, text: str) -> str:
        """Return narrative `text` cleaned like a descriptor, then with every run of words
        outside the vocabulary (and ages, unless kept, and runs of seven or more digits)
        replaced by one placeholder."""
        if not text:
            return text
        text = self.clean(text)
        if not self.keeps_age:
            text = _AGE.sub(PLACEHOLDER, text)
        text = _DIGIT_RUN.sub(
            lambda m: PLACEHOLDER if sum(c.isdigit() for c in m[0]) >= 7 else m[0], text
        )
        return _keep_known_words(text)


# Narrative (free text of LT, ST and UT values, and of LO/SH values whose meaning is
# narrative) is cleaned by allowlist: only the vocabulary survives. Descriptors (the other
# text values, and the LT/ST values a device writes) keep every word but identifiers.
NARRATIVE_VRS = frozenset({"LT", "ST", "UT"})
_NARRATIVE_TAGS = frozenset(
    {
        0x00081080,  # Admitting Diagnoses Description
        0x00380040,  # Discharge Diagnosis Description
        0x00102000,  # Medical Alerts
        0x00102110,  # Allergies
        0x00380500,  # Patient State
        0x00102180,  # Occupation
        0x00380050,  # Special Needs
        0x00380062,  # Service Episode Description
        0x00321030,  # Reason for Study
        0x00402001,  # Reason for the Imaging Service Request
        0x00401002,  # Reason for the Requested Procedure
    }
)
_DESCRIPTOR_TAGS = frozenset(
    {
        0x00189424,  # Acquisition Protocol Description (per-protocol dose statistics)
        0x00082111,  # Derivation Description
        0x0018937B,  # Multi-energy Acquisition Description
        0x0018937F,  # Decomposition Description
        0x00189185,  # Respiratory Motion Compensation Technique Description
        0x003A0329,  # Waveform Filter Description
        0x003A032B,  # Filter Lookup Table Description
        0x300A067D,  # Radiation Generation Mode Description
    }
)


def is_narrative(tag: int, vr: str) -> bool:
    """Whether the text value of attribute `tag` is narrative (cleaned by allowlist)."""
    if vr in NARRATIVE_VRS:
        return tag not in _DESCRIPTOR_TAGS
    return tag in _NARRATIVE_TAGS


VOCABULARY_FILE = "clean-vocabulary.json"


@dataclass(frozen=True)
class Vocabulary:
    """The words narrative keeps (data/clean-vocabulary.json, made by
    tools/make_clean_vocabulary.py) and the phrases in which a name-like word is kept."""

    words: frozenset[str]
    phrases: frozenset[tuple[str, str]]


@functools.cache
def vocabulary() -> Vocabulary:
    text = resources.files(__package__).joinpath("data", VOCABULARY_FILE).read_text("utf-8")
    raw = json.loads(text)
    pairs = (phrase.split(" ") for phrase in raw["phrases"])
    return Vocabulary(frozenset(raw["words"]), frozenset((a, b) for a, b in pairs))


# Radionuclides as written in dosimetry narrative: Tc-99m, 99mTc, I131, F-18, Lu-177.
_NUCLIDE = (
    "tc|i|f|ga|lu|y|in|tl|xe|kr|rb|sm|sr|ra|cu|zr|ho|re|c|n|o|p|co|cr|ac|pb|bi|at|tb|cs|ir|er"
)
_NARRATIVE_TOKEN = re.compile(
    rf"{re.escape(PLACEHOLDER)}"
    rf"|(?<![\w-])(?:(?:{_NUCLIDE})-\d{{2,3}}m?|\d{{2,3}}m?-(?:{_NUCLIDE}))(?![\w-])"
    r"|[^\W_]+(?:['’][^\W\d_]+)*",
    re.IGNORECASE,
)
# Separators inside one run of removed words: spaces and hyphens ("Smith-Jones").
_RUN_SEPARATOR = re.compile(r"[\s-]*")
# A number of at most four digits, dimensions (3x4), with or without a unit (5mm, 120kV).
_MEASUREMENT = re.compile(r"\d{1,4}(?:x\d{1,4})*([^\W\d_]*)")
_UNITS = frozenset(
    """
    mm cm m um µm km ml l cc dl ul µl mg g kg ug µg mcg kv kvp kev mev mv ev ma mas s sec
    ms min mins h hr hrs d wk wks mo y yr yrs gy mgy cgy ugy µgy sv msv usv µsv mgycm bq
    kbq mbq gbq ci mci uci µci hu mmol umol nmol iu hz khz mhz t f x fps bpm mmhg deg ppm
    mm2 cm2 m2 mm3 cm3 m3 lp
    """.split()  # noqa: SIM905 - a word list reads as a paragraph
)
# Spine levels (C7, L4), MR weighting (T1, T2w), b-values (b1000), tin-filtered tube
# voltages (Sn100kV).
_TECHNICAL = re.compile(r"[ctls]\d{1,2}|t[12]w?|b\d{1,4}|sn\d{2,3}(?:kv)?", re.IGNORECASE)
# Runs of digit groups (phone numbers, record numbers written with spaces or dots).
_DIGIT_RUN = re.compile(r"(?<![\w.,])\d+(?:[ .,/-]\d+)+(?![\w])")
# Ages in narrative: "67-year-old", "67 yo", "aged 67", "67 Jahre alt", "67 ans".
_AGE = re.compile(
    r"(?<![\w.])(?:aged?|age:)\s*\d{1,3}(?![\w.])"
    r"|(?<![\w.])\d{1,3}\s*-?\s*(?:years?|yrs?|y|months?|mos?|weeks?|wks?|days?)"
    r"(?:\s*-\s*|\s+)old(?![\w])"
    r"|(?<![\w.])\d{1,3}\s*-?\s*(?:y/o|y\.o\.|yo|jahre\s+alt|j\.\s*alt|jährige[rn]?|ans|años"
    r"|anni|jaar|lat|år|vuotias)(?![\w])",
    re.IGNORECASE,
)


_NUCLIDE_WORD = re.compile(
    rf"(?:{_NUCLIDE})-?\d{{2,3}}m?|\d{{2,3}}m?-?(?:{_NUCLIDE})", re.IGNORECASE
)


def _known(token: str, words: frozenset[str], after_slash: bool) -> bool:
    """Whether a narrative token stays: a vocabulary word (also with "'s"), a number of at
    most four digits or a measurement with a unit, a unit (one letter only after "/", as
    in "ml/s"), a spine level or MR weighting, a radionuclide."""
    word = token.lower().replace("’", "'")
    if word in words or (word in _UNITS and (len(word) > 1 or after_slash)):
        return True
    if word.endswith("'s") and word[:-2] in words:
        return True
    measurement = _MEASUREMENT.fullmatch(word)
    if measurement is not None and (not measurement[1] or measurement[1] in _UNITS):
        return True
    return _TECHNICAL.fullmatch(word) is not None or _NUCLIDE_WORD.fullmatch(word) is not None


def _keep_known_words(text: str) -> str:
    """Replace each run of words outside the vocabulary by one placeholder; placeholders
    already in the text, punctuation and known words stay where they are."""
    known = vocabulary()
    tokens = list(_NARRATIVE_TOKEN.finditer(text))
    keep = [
        match[0] == PLACEHOLDER
        or _known(match[0], known.words, text[match.start() - 1 : match.start()] == "/")
        for match in tokens
    ]
    # A name-like word of a phrase ("white" of "white matter") stays beside its partner.
    for index in range(len(tokens)):
        if keep[index]:
            continue
        for other in (index - 1, index + 1):
            if not 0 <= other < len(tokens) or not keep[other]:
                continue
            first, second = sorted((tokens[index], tokens[other]), key=lambda m: m.start())
            if not _RUN_SEPARATOR.fullmatch(text[first.end() : second.start()]):
                continue
            if (first[0].lower(), second[0].lower()) in known.phrases:
                keep[index] = True
                break
    pieces: list[str] = []
    end = 0
    in_run = False
    for match, kept in zip(tokens, keep, strict=True):
        separator = text[end : match.start()]
        if kept:
            pieces += (separator, match[0])
            in_run = False
        elif in_run and _RUN_SEPARATOR.fullmatch(separator):
            pass  # the run of removed words goes on: one placeholder for all of it
        else:
            pieces += (separator, PLACEHOLDER)
            in_run = True
        end = match.end()
    pieces.append(text[end:])
    return "".join(pieces)


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
    keeps_age = Option.RETAIN_PATIENT_CHARACTERISTICS in options
    return _cleaner(frozenset(names), frozenset(identifiers), keeps_age)


@functools.lru_cache(maxsize=256)
def _cleaner(names: frozenset[str], identifiers: frozenset[str], keeps_age: bool) -> Cleaner:
    """The cleaner for a set of values, built once: the instances of a series share their
    patient, study and institution, and compiling the pattern costs ~0.3 ms."""
    return Cleaner(names, identifiers, keeps_age)


def _walk(
    dataset: Dataset, tags: frozenset[int], options: frozenset[Option]
) -> Iterator[tuple[int, str, str]]:
    """Yield (tag, VR, text) of the identifying values, in nested items too; elements that
    cannot identify anyone stay undecoded (private ones are removed or numeric anyway)."""
    for tag in map(int, dataset.keys()):
        if tag & 0x10000 or tag in _NEVER_IDENTIFYING:
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
        value: object = raw_text(dataset, tag)
        if value is None:
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
