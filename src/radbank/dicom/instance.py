"""One DICOM instance from received bytes to de-identified Part 10 bytes, pure logic.

Every receiver of the node (through `radbank.ingest.pipeline`) and the offline tool
`radbank deid` go through these two steps, so a site that de-identifies a folder with a
project's key and settings writes the bytes the node would store:

    dataset = read_instance(name, data)          # Unreadable: the reason, naming `name`
    done = deidentify_instance(dataset, settings)
    done.rejects / done.quarantines / done.blob / done.result.patient_pseudonym

`read_instance` refuses what pydicom would read without complaint yet lose data with
(truncated values, unknown transfer syntaxes, non-DICOM bytes). `deidentify_instance` runs
de-identification, the project's pixel rules, its OCR check and the quality rules, and
encodes the result; identity exists only in the dataset passed in, which it changes in place.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.multival import MultiValue
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from radbank.dicom import quality
from radbank.dicom.decode import read_part10
from radbank.dicom.deid import DeidentificationError, DeidResult, Profile, deidentify
from radbank.dicom.deid.ocr import find_burned_in_text
from radbank.dicom.deid.pixels import PixelRule, apply_pixel_rules
from radbank.dicom.encode import part10_parts
from radbank.dicom.quality import BURNED_IN_RISK_SOP_CLASSES


class Unreadable(ValueError):
    """The bytes are not a complete, readable DICOM instance; the message names it and says why."""


@dataclass(frozen=True)
class InstanceSettings:
    """What a project decides about its instances: profile (with overrides), key, pixel
    rules and whether burned-in text is looked for with OCR."""

    profile: Profile
    key: bytes
    pixel_rules: tuple[PixelRule, ...] = ()
    ocr_check: bool = False


@dataclass
class DeidentifiedInstance:
    """The outcome of `deidentify_instance`. `parts` (the encoded file in pieces, see
    `part10_parts`) and `blob` (the file) are empty when the object is rejected."""

    result: DeidResult
    rejects: list[str] = field(default_factory=list)
    quarantines: list[str] = field(default_factory=list)
    parts: list[bytes | memoryview] = field(default_factory=list)

    @property
    def blob(self) -> bytes:
        """The Part 10 file: the parts joined (once; later calls get the same bytes)."""
        if len(self.parts) != 1 or not isinstance(self.parts[0], bytes):
            self.parts = [b"".join(self.parts)]
        return self.parts[0]  # type: ignore[return-value]


def read_instance(name: str, data: bytes) -> pydicom.Dataset:
    """Parse one received object; raise Unreadable with a message that starts with `name`."""
    if len(data) < 132:
        raise Unreadable(f"{name}: only {len(data)} bytes, too short to be a DICOM file")
    try:
        if data[128:132] == b"DICM":
            dataset = read_part10(data) or pydicom.dcmread(io.BytesIO(data))
        else:
            if not _starts_as_a_data_set(data):
                raise Unreadable(
                    f"{name}: not a DICOM file (no 'DICM' prefix at byte 128, and it does not "
                    "start with a DICOM data element)"
                )
            dataset = pydicom.dcmread(io.BytesIO(data), force=True)
            if "SOPInstanceUID" not in dataset or "SOPClassUID" not in dataset:
                raise Unreadable(
                    f"{name}: not a DICOM file (no 'DICM' prefix at byte 128 and no "
                    "SOP Class/Instance UID in the data set)"
                )
        _check_complete(name, dataset)
        syntax = dataset.file_meta.get("TransferSyntaxUID")
        if syntax is not None and not UID(str(syntax)).is_transfer_syntax:
            raise Unreadable(
                f"{name}: unknown transfer syntax {str(syntax)[:64]!r} in the file meta "
                "information; send the file as the modality or PACS wrote it"
            )
        if "TransferSyntaxUID" not in dataset.file_meta:
            # Files without meta information: record the encoding they were read in.
            implicit, little = dataset.original_encoding
            dataset.file_meta.TransferSyntaxUID = (
                ImplicitVRLittleEndian
                if implicit
                else ExplicitVRLittleEndian
                if little
                else ExplicitVRBigEndian
            )
    except Unreadable:
        raise
    except Exception as exc:  # noqa: BLE001 - hostile input can fail anywhere in pydicom
        raise Unreadable(f"{name}: not a readable DICOM file ({failure(exc)})") from exc
    return dataset


# The groups a data set without preamble can start with: file meta information (0002),
# a directory (0004), or the identification group (0008) that holds the SOP Class UID
# every object has.
_FIRST_GROUPS = frozenset({0x0002, 0x0004, 0x0008})


def _starts_as_a_data_set(data: bytes) -> bool:
    """Whether bytes without a Part 10 prefix start with a data element of a group a data
    set starts with, in either byte order. pydicom reads anything when forced, slowly:
    zeros (a disk image, a sparse file) take it about 0.3 s per MB before they fail."""
    return (
        int.from_bytes(data[:2], "little") in _FIRST_GROUPS
        or int.from_bytes(data[:2], "big") in _FIRST_GROUPS
    )


def failure(exc: BaseException) -> str:
    """What went wrong, for a message: the exception's type and the first line of its
    text (pydicom puts a whole traceback into some of its messages)."""
    text = str(exc).strip().split("\n", 1)[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def uids_as_read(dataset: pydicom.Dataset, tag: int) -> list[str]:
    """The values of a UI element as the file holds them, without decoding the element:
    for messages and checks before de-identification. Decoding it would validate each
    value against a regular expression and, kept in the data set, change how the element
    is written (re-encoded instead of copied: a UID padded with a space, kept under Retain
    UIDs, would come out padded with a NUL), so reading it must not."""
    try:
        value = dataset.get_item(tag).value
    except Exception:  # noqa: BLE001 - absent or unreadable: nothing to report
        return []
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value or "")
    if not isinstance(value, bytes) and isinstance(value, list | tuple | MultiValue):
        text = "\\".join(map(str, value))
    return [uid for part in text.split("\\") if (uid := part.strip("\x00 "))]


def _check_complete(name: str, dataset: pydicom.Dataset) -> None:
    """pydicom reads a truncated file without complaint; storing it would lose data silently.

    Only the element read last can be cut short (the file ends in it), and the data set
    holds its elements in the order they were read: that one is checked.
    """
    if not dataset:
        # pydicom gives up on a data set whose encapsulated pixel data the file cuts short
        # and returns it empty, with only a warning.
        raise Unreadable(
            f"{name}: truncated or damaged: no data element could be read after the file "
            "meta information; send the complete file"
        )
    tag = next(reversed(dataset.keys()))
    element = dataset.get_item(tag)
    if (
        isinstance(element, RawDataElement)
        and element.length != 0xFFFFFFFF
        and element.value is not None
        and len(element.value) != element.length
    ):
        raise Unreadable(
            f"{name}: truncated: attribute ({tag.group:04X},{tag.element:04X}) declares "
            f"{element.length} bytes but the file ends after {len(element.value)}; "
            "send the complete file"
        )


def deidentify_instance(
    dataset: pydicom.Dataset, settings: InstanceSettings, source: bytes | None = None
) -> DeidentifiedInstance:
    """De-identify, apply pixel rules and the OCR check, run the quality rules, encode.

    `source` is the bytes `read_instance` read `dataset` from, when the caller still has
    them: the encoder copies untouched runs of elements from there.

    Raises DeidentificationError (the object cannot be de-identified) and, for hostile
    input, whatever pydicom raises while decoding; callers turn both into a rejection.
    """
    result = deidentify(dataset, settings.profile, settings.key)
    done = DeidentifiedInstance(result)
    burned_in = _burned_in_text(result.dataset, settings.pixel_rules, settings.ocr_check)
    findings = quality.check(result.dataset)
    done.rejects = [f.message for f in findings if f.severity == quality.Severity.REJECT]
    if done.rejects:
        return done
    done.quarantines = [f.message for f in findings if f.severity == quality.Severity.QUARANTINE]
    if burned_in:
        done.quarantines.insert(0, burned_in)
    done.parts = part10_parts(result.dataset, source)
    return done


def adopt_deidentified(dataset: pydicom.Dataset, source: bytes) -> DeidentifiedInstance:
    """An object `radbank deid` wrote under the project's key (its tag is in the site's
    manifest, radbank.dicom.deid.manifest), to be stored as it is: its identifiers are
    the site's pseudonyms already, and de-identifying it again would give the subject a
    second pseudonym. The quality rules run as for any object; the pixel rules and the OCR
    check ran at the site, which writes no object it holds for review.

    Raises DeidentificationError for an object that does not say it is de-identified."""
    if str(dataset.get("PatientIdentityRemoved", "")).strip().upper() != "YES":
        raise DeidentificationError(
            "listed in the site's deid-manifest.txt but its Patient Identity Removed "
            "(0012,0062) is not YES; send the original object instead"
        )
    result = DeidResult(
        dataset=dataset,
        patient_pseudonym=str(dataset.get("PatientID", "") or ""),
        original_sop_instance_uid=str(dataset.get("SOPInstanceUID", "") or ""),
        date_shift_days=0,  # unknown here, and not needed: nothing is shifted again
    )
    done = DeidentifiedInstance(result)
    findings = quality.check(dataset)
    done.rejects = [f.message for f in findings if f.severity == quality.Severity.REJECT]
    done.quarantines = [f.message for f in findings if f.severity == quality.Severity.QUARANTINE]
    if not done.rejects:
        done.parts = [source]
    return done


def _burned_in_text(
    dataset: pydicom.Dataset, rules: Sequence[PixelRule], ocr_check: bool
) -> str | None:
    """Apply the pixel rules, then the OCR check: a quarantine reason, or None.

    OCR looks at objects a pixel rule was applied to (did the rule cover all the text?) and
    at the burned-in-risk classes that claim to be clean (BurnedInAnnotation NO): about half
    a second per image would make it unusable on every CT or MR slice, whose
    BurnedInAnnotation is trusted. The reason never quotes the text found: it may be the
    patient's name, and quarantine reasons are kept at rest.
    """
    applied = None
    if rules:
        try:
            applied = apply_pixel_rules(dataset, rules)
        except ValueError as exc:
            return str(exc)
    if not ocr_check or "PixelData" not in dataset:
        return None
    sop_class_uid = str(dataset.get("SOPClassUID", "")).strip()
    if applied is None and sop_class_uid not in BURNED_IN_RISK_SOP_CLASSES:
        return None
    try:
        text = find_burned_in_text(dataset)
    except (RuntimeError, ValueError) as exc:
        return f"the project's OCR check of burned-in text could not run: {exc}"
    if not text:
        return None
    where = f"after pixel rule {applied.name!r}" if applied is not None else "in the pixels"
    return (
        f"OCR found {len(text)} characters of text {where}; blank it with a pixel rule for "
        "this device (Manufacturer, ManufacturerModelName, Rows, Columns), or review the object"
    )
