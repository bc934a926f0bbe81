"""Clean Structured Content: the values of SR content items, decided by their concept name.

With the option, the items of Content Sequence (at every depth), Acquisition Context
Sequence and Specimen Preparation Sequence are de-identified item by item like any kept
sequence (UIDREF values, image and composite references remapped, DATE/TIME/DATETIME
shifted with the patient, observation date-times too), and their values that can name
someone are decided here from the item's concept name (TID 1002 observer context, TID 1007
subject context, TID 1020 person participant, TID 10001-10030 device participant):

- TEXT: an identifier of the patient (Subject ID) becomes the patient pseudonym; a person's
  ID, an organisation or a location becomes the placeholder unless Retain Institution
  Identity; a device's name or serial number is kept under Retain Device Identity, else the
  placeholder; acquisition protocols, event labels, device models and product
  identifiers (`DESCRIPTOR`) are cleaned like descriptors, any other text as narrative
  (clean.py: only known words survive).
- PNAME: the patient's own name (Subject Name, or equal to Patient's Name) becomes the
  patient pseudonym; anyone else's name the dummy "ANONYMOUS".
- DATE: Subject Birth Date becomes the dummy date; other dates are shifted.
NUM (measured values, units, qualifiers), CODE, CONTAINER, relationship types, template
identifiers and the tree structure are never changed. No value of a content item is
removed: TextValue, PersonName, Date, DateTime and UID are Type 1 in their item.
"""

from __future__ import annotations

from pydicom import Dataset

from radbank.dicom.deid.profile import Option

CONTENT_ITEM_SEQUENCES = frozenset(
    {
        0x0040A730,  # Content Sequence
        0x00400555,  # Acquisition Context Sequence
        0x00400612,  # Specimen Preparation Step Content Item Sequence
    }
)
TEXT_VALUE = 0x0040A160
PERSON_NAME = 0x0040A123
DATE = 0x0040A121
_CONCEPT_NAME_CODE_SEQUENCE = 0x0040A043

# (coding scheme designator, code value) of concept names whose value is identifying.
SUBJECT_NAME = ("DCM", "121029")
SUBJECT_ID = ("DCM", "121030")
SUBJECT_BIRTH_DATE = ("DCM", "121031")
PERSON_ID = frozenset({("DCM", "113871")})  # Person ID (TID 1020)
INSTITUTION = frozenset(
    {
        ("DCM", "121009"),  # Person Observer's Organization Name
        ("DCM", "121017"),  # Device Observer Physical Location During Observation
        ("DCM", "113872"),  # Person ID Issuer
        ("DCM", "113873"),  # Organization Name
    }
)
DEVICE = frozenset(
    {
        ("DCM", "121013"),  # Device Observer Name
        ("DCM", "121016"),  # Device Observer Serial Number
        ("DCM", "113877"),  # Device Name
        ("DCM", "113880"),  # Device Serial Number
    }
)
# TEXT items that describe the acquisition, the device or a product rather than narrate:
# cleaned like descriptors (identifiers removed, every other word kept), because dose
# statistics group by them (per protocol, per device model). Every other TEXT item
# (comments, findings, history, reasons, unknown concepts) is narrative.
DESCRIPTOR = frozenset(
    {
        ("DCM", "125203"),  # Acquisition Protocol
        ("DCM", "113605"),  # Irradiation Event Label
        ("DCM", "113832"),  # Identification of the X-Ray Source
        ("DCM", "113842"),  # X-Ray Modulation Type
        ("DCM", "113780"),  # Reference Point Definition
        ("DCM", "121406"),  # Reference Authority
        ("DCM", "113720"),  # Calibration Protocol
        ("DCM", "113878"),  # Device Manufacturer
        ("DCM", "113879"),  # Device Model Name
        ("DCM", "121014"),  # Device Observer Manufacturer
        ("DCM", "121015"),  # Device Observer Model Name
        ("DCM", "113510"),  # Drug Product Identifier
        ("DCM", "113511"),  # Radiopharmaceutical Dispense Unit Identifier
        ("DCM", "113512"),  # Radiopharmaceutical Lot Identifier
        ("DCM", "113513"),  # Reagent Vial Identifier
        ("DCM", "113514"),  # Radionuclide Vial Identifier
        ("DCM", "113516"),  # Prescription Identifier
        ("DCM", "113946"),  # Projection Eponymous Name
    }
)


def concept(item: Dataset) -> tuple[str, str] | None:
    """(scheme, code value) of the item's Concept Name Code Sequence, or None."""
    sequence = item.get(_CONCEPT_NAME_CODE_SEQUENCE)
    if sequence is None or not sequence.value:
        return None
    code = sequence.value[0]
    return (
        str(code.get("CodingSchemeDesignator", "") or "").strip(),
        str(code.get("CodeValue", "") or "").strip(),
    )


def identifying_text_item(item: Dataset, options: frozenset[Option]) -> bool:
    """Whether the TEXT value of this item identifies a person, an institution or (when
    device identity is not retained) a device, so that it is removed wherever it occurs."""
    name = concept(item)
    if name is None:
        return False
    if name == SUBJECT_ID or name in PERSON_ID:
        return True
    if name in INSTITUTION:
        return Option.RETAIN_INSTITUTION_IDENTITY not in options
    if name in DEVICE:
        return Option.RETAIN_DEVICE_IDENTITY not in options
    return False


def text_rule(item: Dataset, options: frozenset[Option]) -> str:
    """How the TEXT value of `item` is cleaned: "pseudonym", "placeholder", "keep" (a
    device's name or serial number under Retain Device Identity, like Device Serial Number
    in the header), "descriptor" (an organisation under Retain Institution Identity, the
    `DESCRIPTOR` concepts) or "narrative" (any other text, unknown concepts included)."""
    name = concept(item)
    if name == SUBJECT_ID:
        return "pseudonym"
    if name in PERSON_ID:
        return "placeholder"
    if name in INSTITUTION:
        if Option.RETAIN_INSTITUTION_IDENTITY not in options:
            return "placeholder"
        return "descriptor"
    if name in DEVICE:
        return "keep" if Option.RETAIN_DEVICE_IDENTITY in options else "placeholder"
    if name in DESCRIPTOR:
        return "descriptor"
    return "narrative"


def is_patient_name(item: Dataset, name: str, patient_name: str) -> bool:
    """Whether a PNAME item names the patient: Subject Name, or Patient's Name itself."""
    if concept(item) == SUBJECT_NAME:
        return True
    return bool(patient_name) and _normal(name) == _normal(patient_name)


def is_birth_date(item: Dataset) -> bool:
    return concept(item) == SUBJECT_BIRTH_DATE


def _normal(name: str) -> str:
    return "^".join(part.strip() for part in name.upper().split("^")).rstrip("^ ")
