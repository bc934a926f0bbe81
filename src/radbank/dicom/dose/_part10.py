"""A DICOM file's data set read straight from its bytes, for dose extraction.

`read(data)` scans a Part 10 file (or a bare data set) in Explicit VR Little Endian,
Implicit VR Little Endian or Explicit VR Big Endian the way pydicom's `dcmread` does, but
keeps only where each value lies: values are decoded (`_values`) when the extraction asks
for them, a sequence of defined length is read when first asked for (with all the
sequences nested in it, in one pass), pixel data and other bulk values are stepped over
without copying. The `BytesView`s it returns answer the `DataSetView` questions (`_view`)
with the values pydicom would give.

Exactly pydicom's answer, or none: whatever pydicom would read differently or repair (a
deflated or unknown encoding, a length running past its item, items switching VR
encoding, a value pydicom guesses at, text in a character set not decoded here) raises
`Declined`, and the caller reads the object with pydicom instead. Reading a sequence's
nested sequences at once declines a few malformed files pydicom would read in part; they
go to pydicom too.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from functools import cache
from math import isfinite

from pydicom.datadict import DicomDictionary, _dictionary_vr_fast, dictionary_VR, tag_for_keyword
from pydicom.uid import PrivateTransferSyntaxes
from pydicom.valuerep import EXPLICIT_VR_LENGTH_16, EXPLICIT_VR_LENGTH_32

from radbank.dicom.dose._values import (
    BACKSLASH,
    CONVERTERS,
    EMPTY_IS_TEXT,
    ESC,
    Declined,
    Encoding,
    check,
)
from radbank.dicom.dose._view import text_of

__all__ = ["BytesView", "read"]

_ITEM = 0xFFFEE000
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_CHARACTER_SET = 0x00080005
_TRANSFER_SYNTAX = 0x00020010
_IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
_EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"

# Explicit VR: the VRs with a 2-byte length, and those with 2 reserved bytes and a 4-byte
# length (PS3.5 7.1.2). Any other two bytes are declined: pydicom would guess.
_SHORT_VRS = frozenset(vr.encode() for vr in EXPLICIT_VR_LENGTH_16)
_LONG_VRS = frozenset(vr.encode() for vr in EXPLICIT_VR_LENGTH_32)
_SQ = b"SQ"
_UN = b"UN"
_DS = b"DS"
_FD = b"FD"
# Text VRs whose single value pydicom gives with trailing spaces and NULs removed, and
# those of them read as Latin-1 whatever the Specific Character Set
_TEXT_VRS = frozenset(
    {b"AS", b"CS", b"DA", b"DT", b"LO", b"LT", b"SH", b"ST", b"TM", b"UC", b"UI", b"UT"}
)
_LATIN1_VRS = frozenset({b"AS", b"CS", b"DA", b"DT", b"TM", b"UI"})
# Nested sequences up to this length are read once per distinct value (in `_sequence`),
# but for the measured values, seldom the same twice
_REUSED = 512
_MEASURED_VALUE_SEQUENCE = 0x0040A300
# Code sequences (concept names, coded values, units): a kind of report carries the same
# few hundred in every file, byte for byte. Their items are read once per process and
# encoding, from a copy of their bytes, and shared by every file (`_shared_items`); up to
# _MAX_SHARED of them, then the cache starts again. Only from a sequence read when asked
# for, after the Specific Character Set is known (`_sequence(share=True)`).
_SHARED_TAGS = frozenset({0x0040A043, 0x0040A168, 0x004008EA})
_SHARED: dict[tuple, dict[bytes, list[BytesView]]] = {}
_MAX_SHARED = 20_000
# Implicit VR: the tags the dictionary gives VR SQ
_SEQUENCE_TAGS = frozenset(tag for tag, entry in DicomDictionary.items() if entry[0] == "SQ")

# tag -> where the element's header starts (its VR and value read from there when asked),
# or the items of a sequence once read, or (VR, value start, value end) for a value of
# undefined length that is not a sequence. Ints, not a tuple per element: a report has
# thousands of elements and asks for a few hundred.
Elements = dict[int, "int | list[BytesView] | tuple[bytes | None, int, int]"]


@cache
def _element(keyword: str) -> tuple[int, bytes] | None:
    """The tag and the dictionary VR of a keyword."""
    tag = tag_for_keyword(keyword)
    return None if tag is None else (tag, dictionary_VR(tag).encode())


class _File:
    """What the data sets of one file share: its bytes and their encoding."""

    __slots__ = ("data", "implicit", "head", "long", "item", "encoding", "latin1", "key")

    def __init__(self, data: bytes | memoryview, little: bool, implicit: bool) -> None:
        order = "<" if little else ">"
        self.data = data
        self.implicit = implicit
        self.head = struct.Struct(order + ("HHL" if implicit else "HH2sH")).unpack_from
        self.long = struct.Struct(order + "L").unpack_from
        self.item = struct.Struct(order + "HHL").unpack_from
        self.encoding = Encoding(order)
        self.latin1 = True  # whether the text VRs are read as Latin-1
        self.key = (order, implicit, self.encoding.codec)  # what bytes read the same in

    def span(self, found: int | tuple, dictionary_vr: bytes) -> tuple[bytes, int, int]:
        """The VR (the dictionary's in implicit VR), value start and value end of an element
        as `Elements` keeps it (not a sequence already read): `locate`, with the usual
        element (explicit VR, a short VR) read here, as text and numbers are asked for
        most."""
        if type(found) is int and not self.implicit:
            _, _, vr, length = self.head(self.data, found)
            if vr in _SHORT_VRS:
                return vr, found + 8, found + 8 + length
        vr, start, end = self.locate(found)
        return vr or dictionary_vr, start, end

    def locate(self, found: int | tuple) -> tuple[bytes | None, int, int]:
        """The VR (None in implicit VR), value start and value end of an element as
        `Elements` keeps it (not a sequence already read)."""
        if type(found) is tuple:
            return found
        if self.implicit:
            length = self.head(self.data, found)[2]
            return None, found + 8, found + 8 + length
        _, _, vr, length = self.head(self.data, found)
        if vr in _SHORT_VRS:
            return vr, found + 8, found + 8 + length
        length = self.long(self.data, found + 8)[0]
        return vr, found + 12, found + 12 + length


class BytesView:
    """One data set of a file read by `read`."""

    __slots__ = ("_file", "_elements", "_texts", "_span", "_fingerprint")
    is_data_set = True

    def __init__(
        self, file: _File, elements: Elements, span: tuple[int, int] | None = None
    ) -> None:
        self._file = file
        self._elements = elements
        # where an item's bytes start and end, recorded while reading: its fingerprint
        self._span = span
        # keyword -> text: the items of repeated code sequences are shared (`_sequence`)
        self._texts: dict[str, str | None] | None = None
        self._fingerprint: tuple[tuple, bytes] | None = None

    # Each question's answer, or Declined: an error here is this reader's, and says nothing
    # about the object (the dose readers would report it as damage).

    def has(self, keyword: str) -> bool:
        element = _element(keyword)
        return element is not None and element[0] in self._elements

    def value(self, keyword: str) -> object:
        try:
            element = _element(keyword)
            if element is None:
                return None
            found = self._elements.get(element[0])
            if found is None:
                return None
            if type(found) is list:
                return found
            vr, start, end = self._file.locate(found)
            vr = vr or element[1]
            if vr == _SQ:
                return self._items(element[0], found)
            if start == end:
                return "" if vr in EMPTY_IS_TEXT else None
            converter = CONVERTERS.get(vr)
            if converter is None:
                raise Declined  # UN, PN, AT, bulk data: not read for dose
            return converter(bytes(self._file.data[start:end]), self._file.encoding)
        except Exception as error:
            raise Declined from error

    def text(self, keyword: str) -> str | None:
        texts = self._texts
        if texts is None:
            texts = self._texts = {}
        elif keyword in texts:
            return texts[keyword]
        try:
            text = texts[keyword] = self._text(keyword)
        except Exception as error:
            raise Declined from error
        return text

    def _text(self, keyword: str) -> str | None:
        element = _element(keyword)
        if element is None:
            return None
        found = self._elements.get(element[0])
        if found is None:
            return None
        file = self._file
        if type(found) is not list:
            vr, start, end = file.span(found, element[1])
        else:
            vr = _SQ
        if vr in _TEXT_VRS:
            # the usual case, a single value read as Latin-1 (or ASCII): what text_of
            # makes of pydicom's value, without the detour
            raw = file.data[start:end]
            if (
                type(raw) is bytes
                and BACKSLASH not in raw
                and (vr in _LATIN1_VRS or ESC not in raw and (file.latin1 or raw.isascii()))
            ):
                text = raw.decode("latin-1")
                if "\x00" not in text:
                    return text.strip() or None
                return text.rstrip(" \x00").strip().strip("\x00").strip() or None
        return text_of(self.value(keyword))

    def number(self, keyword: str) -> float | None:
        try:
            element = _element(keyword)
            if element is None:
                return None
            found = self._elements.get(element[0])
            if found is None or type(found) is list:
                return None
            file = self._file
            vr, start, end = file.span(found, element[1])
            raw = file.data[start:end]
            if type(raw) is not bytes:
                raw = bytes(raw)
            if vr == _FD and len(raw) == 8:
                number = struct.unpack(file.encoding.order + "d", raw)[0]
            elif vr == _DS and BACKSLASH not in raw:
                # the float of pydicom's DSfloat (`_decimal_strings`), without making one
                number = float(raw.decode("latin-1").strip().rstrip(" \x00"))
            else:
                return None
        except ValueError:
            return None  # text to pydicom: `value` gives it
        except Exception as error:
            raise Declined from error
        return number if isfinite(number) else None

    def items(self, keyword: str) -> list[BytesView]:
        try:
            element = _element(keyword)
            if element is None:
                return []
            found = self._elements.get(element[0])
            if found is None:
                return []
            if type(found) is list:
                return found
            if (self._file.locate(found)[0] or element[1]) != _SQ:
                raise Declined  # pydicom would iterate over whatever the value is
            return self._items(element[0], found)
        except Exception as error:
            raise Declined from error

    def sequences(self) -> Iterator[list[BytesView]]:
        try:
            for tag in sorted(self._elements):
                found = self._elements[tag]
                if type(found) is list:
                    yield found
                    continue
                vr, start, end = self._file.locate(found)
                if vr is None:
                    if tag >> 16 & 1:
                        raise Declined  # pydicom looks its VR up by its private creator
                    vr = _dictionary_vr_fast(tag).encode()
                if vr == _SQ:
                    yield self._items(tag, found)
                else:
                    check(vr, bytes(self._file.data[start:end]))
        except Exception as error:
            raise Declined from error

    def fingerprint(self) -> tuple[tuple, bytes] | None:
        # an item's bytes, nested sequences included; the file's own data set has none.
        # Kept: the items of code sequences are shared by every report (`_SHARED`).
        fingerprint = self._fingerprint
        if fingerprint is None:
            span = self._span
            if span is None:
                return None
            file = self._file
            fingerprint = self._fingerprint = (file.key, bytes(file.data[span[0] : span[1]]))
        return fingerprint

    def _items(self, tag: int, found: int | tuple | list) -> list[BytesView]:
        if type(found) is list:
            return found
        vr, start, end = self._file.locate(found)  # type: ignore[arg-type]
        if vr == _UN:
            raise Declined  # pydicom reads it with the VR of the dictionary
        items, _ = _sequence(self._file, start, end, share=True)
        self._elements[tag] = items
        return items


def read(data: bytes | memoryview) -> BytesView:
    """The data set of a Part 10 file, or of a bare data set as `dcmread(force=True)`
    reads it; `Declined` for whatever pydicom would read differently."""
    try:
        return _read(data)
    except Exception as error:  # a header cut short by the end of the data, mostly
        raise Declined from error


def _read(data: bytes | memoryview) -> BytesView:
    size = len(data)
    position = 132 if size >= 132 and bytes(data[128:132]) == b"DICM" else 0
    meta, position = _file_meta(data, position)
    if position < size and struct.unpack_from("<H", data, position)[0] == 0:
        raise Declined  # a command set: pydicom merges it into the data set
    syntax = meta.get(_TRANSFER_SYNTAX)
    if position == size:
        little, implicit = True, True
    elif syntax is None:
        # no transfer syntax: pydicom guesses from the first element, and so do we
        group, _, vr = struct.unpack_from("<HH2s", data, position)
        implicit = vr not in _SHORT_VRS and vr not in _LONG_VRS
        little = implicit or group < 1024
    else:
        uid = bytes(data[syntax[0] : syntax[1]]).decode("latin-1").rstrip("\0 ")
        if "\\" in uid or uid == _DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
            raise Declined
        if uid in PrivateTransferSyntaxes:
            raise Declined
        # every other transfer syntax is Explicit VR Little Endian to pydicom
        implicit = uid == _IMPLICIT_VR_LITTLE_ENDIAN
        little = uid != _EXPLICIT_VR_BIG_ENDIAN
    if position < size:
        first, second = data[position + 4], data[position + 5]
        if (0x40 < first < 0x5B and 0x40 < second < 0x5B) == implicit:
            raise Declined  # pydicom switches encoding, with a warning
    file = _File(data, little, implicit)
    elements, first_sequence = _top_level(file, position)
    character_set = elements.get(_CHARACTER_SET)
    if character_set is not None:
        if type(character_set) is list:
            raise Declined  # read as a sequence
        vr, start, end = file.locate(character_set)
        if first_sequence < start:
            # pydicom gives the items of a sequence of undefined length read before the
            # Specific Character Set the default character set
            raise Declined
        if vr not in (None, b"CS"):
            raise Declined
        value = CONVERTERS[b"CS"](bytes(data[start:end]), file.encoding) if end > start else ""
        file.encoding = Encoding(file.encoding.order, value)
        file.latin1 = file.encoding.codec == "latin-1"
        file.key = (file.encoding.order, implicit, file.encoding.codec)
    return BytesView(file, elements)


def _file_meta(data: bytes | memoryview, position: int) -> tuple[dict[int, tuple[int, int]], int]:
    """The group 2 elements (Explicit VR Little Endian): tag -> value start and end."""
    size = len(data)
    meta: dict[int, tuple[int, int]] = {}
    while position + 8 <= size:
        group, number, vr, length = _EXPLICIT_LITTLE(data, position)
        if group != 2:
            break
        if vr in _SHORT_VRS:
            start = position + 8
        elif vr in _LONG_VRS:
            length = _LENGTH_LITTLE(data, position + 8)[0]
            start = position + 12
        else:
            raise Declined
        position = start + length
        if length == _UNDEFINED or position > size:
            raise Declined
        tag = 0x00020000 | number
        try:
            expected = _dictionary_vr_fast(tag).encode()
        except KeyError:
            raise Declined from None
        if vr != expected or vr == b"UL" and length % 4:
            raise Declined  # pydicom converts some of them while reading, and may fail
        meta[tag] = (start, position)
    if size - 8 < position < size:
        raise Declined  # pydicom fails guessing the encoding of so few bytes
    return meta, position


_EXPLICIT_LITTLE = struct.Struct("<HH2sH").unpack_from
_LENGTH_LITTLE = struct.Struct("<L").unpack_from


def _top_level(file: _File, position: int) -> tuple[Elements, int]:
    """The elements of the file's data set, and where its first sequence of undefined
    length is. Its sequences of defined length are left for when they are asked for, as
    pydicom leaves them; those of undefined length are read now, to find their end. Fewer
    than 8 bytes after the last element, which pydicom ignores, are declined (struct.error)
    with every other truncation."""
    data = file.data
    size = len(data)
    head, long = file.head, file.long
    implicit = file.implicit
    short_vrs = _SHORT_VRS
    elements: Elements = {}
    first_sequence = size
    while position < size:
        header = position
        if implicit:
            group, number, length = head(data, position)
            vr = None
            start = position + 8
        else:
            group, number, vr, length = head(data, position)
            if vr in short_vrs and group != 0xFFFE:  # most elements: nothing more
                position += 8 + length
                if position > size:
                    raise Declined  # pydicom reads a truncated value
                elements[group << 16 | number] = header
                continue
            if vr not in _LONG_VRS:
                raise Declined
            length = long(data, position + 8)[0]
            start = position + 12
        if group == 0xFFFE:
            raise Declined  # pydicom stops reading at an item delimiter
        tag = group << 16 | number
        if length == 0xFFFFFFFF:
            if _is_sequence(file, tag, vr, start):
                first_sequence = min(first_sequence, start)
                elements[tag], position = _sequence(file, start, None)
                continue
            position = _after_fragments(file, start)
            elements[tag] = (vr, start, position)
        else:
            position = start + length
            if position > size:
                raise Declined  # pydicom reads a truncated value
            elements[tag] = header
    return elements, first_sequence


def _is_sequence(file: _File, tag: int, vr: bytes | None, start: int) -> bool:
    """Whether pydicom reads an element of undefined length as a sequence."""
    if vr is not None:
        if vr == _UN:
            raise Declined  # pydicom reads it as a sequence, guessing the VR encoding
        return vr == _SQ
    try:
        return _dictionary_vr_fast(tag) == "SQ"
    except KeyError:
        # not in the dictionary: pydicom looks ahead, a sequence if an item follows
        group, number, _ = file.item(file.data, start)
        return (group << 16 | number) == _ITEM


def _after_fragments(file: _File, position: int) -> int:
    """The position after an undefined-length value that is not a sequence (encapsulated
    pixel data): its items stepped over by their lengths to the sequence delimiter, as
    pydicom does first; anything else there is declined."""
    data = file.data
    size = len(data)
    while True:
        group, number, length = file.item(data, position)
        tag = group << 16 | number
        if tag == _SEQUENCE_DELIMITER:
            return position + 8
        position += 8 + length
        if tag != _ITEM or position > size:
            raise Declined


def _sequence(
    file: _File, position: int, end: int | None, *, share: bool = False
) -> tuple[list[BytesView], int]:
    """The items of the sequence whose value starts at `position` and ends at `end` (None
    for a sequence of undefined length, which ends at its delimiter), and the position
    after it. The sequences nested in the items are read in the same pass, keeping the
    sequences and items open around the one being read on a stack; one loop, no call per
    item or element, because this is where a dose report's reading time goes. With
    `share`, nested code sequences of defined length come from `_SHARED`."""
    data = file.data
    size = len(data)
    head, item, long = file.head, file.item, file.long
    implicit = file.implicit
    short_vrs, long_vrs, sequence_tags = _SHORT_VRS, _LONG_VRS, _SEQUENCE_TAGS
    reused, measured_value_sequence, character_set = (
        _REUSED,
        _MEASURED_VALUE_SEQUENCE,
        _CHARACTER_SET,
    )
    view = BytesView
    # the sequence being read: its items, end and whether it ends at a delimiter
    items: list[BytesView] = []
    sequence_delimited = end is None
    end = size if end is None else end
    # the item being read
    elements: Elements = {}
    item_start = item_end = 0
    item_delimited = False
    stack: list[tuple] = []  # the state of the sequences and items around
    # the items of the small sequences read so far, by their bytes: a report repeats its
    # concept names and units hundreds of times, and the same bytes read the same
    read_before: dict[bytes, list[BytesView]] = {}
    # and the small items read so far, by their bytes: a report with many events repeats
    # whole content items (the same kVp, phantom, target region) as often as not
    items_read: dict[bytes, BytesView] = {}
    shared = _SHARED.setdefault(file.key, {}) if share else None
    shared_tags = _SHARED_TAGS
    while True:
        # between items: the next one, or the end of the sequence
        if sequence_delimited or position < end:
            group, number, length = item(data, position)
            position += 8
            if group != 0xFFFE:
                raise Declined
            if number == 0xE000:
                if length <= reused:
                    same_item = items_read.get(bytes(data[position : position + length]))
                    if same_item is not None:
                        items.append(same_item)
                        position += length
                        continue
                elements = {}
                item_start = position
                item_delimited = length == 0xFFFFFFFF
                item_end = size if item_delimited else position + length
            elif number == 0xE0DD and sequence_delimited:
                if not stack:
                    return items, position
                done = items
                (items, end, sequence_delimited, elements, item_start, item_end,
                 item_delimited, tag, start) = stack.pop()  # fmt: skip
                elements[tag] = done
            else:
                raise Declined
        elif position != end:
            raise Declined
        elif not stack:
            return items, position
        else:
            done = items
            (items, end, sequence_delimited, elements, item_start, item_end,
             item_delimited, tag, start) = stack.pop()  # fmt: skip
            elements[tag] = done
            if position - start <= reused and tag != measured_value_sequence:
                read_before[bytes(data[start:position])] = done
        # in an item: its elements, up to a sequence, its end or its delimiter
        while position < item_end:
            if implicit:
                group, number, length = head(data, position)
                vr = None
                start = position + 8
                is_sequence = (group << 16 | number) in sequence_tags
            else:
                group, number, vr, length = head(data, position)
                if vr in short_vrs and group != 0xFFFE:  # most elements: nothing more
                    elements[group << 16 | number] = position
                    position += 8 + length
                    if position > item_end:
                        raise Declined  # pydicom reads on past the item
                    continue
                if vr in long_vrs:
                    length = long(data, position + 8)[0]
                    start = position + 12
                elif group == 0xFFFE:
                    start = position + 8  # a delimiter: 8 bytes, whatever they say
                else:
                    raise Declined
                is_sequence = vr == b"SQ"
            if group == 0xFFFE:
                if number != 0xE00D or not item_delimited or vr in long_vrs:
                    raise Declined
                position = start
                break
            tag = group << 16 | number
            if length == 0xFFFFFFFF:
                if not is_sequence and not _is_sequence(file, tag, vr, start):
                    position = _after_fragments(file, start)
                    elements[tag] = (vr, start, position)
                    continue
            elif start + length > item_end:
                raise Declined  # pydicom reads on past the item
            elif not is_sequence:
                elements[tag] = position
                position = start + length
                continue
            elif length <= reused and tag != measured_value_sequence:
                raw = bytes(data[start : start + length])
                if shared is not None and tag in shared_tags:
                    same = shared.get(raw)
                    if same is None:
                        same = _shared_items(file, raw, shared)
                else:
                    same = read_before.get(raw)
                if same is not None:
                    position = start + length
                    elements[tag] = same
                    continue
            # a sequence: read its items, then come back to this item
            stack.append(
                (
                    items, end, sequence_delimited, elements, item_start, item_end,
                    item_delimited, tag, start,
                )
            )  # fmt: skip
            items = []
            sequence_delimited = length == 0xFFFFFFFF
            end = size if sequence_delimited else start + length
            position = start
            item_end = -1  # marks the item as left for the sequence
            break
        else:
            if item_delimited or position != item_end:
                raise Declined
        if item_end >= 0:
            if character_set in elements:
                raise Declined  # an item's own character set: not followed here
            same_item = view(file, elements, (item_start, position))
            items.append(same_item)
            if position - item_start <= reused and not item_delimited:
                items_read[bytes(data[item_start:position])] = same_item


def _shared_items(file: _File, raw: bytes, shared: dict[bytes, list[BytesView]]) -> list[BytesView]:
    """The items of a code sequence whose value is `raw`, read from those bytes alone in
    the file's encoding and kept in `shared` for the files that follow."""
    copy = _File(raw, file.encoding.order == "<", file.implicit)
    copy.encoding, copy.latin1, copy.key = file.encoding, file.latin1, file.key
    items, _ = _sequence(copy, 0, len(raw))
    if len(shared) >= _MAX_SHARED:
        shared.clear()
    shared[raw] = items
    return items
