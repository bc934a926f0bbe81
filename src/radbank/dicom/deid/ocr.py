"""The optional OCR check: text left in the pixels, read by tesseract (Debian tesseract-ocr).

    if tesseract_available():
        text = find_burned_in_text(dataset)   # '' when no word-like text was found

Up to `max_frames` frames, spread over the object, are rendered to 8-bit greyscale
(WindowCenter/WindowWidth when present, else the frame's own minimum to maximum). Each frame
is read twice: as rendered (with a light background) and as its brightest pixels alone,
black on white, since burned-in text is drawn bright and tesseract does not read text
over anatomy. Images are enlarged when small, given a margin, written as PGM files to a
temporary directory and read by one run of the tesseract binary. Tesseract reads PGM
itself, so no imaging library is needed at run time.

This is the one module of `radbank.dicom` that touches files and processes, because
tesseract is a program, not a library; the temporary directory is removed before returning.
OCR misses text (small fonts, low contrast, text over anatomy) and sometimes reads shapes
as letters: it is a safety net behind pixel rules and BurnedInAnnotation, never a proof
that an image is clean.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut

from radbank.dicom.decompression import DecodeError, pixel_arrays

__all__ = ["find_burned_in_text", "tesseract_available"]

_TESSERACT = "tesseract"
# Tesseract reads best when text is 20 to 40 pixels tall; burned-in fonts are 8 to 16
# pixels, so frames are enlarged (nearest neighbour) until their longer side reaches this.
_TARGET_SIDE = 1024
_MAX_SCALE = 4
_MARGIN = 32
# Pixels at least this bright (of 255) after windowing count as possible text.
_BRIGHT = 250
# Automatic page segmentation: on burned-in labels it reads as much as sparse-text mode
# (11) with less noise, in less time (measured on pydicom's ultrasound test images).
_PAGE_SEGMENTATION_MODE = "3"
# PGM files carry no resolution, and tesseract then assumes 70 dpi and drops small glyphs
# as noise; at 300 dpi it read 85% rather than 69% of the words of an ultrasound banner.
_DPI = "300"


def tesseract_available() -> bool:
    """Whether the tesseract program is on PATH."""
    return shutil.which(_TESSERACT) is not None


def find_burned_in_text(
    dataset: Dataset, *, min_chars: int = 4, max_frames: int = 4, timeout_s: float = 60.0
) -> str:
    """The text tesseract reads in the pixels of `dataset`, or '' when it reads no word.

    The text is returned with runs of whitespace turned into single spaces when it holds at
    least one run of `min_chars` letters or digits; shorter fragments are what tesseract
    reads in anatomy and scale marks. Raises RuntimeError when tesseract is not installed,
    fails or exceeds `timeout_s`; ValueError when the pixels cannot be decoded here.
    """
    if min_chars < 1 or max_frames < 1:
        raise ValueError(f"min_chars ({min_chars}) and max_frames ({max_frames}) must be 1 or more")
    executable = shutil.which(_TESSERACT)
    if executable is None:
        raise RuntimeError(
            "The OCR check of burned-in text needs the tesseract program, which is not "
            "installed: install the Debian package tesseract-ocr (apt-get install "
            "tesseract-ocr), or turn the project's OCR check off."
        )
    images = [
        image for frame in _greyscale_frames(dataset, max_frames) for image in _renderings(frame)
    ]
    with tempfile.TemporaryDirectory(prefix="radbank-ocr-") as directory:
        paths = []
        for number, image in enumerate(images):
            path = Path(directory) / f"frame-{number}.pgm"
            _write_pgm(path, image)
            paths.append(str(path))
        listing = Path(directory) / "frames.txt"
        listing.write_text("\n".join(paths) + "\n")
        text = _run_tesseract(executable, listing, timeout_s, _where(dataset))
    # Both renderings of a frame, and frames of a cine loop, often read the same line.
    lines = dict.fromkeys(" ".join(line.split()) for line in text.splitlines())
    text = " ".join(line for line in lines if line)
    return text if re.search(rf"[^\W_]{{{min_chars},}}", text) else ""


def _where(dataset: Dataset) -> str:
    sop_instance_uid = dataset.get("SOPInstanceUID")
    return f"SOP Instance {sop_instance_uid}" if sop_instance_uid else "the object"


def _run_tesseract(executable: str, listing: Path, timeout_s: float, where: str) -> str:
    # One OpenMP thread: tesseract's threading slows small images down, and the ingest
    # workers already use the cores.
    environment = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    command = [
        executable,
        str(listing),
        "stdout",
        *("-l", "eng", "--psm", _PAGE_SEGMENTATION_MODE, "--dpi", _DPI),
    ]
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            timeout=timeout_s,
            env=environment,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"tesseract did not finish reading the pixels of {where} within {timeout_s:g} s; "
            "the object could not be checked for burned-in text"
        ) from None
    if completed.returncode != 0:
        error = completed.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(
            f"tesseract failed on the pixels of {where} (exit status {completed.returncode}): "
            f"{error or 'no message'}. Check that the English language data "
            "(Debian package tesseract-ocr-eng) is installed."
        )
    return completed.stdout.decode("utf-8", "replace")


def _greyscale_frames(dataset: Dataset, max_frames: int) -> list[np.ndarray]:
    """Up to `max_frames` frames, spread from first to last, as 8-bit greyscale, bright
    meaning bright on screen."""
    if "PixelData" not in dataset:
        raise ValueError(f"{_where(dataset)} has no Pixel Data (7FE0,0010) to read text from")
    frame_count = int(dataset.get("NumberOfFrames") or 1)
    picks = sorted(
        {round(i * (frame_count - 1) / max(max_frames - 1, 1)) for i in range(max_frames)}
    )
    picks = picks[:frame_count]
    try:
        frames = [array for array, _ in pixel_arrays(dataset, picks)]
    except DecodeError as exc:
        raise ValueError(f"{exc} (for the OCR check)") from None
    return [_to_grey(frame, dataset) for frame in frames]


def _to_grey(frame: np.ndarray, dataset: Dataset) -> np.ndarray:
    photometric = str(dataset.get("PhotometricInterpretation") or "").strip()
    if photometric == "PALETTE COLOR":
        frame = apply_color_lut(frame, dataset)
    if frame.ndim == 3:
        # ITU-R BT.601 luma: what the eye, and tesseract's training, call brightness.
        values = frame[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        return _stretch(values, float(values.min()), float(values.max()))
    values = frame.astype(np.float64)
    slope = _first_number(dataset.get("RescaleSlope"))
    intercept = _first_number(dataset.get("RescaleIntercept"))
    values = values * (1.0 if slope is None else slope) + (intercept or 0.0)
    center = _first_number(dataset.get("WindowCenter"))
    width = _first_number(dataset.get("WindowWidth"))
    if center is not None and width is not None and width >= 1:
        low, high = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    else:
        low, high = float(values.min()), float(values.max())
    grey = _stretch(values, low, high)
    return 255 - grey if photometric == "MONOCHROME1" else grey


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    return np.clip((values - low) * (255.0 / (high - low)), 0, 255).astype(np.uint8)


def _first_number(value: object) -> float | None:
    """The first value of a DS/IS attribute that may be multi-valued, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if value else None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _renderings(grey: np.ndarray) -> list[np.ndarray]:
    """What tesseract reads of one frame: the frame itself, and its brightest pixels alone.

    Burned-in text is drawn at or near full brightness. Over anatomy, tesseract's layout
    analysis takes the whole frame for a picture and reads nothing; with the brightest
    pixels alone the letters stand out. The frame itself still catches text of other
    colours, and dark text on light backgrounds (scanned documents).
    """
    renderings = [_for_ocr(grey if np.median(grey) >= 128 else 255 - grey)]
    bright = grey >= _BRIGHT
    if bright.any():
        renderings.append(_for_ocr(np.where(bright, 0, 255).astype(np.uint8)))
    return renderings


def _for_ocr(grey: np.ndarray) -> np.ndarray:
    """Enlarged so that small fonts are legible, with a margin."""
    scale = min(_MAX_SCALE, max(1, math.floor(_TARGET_SIDE / max(grey.shape))))
    if scale > 1:
        grey = np.repeat(np.repeat(grey, scale, axis=0), scale, axis=1)
    # Tesseract misses text that touches the image edge, as banners do: add a light margin.
    return np.pad(grey, _MARGIN, constant_values=255)


def _write_pgm(path: Path, grey: np.ndarray) -> None:
    rows, columns = grey.shape
    path.write_bytes(b"P5\n%d %d\n255\n" % (columns, rows) + grey.tobytes())
