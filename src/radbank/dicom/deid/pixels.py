"""Pixel rules: blanking identity burned into the pixels of known devices.

Ultrasound scanners, screen captures and dose screens write the patient's name, ID and
dates into the image itself, always at the same place for a given device and image size.
A project lists those places as pixel rules (the JSON format is in docs/burned-in.md):

    rules = parse_pixel_rules(project_setting)
    rule = apply_pixel_rules(dataset, rules)   # None: no rule matched, nothing changed

A rule matches on Manufacturer (0008,0070), ManufacturerModelName (0008,1090), Rows and
Columns (and optionally the SOP class). The first matching rule wins; `parse_pixel_rules`
refuses a rule that an earlier one would always pre-empt. Applying it fills every pixel of
each rectangle, in every frame and every sample, with black (the lowest value of the pixel
range; the highest for MONOCHROME1; Y lowest and neutral chroma for YBR; the darkest
palette entry for PALETTE COLOR) and sets BurnedInAnnotation (0028,0301) to NO.

Native pixel data is edited in its own transfer syntax. Encapsulated pixel data is decoded
with the pydicom decoders installed here, blanked and stored native in Explicit VR Little
Endian: re-encoding would add a second lossy step, and the lossy history is kept in
LossyImageCompression. What cannot be decoded here raises ValueError naming the transfer
syntax, for the caller to quarantine. Pure functions on a pydicom Dataset, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
)
from pydicom.valuerep import VR

from radbank.dicom.decompression import DecodeError, pixel_arrays, store_native
from radbank.dicom.uids import is_valid_uid

__all__ = ["PixelRule", "apply_pixel_rules", "matching_rule", "parse_pixel_rules"]

Rectangle = tuple[int, int, int, int]

# Rows and Columns are US (unsigned 16-bit) attributes.
_MAX_DIMENSION = 65535

_ITEM_TAG = b"\xfe\xff\x00\xe0"


@dataclass(frozen=True)
class PixelRule:
    """Where one device burns identity into images of one size.

    `rectangles` are (x, y, width, height) in pixels, x along Columns and y along Rows from
    the top left corner. `model` None matches every model of the manufacturer;
    `sop_class_uids` empty matches every SOP class. Manufacturer and model are compared
    case-insensitively, ignoring surrounding spaces. Invalid values raise ValueError naming
    the field.
    """

    manufacturer: str
    model: str | None
    rows: int
    columns: int
    rectangles: tuple[Rectangle, ...]
    name: str
    sop_class_uids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for field_name in ("name", "manufacturer"):
            value = getattr(self, field_name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"field '{field_name}' must be a non-empty string, got {value!r}")
        if self.model is not None and (not isinstance(self.model, str) or not self.model.strip()):
            raise ValueError(
                f"field 'model' must be a non-empty string, or null for any model, "
                f"got {self.model!r}"
            )
        for field_name in ("rows", "columns"):
            value = getattr(self, field_name)
            if not _is_int(value) or not 0 < value <= _MAX_DIMENSION:
                raise ValueError(
                    f"field '{field_name}' must be an integer from 1 to {_MAX_DIMENSION} "
                    f"(the image's {field_name.capitalize()} attribute), got {value!r}"
                )
        if isinstance(self.rectangles, str | bytes) or not isinstance(self.rectangles, Sequence):
            raise ValueError(
                f"field 'rectangles' must be a list of [x, y, width, height], "
                f"got {self.rectangles!r}"
            )
        rectangles = tuple(self._rectangle(i, r) for i, r in enumerate(self.rectangles))
        if not rectangles:
            raise ValueError(
                "field 'rectangles' is empty: give at least one [x, y, width, height] to blank"
            )
        object.__setattr__(self, "rectangles", rectangles)
        if isinstance(self.sop_class_uids, str) or not isinstance(self.sop_class_uids, Sequence):
            raise ValueError(
                f"field 'sop_class_uids' must be a list of SOP Class UIDs, "
                f"got {self.sop_class_uids!r}"
            )
        for uid in self.sop_class_uids:
            if not isinstance(uid, str) or not is_valid_uid(uid):
                raise ValueError(
                    f"field 'sop_class_uids' holds {uid!r}, not a valid UID (digits and dots, "
                    "for example 1.2.840.10008.5.1.4.1.1.6.1 for Ultrasound Image Storage)"
                )
        object.__setattr__(self, "sop_class_uids", tuple(self.sop_class_uids))

    def _rectangle(self, index: int, value: object) -> Rectangle:
        where = f"field 'rectangles'[{index}]"
        if (
            isinstance(value, str | bytes)
            or not isinstance(value, Sequence)
            or len(value) != 4
            or not all(_is_int(n) for n in value)
        ):
            raise ValueError(f"{where} must be four integers [x, y, width, height], got {value!r}")
        x, y, width, height = (int(n) for n in value)
        if x < 0 or y < 0 or width <= 0 or height <= 0:
            raise ValueError(
                f"{where} {[x, y, width, height]}: x and y must be 0 or more, width and height "
                "more than 0"
            )
        if x + width > self.columns or y + height > self.rows:
            raise ValueError(
                f"{where} {[x, y, width, height]} reaches column {x + width} and row "
                f"{y + height}, outside the {self.columns} x {self.rows} image "
                "(x + width must not exceed columns, y + height not exceed rows)"
            )
        return (x, y, width, height)

    def matches(self, dataset: Dataset) -> bool:
        """Whether `dataset` comes from this rule's device, at this rule's size."""
        if _folded(_get(dataset, "Manufacturer")) != _folded(self.manufacturer):
            return False
        if self.model is not None and (
            _folded(_get(dataset, "ManufacturerModelName")) != _folded(self.model)
        ):
            return False
        if _get(dataset, "Rows") != self.rows or _get(dataset, "Columns") != self.columns:
            return False
        return not self.sop_class_uids or _get(dataset, "SOPClassUID") in self.sop_class_uids

    def _covers(self, other: PixelRule) -> bool:
        """Whether every object `other` matches is matched by this rule too."""
        return (
            _folded(self.manufacturer) == _folded(other.manufacturer)
            and (self.model is None or _folded(self.model) == _folded(other.model))
            and (self.rows, self.columns) == (other.rows, other.columns)
            and (
                not self.sop_class_uids
                or (
                    bool(other.sop_class_uids)
                    and set(other.sop_class_uids) <= set(self.sop_class_uids)
                )
            )
        )


_FIELDS = tuple(f.name for f in fields(PixelRule))
_REQUIRED = ("name", "manufacturer", "rows", "columns", "rectangles")


def parse_pixel_rules(raw: Sequence[Mapping[str, object]]) -> tuple[PixelRule, ...]:
    """Validate pixel rules as a project setting holds them (a JSON list of objects).

    Raises ValueError naming the rule (index and name), the field and what is wrong.
    """
    if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Sequence):
        raise ValueError(f"pixel rules must be a list of rule objects, got {type(raw).__name__}")
    rules: list[PixelRule] = []
    for index, item in enumerate(raw):
        label = f"pixel rule {index}"
        if not isinstance(item, Mapping):
            raise ValueError(f"{label} must be an object with the fields {', '.join(_FIELDS)}")
        if isinstance(item.get("name"), str) and item["name"].strip():
            label += f" ({item['name']!r})"
        unknown = sorted(str(key) for key in item if key not in _FIELDS)
        if unknown:
            raise ValueError(
                f"{label}: unknown field {', '.join(map(repr, unknown))}; the fields are "
                f"{', '.join(_FIELDS)}"
            )
        missing = [key for key in _REQUIRED if key not in item]
        if missing:
            raise ValueError(f"{label}: missing field {', '.join(map(repr, missing))}")
        try:
            rule = PixelRule(
                manufacturer=item["manufacturer"],  # type: ignore[arg-type]
                model=item.get("model"),  # type: ignore[arg-type]
                rows=item["rows"],  # type: ignore[arg-type]
                columns=item["columns"],  # type: ignore[arg-type]
                rectangles=item["rectangles"],  # type: ignore[arg-type]
                name=item["name"],  # type: ignore[arg-type]
                sop_class_uids=item.get("sop_class_uids", ()),  # type: ignore[arg-type]
            )
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
        for earlier_index, earlier in enumerate(rules):
            if earlier._covers(rule):
                raise ValueError(
                    f"{label} never applies: pixel rule {earlier_index} ({earlier.name!r}) "
                    "matches every image it matches and comes first. Put the more specific "
                    "rule first, or merge their rectangles into one rule."
                )
        rules.append(rule)
    return tuple(rules)


def matching_rule(dataset: Dataset, rules: Sequence[PixelRule]) -> PixelRule | None:
    """The first rule whose device and image size match `dataset`, or None."""
    return next((rule for rule in rules if rule.matches(dataset)), None)


def apply_pixel_rules(dataset: Dataset, rules: Sequence[PixelRule]) -> PixelRule | None:
    """Blank the matching rule's rectangles in `dataset` and set BurnedInAnnotation to NO.

    Returns the rule applied, or None (and `dataset` unchanged) when none matches. Raises
    ValueError, leaving `dataset` unchanged, when a rule matches but the pixels cannot be
    edited here (no Pixel Data, a transfer syntax without a decoder, inconsistent image
    attributes): the object must then be held for review.
    """
    rule = matching_rule(dataset, rules)
    if rule is None:
        return None
    sop_instance_uid = _get(dataset, "SOPInstanceUID")
    where = f"SOP Instance {sop_instance_uid}" if sop_instance_uid else "the object"
    try:
        _blank(dataset, rule)
    except ValueError as exc:
        raise ValueError(
            f"{where} matches pixel rule {rule.name!r} but its pixels cannot be cleaned: {exc}"
        ) from None
    dataset.BurnedInAnnotation = "NO"
    return rule


@dataclass(frozen=True)
class _Layout:
    frames: int
    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    planar: int


def _blank(dataset: Dataset, rule: PixelRule) -> None:
    if "PixelData" not in dataset:
        raise ValueError("it has no Pixel Data (7FE0,0010)")
    file_meta = getattr(dataset, "file_meta", None)
    transfer_syntax = UID(str(file_meta.get("TransferSyntaxUID", "") if file_meta else ""))
    if transfer_syntax and transfer_syntax.is_encapsulated:
        _blank_encapsulated(dataset, rule, transfer_syntax)
    else:
        _blank_native(dataset, rule, big_endian=transfer_syntax == ExplicitVRBigEndian)


def _layout(dataset: Dataset) -> _Layout:
    try:
        rows = int(dataset.Rows)
        columns = int(dataset.Columns)
        bits_allocated = int(dataset.BitsAllocated)
        bits_stored = int(dataset.get("BitsStored") or bits_allocated)
        layout = _Layout(
            frames=int(dataset.get("NumberOfFrames") or 1),
            rows=rows,
            columns=columns,
            samples=int(dataset.get("SamplesPerPixel") or 1),
            bits_allocated=bits_allocated,
            bits_stored=bits_stored,
            signed=int(dataset.get("PixelRepresentation") or 0) == 1,
            photometric=str(dataset.get("PhotometricInterpretation") or "").strip(),
            planar=int(dataset.get("PlanarConfiguration") or 0),
        )
    except (AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"its image pixel attributes are missing or unreadable ({exc})") from None
    if layout.frames < 1 or layout.samples < 1:
        raise ValueError(
            f"NumberOfFrames {layout.frames} or SamplesPerPixel {layout.samples} is not positive"
        )
    if layout.bits_allocated not in (1, 8, 16, 32, 64):
        raise ValueError(f"BitsAllocated {layout.bits_allocated} is not 1, 8, 16, 32 or 64")
    if not 0 < layout.bits_stored <= layout.bits_allocated:
        raise ValueError(
            f"BitsStored {layout.bits_stored} is not from 1 to BitsAllocated "
            f"{layout.bits_allocated}"
        )
    return layout


def _blank_native(dataset: Dataset, rule: PixelRule, *, big_endian: bool) -> None:
    layout = _layout(dataset)
    element = dataset["PixelData"]
    value = element.value
    if not isinstance(value, bytes | bytearray):
        raise ValueError("its Pixel Data is not a byte string")
    if element.is_undefined_length or bytes(value[:4]) == _ITEM_TAG:
        raise ValueError(
            "its Pixel Data is encapsulated (compressed) but the file meta information has no "
            "compressed Transfer Syntax UID"
        )
    samples_per_frame = layout.rows * layout.columns * layout.samples
    if layout.photometric == "YBR_FULL_422":
        if layout.columns % 2 or layout.samples != 3 or layout.planar != 0:
            raise ValueError(
                "native YBR_FULL_422 needs an even number of Columns, 3 samples per pixel and "
                "PlanarConfiguration 0"
            )
        # Native YBR_FULL_422 stores Y Y Cb Cr per pair of pixels: two samples per pixel.
        samples_per_frame = layout.rows * layout.columns * 2
    count = samples_per_frame * layout.frames
    expected = (count * layout.bits_allocated + 7) // 8
    if len(value) not in (expected, expected + 1):
        raise ValueError(
            f"its Pixel Data is {len(value)} bytes, but Rows x Columns x SamplesPerPixel x "
            f"BitsAllocated x NumberOfFrames needs {expected}: fix the image attributes"
        )
    buffer = bytearray(value)
    # 8-bit and 1-bit data stored as OW in big endian has each pair of bytes swapped.
    swap_words = big_endian and element.VR == VR.OW and layout.bits_allocated <= 8
    if swap_words:
        _swap_pairs(buffer)
    if layout.bits_allocated == 1:
        bits = np.unpackbits(np.frombuffer(buffer, np.uint8), bitorder="little")[:count]
        _blank_frames(bits.reshape(_shape(layout)), layout, dataset, rule)
        packed = np.packbits(bits, bitorder="little").tobytes()
        buffer[: len(packed)] = packed
    else:
        kind = "i" if layout.signed else "u"
        dtype = np.dtype(f"{'>' if big_endian else '<'}{kind}{layout.bits_allocated // 8}")
        array = np.frombuffer(buffer, dtype, count=count)
        _blank_frames(array.reshape(_shape(layout)), layout, dataset, rule)
    if swap_words:
        _swap_pairs(buffer)
    element.value = bytes(buffer)


def _blank_encapsulated(dataset: Dataset, rule: PixelRule, transfer_syntax: UID) -> None:
    try:
        decoded = pixel_arrays(dataset)
    except DecodeError as exc:
        raise ValueError(str(exc)) from None
    meta = decoded[0][1]
    photometric = str(meta["photometric_interpretation"])
    layout = _Layout(
        frames=len(decoded),
        rows=int(meta["rows"]),
        columns=int(meta["columns"]),
        samples=int(meta["samples_per_pixel"]),
        bits_allocated=int(meta["bits_allocated"]),
        bits_stored=int(meta["bits_stored"]),
        signed=int(meta["pixel_representation"]) == 1,
        # Decoded arrays hold every sample of every pixel, even of subsampled YBR.
        photometric="YBR_FULL" if photometric == "YBR_FULL_422" else photometric,
        planar=0,
    )
    kind = "i" if layout.signed else "u"
    dtype = np.dtype(f"<{kind}{layout.bits_allocated // 8}")
    frames = np.stack([array.astype(dtype, copy=False) for array, _ in decoded])
    _blank_frames(frames.reshape(_shape(layout)), layout, dataset, rule)
    store_native(
        dataset,
        frames.tobytes(),
        bits_allocated=layout.bits_allocated,
        photometric=layout.photometric,
        samples=layout.samples,
        frames=layout.frames,
    )


def _shape(layout: _Layout) -> tuple[int, ...]:
    frame = (layout.frames, layout.rows)
    if layout.photometric == "YBR_FULL_422" and layout.samples == 3:
        return (*frame, layout.columns // 2, 4)
    if layout.samples == 1:
        return (*frame, layout.columns)
    if layout.planar == 1:
        return (layout.frames, layout.samples, layout.rows, layout.columns)
    return (*frame, layout.columns, layout.samples)


def _blank_frames(frames: np.ndarray, layout: _Layout, dataset: Dataset, rule: PixelRule) -> None:
    """Fill the rule's rectangles with black in `frames`, shaped by `_shape(layout)`."""
    black = _black(layout, dataset)
    for x, y, width, height in rule.rectangles:
        if layout.photometric == "YBR_FULL_422" and layout.samples == 3:
            # Pixel pairs share Cb and Cr: the whole pair is blanked, never half of it.
            first, last = x // 2, math.ceil((x + width) / 2)
            frames[:, y : y + height, first:last, :2] = black[0]
            frames[:, y : y + height, first:last, 2] = black[1]
            frames[:, y : y + height, first:last, 3] = black[2]
        elif layout.samples == 1:
            frames[:, y : y + height, x : x + width] = black[0]
        elif layout.planar == 1:
            for sample, value in enumerate(black):
                frames[:, sample, y : y + height, x : x + width] = value
        else:
            frames[:, y : y + height, x : x + width, :] = black


def _black(layout: _Layout, dataset: Dataset) -> list[int]:
    """The stored value of black for each sample."""
    bits = layout.bits_stored
    lowest = -(1 << (bits - 1)) if layout.signed else 0
    highest = (1 << (bits - 1)) - 1 if layout.signed else (1 << bits) - 1
    photometric = layout.photometric
    if photometric == "MONOCHROME2" and layout.samples == 1:
        return [lowest]
    if photometric == "MONOCHROME1" and layout.samples == 1:
        return [highest]
    if photometric == "RGB" and layout.samples == 3:
        return [lowest] * 3
    if photometric in ("YBR_FULL", "YBR_FULL_422") and layout.samples == 3:
        neutral = 1 << (bits - 1)
        return [0, neutral, neutral]
    if photometric == "PALETTE COLOR" and layout.samples == 1:
        return [_darkest_palette_index(dataset, lowest, highest)]
    raise ValueError(
        f"PhotometricInterpretation {photometric or '(missing)'} with SamplesPerPixel "
        f"{layout.samples} has no known black value"
    )


def _darkest_palette_index(dataset: Dataset, lowest: int, highest: int) -> int:
    try:
        descriptor = dataset.RedPaletteColorLookupTableDescriptor
        entries = int(descriptor[0]) or 65536
        first = int(descriptor[1])
        indices = np.arange(first, first + entries)
        indices = indices[(indices >= lowest) & (indices <= highest)]
        colours = apply_color_lut(indices, dataset).astype(np.int64)
    except Exception as exc:  # noqa: BLE001 - a malformed palette fails in pydicom
        raise ValueError(f"its palette colour lookup table cannot be read ({exc})") from None
    return int(indices[np.argmin(colours.sum(axis=-1))])


def _swap_pairs(buffer: bytearray) -> None:
    even = buffer[0::2]
    buffer[0::2] = buffer[1::2]
    buffer[1::2] = even


def _get(dataset: Dataset, keyword: str) -> object:
    try:
        return dataset.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed value matches nothing
        return None


def _folded(value: object) -> str:
    return str(value).strip().casefold() if value is not None else ""


def _is_int(value: object) -> bool:
    # JSON true/false are not sizes, although Python's bool is an int.
    return isinstance(value, int) and not isinstance(value, bool)
