"""Private attributes kept by the Retain Safe Private Option (PS3.15 E.3.10).

An entry is keyed by (group, private creator, element byte): the element (gggg,xxEE) of the
block that creator reserved, whatever block number xx the object uses. Every entry is a
number or a short technical code that describes the acquisition, the reconstruction or the
dose, never free text, a date, a UID or a name, and each says where it comes from:

- "PS3.15 Table E.3.10-1": listed by the standard as safe (examples of E.3.10);
- "vendor dictionary": numeric dose and acquisition attributes of CT and PET/NM scanners
  as named in the vendors' DICOM conformance statements (as collected in the private
  dictionaries of pydicom, GDCM and dcmtk), chosen for dosimetry; the name says what it is.

An element is kept only if its creator and element match an entry and its value is
plausible for the entry's VR (`plausible`): a number where a number is expected, so a
vendor that reuses an element for text does not leak it. Private creators of blocks with
nothing kept are removed too. Private attributes with text (protocol notes, operator
fields, CSA headers) are not safe: they can carry anything and are always removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.dataelem import DataElement, RawDataElement

E3_10 = "PS3.15 Table E.3.10-1"
VENDOR = "vendor dictionary"


@dataclass(frozen=True)
class SafePrivate:
    """One safe private attribute: its VR (as the creator defines it), meaning and source."""

    vr: str
    meaning: str
    source: str


def _entries(
    group: int, creator: str, source: str, rows: tuple[tuple[int, str, str], ...]
) -> dict[tuple[int, str, int], SafePrivate]:
    return {
        (group, creator, element): SafePrivate(vr, meaning, source) for element, vr, meaning in rows
    }


SAFE_PRIVATE_ATTRIBUTES: dict[tuple[int, str, int], SafePrivate] = {
    # GE CT (LightSpeed, Discovery, Revolution)
    **_entries(0x0019, "GEMS_ACQU_01", E3_10, (
        (0x23, "DS", "Table Speed [mm/rotation]"),
        (0x24, "DS", "Mid Scan Time [s]"),
        (0x27, "DS", "Rotation Speed (gantry period) [ms]"),
    )),
    **_entries(0x0025, "GEMS_SERS_01", E3_10, ((0x07, "SL", "Images in Series"),)),
    **_entries(0x0043, "GEMS_PARM_01", E3_10, (
        (0x27, "SH", "Scan Pitch Ratio, e.g. 0.984:1"),
        (0x6F, "DS", "Scanner Table Entry"),
    )),
    **_entries(0x0045, "GEMS_HELIOS_01", E3_10, (
        (0x01, "SS", "Number of Macro Rows in Detector"),
        (0x02, "FL", "Macro width at ISO Center [mm]"),
    )),
    # Philips (Elscint) CT
    **_entries(0x00E1, "ELSCINT1", E3_10, (
        (0x21, "DS", "DLP [mGy.cm]"),
        (0x50, "DS", "Acquisition Duration"),
    )),
    **_entries(0x01E1, "ELSCINT1", E3_10, ((0x26, "CS", "Phantom Type"),)),
    **_entries(0x01F1, "ELSCINT1", E3_10, (
        (0x01, "CS", "Acquisition Type"),
        (0x07, "DS", "Table Velocity"),
        (0x26, "DS", "Pitch"),
        (0x27, "DS", "Rotation Time"),
    )),
    # Philips PET: factors from stored values to SUV and activity concentration
    **_entries(0x7053, "Philips PET Private Group", E3_10, (
        (0x00, "DS", "SUV Scale Factor"),
        (0x09, "DS", "Activity Concentration Scale Factor"),
    )),
    # Philips MR: real-world scale of stored values
    **_entries(0x2005, "Philips MR Imaging DD 001", E3_10, (
        (0x0D, "FL", "Scale Intercept"),
        (0x0E, "FL", "Scale Slope"),
    )),
    # Siemens CT (SOMATOM)
    **_entries(0x0019, "SIEMENS CT VA0  COAD", VENDOR, (
        (0x10, "IS", "Distance Source to Source-Side Collimator"),
        (0x11, "IS", "Distance Source to Detector-Side Collimator"),
        (0x22, "DS", "Detector Spacing"),
        (0x52, "DS", "Table Feed"),
        (0x54, "DS", "Rotation Time"),
        (0xB0, "DS", "Feed per Rotation"),
    )),
    # Toshiba / Canon CT (Aquilion)
    **_entries(0x7005, "TOSHIBA_MEC_CT3", VENDOR, (
        (0x08, "DS", "Detector Slice Thickness [mm]"),
        (0x0A, "DS", "Table Speed [mm/rotation]"),
        (0x22, "DS", "Reconstruction Interval"),
        (0x23, "DS", "Pitch Factor"),
        (0x40, "FD", "DLP Dose Length Product [mGy.cm]"),
    )),
    # GE PET (Discovery): injected activity and acquisition, needed for SUV and dosimetry
    **_entries(0x0009, "GEMS_PETD_01", VENDOR, (
        (0x38, "FL", "Tracer Activity (injected)"),
        (0x3A, "FL", "Pre-injection Volume"),
        (0x3C, "FL", "Post-injection (residual) Activity"),
        (0x3F, "FL", "Radionuclide Half Life"),
        (0x40, "FL", "Positron Fraction"),
        (0x6D, "SL", "Acquisition Duration"),
        (0x8D, "FL", "Attenuation Coefficient"),
        (0xB2, "SL", "Iterative Reconstruction Iterations"),
        (0xB3, "SL", "Iterative Reconstruction Subsets"),
    )),
}  # fmt: skip


def _by_creator() -> dict[tuple[int, str], dict[int, SafePrivate]]:
    index: dict[tuple[int, str], dict[int, SafePrivate]] = {}
    for (group, creator, element), entry in SAFE_PRIVATE_ATTRIBUTES.items():
        index.setdefault((group, creator), {})[element] = entry
    return index


# The same entries by (group, private creator), then element byte: a block whose creator
# has no entry is removed whole without a look at its elements.
SAFE_PRIVATE_BY_CREATOR: dict[tuple[int, str], dict[int, SafePrivate]] = _by_creator()

_DECIMAL = re.compile(rb"^[ ]*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?[ ]*$")
_CODE = re.compile(rb"^[A-Z0-9_ ]{0,16}$")
_RATIO = re.compile(rb"^[ ]*\d+(\.\d+)?(:\d+(\.\d+)?)?[ ]*$")
_BINARY_SIZES = {"SS": 2, "US": 2, "SL": 4, "UL": 4, "FL": 4, "FD": 8}


def plausible(element: DataElement | RawDataElement, vr: str) -> bool:
    """Whether the element's value is what the entry's VR promises (a number, a code)."""
    value = element.value
    if value is None or value == b"" or value == "":
        return True
    if element.VR not in (None, "UN", vr):
        return False
    if isinstance(value, bytes):
        return _plausible_bytes(value, vr)
    if vr in _BINARY_SIZES:
        values = value if isinstance(value, list | tuple) else [value]
        return all(isinstance(v, int | float) for v in values)
    return _plausible_bytes(str(value).encode("latin-1", "replace"), vr)


def _plausible_bytes(raw: bytes, vr: str) -> bool:
    if vr in _BINARY_SIZES:
        return len(raw) % _BINARY_SIZES[vr] == 0
    parts = raw.rstrip(b"\x00 ").split(b"\\")
    if vr in ("DS", "IS"):
        return all(_DECIMAL.match(part) for part in parts)
    if vr == "CS":
        return all(_CODE.match(part) for part in parts)
    if vr == "SH":
        return all(_RATIO.match(part) for part in parts)
    return False
