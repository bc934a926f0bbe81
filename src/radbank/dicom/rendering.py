"""A frame of an image rendered for display (PS3.18 8.3.5, rendered and thumbnail
resources): decoded, put through the grayscale or colour pipeline of PS3.4 N.2, scaled to
a viewport, and encoded as JPEG, PNG or GIF with Pillow.

Grayscale: the Modality LUT (Rescale Slope and Intercept, or a Modality LUT Sequence),
then a window (the client's, else the frame's first Window Center and Width with their
VOI LUT Function, else a VOI LUT Sequence, else the frame's own range), to 8 bits, inverted
for MONOCHROME1. Enhanced multi-frame objects have these attributes in their per-frame or
shared functional groups, which are looked in first. Colour: a palette through its
lookup tables, YCbCr as RGB (decompression decodes it so), samples of more than 8 bits
scaled to 8; a window does not apply to colour (PS3.4 N.2.1.2), so it is not used there.
No presentation states, overlays or annotations are applied. Pure functions on a pydicom
Dataset, no I/O.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

from radbank.dicom.decompression import DecodeError, pixel_arrays

__all__ = [
    "MAX_VIEWPORT",
    "MEDIA_TYPES",
    "RegionError",
    "RenderError",
    "RenderOptions",
    "Window",
    "parse_options",
    "render",
]

# Pillow's format for each rendered media type (PS3.18 Table 8.7.4-1, single-frame ones).
MEDIA_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF"}
MAX_VIEWPORT = 8192
# The most pixels a viewport may ask for: 4096 x 4096 (GIF's palette search alone takes
# about 0.7 s for as many; 8192 x 8192 took 2.9 s and 200 MB).
MAX_VIEWPORT_PIXELS = 4096 * 4096
_DEFAULT_QUALITY = 90
_FUNCTIONS = ("linear", "linear-exact", "sigmoid")
_GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")


class RenderError(ValueError):
    """An image that cannot be rendered: no pixel data, or pixel data that cannot be
    decoded or has no known display pipeline; the message names the instance and why."""


class RegionError(ValueError):
    """A viewport whose source region lies outside the image (the client's mistake)."""


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str = "linear"


@dataclass(frozen=True)
class Viewport:
    width: int
    height: int
    # The source region (PS3.18 8.3.5.1.3): its top left corner and size, in pixels of
    # the image; a negative size flips the region. None: the whole image.
    region: tuple[float, float, float | None, float | None] | None = None


@dataclass(frozen=True)
class RenderOptions:
    window: Window | None = None
    viewport: Viewport | None = None
    quality: int = _DEFAULT_QUALITY


def parse_options(params: Mapping[str, Sequence[str]], *, thumbnail: bool = False) -> RenderOptions:
    """RenderOptions from the query parameters of a rendered (or thumbnail) request.

    Raises ValueError naming the parameter and what is wrong with it; a parameter this
    server does not apply (annotation, iccprofile other than "no", anything unknown) is
    refused rather than ignored, so that a client never takes an image for what it did not
    ask."""
    allowed = {"viewport", "accept", "charset"} | (
        set() if thumbnail else {"window", "quality", "annotation", "iccprofile"}
    )
    for name, values in params.items():
        if name not in allowed:
            what = "a thumbnail" if thumbnail else "a rendered image"
            raise ValueError(
                f"query parameter {name!r} is not one of {_names(sorted(allowed))} for {what}"
            )
        if len(values) > 1:
            raise ValueError(f"query parameter {name!r} is given {len(values)} times")
    value = {name: values[0] for name, values in params.items()}
    if value.get("annotation"):
        raise ValueError(
            f"annotation={value['annotation']!r}: this server burns no annotations into images"
        )
    if value.get("iccprofile", "no") != "no":
        raise ValueError(f"iccprofile={value['iccprofile']!r}: only 'no' is supported")
    return RenderOptions(
        window=_window(value["window"]) if "window" in value else None,
        viewport=_viewport(value["viewport"]) if "viewport" in value else None,
        quality=_quality(value["quality"]) if "quality" in value else _DEFAULT_QUALITY,
    )


def _names(names: Sequence[str]) -> str:
    return ", ".join(names)


def _numbers(name: str, text: str, count: Sequence[int]) -> list[float]:
    parts = text.split(",")
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        numbers = []
    if (
        len(parts) not in count
        or len(numbers) != len(parts)
        or not all(map(math.isfinite, numbers))
    ):
        shape = " or ".join(str(n) for n in count)
        raise ValueError(f"{name}={text[:60]!r} must be {shape} comma-separated numbers")
    return numbers


def _window(text: str) -> Window:
    parts = text.split(",")
    if len(parts) not in (2, 3):
        raise ValueError(f"window={text[:60]!r} must be center,width or center,width,function")
    function = parts[2].strip().lower() if len(parts) == 3 else "linear"
    if function not in _FUNCTIONS:
        raise ValueError(f"window function {function[:20]!r} is not one of {_names(_FUNCTIONS)}")
    center, width = _numbers("window", ",".join(parts[:2]), (2,))
    if width < (1 if function == "linear" else 0) or (function != "linear" and width == 0):
        least = "at least 1" if function == "linear" else "more than 0"
        raise ValueError(f"window width {width:g} must be {least} for the {function} function")
    return Window(center, width, function)


def _viewport(text: str) -> Viewport:
    numbers = _numbers("viewport", text, (2, 4, 6))
    width, height = numbers[:2]
    if not (width.is_integer() and height.is_integer()) or not (
        1 <= width <= MAX_VIEWPORT and 1 <= height <= MAX_VIEWPORT
    ):
        raise ValueError(
            f"viewport width and height must be whole numbers from 1 to {MAX_VIEWPORT}, "
            f"not {text[:60]!r}"
        )
    if width * height > MAX_VIEWPORT_PIXELS:
        raise ValueError(
            f"viewport {int(width)} x {int(height)} is more than the {MAX_VIEWPORT_PIXELS:,} "
            "pixels rendered at once here"
        )
    region = None
    if len(numbers) > 2:
        rest = numbers[2:] + [math.nan] * (6 - len(numbers))
        sx, sy, sw, sh = rest
        if sx < 0 or sy < 0:
            raise ValueError(f"viewport source corner {sx:g},{sy:g} must not be negative")
        region = (sx, sy, None if math.isnan(sw) else sw, None if math.isnan(sh) else sh)
    return Viewport(int(width), int(height), region)


def _quality(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 100):
        raise ValueError(f"quality={text[:20]!r} must be a whole number from 1 to 100")
    return int(text)


def render(
    dataset: Dataset,
    frame: int,
    media_type: str,
    options: RenderOptions,
    *,
    default_viewport: tuple[int, int] | None = None,
) -> bytes:
    """The frame at `frame` (0-based) of the data set rendered as `media_type` (a key of
    MEDIA_TYPES). `default_viewport` bounds the image when the options give no viewport
    (thumbnails); the image is never enlarged then. Raises RenderError."""
    if "PixelData" not in dataset:
        raise RenderError(f"instance {_uid(dataset)} has no pixel data to render")
    photometric = str(dataset.get("PhotometricInterpretation", "")).strip()
    try:
        [(array, meta)] = pixel_arrays(dataset, [frame])
    except DecodeError as exc:
        raise RenderError(str(exc)) from None
    try:
        pixels = _display_pixels(dataset, frame, array, meta, options.window, photometric)
    except RenderError:
        raise
    except Exception as exc:  # noqa: BLE001 - the object's own attributes fail in many ways
        # A stored object's LUTs, rescale or functional groups can be malformed (a LUT
        # shorter than its descriptor, a slope of two values): the object cannot be shown.
        reason = " ".join(str(exc).split())[:300]
        raise RenderError(
            f"instance {_uid(dataset)}: its {photometric or 'pixel'} display attributes "
            f"cannot be applied ({type(exc).__name__}: {reason})"
        ) from None
    image = Image.fromarray(pixels)
    image = _fit(image, options.viewport, default_viewport)
    out = io.BytesIO()
    kind = MEDIA_TYPES[media_type]
    if kind == "JPEG":
        image.save(out, kind, quality=options.quality)
    elif kind == "PNG":
        # zlib's fastest level: 5-6x faster than Pillow's default on a CT slice, for a few
        # per cent more bytes.
        image.save(out, kind, compress_level=1)
    else:
        image.save(out, kind)
    return out.getvalue()


def _display_pixels(
    dataset: Dataset,
    frame: int,
    array: np.ndarray,
    meta: Mapping[str, Any],
    window: Window | None,
    photometric: str,
) -> np.ndarray:
    if photometric in _GRAYSCALE and array.ndim == 2:
        return _grayscale(dataset, frame, array, window, photometric)
    if photometric == "PALETTE COLOR" and array.ndim == 2:
        return _eight_bits(apply_color_lut(array, dataset), 16 if _lut_16(dataset) else 8)
    if array.ndim == 3 and array.shape[2] == 3:
        return _eight_bits(array, int(meta.get("bits_stored", dataset.get("BitsStored", 8))))
    raise RenderError(
        f"instance {_uid(dataset)}: no display pipeline for {photometric or 'no'} "
        f"Photometric Interpretation with {array.shape} samples"
    )


def _uid(dataset: Dataset) -> str:
    return str(dataset.get("SOPInstanceUID", "")) or "without a SOP Instance UID"


def _grayscale(
    dataset: Dataset, frame: int, array: np.ndarray, window: Window | None, photometric: str
) -> np.ndarray:
    """8-bit display values of a grayscale frame. Integer pixels of up to 16 bits (nearly
    every image) go through a lookup table of their range: the pipeline is computed once
    per stored value, not once per pixel."""
    if array.dtype.kind in "iu" and array.itemsize <= 2:
        low, high = int(array.min()), int(array.max())
        table = _display(dataset, frame, np.arange(low, high + 1), window, photometric)
        return table[np.subtract(array, low, dtype=np.int32)]
    return _display(dataset, frame, array, window, photometric)


def _display(
    dataset: Dataset, frame: int, stored: np.ndarray, window: Window | None, photometric: str
) -> np.ndarray:
    """The grayscale pipeline of PS3.4 N.2.1 from stored values to 8 bits."""
    values = _modality(dataset, frame, stored)
    if window is None:
        window = _stored_window(dataset, frame)
    if window is None and "VOILUTSequence" in dataset:
        lut = apply_voi_lut(values, dataset, index=0, prefer_lut=True)
        depth = int(dataset.VOILUTSequence[0].LUTDescriptor[2] or 16)
        scaled = np.clip(lut.astype(np.float64) / ((1 << depth) - 1), 0, 1) * 255
    else:
        if window is None:
            low, high = float(values.min()), float(values.max())
            window = Window((low + high + 1) / 2, max(high - low + 1, 1), "linear")
        scaled = _windowed(values.astype(np.float64), window)
    pixels = np.rint(scaled).astype(np.uint8)
    return 255 - pixels if photometric == "MONOCHROME1" else pixels


def _windowed(x: np.ndarray, window: Window) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 (linear), C.11.2.1.3.2 (linear-exact), C.11.2.1.3.1 (sigmoid),
    to 0..255."""
    c, w = window.center, window.width
    if window.function == "sigmoid":
        return 255 / (1 + np.exp(-4 * (x - c) / w))
    if window.function == "linear-exact":
        return np.clip((x - c) / w + 0.5, 0, 1) * 255
    if w <= 1:
        return np.where(x <= c - 0.5, 0.0, 255.0)
    return np.clip(((x - (c - 0.5)) / (w - 1) + 0.5), 0, 1) * 255


def _in_groups(dataset: Dataset, frame: int, sequence: str, keyword: str) -> Any:
    """A functional group attribute of the frame (PS3.3 C.7.6.16): per-frame first, then
    shared; None where neither has it."""
    for groups, index in (
        (dataset.get("PerFrameFunctionalGroupsSequence"), frame),
        (dataset.get("SharedFunctionalGroupsSequence"), 0),
    ):
        if isinstance(groups, Sequence) and index < len(groups):
            items = groups[index].get(sequence)
            if isinstance(items, Sequence) and len(items) and keyword in items[0]:
                return items[0].get(keyword)
    return None


def _modality(dataset: Dataset, frame: int, array: np.ndarray) -> np.ndarray:
    slope = _in_groups(dataset, frame, "PixelValueTransformationSequence", "RescaleSlope")
    intercept = _in_groups(dataset, frame, "PixelValueTransformationSequence", "RescaleIntercept")
    if slope is not None or intercept is not None:
        return array * float(slope if slope is not None else 1) + float(intercept or 0)
    return apply_modality_lut(array, dataset)


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(
            value[0] if isinstance(value, Sequence) and not isinstance(value, str) else value
        )
    except (TypeError, ValueError, IndexError):
        return None
    return number if math.isfinite(number) else None


def _stored_window(dataset: Dataset, frame: int) -> Window | None:
    """The frame's first stored window, where it is a usable one."""
    center = _first(_in_groups(dataset, frame, "FrameVOILUTSequence", "WindowCenter"))
    width = _first(_in_groups(dataset, frame, "FrameVOILUTSequence", "WindowWidth"))
    function = _in_groups(dataset, frame, "FrameVOILUTSequence", "VOILUTFunction")
    if center is None or width is None:
        center, width = _first(dataset.get("WindowCenter")), _first(dataset.get("WindowWidth"))
        function = dataset.get("VOILUTFunction")
    name = str(function or "LINEAR").strip().lower().replace("_", "-")
    if name not in _FUNCTIONS:
        name = "linear"
    if center is None or width is None or width < (1 if name == "linear" else 0) or width == 0:
        return None
    return Window(center, width, name)


def _lut_16(dataset: Dataset) -> bool:
    descriptor = dataset.get("RedPaletteColorLookupTableDescriptor")
    return bool(descriptor) and int(descriptor[2]) == 16


def _eight_bits(array: np.ndarray, bits: int) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    top = float((1 << max(bits, 1)) - 1)
    return np.rint(np.clip(array.astype(np.float64), 0, top) * (255 / top)).astype(np.uint8)


def _fit(
    image: Image.Image, viewport: Viewport | None, default: tuple[int, int] | None
) -> Image.Image:
    if viewport is None:
        if default is None or (image.width <= default[0] and image.height <= default[1]):
            return image
        image = image.copy()
        image.thumbnail(default, Image.Resampling.LANCZOS)
        return image
    if viewport.region is not None:
        image = _region(image, viewport.region)
    scale = min(viewport.width / image.width, viewport.height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def _region(
    image: Image.Image, region: tuple[float, float, float | None, float | None]
) -> Image.Image:
    """The source region of a viewport: sw and sh default to the rest of the image, and a
    negative one flips the region (PS3.18 8.3.5.1.3)."""
    sx, sy, sw, sh = region
    sw = image.width - sx if sw is None else sw
    sh = image.height - sy if sh is None else sh
    left, right = sorted((sx, sx + sw))
    top, bottom = sorted((sy, sy + sh))
    box = (max(0, left), max(0, top), min(image.width, right), min(image.height, bottom))
    if box[2] - box[0] < 1 or box[3] - box[1] < 1:
        raise RegionError(
            f"the viewport's source region {sx:g},{sy:g},{sw:g},{sh:g} lies outside the "
            f"{image.width} x {image.height} image"
        )
    image = image.crop(tuple(round(v) for v in box))
    if sw < 0:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if sh < 0:
        image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    return image
