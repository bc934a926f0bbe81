"""A pydicom decoder plugin, through imagecodecs, for the compressed pixel data pydicom's
own plugins here (RLE, Pillow) cannot decode: JPEG Lossless (processes 14 and 14 SV1) and
12-bit JPEG Extended through libjpeg-turbo, JPEG-LS through CharLS. Both are C libraries
that report a damaged codestream as an error, which imagecodecs raises in Python (GDCM,
which pydicom would otherwise use, aborts the process on some of them: docs/design.md).
Not HTJ2K, although imagecodecs has OpenJPH: a damaged HTJ2K header (tiles, precincts)
kept it allocating for more than 4 minutes.

Before anything is decoded, the codestream's own header (the JPEG and JPEG-LS frame
header, SOF) is read and must describe the image the data set describes: the same rows, columns
and samples, a precision the allocated bits hold. The decoders size their output from the
codestream, so this is what keeps decoding within the memory that `MAX_DECODED_BYTES`
allowed from the data set's header, and it names what does not match. The frame must be
of the coding process the transfer syntax names (no progressive JPEG labelled lossless)
with at most one scan per component: thousands of tiny scans keep libjpeg-turbo busy for
as long as their count times the image's size. A JPEG-LS stream
must end with its EOI marker: CharLS takes seconds to find that a cut one has ended.
For JPEG Lossless and
JPEG-LS, `decompression` asks for this plugin by name, so that a GDCM or pylibjpeg that
happens to be installed is never used without these checks. Decoded frames come
interleaved (imagecodecs returns JPEG-LS planes interleaved too), unsigned, in the
smallest whole bytes the precision takes; pydicom applies the pixel representation and,
for YCbCr, the conversion to RGB. Pure functions, no I/O; `register` adds the plugin to
pydicom's decoders once per process.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from pydicom import uid
from pydicom.pixels import get_decoder
from pydicom.pixels.decoders.base import DecodeRunner

__all__ = [
    "DECODER_DEPENDENCIES",
    "LABEL",
    "PREFERRED",
    "CodestreamHeader",
    "codestream_header",
    "register",
]

_JPEG = (uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1)
_JPEG_LS = (uid.JPEGLSLossless, uid.JPEGLSNearLossless)

DECODER_DEPENDENCIES = {syntax: ("numpy", "imagecodecs") for syntax in _JPEG + _JPEG_LS}
# The syntaxes this plugin decodes whatever else is installed: pydicom would try GDCM,
# pylibjpeg and pyjpegls first, without the checks here (GDCM aborts the process on a
# header mismatch). JPEG Extended stays with Pillow for 8 bits.
PREFERRED = frozenset({*_JPEG_LS, uid.JPEGLossless, uid.JPEGLosslessSV1})
LABEL = "imagecodecs"

# JPEG start-of-frame markers (ITU T.81 Table B.1; DHT C4, JPG C8 and DAC CC are not) and
# JPEG-LS's SOF55 (ITU T.87 C.2.2), which has the same layout.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
# The frames each transfer syntax allows (PS3.5 A.4.1, A.4.3): Huffman sequential
# (baseline C0, extended C1) for JPEG Extended, lossless (C3) for processes 14, JPEG-LS
# (F7). Anything else (progressive, hierarchical, arithmetic) is refused: libjpeg-turbo
# would decode a progressive stream, and thousands of tiny progressive scans of a large
# image keep it busy for minutes.
_ALLOWED_SOF = {
    uid.JPEGExtended12Bit: {0xC0, 0xC1},
    uid.JPEGLossless: {0xC3},
    uid.JPEGLosslessSV1: {0xC3},
    uid.JPEGLSLossless: {0xF7},
    uid.JPEGLSNearLossless: {0xF7},
}
# Markers that stand alone, without a length: TEM, RST0-7, SOI, EOI.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})
_SOS = 0xDA


class CodestreamHeader(NamedTuple):
    marker: int
    """The SOF marker's second byte: C0-CF, or F7 for JPEG-LS."""
    rows: int
    columns: int
    samples: int
    precision: int
    first_scan: int
    """Where the first start of scan (SOS) marker stands (the length: none)."""


def codestream_header(data: bytes) -> CodestreamHeader:
    """The image a JPEG or JPEG-LS codestream declares in its frame header (SOF), and where
    its first scan starts (the marker segments before it are walked, not searched).

    Raises ValueError saying what is missing or damaged."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("the codestream does not start with a JPEG SOI marker")
    position = 2
    frame: tuple[int, int, int, int, int] | None = None
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise ValueError(f"the JPEG codestream has no marker at byte {position}")
        marker = data[position + 1]
        if marker == 0xFF:  # a fill byte
            position += 1
            continue
        if marker in _STANDALONE:
            position += 2
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in _SOF_MARKERS and frame is None:
            if length < 8 or position + 10 > len(data):
                raise ValueError("the JPEG codestream's frame header is cut short")
            precision = data[position + 4]
            rows = int.from_bytes(data[position + 5 : position + 7], "big")
            columns = int.from_bytes(data[position + 7 : position + 9], "big")
            frame = (marker, rows, columns, data[position + 9], precision)
        if marker == _SOS or length < 2:
            break
        position += 2 + length
    if frame is None:
        raise ValueError("the JPEG codestream has no frame header (SOF) before its scan")
    return CodestreamHeader(*frame, min(position, len(data)))


def is_available(syntax: str) -> bool:
    """pydicom's plugin interface: imagecodecs is a dependency, so always."""
    return syntax in DECODER_DEPENDENCIES


def _decode_frame(src: bytes, runner: DecodeRunner) -> bytes:
    """pydicom's plugin interface: one frame's codestream to its decoded bytes."""
    import imagecodecs  # noqa: PLC0415 - ~0.1 s to import; only when a frame is decoded

    syntax = runner.transfer_syntax
    header = codestream_header(src)
    if header.marker not in _ALLOWED_SOF[syntax]:
        frame = "SOF55 (JPEG-LS)" if header.marker == 0xF7 else f"SOF{header.marker - 0xC0}"
        raise ValueError(
            f"the codestream's frame is {frame}, which {uid.UID(syntax).name} does not allow"
        )
    # In entropy-coded data a 0xFF byte is followed by 0x00 or a restart marker (JPEG), or
    # by a byte below 0x80 (JPEG-LS): from the first scan on, FF DA is a start of scan
    # wherever it stands (before it, an APPn segment may hold anything, a thumbnail too).
    scans = src.count(b"\xff\xda", header.first_scan)
    if scans > header.samples:
        raise ValueError(
            f"the codestream has {scans} scans for {header.samples} component(s); a "
            "sequential or lossless image has at most one per component"
        )
    if syntax in _JPEG_LS and not src[-16:].rstrip(b"\0").endswith(b"\xff\xd9"):
        # CharLS takes seconds (4-6 s measured, for 64 x 64 pixels as for 512 x 512) to
        # find that a cut stream has ended: refused here at once.
        raise ValueError("the JPEG-LS codestream is cut short: it does not end with EOI")
    expected = (runner.rows, runner.columns, runner.samples_per_pixel)
    if (header.rows, header.columns, header.samples) != expected:
        raise ValueError(
            f"the codestream holds {header.rows} x {header.columns} pixels of "
            f"{header.samples} sample(s), the data set {expected[0]} x {expected[1]} of "
            f"{expected[2]}"
        )
    if not 1 <= header.precision <= min(runner.bits_allocated, 16):
        raise ValueError(
            f"the codestream's samples have {header.precision} bits, more than the "
            f"{runner.bits_allocated} bits allocated (or none)"
        )
    shape = expected[:2] if expected[2] == 1 else expected
    out = np.empty(shape, np.uint8 if header.precision <= 8 else np.uint16)
    if syntax in _JPEG:
        # No colour conversion: YCbCr comes as it was encoded and pydicom converts it, as
        # the Photometric Interpretation says.
        space = None
        if header.samples == 3:
            ycbcr = runner.photometric_interpretation.startswith("YBR")
            space = imagecodecs.JPEG8.CS.YCbCr if ycbcr else imagecodecs.JPEG8.CS.RGB
        decoded = imagecodecs.jpeg8_decode(src, colorspace=space, outcolorspace=space, out=out)
    else:
        decoded = imagecodecs.jpegls_decode(src, out=out)
    if decoded.shape != shape:
        raise ValueError(f"the codestream decoded to {decoded.shape}, not {shape}")
    if header.samples > 1:
        runner.set_option("planar_configuration", 0)
    runner.set_option("bits_allocated", decoded.dtype.itemsize * 8)
    return decoded.tobytes()


def register() -> None:
    """Add the plugin to pydicom's decoders for its transfer syntaxes, after pydicom's own
    (Pillow still decodes 8-bit JPEG Extended; for 12 bits, Pillow refuses and this one
    decodes). Called once, when `decompression` is imported; pydicom's decoders are
    process-wide."""
    for syntax in DECODER_DEPENDENCIES:
        try:
            get_decoder(syntax).add_plugin(LABEL, (__name__, "_decode_frame"))
        except ValueError:  # added already (the module was imported again)
            continue
