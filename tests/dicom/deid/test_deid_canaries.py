"""Every attribute the basic profile removes, empties or replaces is gone from the bytes.

A canary value is planted in each such attribute of Table E.1-1 (at the top level, inside an
item of a kept sequence, and in private attributes), the object is de-identified and
written, and the written bytes are searched for every canary.
"""

from __future__ import annotations

from deid_helpers import PROJECT_KEY, make_ct, write_bytes
from pydicom import Dataset
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement

from radbank.dicom.deid import Profile, deidentify, load_table
from radbank.dicom.deid.profile import compile_profile

TEXT_VRS = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"}
BINARY_VRS = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}
KEPT_SEQUENCE = 0x00082218  # AnatomicRegionSequence: not in the table, kept


def _canary(tag: int, vr: str, serial: int) -> tuple[object, bytes] | None:
    """A value for the VR and the bytes that betray it, or None for binary numbers."""
    token = f"CNRY{tag:08X}"
    if vr in TEXT_VRS:
        return token, token.encode()
    if vr in BINARY_VRS:
        return (token + "CNRY").encode(), token.encode()
    if vr == "DA":
        value = f"1977{serial:04d}"
    elif vr == "TM":
        value = f"235959.77{serial:04d}"
    elif vr == "DT":
        value = f"19770707235959.77{serial:04d}"
    elif vr in ("IS", "DS"):
        value = f"77{serial:06d}"
    elif vr == "UI":
        value = f"1.2.826.0.1.3680043.9.7777.{serial}"
    elif vr == "AS":
        value = "077Y"
    elif vr == "SQ":
        item = Dataset()
        item.add_new(0x00080104, "LO", token)  # CodeMeaning, kept by default
        return [item], token.encode()
    else:
        return None
    return value, value.encode()


def _planted() -> tuple[Dataset, dict[bytes, str], int]:
    """A CT header with a canary in every X/Z/D attribute of the basic profile."""
    compiled = compile_profile(Profile.named("basic"))
    ds = make_ct()
    nested = Dataset()
    canaries: dict[bytes, str] = {}
    skipped = 0
    for serial, row in enumerate(load_table().rows):
        tag = row.value
        if not row.is_exact or tag >> 16 in (0x0000, 0x0002):
            continue  # masks are planted below; command and file meta groups are elsewhere
        if compiled.resolve(tag) not in ("X", "Z", "D", "P"):
            continue
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            skipped += 1
            continue
        canary = None if " or " in vr else _canary(tag, vr, serial)
        if canary is None:
            skipped += 1
            continue
        value, betrayal = canary
        ds[tag] = DataElement(tag, vr, value, validation_mode=0)
        nested[tag] = DataElement(tag, vr, value, validation_mode=0)
        canaries[betrayal] = row.name
    ds[KEPT_SEQUENCE] = DataElement(KEPT_SEQUENCE, "SQ", [nested])
    for tag, vr, name in (
        (0x50003000, "OW", "Curve Data"),
        (0x60004000, "LT", "Overlay Comments"),
        (0x60023000, "OW", "Overlay Data"),
    ):
        value, betrayal = _canary(tag, vr, 0)
        ds[tag] = DataElement(tag, vr, value, validation_mode=0)
        canaries[betrayal] = name
    for dataset in (ds, nested):
        block = dataset.private_block(0x0011, "CANARY PRIVATE CREATOR", create=True)
        block.add_new(0x01, "LO", "CNRYPRIVATEVALUE")
    canaries[b"CANARY PRIVATE CREATOR"] = "private creator"
    canaries[b"CNRYPRIVATEVALUE"] = "private attribute"
    return ds, canaries, skipped


def test_no_basic_profile_canary_survives_in_the_written_bytes() -> None:
    ds, canaries, skipped = _planted()
    assert len(canaries) > 550  # nearly all X/Z/D rows of the table carry a canary
    assert skipped < 10  # only binary numbers (US, FL, AT, ...) cannot be searched for
    written = write_bytes(ds)
    assert all(betrayal in written for betrayal in canaries)  # the canaries are findable
    deidentified = deidentify(ds, Profile.named("basic"), PROJECT_KEY).dataset
    assert deidentified[KEPT_SEQUENCE].value  # the kept sequence is still there
    written = write_bytes(deidentified)
    survivors = sorted(name for betrayal, name in canaries.items() if betrayal in written)
    assert survivors == []
