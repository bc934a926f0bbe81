"""Element values decoded from their bytes exactly as pydicom 3 decodes them with its
default configuration (`pydicom.values.convert_value`), for the VRs dose extraction
reads; `Declined` for anything else.

The values are pydicom's own types (`MultiValue`, `DSfloat`, `IS`; a list for binary
numbers), but for UI, a str where pydicom gives a `UID` (a str).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import cache

from pydicom import config
from pydicom.charset import convert_encodings
from pydicom.hooks import hooks, raw_element_value, raw_element_vr
from pydicom.multival import MultiValue
from pydicom.valuerep import IS, DSfloat

__all__ = [
    "BACKSLASH",
    "CONVERTERS",
    "ESC",
    "EMPTY_IS_TEXT",
    "Declined",
    "Encoding",
    "check",
    "pydicom_at_defaults",
]


# Bytes looked for in values, as ints: `int in bytes` is several times faster than a
# one-byte bytes needle.
BACKSLASH = 0x5C  # the value delimiter
ESC = 0x1B  # starts an ISO 2022 escape sequence


class Declined(BaseException):
    """This object is not read here; read it with pydicom.

    A BaseException, not an Exception: the dose readers turn every Exception into a
    finding about a damaged value, and this says nothing about the object.
    """


def pydicom_at_defaults() -> bool:
    """True when pydicom converts values the way this module assumes."""
    return (
        hooks.raw_element_vr is raw_element_vr
        and hooks.raw_element_value is raw_element_value
        and not hooks.raw_element_kwargs
        and config.data_element_callback is None
        and not config.datetime_conversion
        and not config.use_DS_decimal
        and not config.use_DS_numpy
        and not config.use_IS_numpy
        and not config.use_none_as_empty_text_VR_value
        and not config.convert_wrong_length_to_UN
        and config.replace_un_with_known_vr
        and config.assume_implicit_vr_switch
        and config.settings.infer_sq_for_un_vr
        and config.settings.reading_validation_mode != config.RAISE
    )


class Encoding:
    """How one file's values are encoded: the byte order of its binary values, and the
    Specific Character Set of its text VRs (SH, LO, UC, ST, LT, UT), decoded the way
    pydicom's `decode_bytes` does: the default repertoire and ISO_IR 100 as Latin-1,
    ISO_IR 192 as UTF-8, plain ASCII in any other; anything else is declined."""

    __slots__ = ("order", "codec")

    def __init__(self, order: str, specific_character_set: object = None) -> None:
        self.order = order
        if isinstance(specific_character_set, MultiValue | list):
            specific_character_set = tuple(specific_character_set)
        self.codec = _codec(specific_character_set)  # type: ignore[arg-type]

    def text(self, raw: bytes) -> str:
        if ESC in raw:  # code extensions: pydicom decodes fragment by fragment
            raise Declined
        if self.codec == "latin-1":
            return raw.decode("latin-1")
        if self.codec == "utf-8":
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise Declined from None  # pydicom substitutes, with a warning
        if raw.isascii():
            return raw.decode("ascii")
        raise Declined


@cache
def _codec(specific_character_set: str | tuple[str, ...] | None) -> str | None:
    """The codec of the first character set, as pydicom names it; None for the others."""
    value = list(specific_character_set) if isinstance(specific_character_set, tuple) else None
    encodings = convert_encodings(value or specific_character_set)  # type: ignore[arg-type]
    first = encodings[0] if encodings else "iso8859"
    return {"iso8859": "latin-1", "latin_1": "latin-1", "UTF8": "utf-8"}.get(first)


# A converter takes the raw value (never empty) and the file's encoding.
Converter = Callable[[bytes, Encoding], object]


def check(vr: bytes, raw: bytes) -> None:
    """Declines an element pydicom would raise on (or might) when converting it, as it
    does every element it iterates over."""
    if vr in _NEVER_RAISE or not raw:
        return
    if vr in _NUMBERS:
        if len(raw) % struct.calcsize("=" + _NUMBERS[vr]):
            raise Declined
        return
    if vr == b"IS":
        _integer_strings(raw, _LITTLE_ENDIAN)  # declines what is not a plain integer
        return
    raise Declined


def _multi(values: list, kind: Callable[[str], object] = str) -> object:
    """pydicom's multi_string: one value, or a MultiValue of several."""
    return kind(values[0]) if len(values) == 1 else MultiValue(kind, values)


def _latin1_strings(raw: bytes, encoding: Encoding) -> object:
    """AS, CS, DA, DT, TM (pydicom's convert_string)."""
    if BACKSLASH not in raw:
        return raw.decode("latin-1").rstrip(" \x00")
    return MultiValue(str, raw.decode("latin-1").rstrip(" \x00").split("\\"))


def _texts(raw: bytes, encoding: Encoding) -> object:
    """SH, LO, UC (convert_text)."""
    if BACKSLASH not in raw:
        return encoding.text(raw).rstrip("\0 ")
    return MultiValue(str, [part.rstrip("\0 ") for part in encoding.text(raw).split("\\")])


def _text(raw: bytes, encoding: Encoding) -> object:
    """ST, LT, UT (convert_single_string)."""
    return encoding.text(raw).rstrip("\0 ")


def _uids(raw: bytes, encoding: Encoding) -> object:
    return _multi(raw.decode("latin-1").rstrip("\0 ").split("\\"))


def _application_entities(raw: bytes, encoding: Encoding) -> object:
    return _multi([part.strip() for part in raw.decode("latin-1").split("\\")])


def _uri(raw: bytes, encoding: Encoding) -> object:
    return raw.decode("latin-1").rstrip()


def _decimal_strings(raw: bytes, encoding: Encoding) -> object:
    """DS, as pydicom's DSfloat (text for a blank value). A value float() cannot read
    makes pydicom try the other VRs in turn, and SH, the first, always succeeds."""
    text = raw.decode("latin-1").strip().rstrip(" \x00")
    try:
        if BACKSLASH not in raw:
            return DSfloat(text)
        return MultiValue(DSfloat, text.split("\\"))
    except ValueError:
        return _texts(raw, encoding)


def _integer_strings(raw: bytes, encoding: Encoding) -> object:
    """IS, as pydicom's IS: plain integers only; "1.0" and "1e2" pydicom reads its own
    ways, declined."""
    parts = raw.decode("latin-1").rstrip(" \x00").split("\\")
    for part in parts:
        stripped = part.strip(" ")
        digits = stripped[1:] if stripped[:1] in ("+", "-") else stripped
        # pydicom checks the int against the float value, inexact beyond 15 digits
        if stripped and not (digits.isascii() and digits.isdigit() and len(digits) <= 15):
            raise Declined
    return _multi(parts, IS)


def _numbers(code: str) -> Converter:
    size = struct.calcsize("=" + code)

    def numbers(raw: bytes, encoding: Encoding) -> object:
        if len(raw) % size:
            # pydicom raises: PydicomView.value gives the undecoded text then
            return raw.decode("latin-1")
        values = struct.unpack(f"{encoding.order}{len(raw) // size}{code}", raw)
        return values[0] if len(values) == 1 else list(values)

    return numbers


_NUMBERS = {
    b"FD": "d",
    b"FL": "f",
    b"SL": "l",
    b"SS": "h",
    b"SV": "q",
    b"UL": "L",
    b"US": "H",
    b"UV": "Q",
}
CONVERTERS: dict[bytes, Converter] = {
    **{vr: _latin1_strings for vr in (b"AS", b"CS", b"DA", b"DT", b"TM")},
    **{vr: _texts for vr in (b"SH", b"LO", b"UC")},
    **{vr: _text for vr in (b"ST", b"LT", b"UT")},
    **{vr: _numbers(code) for vr, code in _NUMBERS.items()},
    b"UI": _uids,
    b"AE": _application_entities,
    b"UR": _uri,
    b"DS": _decimal_strings,
    b"IS": _integer_strings,
}
# pydicom gives an empty string for these when the value is empty, None for the others.
EMPTY_IS_TEXT = frozenset(
    vr.encode()
    for vr in ("AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI")
    + ("UR", "UT")
)
# Conversions that never raise in pydicom, whatever the bytes.
_NEVER_RAISE = EMPTY_IS_TEXT | {b"DS", b"OB", b"OD", b"OF", b"OL", b"OV", b"OW"}
_LITTLE_ENDIAN = Encoding("<")
