"""The PHI-injection corpus: real DICOM objects carrying a unique canary in every attribute
that a de-identification profile must remove, empty, replace, pseudonymise or clean.

Owns three things used by the tests of this folder:

- `Rules`: what PS3.15 Table E.1-1, a profile's options and its overrides require of each
  planted canary, read from the table rows directly (`load_table()`), not from the engine's
  compiled profile, so that the proof does not share the engine's mistakes;
- `planted`: a real object (pydicom's test files, the vendor dose reports of
  ../shared/data/rdsr) written as Part 10 bytes with a canary at the top level, inside
  items of kept, pseudonymised and removed sequences two levels deep, in private blocks
  (one of them a vendor block of the safe private list, or named like a vendor's
  acquisition block), in the SR content tree (TID 1002 person observer, TEXT, PNAME,
  DATETIME, DATE, TIME, UIDREF items at the root and two containers deep), in the File Meta
  Information and in the preamble; each canary records its path;
- `survivors`: every canary the profile must remove that is still in the written bytes
  (ASCII/UTF-8 and UTF-16) or still at its path in the re-read object; `lost`: every
  canary the profile explicitly retains that no longer has its exact value.

Canary values are unique by construction: text "CNRY" + 5 digits, UIDs under
1.2.826.0.1.3680043.9.7777., dates counted from 1911-01-01, times ending ".7" + 5 digits,
numbers "-77" + 5 digits. A date canary must not keep its original date; a shifted date
could equal another canary's date, so the dates are spaced such that no two of them differ
by the patient's date shift (learnt from the engine before the dates are written).
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import itertools
import re
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import corpus
import pydicom
import pytest
from pydicom import Dataset
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from radbank.dicom.deid import PROFILE_NAMES, Option, Profile, deidentify, load_table
from radbank.dicom.encode import part10_bytes

REQUIRED_PROFILES = ("basic", "basic-dates", "research-dose")
ALL_PROFILES = tuple(sorted(set(REQUIRED_PROFILES) | set(PROFILE_NAMES)))
SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
RDSR_DIR = SHARED_DATA / "rdsr"

CANARY_UID_ROOT = "1.2.826.0.1.3680043.9.7777."
WELL_KNOWN_UID_PREFIX = "1.2.840.10008."
_DATE_BASE = datetime.date(1911, 1, 1)

TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"})
_UNICODE_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})

CONTENT_SEQUENCE = 0x0040A730
TEXT_VALUE = 0x0040A160
CODE_MEANING = 0x00080104
PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010
_MODIFIED_DATES = Option.RETAIN_LONGITUDINAL_MODIFIED_DATES

# (sequence at the top level, sequence inside its item): canaries go into an item of each,
# two levels deep. Anatomic Region is not in the table (kept), Referenced Image is X/Z/U*
# (pseudonymised), Request Attributes is X (cleaned with Clean Descriptors), Other Patient
# IDs is X under every option.
CONTAINERS = (
    ("AnatomicRegionSequence", "AnatomicRegionModifierSequence"),
    ("ReferencedImageSequence", "PurposeOfReferenceCodeSequence"),
    ("RequestAttributesSequence", "ScheduledProtocolCodeSequence"),
    ("OtherPatientIDsSequence", "IssuerOfPatientIDQualifiersSequence"),
)

# The pydicom test files the corpus starts from; the US one is re-encoded in UTF-8 and its
# text canaries carry non-ASCII letters.
PYDICOM_SOURCES = ("CT_small.dcm", "MR_small.dcm", "OBXXXX1A.dcm", "test-SR.dcm", "reportsi.dcm")
UNICODE_SOURCE = "OBXXXX1A.dcm"


def shipped_profile(name: str) -> Profile:
    """The shipped profile `name`; fails (never skips) when radbank does not ship it."""
    if name not in PROFILE_NAMES:
        pytest.fail(f"profile {name} is not shipped (PROFILE_NAMES = {', '.join(PROFILE_NAMES)})")
    return Profile.named(name)


def rdsr_files() -> list[Path]:
    return sorted(RDSR_DIR.glob("*.dcm")) if RDSR_DIR.is_dir() else []


def require_rdsr() -> list[Path]:
    files = rdsr_files()
    if not files:
        pytest.skip(f"vendor dose reports not found in {RDSR_DIR} (shared test data, GPL)")
    return files


def source_ids() -> list[str]:
    """Parametrisation ids: pydicom files and, when present, every shared vendor object."""
    shared = [f"rdsr/{path.name}" for path in rdsr_files()] or ["rdsr/(absent)"]
    return [*PYDICOM_SOURCES, *shared]


def read_dicom(data: Path | str | bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd real-world values are the point of the corpus
        if isinstance(data, bytes):
            return pydicom.dcmread(io.BytesIO(data))
        return pydicom.dcmread(data)


def read_source(source: str) -> tuple[Dataset, bytes]:
    """The source object, fully decoded, and its file bytes."""
    if source.startswith("rdsr/"):
        require_rdsr()
        path = RDSR_DIR / source.removeprefix("rdsr/")
    else:
        path = corpus.path(source)
    data = path.read_bytes()
    dataset = read_dicom(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in dataset.iterall():
            pass  # decode now, under the source's character set, before we change it
    return dataset, data


def is_sr_document(dataset: Dataset) -> bool:
    return dataset.get("ValueType") == "CONTAINER" and CONTENT_SEQUENCE in dataset


def element_name(tag: int) -> str:
    keyword = keyword_for_tag(tag)
    text = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    return f"{keyword} {text}" if keyword else text


# --- canaries ---------------------------------------------------------------------------

Steps = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Canary:
    """One planted value: where it is and what betrays it."""

    path: str
    area: str  # "dataset", "file meta" or "preamble"
    steps: Steps  # (sequence tag, item index) from the top level
    tag: int
    vr: str
    value: object
    needle: bytes | None  # what betrays the value in bytes; None: only its path can tell
    family: str
    in_content: bool = False  # inside the SR content tree
    private: tuple[int, str, int] | None = None  # (group, creator, element byte)
    fixed_rule: tuple[bool, str] | None = None  # a requirement that no profile changes

    @property
    def sequence_path(self) -> tuple[int, ...]:
        return tuple(tag for tag, _ in self.steps)

    def describe(self, rule: str) -> str:
        return f"{self.path} [{self.vr}] = {self.value!r} ({rule})"


@dataclass(frozen=True)
class PlantedSource:
    source: str
    data: bytes  # the planted object as Part 10 bytes
    canaries: tuple[Canary, ...]
    planting_shift_days: int  # the shift the dates were spaced for

    @property
    def date_canaries(self) -> tuple[Canary, ...]:
        return tuple(canary for canary in self.canaries if canary.family == "date")


def date_step_avoiding(shift_days: int) -> int:
    """A spacing of the canary dates such that no two differ by exactly `shift_days`."""
    step = 1
    while shift_days and abs(shift_days) % step == 0:
        step += 1
    return step


class _Values:
    """Fresh, unique canary values per VR (dates are assigned at the end, see `plant`)."""

    def __init__(self, unicode_text: bool) -> None:
        self.serial = itertools.count(1)
        self.unicode_text = unicode_text

    def token(self) -> str:
        return f"CNRY{next(self.serial):05d}"

    def make(self, vr: str) -> tuple[object, bytes | None, str]:
        """(value, needle, family) for a VR."""
        serial = next(self.serial)
        token = f"CNRY{serial:05d}"
        if vr in TEXT_VRS:
            value = token
            if self.unicode_text and vr in _UNICODE_VRS:
                value = f"{token}^Jürgen" if vr == "PN" else f"{token} Ä"
            elif vr == "PN":
                value = f"{token}^Jane"
            elif vr == "UR":
                value = f"https://{token}.hospital.example/patient"
            return value, token.encode(), "text"
        if vr in BINARY_VRS:
            return token.encode() + b"\x00" * 7, token.encode(), "text"
        if vr in ("DA", "DT"):
            return "", None, "date"  # assigned later
        if vr == "TM":
            value = f"{10 + serial % 12:02d}{serial % 60:02d}{serial // 60 % 60:02d}.7{serial:05d}"
            return value, value.encode(), "time"
        if vr in ("IS", "DS"):
            value = f"-77{serial:05d}"
            return value, value.encode(), "number"
        if vr == "UI":
            value = f"{CANARY_UID_ROOT}{100000 + serial}"
            return value, value.encode(), "uid"
        if vr == "AS":
            value = f"{serial % 900 + 100:03d}W"
            return value, value.encode(), "raw"
        if vr in ("US", "SS"):
            return 0x7E00 + serial % 0x100, None, "none"
        if vr in ("UL", "SL"):
            return 0x7E570000 + serial, struct.pack("<L", 0x7E570000 + serial), "raw"
        if vr in ("UV", "SV"):
            number = 0x7E57000000000000 + serial
            return number, struct.pack("<Q", number), "raw"
        if vr == "FL":
            number = struct.unpack("<f", struct.pack("<f", 7.77e7 + serial * 8))[0]
            return number, struct.pack("<f", number), "raw"
        if vr == "FD":
            return 7.77e7 + serial, struct.pack("<d", 7.77e7 + serial), "raw"
        if vr == "AT":
            return 0x77770000 + serial, struct.pack("<HH", 0x7777, serial & 0xFFFF), "raw"
        raise ValueError(f"no canary for VR {vr}")


@dataclass(frozen=True)
class _Context:
    """Where the planter is: the human path and the (sequence, item) steps."""

    where: str = ""
    steps: Steps = ()
    in_content: bool = False

    def enter(self, tag: int, index: int, label: str = "") -> _Context:
        name = keyword_for_tag(tag) or element_name(tag)
        return _Context(
            where=f"{self.where}{name}[{index}]{label} > ",
            steps=(*self.steps, (tag, index)),
            in_content=self.in_content or tag == CONTENT_SEQUENCE,
        )


def _vr(tag: int) -> str | None:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return None
    return vr.split(" or ")[0]


_NUMBER_VRS = frozenset({"DS", "IS", "FL", "FD", "SL", "SS", "UL", "US"})


def _safe_private_vrs() -> dict[tuple[int, str, int], str]:
    """radbank's documented safe private list: (group, creator, element byte) -> VR."""
    from radbank.dicom.deid import private

    entries = private.SAFE_PRIVATE_ATTRIBUTES
    if isinstance(entries, dict):
        return {key: getattr(entry, "vr", "DS") for key, entry in entries.items()}
    return dict.fromkeys(entries, "DS")


class _Planter:
    def __init__(self, values: _Values) -> None:
        self.values = values
        self.canaries: list[Canary] = []
        self.dates: list[tuple[int, DataElement]] = []  # (canary index, element)
        self.skipped: set[str] = set()

    def plant_value(
        self,
        dataset: Dataset,
        context: _Context,
        tag: int,
        vr: str,
        private: tuple[int, str, int] | None = None,
    ) -> None:
        value, needle, family = self.values.make(vr)
        element = DataElement(tag, vr, value, validation_mode=0)
        dataset[tag] = element
        if family == "date":
            self.dates.append((len(self.canaries), element))
        self.canaries.append(
            Canary(
                f"{context.where}{element_name(tag)}",
                "dataset",
                context.steps,
                tag,
                vr,
                value,
                needle,
                family,
                in_content=context.in_content,
                private=private,
            )
        )

    def plant_item(self, dataset: Dataset, context: _Context, tag: int) -> tuple[Dataset, _Context]:
        """Append an item to sequence `tag` (created if absent); the context of that item."""
        if tag in dataset and dataset[tag].VR == "SQ":
            sequence = dataset[tag].value
        else:
            sequence = Sequence()
            dataset[tag] = DataElement(tag, "SQ", sequence)
        item = Dataset()
        sequence.append(item)
        return item, context.enter(tag, len(sequence) - 1)

    def plant_rows(self, dataset: Dataset, context: _Context, skip: frozenset[int]) -> None:
        """A canary in every exact row of the table (a sequence row: an item with one)."""
        for row in load_table().rows:
            tag = row.value
            if not row.is_exact or tag >> 16 in (0x0000, 0x0002) or tag in skip:
                continue  # masks are planted elsewhere; command and file meta groups too
            vr = _vr(tag)
            if vr is None:
                self.skipped.add(element_name(tag))
            elif vr == "SQ":
                item, inner = self.plant_item(dataset, context, tag)
                self.plant_value(item, inner, CODE_MEANING, "LO")
            else:
                self.plant_value(dataset, context, tag, vr)

    def plant_masks(self, dataset: Dataset, context: _Context) -> None:
        """Curve and overlay groups: the table's (50xx,xxxx), (60xx,3000), (60xx,4000) rows."""
        for tag, vr in (
            (0x50003000, "OB"),  # Curve Data
            (0x50020022, "LO"),  # Curve Description
            (0x60003000, "OW"),  # Overlay Data
            (0x60024000, "LT"),  # Overlay Comments
        ):
            self.plant_value(dataset, context, tag, vr)

    def plant_private(self, dataset: Dataset, context: _Context) -> None:
        """An unknown creator's block full of identity, and the vendor blocks (see below):
        with numbers at the top level, with text in a sequence item."""
        creator = self.values.token() + " PACS EXPORT"
        block = dataset.private_block(0x0009, creator, create=True)
        self.canaries.append(
            Canary(
                f"{context.where}private creator (0009,00{block.block_start >> 8:02X})",
                "dataset",
                context.steps,
                0x00090000 | block.block_start >> 8,
                "LO",
                creator,
                creator[:9].encode(),
                "text",
                fixed_rule=(True, "private creator of a block with nothing safe in it"),
            )
        )
        for offset, vr in ((0x10, "LO"), (0x11, "PN"), (0x12, "DA"), (0x13, "UI"), (0x17, "UN")):
            self.plant_value(
                dataset, context, block.get_tag(offset), vr, private=(0x0009, creator, offset)
            )
        for offset, codec in ((0x14, "utf-16-le"), (0x15, "utf-16-be")):
            token = self.values.token()
            tag = block.get_tag(offset)
            dataset[tag] = DataElement(tag, "OB", token.encode(codec), validation_mode=0)
            self.canaries.append(
                Canary(
                    f"{context.where}{element_name(tag)} ({codec})",
                    "dataset",
                    context.steps,
                    tag,
                    "OB",
                    token,
                    token.encode(),
                    "text",
                    private=(0x0009, creator, offset),
                )
            )
        item, inner = self.plant_item(dataset, context, block.get_tag(0x16))
        self.plant_value(item, inner, PATIENT_NAME, "PN")
        self.plant_vendor_block(dataset, context, text=bool(context.steps))

    def plant_vendor_block(self, dataset: Dataset, context: _Context, text: bool) -> None:
        """The vendor blocks of radbank's documented safe private list: in each numeric safe
        element a number (dose values may stay where the profile keeps safe private
        attributes) or, with `text`, a canary text (a vendor reusing a safe element for a
        name must not leak it); in a spare element of the block a canary text. Without a
        safe list, a block named like a vendor's CT acquisition block."""
        safe = _safe_private_vrs() or {(0x0019, "GEMS_ACQU_01", 0x23): "DS"}
        blocks: dict[tuple[int, str], dict[int, str]] = {}
        for (group, creator, element), vr in safe.items():
            blocks.setdefault((group, creator), {})[element] = vr
        for (group, creator), elements in sorted(blocks.items()):
            block = dataset.private_block(group, creator, create=True)
            for element, vr in sorted(elements.items()):
                if vr in _NUMBER_VRS:
                    self.plant_value(
                        dataset, context, block.get_tag(element), "LO" if text else vr,
                        private=(group, creator, element),
                    )  # fmt: skip
            spare = next(offset for offset in range(0xFF, 0x10, -1) if offset not in elements)
            self.plant_value(
                dataset, context, block.get_tag(spare), "LO", private=(group, creator, spare)
            )

    def plant_content(self, dataset: Dataset) -> None:
        """SR content: a TID 1002 person observer at the root, then TEXT, PNAME, DATETIME,
        DATE, TIME and UIDREF items at the root, in a container and in a container in it."""
        items = dataset[CONTENT_SEQUENCE].value
        self.append_content(items, _Context(), _OBSERVER_ITEMS, "HAS OBS CONTEXT")
        self.append_content(items, _Context(), _CONTENT_ITEMS, "CONTAINS")
        context = _Context()
        for _depth in (1, 2):
            index = next(
                (
                    index
                    for index, item in enumerate(items)
                    if item.get("ValueType") == "CONTAINER" and CONTENT_SEQUENCE in item
                ),
                None,
            )
            if index is None:
                container = _content_item("CONTAINS", "CONTAINER", ("121070", "DCM", "Findings"))
                container.ContinuityOfContent = "SEPARATE"
                container.ContentSequence = Sequence()
                items.append(container)
                index = len(items) - 1
            context = context.enter(CONTENT_SEQUENCE, index, " CONTAINER")
            items = items[index].ContentSequence
            self.append_content(items, context, _CONTENT_ITEMS, "CONTAINS")

    def append_content(
        self, items: Sequence, context: _Context, templates: tuple[_Item, ...], relation: str
    ) -> None:
        for value_type, concept, tag, vr in templates:
            item = _content_item(relation, value_type, concept)
            if value_type == "CODE":
                item.ConceptCodeSequence = [_code("121006", "DCM", "Person")]
            items.append(item)
            if tag is not None and vr is not None:
                label = f" {value_type} {concept[2]!r}"
                self.plant_value(
                    item, context.enter(CONTENT_SEQUENCE, len(items) - 1, label), tag, vr
                )

    def plant_file_meta(self, dataset: Dataset) -> None:
        meta = dataset.file_meta
        meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID  # itself a canary
        rule = (True, "the File Meta Information is rewritten")
        for tag, vr in (
            (0x00020016, "AE"),  # Source Application Entity Title
            (0x00020017, "AE"),  # Sending Application Entity Title
            (0x00020018, "AE"),  # Receiving Application Entity Title
            (0x00020026, "UR"),  # Source Presentation Address
            (0x00020100, "UI"),  # Private Information Creator UID
            (0x00020102, "OB"),  # Private Information
        ):
            value, needle, family = self.values.make(vr)
            meta[tag] = DataElement(tag, vr, value, validation_mode=0)
            self.canaries.append(
                Canary(
                    f"file meta > {element_name(tag)}", "file meta", (), tag, vr, value,
                    needle, family, fixed_rule=rule,
                )
            )  # fmt: skip
        token = self.values.token()
        dataset.preamble = (token + " scanned at St Example").encode().ljust(128, b"\x00")
        self.canaries.append(
            Canary(
                "preamble", "preamble", (), 0, "preamble", token, token.encode(), "text",
                fixed_rule=(True, "the preamble can carry anything and is zeroed"),
            )
        )  # fmt: skip

    def assign_dates(self, step: int, source_bytes: bytes) -> None:
        day_index = itertools.count(0)
        for canary_index, element in self.dates:
            while True:
                day = _DATE_BASE + datetime.timedelta(days=next(day_index) * step)
                text = day.strftime("%Y%m%d")
                if text.encode() not in source_bytes:
                    break
            canary = self.canaries[canary_index]
            value = text if canary.vr == "DA" else f"{text}101010"
            element.value = value
            self.canaries[canary_index] = dataclasses.replace(
                canary, value=value, needle=text.encode()
            )


_Item = tuple[str, tuple[str, str, str], int | None, str | None]
_OBSERVER_ITEMS: tuple[_Item, ...] = (
    ("CODE", ("121005", "DCM", "Observer Type"), None, None),
    ("PNAME", ("121008", "DCM", "Person Observer Name"), 0x0040A123, "PN"),
    ("TEXT", ("121009", "DCM", "Person Observer's Organization Name"), TEXT_VALUE, "UT"),
)
_CONTENT_ITEMS: tuple[_Item, ...] = (
    ("TEXT", ("121106", "DCM", "Comment"), TEXT_VALUE, "UT"),
    ("PNAME", ("121008", "DCM", "Person Observer Name"), 0x0040A123, "PN"),
    ("DATETIME", ("111526", "DCM", "DateTime Started"), 0x0040A120, "DT"),
    ("DATE", ("111060", "DCM", "Study Date"), 0x0040A121, "DA"),
    ("TIME", ("111061", "DCM", "Study Time"), 0x0040A122, "TM"),
    ("UIDREF", ("110180", "DCM", "Study Instance UID"), 0x0040A124, "UI"),
)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _content_item(relationship: str, value_type: str, concept: tuple[str, str, str]) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = [_code(*concept)]
    return item


def _patient_date_shift(dataset: Dataset, key: bytes) -> int:
    """The engine's date shift for the planted patient, from a small object of that patient."""
    probe = Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "PatientID"):
        setattr(probe, keyword, dataset[keyword].value)
    probe.IssuerOfPatientID = dataset.IssuerOfPatientID
    probe.StudyDate = "20000101"
    return deidentify(probe, shipped_profile("basic-dates"), key).date_shift_days


@cache
def planted(source: str, key: bytes) -> PlantedSource:
    """The source object with canaries planted (see the module docstring), as Part 10 bytes.

    The same object serves every profile: what a profile must do with each canary is
    `Rules(profile).requirement(canary)`.
    """
    dataset, source_bytes = read_source(source)
    if source == UNICODE_SOURCE:
        dataset.SpecificCharacterSet = "ISO_IR 192"
    planter = _Planter(_Values(unicode_text=source == UNICODE_SOURCE))
    top = _Context()
    sr_document = is_sr_document(dataset)
    planter.plant_rows(dataset, top, frozenset({CONTENT_SEQUENCE}) if sr_document else frozenset())
    # The vendor objects add real headers and dose reports; the nesting is proven on the
    # pydicom objects, which keeps the corpus small enough to run on every change.
    containers = () if source.startswith("rdsr/") else CONTAINERS
    for outer, inner in containers:
        item, context = planter.plant_item(dataset, top, tag_for_keyword(outer))
        planter.plant_rows(item, context, frozenset())
        nested, nested_context = planter.plant_item(item, context, tag_for_keyword(inner))
        planter.plant_rows(nested, nested_context, frozenset())
        if outer == "AnatomicRegionSequence":
            planter.plant_private(item, context)
    planter.plant_masks(dataset, top)
    planter.plant_private(dataset, top)
    if sr_document:
        planter.plant_content(dataset)
    planter.plant_file_meta(dataset)
    shift = _patient_date_shift(dataset, key)
    planter.assign_dates(date_step_avoiding(shift), source_bytes)
    assert len(planter.skipped) < 10, planter.skipped  # only rows pydicom does not know
    return PlantedSource(source, part10_bytes(dataset), tuple(planter.canaries), shift)


# --- what the profile requires ------------------------------------------------------------


def _tag(key: str) -> int:
    tag = tag_for_keyword(key.strip())
    if tag is not None:
        return tag
    return int(re.sub(r"[^0-9A-Fa-f]", "", key.replace("0x", "")), 16)


_REMOVING = frozenset({"X", "Z", "D", "X/Z", "X/D", "X/Z/D", "Z/D"})


@dataclass(frozen=True)
class Requirement:
    """What the profile must do with one canary. `cleaning`: the canary is free text that
    the profile keeps but cleans (a C action), as opposed to removing or replacing it."""

    must_go: bool
    rule: str
    cleaning: bool = False


_OVERRIDE_WORDS = {"keep": "K", "remove": "X", "empty": "Z", "dummy": "D", "pseudonymise": "U"}


class Rules:
    """What a profile requires of each canary, from Table E.1-1, its options and overrides.

    Readings of the standard made here (each one a reason a canary must go):
    - an enabled option's "K" retains and its "C" cleans; with several, "K" wins, except that
      a date the Modified Dates option shifts is shifted even when Retain Device Identity
      keeps it: one unshifted calibration date gives the patient's date shift away;
    - a combined action (X/Z, X/D, X/Z/D, Z/D) removes the value whichever part is chosen;
      X/Z/U* removes a value, or for a sequence de-identifies its items;
    - a sequence that is removed, emptied or replaced by a dummy takes everything in it; a
      kept, cleaned or pseudonymised sequence keeps its items, which are de-identified;
    - cleaning (C) removes a canary from text; a date under Modified Dates must not keep its
      original date; a time may stay (a whole-day shift keeps the time of day);
    - free text of an SR TEXT item (Text Value, not itself a row of the table) must go;
    - private attributes go unless Retain Safe Private keeps the element as documented safe;
    - the File Meta Information and the preamble keep nothing planted (issue 3: rewritten).
    A profile's override (by keyword, tag or "Sequence/Keyword" path) wins over the table.
    """

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.options = frozenset(profile.options)
        table = load_table()
        self.rows = {row.value: row for row in table.rows if row.is_exact}
        self.masks = tuple(row for row in table.rows if not row.is_exact)
        self._actions: dict[tuple[int, str, tuple[int, ...]], tuple[str | None, str]] = {}
        self.overrides: dict[int, str] = {}
        self.path_overrides: dict[tuple[int, ...], str] = {}
        for key, word in all_overrides(profile).items():
            tags = tuple(_tag(part) for part in str(key).split("/"))
            if len(tags) == 1:
                self.overrides[tags[0]] = word
            else:
                self.path_overrides[tags] = word
        self.safe_private = (
            frozenset(_safe_private_vrs()) if Option.RETAIN_SAFE_PRIVATE in self.options else None
        )

    def action(self, tag: int, vr: str, path: tuple[int, ...]) -> tuple[str | None, str]:
        """(the table's or an override's action, None when neither lists it; why)."""
        key = (tag, vr, path)
        if key not in self._actions:
            self._actions[key] = self._action(tag, vr, path)
        return self._actions[key]

    def _action(self, tag: int, vr: str, path: tuple[int, ...]) -> tuple[str | None, str]:
        word = self.path_overrides.get((*path, tag)) or self.overrides.get(tag)
        if word is not None:
            return _OVERRIDE_WORDS.get(word, "V"), f"profile override {word!r}"
        row = self.rows.get(tag)
        if row is None:
            row = next((mask for mask in self.masks if mask.matches(tag)), None)
        if row is None:
            return None, "not in Table E.1-1"
        actions = row.actions
        chosen = {
            option: actions[option.value] for option in self.options if option.value in actions
        }
        if chosen.get(_MODIFIED_DATES) == "C" and vr in ("DA", "DT"):
            return "C", "Table E.1-1 Modified Dates C: the date is shifted"
        kept = sorted(option.name for option, action in chosen.items() if action == "K")
        if kept:
            return "K", f"kept by {', '.join(kept)}"
        cleaned = sorted(option.name for option, action in chosen.items() if action == "C")
        if cleaned:
            return "C", f"Table E.1-1 {', '.join(cleaned)} C"
        return actions["basicProfile"], f"Table E.1-1 basic profile {actions['basicProfile']}"

    def subtree_gone(self, tag: int, path: tuple[int, ...]) -> str | None:
        """Why everything inside sequence `tag` must go, or None when its items stay."""
        if tag & 0x10000:
            return None if self.safe_private else "inside a private sequence"
        action, why = self.action(tag, "SQ", path)
        if action in _REMOVING:
            return f"inside {keyword_for_tag(tag)}: {why}"
        return None

    def requirement(self, canary: Canary) -> Requirement:
        """What the profile must do with `canary`."""
        if canary.fixed_rule is not None:
            return Requirement(*canary.fixed_rule)
        path = canary.sequence_path
        for depth, tag in enumerate(path):
            gone = self.subtree_gone(tag, path[:depth])
            if gone is not None:
                return Requirement(True, gone)
        if canary.private is not None:
            return self.private(canary)
        return self.leaf(canary.tag, canary.vr, path, canary.in_content)

    def private(self, canary: Canary) -> Requirement:
        assert canary.private is not None
        if self.safe_private is None:
            return Requirement(True, "private attribute (Table E.1-1 odd groups: X)")
        if canary.private not in self.safe_private:
            return Requirement(True, "private attribute not on the safe private list")
        if canary.family == "text":
            return Requirement(True, "text in an element the safe private list has as a number")
        return Requirement(False, "a number in an element of the safe private list")

    def leaf(self, tag: int, vr: str, path: tuple[int, ...], in_content: bool) -> Requirement:
        action, why = self.action(tag, vr, path)
        if tag in (PATIENT_ID, PATIENT_NAME) and action != "K":
            return Requirement(True, "becomes the patient pseudonym")
        if action is None:
            if in_content and tag == TEXT_VALUE:
                cleaning = Option.CLEAN_STRUCTURED_CONTENT in self.options
                return Requirement(True, "free text of an SR content item", cleaning)
            return Requirement(False, why)
        if action == "K":
            return Requirement(False, why)
        if action == "C" and vr == "TM":
            return Requirement(False, f"{why}; a whole-day shift keeps the time of day")
        return Requirement(True, why, cleaning=action == "C" and vr not in ("DA", "DT"))


def override_tag(key: str) -> int:
    """The attribute an override names: a keyword, a tag, or the last part of a path."""
    return _tag(str(key).split("/")[-1])


def all_overrides(profile: Profile) -> dict[str, str]:
    overrides = dict(profile.overrides)
    overrides.update(getattr(profile, "project_overrides", None) or {})
    return overrides


# --- finding survivors --------------------------------------------------------------------

_FAMILY_PATTERNS = {
    "text": re.compile(rb"CNRY[0-9]{5}"),
    "uid": re.compile(rb"(?<![0-9.])1\.2\.826\.0\.1\.3680043\.9\.7777\.[0-9]{6}(?![0-9.])"),
    "date": re.compile(rb"(?<![0-9.])(?=(19[0-9]{6}))"),
    "time": re.compile(rb"(?<![0-9.])[0-9]{6}\.7[0-9]{5}(?![0-9])"),
    "number": re.compile(rb"-77[0-9]{5}(?![0-9])"),
}
_UTF16 = (
    re.compile(rb"C\x00N\x00R\x00Y\x00(?:[0-9]\x00){5}"),
    re.compile(rb"\x00C\x00N\x00R\x00Y(?:\x00[0-9]){5}"),
)


def found_needles(data: bytes) -> set[bytes]:
    """Every canary-shaped value in `data` (text also in UTF-16 LE and BE)."""
    found: set[bytes] = set()
    for family, pattern in _FAMILY_PATTERNS.items():
        if family == "date":
            found.update(match.group(1) for match in pattern.finditer(data))
        else:
            found.update(pattern.findall(data))
    for pattern in _UTF16:
        found.update(match.replace(b"\x00", b"") for match in pattern.findall(data))
    return found


def _in_bytes(canary: Canary, data: bytes, found: set[bytes]) -> bool:
    if canary.needle is None:
        return False
    if canary.family == "raw":
        return canary.needle in data
    return canary.needle in found


def value_at(dataset: Dataset, canary: Canary) -> object | None:
    """The value now at the canary's path, or None when the path no longer exists."""
    if canary.area == "preamble":
        return dataset.preamble
    if canary.area == "file meta":
        element = dataset.file_meta.get(canary.tag)
        return None if element is None else element.value
    current = dataset
    for tag, index in canary.steps:
        element = current.get(tag)
        if element is None or element.VR != "SQ" or not 0 <= index < len(element.value):
            return None
        current = element.value[index]
    element = current.get(canary.tag)
    return None if element is None else element.value


def _still_at_path(dataset: Dataset, canary: Canary) -> bool:
    value = value_at(dataset, canary)
    if value is None:
        return False
    if canary.needle is None or canary.family == "raw":
        return value == canary.value or (isinstance(value, bytes) and value == canary.needle)
    if isinstance(value, bytes):
        haystack = value
    elif isinstance(value, list | tuple | MultiValue):
        haystack = "\\".join(str(part) for part in value).encode("utf-8", "replace")
    else:
        haystack = str(value).encode("utf-8", "replace")
    token = canary.needle.decode()
    return any(token.encode(codec) in haystack for codec in ("ascii", "utf-16-le", "utf-16-be"))


def _shifted(needle: bytes, days: int) -> bytes:
    day = datetime.datetime.strptime(needle.decode(), "%Y%m%d").date()
    return (day + datetime.timedelta(days=days)).strftime("%Y%m%d").encode()


def survivors(
    written: bytes, planted: PlantedSource, rules: Rules, shift_days: int, cleaning: bool
) -> list[str]:
    """Every canary the profile must remove (`cleaning` False) or clean (`cleaning` True)
    that is still in the written bytes or at its path in the re-read object.

    If the engine shifted by another amount than the dates were spaced for, a date canary
    that equals another one shifted is judged by its path only.
    """
    found = found_needles(written)
    reread = read_dicom(written)
    ambiguous: set[bytes] = set()
    if shift_days not in (0, planted.planting_shift_days):
        ambiguous = {_shifted(c.needle, shift_days) for c in planted.date_canaries if c.needle}
    lines = []
    for canary in planted.canaries:
        requirement = rules.requirement(canary)
        if not requirement.must_go or requirement.cleaning != cleaning:
            continue
        where = []
        if canary.needle not in ambiguous and _in_bytes(canary, written, found):
            where.append("bytes")
        if _still_at_path(reread, canary):
            where.append("path")
        if where:
            lines.append(f"{canary.describe(requirement.rule)} [found in {'+'.join(where)}]")
    return lines


def retained(requirement: Requirement) -> bool:
    """Whether the profile explicitly keeps the value: an option's K, a "keep" override, a
    number in a safe private element (attributes merely absent from the table are not)."""
    return not requirement.must_go and (
        requirement.rule.startswith(("kept by", "profile override 'keep'"))
        or requirement.rule.startswith("a number in an element of the safe private list")
    )


def lost(written: bytes, planted: PlantedSource, rules: Rules) -> list[str]:
    """Every canary the profile explicitly keeps that is no longer at its path unchanged."""
    reread = read_dicom(written)
    return [
        f"{canary.describe(requirement.rule)} [now {value_at(reread, canary)!r}]"
        for canary in planted.canaries
        for requirement in [rules.requirement(canary)]
        if retained(requirement) and not _still_at_path(reread, canary)
    ]


def missing_from_input(planted: PlantedSource) -> list[str]:
    """Canaries not findable in the planted input: a broken generator, not a broken engine."""
    found = found_needles(planted.data)
    reread = read_dicom(planted.data)
    return [
        canary.describe("planted")
        for canary in planted.canaries
        if (canary.needle is not None and not _in_bytes(canary, planted.data, found))
        or not _still_at_path(reread, canary)
    ]


def walk(dataset: Dataset, steps: Steps = ()) -> Iterator[tuple[Steps, DataElement]]:
    """Every element with the (sequence tag, item index) steps leading to it."""
    for element in dataset:
        yield steps, element
        if element.VR == "SQ":
            for index, item in enumerate(element.value):
                yield from walk(item, (*steps, (element.tag, index)))


def steps_text(steps: Steps, tag: int) -> str:
    """A human path: "ReferencedImageSequence[0] > ReferencedSOPInstanceUID (0008,1155)"."""
    inner = "".join(f"{keyword_for_tag(seq) or hex(seq)}[{index}] > " for seq, index in steps)
    return inner + element_name(tag)
