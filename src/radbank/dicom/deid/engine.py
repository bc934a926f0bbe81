"""Apply a compiled profile to one dataset: the per-element actions, the patient pseudonym,
UID remapping, date shifting, private attributes and the de-identification records.

Element by element (nested sequence items included), by the action the profile resolves:
K keep untouched (the raw element is not even decoded), X delete, Z empty, D dummy value
valid for the VR (`DUMMY_VALUES`; a UID is remapped; a sequence keeps its items, each
de-identified, except Content Sequence, which becomes one dummy TEXT item, and Person
Identification Code Sequence, which becomes one dummy code), U remap UIDs / keyed text
pseudonym / de-identify the items of a sequence, P the patient pseudonym, R de-identify the
items of a kept sequence, S shift a DA/DT when the profile shifts dates, V the override's
value, O remove an overlay whole, Q a content item value decided by its concept name,
C clean: DA/DT are shifted (TM kept) under the modified-dates option, sequences are
de-identified item by item, text is cleaned of the object's identifying values (clean.py,
structured.py), binary values (a camera's Maker Note) are removed as they cannot be cleaned.

UID values starting with 1.2.840.10008. (DICOM-defined) are never remapped. Dates that
cannot be shifted (partial or malformed) are emptied rather than kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pydicom import Dataset, config
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag

from radbank.dicom.deid import structured
from radbank.dicom.deid.clean import (
    CODE_PLACEHOLDER,
    PLACEHOLDER,
    Cleaner,
    collect_identifiers,
    is_narrative,
)
from radbank.dicom.deid.dates import patient_age, shift_date, shift_datetime
from radbank.dicom.deid.private import SAFE_PRIVATE_BY_CREATOR, SafePrivate, plausible
from radbank.dicom.deid.profile import (
    TIMEZONE_OFFSET,
    WELL_KNOWN_UID_PREFIX,
    CompiledProfile,
    Profile,
    compile_profile,
    dictionary_vr,
)
from radbank.dicom.deid.pseudonyms import (
    date_shift_days,
    patient_pseudonym,
    pseudonymise_text,
    pseudonymise_uid,
)
from radbank.dicom.deid.records import record_deidentification, rewrite_file_meta
from radbank.dicom.elements import held, raw_text

_TEXT_MAX_LENGTH = {
    "AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 64, "ST": 1024, "LT": 10240,
    "UC": 1024, "UT": 1024,
}  # fmt: skip
_DUMMY_TEXT = "ANONYMOUS"
_DUMMY_BYTES = b"\x00" * 8  # a valid length for OB, OW, OL, OF, OD, OV and UN
DUMMY_VALUES: dict[str, object] = {
    **{vr: _DUMMY_TEXT for vr in _TEXT_MAX_LENGTH},
    "UR": _DUMMY_TEXT,
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "AS": "000D",
    "IS": "0",
    "DS": "0",
    **{vr: 0 for vr in ("US", "SS", "UL", "SL", "UV", "SV", "AT")},
    **{vr: 0.0 for vr in ("FL", "FD")},
    **{vr: _DUMMY_BYTES for vr in ("OB", "OW", "OL", "OF", "OD", "OV", "UN")},
}

_EMPTY: dict[str, object] = {
    vr: "" for vr in (*_TEXT_MAX_LENGTH, "UR", "DA", "TM", "DT", "AS", "IS", "DS", "UI")
}

_PATIENT_ID = 0x00100020
_PATIENT_NAME = 0x00100010
_PATIENT_AGE = 0x00101010
_CONTENT_SEQUENCE = 0x0040A730
_PERSON_CODE_SEQUENCE = 0x00401101  # Person Identification Code Sequence
_STORED_AS_STR = frozenset(
    {"AE", "AS", "CS", "DA", "DT", "TM", "LO", "SH", "ST", "LT", "UT", "UC", "UR"}
)
_DATE_VRS = frozenset({"DA", "DT", "TM"})
_UTC_OFFSET = re.compile(r"[+-](?:0\d|1[0-4])[0-5]\d")
_BINARY_VRS = frozenset({"OB", "OW", "OL", "OF", "OD", "OV", "UN"})


class DeidentificationError(ValueError):
    """The object cannot be de-identified; the message names it and says why."""


@dataclass(frozen=True)
class DeidResult:
    """The outcome of `deidentify`. `dataset` is the input object, modified in place."""

    dataset: Dataset
    patient_pseudonym: str
    original_sop_instance_uid: str
    date_shift_days: int


@dataclass(frozen=True)
class _Context:
    key: bytes
    pseudonym: str
    shift_days: int
    object_name: str
    patient_name: str = ""
    cleaner: Cleaner | None = None


def deidentify(dataset: Dataset, profile: Profile, key: bytes) -> DeidResult:
    """De-identify one DICOM object with `profile` under the project `key`.

    The dataset is modified in place (copying every instance would halve ingest speed) and
    returned in the result. Pixel data is neither decoded nor changed. The output depends
    only on (input, profile, key): no clock, no randomness, so re-sends hash identically.
    Raises DeidentificationError for objects that cannot be de-identified.
    """
    original_uid = _uid(dataset, 0x00080018)
    name = _object_name(dataset, original_uid)
    if not original_uid:
        raise DeidentificationError(
            f"{name} has no SOP Instance UID (0008,0018), so it is not a storable DICOM "
            "instance; send the original object from the modality or PACS"
        )
    sop_class_uid = _uid(dataset, 0x00080016) or _meta_sop_class(dataset)
    if not sop_class_uid:
        raise DeidentificationError(
            f"{name} has no SOP Class UID (0008,0016) and no Media Storage SOP Class UID; "
            "the object type is unknown, send the original object from the modality or PACS"
        )
    compiled = compile_profile(profile)
    pseudonym = patient_pseudonym(
        _text(dataset, "IssuerOfPatientID", name), _text(dataset, "PatientID", name), key
    )
    shift = date_shift_days(pseudonym, key) if compiled.shift_dates else 0
    if compiled.resolve(_PATIENT_AGE) == "K" and "PatientAge" not in dataset:
        age = patient_age(
            _text(dataset, "PatientBirthDate", name), _text(dataset, "StudyDate", name)
        )
        if age is not None:
            dataset.PatientAge = age
    # Identifiers are collected before the walk removes them (the walk cleans text with them).
    cleaner = collect_identifiers(dataset, compiled.options) if compiled.cleans_text else None
    context = _Context(
        key=key,
        pseudonym=pseudonym,
        shift_days=shift,
        object_name=name,
        patient_name=_text(dataset, "PatientName", name) if cleaner else "",
        cleaner=cleaner,
    )
    _deidentify_items(dataset, compiled, context)
    if "StudyInstanceUID" in dataset:
        # The Patient module is mandatory wherever there is a study; the index needs it.
        for tag, vr in ((_PATIENT_ID, "LO"), (_PATIENT_NAME, "PN")):
            if tag not in dataset and compiled.resolve(tag) == "P":
                dataset[tag] = _new(tag, vr, pseudonym)
    record_deidentification(dataset, profile, dates_shifted=shift != 0)
    rewrite_file_meta(dataset, sop_class_uid, _uid(dataset, 0x00080018))
    return DeidResult(
        dataset=dataset,
        patient_pseudonym=pseudonym,
        original_sop_instance_uid=original_uid,
        date_shift_days=shift,
    )


def _deidentify_items(dataset: Dataset, compiled: CompiledProfile, context: _Context) -> None:
    resolved = compiled.resolved
    shifting = context.shift_days != 0
    safe_private: list[BaseTag] = []
    overlays: set[int] = set()
    for tag in list(dataset.keys()):
        # int() first: looking a BaseTag up in an int-keyed dict calls BaseTag.__eq__.
        action = resolved.get(int(tag)) or compiled.resolve(tag)
        if action == "K":
            continue
        if action == "X":
            del dataset[tag]
            continue
        if action == "C" and tag & 0x10000:
            safe_private.append(tag)
            continue
        # Fast paths decide from the VR and, for UI/DA/DT, the raw bytes, so that most
        # elements are never decoded by pydicom.
        vr = _raw_vr(dataset, tag)
        if vr is None or vr == "SQ":
            pass
        elif action == "Z":
            dataset[tag] = _new(tag, vr, _EMPTY.get(vr))
            continue
        elif action == "P":
            dataset[tag] = _new(tag, vr, context.pseudonym)
            continue
        elif action == "V":
            dataset[tag] = _new(tag, vr, compiled.replacements[tag])
            continue
        elif action == "D" and vr != "UI":
            dataset[tag] = _new(tag, vr, DUMMY_VALUES.get(vr))
            continue
        elif vr == "UI" and action in ("U", "D"):
            dataset[tag] = _new(tag, vr, _remap_uids(_strings(dataset, tag), context.key))
            continue
        elif action in ("S", "C") and shifting and vr in ("DA", "DT"):
            shift = shift_date if vr == "DA" else shift_datetime
            values = _strings(dataset, tag)
            dataset[tag] = _new(tag, vr, _map_values(values, shift, context))
            continue
        elif action in ("S", "R") or (action == "C" and shifting and vr == "TM"):
            continue
        elif action == "C" and vr in _TEXT_MAX_LENGTH:
            text = raw_text(dataset, tag)
            if text is not None:
                dataset[tag] = _new(tag, vr, _clean(tag, vr, text, dataset, compiled, context))
                continue
        if action == "O":
            overlays.add(tag >> 16)
            continue
        element = _element(dataset, tag, context)
        _replace(dataset, tag, _apply(action, element, dataset, compiled, context))
    if safe_private:
        _keep_safe_private(dataset, safe_private)
    if overlays:
        for tag in [tag for tag in dataset.keys() if tag >> 16 in overlays]:
            del dataset[tag]


def _strings(dataset: Dataset, tag: int) -> object:
    """The value of an ASCII-only element (UI, DA, DT), from its raw bytes when undecoded."""
    element = held(dataset, tag)
    value = element.value
    if isinstance(element, RawDataElement) and isinstance(value, bytes):
        parts = [part.strip(" \x00") for part in value.decode("latin-1").split("\\")]
        return parts if len(parts) > 1 else parts[0]
    return value


def _replace(dataset: Dataset, tag: int, replacement: DataElement | None) -> None:
    if replacement is None:
        del dataset[tag]
    elif replacement is not held(dataset, tag):
        dataset[tag] = replacement


def _raw_vr(dataset: Dataset, tag: int) -> str | None:
    """The element's VR without decoding its value; None when only decoding can tell."""
    vr = held(dataset, tag, keep_deferred=True).VR
    if vr is None:
        vr = dictionary_vr(tag)
    if vr is None or vr == "UN" or " or " in vr:
        return None
    return vr


def _new(tag: int, vr: str, value: object) -> DataElement:
    # Values built here are valid by construction; validating each one costs more than the
    # rest of the de-identification of a typical header. pydicom stores a str of these VRs
    # as it is (it converts only numbers, UIDs, names and, if asked, dates), so the
    # conversion is skipped too.
    if (
        type(value) is str
        and vr in _STORED_AS_STR
        and not (vr in _DATE_VRS and config.datetime_conversion)
    ):
        return DataElement(tag, vr, value, already_converted=True, validation_mode=config.IGNORE)
    return DataElement(tag, vr, value, validation_mode=config.IGNORE)


def _apply(
    action: str,
    element: DataElement,
    dataset: Dataset,
    compiled: CompiledProfile,
    context: _Context,
) -> DataElement | None:
    """The replacement of one element (None: remove it); `dataset` is the item holding it,
    whose concept name decides the value of a content item."""
    vr = element.VR
    tag = element.tag
    if vr == "SQ":
        return _sequence(action, element, compiled, context)
    if action == "Q":
        action = compiled.content_actions.get(tag, "D")
        if tag == structured.DATE and structured.is_birth_date(dataset):
            action = "D"
    if action == "V":
        value = compiled.replacements[tag]
        return _new(tag, vr if vr not in (None, "UN") else "LO", value)
    if action == "P":
        return _new(tag, vr, context.pseudonym)
    if vr == "UI" and action in ("U", "D"):
        return _new(tag, vr, _remap_uids(element.value, context.key))
    if action in ("S", "C") and vr in ("DA", "DT") and context.shift_days:
        shift = shift_date if vr == "DA" else shift_datetime
        return _new(tag, vr, _map_values(element.value, shift, context))
    if action in ("S", "R", "K") or (action == "C" and vr == "TM" and context.shift_days):
        return element
    if action == "C" and vr in _TEXT_MAX_LENGTH:
        return _new(tag, vr, _clean(tag, vr, element.value, dataset, compiled, context))
    if action == "C" and vr in _BINARY_VRS:
        return None  # binary text (a camera's Maker Note) cannot be cleaned
    if action == "U" and vr in _TEXT_MAX_LENGTH:
        value = _map_values(
            element.value,
            lambda text, _: _text_pseudonym(text, vr, context.key),
            context,
        )
        return _new(tag, vr, value)
    if action in ("D", "U") and vr in DUMMY_VALUES:
        return _new(tag, vr, DUMMY_VALUES[vr])
    return _new(tag, vr, element.empty_value)


def _sequence(
    action: str, element: DataElement, compiled: CompiledProfile, context: _Context
) -> DataElement | None:
    tag = element.tag
    if action == "X":
        return None
    if action == "Z":
        return _new(tag, "SQ", [])
    if action == "D" and tag == _CONTENT_SEQUENCE:
        return _new(tag, "SQ", [_dummy_text_item()])
    if action == "D" and tag == _PERSON_CODE_SEQUENCE:
        return _new(tag, "SQ", [_dummy_code()])
    # D keeps the items, each de-identified: every attribute inside gets its own action,
    # which keeps the Type 1 attributes of the items (a dummy, not an empty item).
    inner = compiled.inside_dummy() if action == "D" else compiled.inside(tag)
    for item in element.value:
        _deidentify_items(item, inner, context)
    return element


def _dummy_text_item() -> Dataset:
    """A valid content item that says nothing: CONTAINS TEXT (DCM 121106 Comment)."""
    item = Dataset()
    item[0x0040A010] = _new(0x0040A010, "CS", "CONTAINS")  # Relationship Type
    item[0x0040A040] = _new(0x0040A040, "CS", "TEXT")  # Value Type
    item[0x0040A043] = _new(0x0040A043, "SQ", [_code("121106", "DCM", "Comment")])
    item[0x0040A160] = _new(0x0040A160, "UT", _DUMMY_TEXT)  # Text Value
    return item


def _dummy_code() -> Dataset:
    return _code(_DUMMY_TEXT, "99RADBANK", _DUMMY_TEXT)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item[0x00080100] = _new(0x00080100, "SH", value)
    item[0x00080102] = _new(0x00080102, "SH", scheme)
    item[0x00080104] = _new(0x00080104, "LO", meaning)
    return item


def _clean(
    tag: int,
    vr: str,
    value: object,
    dataset: Dataset,
    compiled: CompiledProfile,
    context: _Context,
) -> object:
    """The cleaned value of a text element (the C action); `dataset` is the item holding it."""
    cleaner = context.cleaner
    if tag == TIMEZONE_OFFSET:
        offset = str(value or "").strip()
        return offset if _UTC_OFFSET.fullmatch(offset) else ""
    if vr == "PN":
        names = _map_values(
            value,
            lambda name, _: (
                context.pseudonym
                if structured.is_patient_name(dataset, name, context.patient_name)
                else _DUMMY_TEXT
            ),
            context,
        )
        return names
    narrative = is_narrative(tag, vr)
    if tag == structured.TEXT_VALUE:
        rule = structured.text_rule(dataset, compiled.options)
        if rule == "pseudonym":
            return context.pseudonym
        if rule == "placeholder":
            return PLACEHOLDER
        if rule == "keep":
            return value
        narrative = rule == "narrative"
    if cleaner is None:
        return empty_value_for_VR(vr)
    limit = _TEXT_MAX_LENGTH[vr]
    if narrative:
        return _map_values(value, lambda text, _: cleaner.clean_narrative(text)[:limit], context)
    placeholder = CODE_PLACEHOLDER if vr in ("CS", "AE") else PLACEHOLDER
    return _map_values(value, lambda text, _: cleaner.clean(text, placeholder)[:limit], context)


def _map_values(value: object, function: Callable[[str, int], str], context: _Context) -> object:
    if value is None or value == "":
        return value
    if isinstance(value, MultiValue | list | tuple):
        return [function(str(item), context.shift_days) for item in value]
    return function(str(value), context.shift_days)


def _text_pseudonym(text: str, vr: str, key: bytes) -> str:
    pseudonym = pseudonymise_text(text, key, _TEXT_MAX_LENGTH[vr])
    return pseudonym.replace("-", "_") if vr == "CS" else pseudonym


def _remap_uids(value: object, key: bytes) -> object:
    def remap(uid: str) -> str:
        uid = uid.strip("\x00 ")
        if not uid or uid.startswith(WELL_KNOWN_UID_PREFIX):
            return uid
        return pseudonymise_uid(uid, key)

    if value is None or value == "":
        return value
    if isinstance(value, MultiValue | list | tuple):
        return [remap(str(uid)) for uid in value]
    return remap(str(value))


def _keep_safe_private(dataset: Dataset, tags: list[BaseTag]) -> None:
    """Keep the safe private attributes among `tags` (the dataset's own keys), remove the
    others and the creators of blocks with nothing kept.

    A vendor header holds hundreds of private elements; the tags are used as the dataset's
    own BaseTag objects because pydicom converts any other key with Tag() and compares it
    with a Python-level __eq__ on every lookup and deletion.
    """
    # Blocks are keyed (group << 8) | block number, for creators (gggg,00bb) and for the
    # elements (gggg,bbee) they reserve alike.
    creators: dict[int, BaseTag] = {}
    safe_entries: dict[int, dict[int, SafePrivate]] = {}
    for tag in tags:
        if 0x10 <= tag & 0xFFFF <= 0xFF:
            block = (tag >> 8) & 0xFFFF00 | tag & 0xFF
            creators[block] = tag
            entries = SAFE_PRIVATE_BY_CREATOR.get((tag >> 16, _creator(dataset, tag)))
            if entries is not None:
                safe_entries[block] = entries
    kept_blocks: set[int] = set()
    for tag in tags:
        element = tag & 0xFFFF
        if element > 0xFF:
            entries = safe_entries.get(tag >> 8)
            if entries is not None:
                entry = entries.get(element & 0xFF)
                if entry is not None and plausible(dataset.get_item(tag), entry.vr):
                    kept_blocks.add(tag >> 8)
                    continue
            del dataset[tag]
        elif element < 0x10:
            del dataset[tag]
    for block, tag in creators.items():
        if block not in kept_blocks:
            del dataset[tag]


def _creator(dataset: Dataset, tag: int) -> str:
    """A private creator (LO, ASCII by convention), from its raw bytes when undecoded."""
    value = dataset.get_item(tag).value
    if isinstance(value, bytes):
        return value.decode("latin-1").strip("\x00 ")
    return str(value).strip()


def _element(dataset: Dataset, tag: int, context: _Context) -> DataElement:
    try:
        return dataset[tag]
    except Exception as exc:
        raise DeidentificationError(
            f"{context.object_name}: attribute {Tag(tag)} cannot be decoded ({exc}); "
            "the object is malformed, export it again from the source system"
        ) from exc


def _text(dataset: Dataset, keyword: str, name: str) -> str:
    tag = tag_for_keyword(keyword)
    if tag is None or tag not in dataset:
        return ""
    text = raw_text(dataset, tag)
    if text is not None:
        return text.strip("\x00 ")
    try:
        value = dataset.get(keyword)
    except Exception as exc:
        raise DeidentificationError(
            f"{name}: {keyword} cannot be decoded ({exc}); the object is malformed, "
            "export it again from the source system"
        ) from exc
    if value is None:
        return ""
    return str(value).strip("\x00 ")


def _uid(dataset: Dataset, tag: int) -> str:
    if tag not in dataset:
        return ""
    value = _strings(dataset, tag)
    return value if isinstance(value, str) else ""


def _meta_sop_class(dataset: Dataset) -> str:
    meta = getattr(dataset, "file_meta", None)
    if meta is None:
        return ""
    return str(meta.get("MediaStorageSOPClassUID", "") or "").strip("\x00 ")


def _object_name(dataset: Dataset, sop_instance_uid: str) -> str:
    filename = getattr(dataset, "filename", None)
    if isinstance(filename, str) and filename:
        return f"file {filename}"
    if sop_instance_uid:
        return f"SOP Instance {sop_instance_uid}"
    return "the object"
