"""De-identification profiles and their compilation into a tag -> action lookup.

A profile is the Basic Application Level Confidentiality Profile of PS3.15 Table E.1-1 plus
a set of options (each option is one column of the table) plus overrides. Compiling
resolves every row once, in this order, later steps winning:

1. the basicProfile column;
2. the columns of the enabled options: an option's value, when present, replaces the basic
   action; if several enabled options give a value for one row, retaining ("K") beats
   cleaning ("C"), except that a date or time the Retain Longitudinal Temporal Information
   Modified Dates option shifts ("C") is shifted even when another option retains it
   (Retain Device Identity keeps calibration dates): an unshifted calibration date next to
   shifted acquisition dates would give the patient's date shift away;
3. combined actions are reduced to one, keeping the least destructive action that keeps
   the object valid without knowing its IOD:
   X/Z -> Z, X/D -> D, X/Z/D -> Z, Z/D -> Z, X/Z/U* -> U;
   except for the attributes in `DUMMY_WHEN_COMBINED`, Type 1 in common IODs (Content
   Date/Time in SR documents and multi-frame images, Acquisition DateTime in enhanced images,
   Device Serial Number in the Enhanced General Equipment module of dose SRs), where
   X/Z/D and Z/D -> D; and except for the sequences in `SEQUENCE_REDUCTIONS`, where an empty
   sequence would be invalid (a Type 3 sequence must have items);
4. radbank's supplement (`SUPPLEMENT`): attributes the table does not list but that name
   the issuing institution of an identifier, removed unless Retain Institution Identity,
   and free text inside content items and graphic annotations (`TEXT_SUPPLEMENT`);
4b. radbank's patient rule: Patient ID and Patient's Name become the patient pseudonym ("P");
4c. validity rules at a sequence path (`PATH_RULES`): an attribute the table removes that is
   Type 2 inside a particular sequence is emptied there instead;
5. the profile's overrides (`OVERRIDE_ACTIONS`, or "replace:<value>"), by keyword or tag, at
   every depth, or at one path "SequenceKeyword/Keyword" from the top level of the object.

Actions: K keep, X remove, Z empty, D dummy value for the VR, C clean, U pseudonymise (UIDs
are remapped, other values get a keyed text pseudonym, sequences are kept and their items
de-identified), P patient pseudonym, V replace by the override's value, O remove the whole
overlay (repeating group 60xx) whose Overlay Data the table removes, Q a content item value
decided by the item's concept name (structured.py). Shipping a new
profile or option is a table entry in `_NAMED_PROFILES` / `Option`; the engine does not change.
"""

from __future__ import annotations

import enum
import hashlib
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydicom import config
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.valuerep import validate_value

from radbank.dicom.deid.table import load_table


class Option(enum.Enum):
    """The options of PS3.15 Table E.1-1; the value is the table column the option selects."""

    RETAIN_SAFE_PRIVATE = "rtnSafePrivOpt"
    RETAIN_UIDS = "rtnUIDsOpt"
    RETAIN_DEVICE_IDENTITY = "rtnDevIdOpt"
    RETAIN_INSTITUTION_IDENTITY = "rtnInstIdOpt"
    RETAIN_PATIENT_CHARACTERISTICS = "rtnPatCharsOpt"
    RETAIN_LONGITUDINAL_FULL_DATES = "rtnLongFullDatesOpt"
    RETAIN_LONGITUDINAL_MODIFIED_DATES = "rtnLongModifDatesOpt"
    CLEAN_DESCRIPTORS = "cleanDescOpt"
    CLEAN_STRUCTURED_CONTENT = "cleanStructContOpt"
    CLEAN_GRAPHICS = "cleanGraphOpt"


OVERRIDE_ACTIONS: Mapping[str, str] = types.MappingProxyType(
    {"keep": "K", "remove": "X", "empty": "Z", "dummy": "D", "pseudonymise": "U"}
)
REPLACE_PREFIX = "replace:"

DUMMY_WHEN_COMBINED = frozenset(
    {"ContentDate", "ContentTime", "AcquisitionDateTime", "DeviceSerialNumber"}
)
# Sequences whose combined action cannot become an empty sequence: a Type 3 sequence with
# no item is invalid (dciodvfy: "Bad Sequence number of Items 0"). Reference sequences get
# a dummy: their items are kept with every UID remapped and any text dummied (references
# stay valid, no identity is left); the others are Type 3 wherever they are used, so
# removing them is valid.
SEQUENCE_REDUCTIONS: Mapping[str, str] = types.MappingProxyType(
    {
        "ReferencedStudySequence": "D",
        "ReferencedPerformedProcedureStepSequence": "D",
        "InstitutionCodeSequence": "X",
        "OperatorIdentificationSequence": "X",
    }
)

_COMBINED = {"X/Z": "Z", "X/D": "D", "X/Z/D": "Z", "Z/D": "Z", "X/Z/U*": "U"}
PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010
_PATIENT_TAGS = {PATIENT_ID: "P", PATIENT_NAME: "P"}
# Not in Table E.1-1, yet they name who issued an identifier: an institution's namespace
# next to a removed accession number or order number.
SUPPLEMENT = types.MappingProxyType(
    {
        0x00080051: "X",  # Issuer of Accession Number Sequence
        0x00400026: "X",  # Order Placer Identifier Sequence
        0x00400027: "X",  # Order Filler Identifier Sequence
    }
)
# Not in Table E.1-1 (the table covers them through the sequence that holds them), yet free
# text that can name anyone: (basic action, option that cleans it). Inside a kept sequence
# they would otherwise be kept by the default for unknown attributes.
TEXT_SUPPLEMENT: Mapping[int, tuple[str, Option]] = types.MappingProxyType(
    {
        0x0040A160: ("D", Option.CLEAN_STRUCTURED_CONTENT),  # Text Value of a TEXT item
        0x00700006: ("D", Option.CLEAN_GRAPHICS),  # Unformatted Text Value
    }
)
# Person Name (0040,A123) of a PNAME content item: the table's D, or cleaned (the patient's
# name becomes the patient pseudonym, anyone else a dummy) with Clean Structured Content.
PERSON_NAME_ITEM = 0x0040A123
DATE_ITEM = 0x0040A121
# Overlay Description and Overlay Label are free text like Overlay Comments (60xx,4000).
_OVERLAY_TEXT_MASKS = ((0xFF01FFFF, 0x60000022), (0xFF01FFFF, 0x60001500))
_OVERLAY_COMMENTS = 0x60004000
_OVERLAY_DATA = 0x60003000
# Cleaned without the object's identifiers: kept only as a valid "+HHMM" offset.
TIMEZONE_OFFSET = 0x00080201

# Attributes the table removes that are Type 2 inside one standard sequence: emptied there.
PATH_RULES: Mapping[tuple[int, ...], str] = types.MappingProxyType(
    {
        # Requested Procedure ID in the Referenced Request Sequence of SR documents.
        (0x0040A370, 0x00401001): "Z",
    }
)

# Free-text VRs (CS excluded: coded values such as Graphic Layer are structural).
_STRICT_DUMMY_VRS = frozenset({"AE", "LO", "SH", "ST", "LT", "UT", "UC", "UR", "PN"})
_HEX_TAG = re.compile(r"\(?(?:0x)?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?")
_NUMBER_VRS = {"US": int, "SS": int, "UL": int, "SL": int, "UV": int, "SV": int}
_FLOAT_VRS = ("FL", "FD")
_UNREPLACEABLE_VRS = ("SQ", "OB", "OW", "OL", "OF", "OD", "OV", "UN", "AT")


def dictionary_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def parse_tag(key: str | int) -> int:
    """Return the tag of an override key: a keyword, "(0008,0050)", "00080050" or an int."""
    if isinstance(key, int):
        return key
    tag = tag_for_keyword(key.strip())
    if tag is not None:
        return tag
    match = _HEX_TAG.fullmatch(key.strip())
    if match is None:
        raise ValueError(f"unknown attribute {key!r}: use a DICOM keyword or a tag (gggg,eeee)")
    return int(match.group(1) + match.group(2), 16)


def parse_path(key: str) -> tuple[int, ...]:
    """The tags of an override key, outermost sequence first: "Seq/Keyword" -> (seq, tag)."""
    parts = key.split("/")
    tags = tuple(parse_tag(part) for part in parts)
    for part, tag in zip(parts[:-1], tags[:-1], strict=True):
        if not tag & 0x10000 and dictionary_vr(tag) != "SQ":
            raise ValueError(
                f"{part!r} in {key!r} is not a sequence: a path is "
                "SequenceKeyword/Keyword (or (gggg,eeee)/(gggg,eeee))"
            )
    return tags


@dataclass(frozen=True)
class Override:
    """One compiled override: the action letter and, for "replace:", the new value."""

    action: str
    value: object = None


def compile_override(key: str, word: str) -> tuple[tuple[int, ...], Override]:
    """Parse and validate one override; ValueError names the key and says what is wrong."""
    path = parse_path(key)
    tag = path[-1]
    vr = dictionary_vr(tag)
    if word.startswith(REPLACE_PREFIX):
        return path, Override("V", replacement_value(key, vr, word[len(REPLACE_PREFIX) :]))
    if word not in OVERRIDE_ACTIONS:
        raise ValueError(
            f"override {key!r} -> {word!r} is not one of {', '.join(OVERRIDE_ACTIONS)} "
            f"or {REPLACE_PREFIX}<value>"
        )
    action = OVERRIDE_ACTIONS[word]
    if tag in _PATIENT_TAGS:
        if action != "U":
            raise ValueError(
                f"override {key!r} -> {word!r}: Patient ID and Patient's Name always carry "
                "the patient pseudonym; the only override they take is 'pseudonymise'"
            )
        action = "P"
    return path, Override(_sequence_aware(tag, action))


def replacement_value(key: str, vr: str | None, text: str) -> object:
    """The value of a "replace:<text>" override, converted and validated for the VR."""
    if vr is None or " or " in vr:
        return text  # private or ambiguous VR: the element's own VR decides when it is set
    if vr in _UNREPLACEABLE_VRS:
        raise ValueError(
            f"override {key!r}: an attribute of VR {vr} cannot be replaced by a text value; "
            "use keep, remove, empty or dummy"
        )
    parts = text.split("\\")
    try:
        if vr in _NUMBER_VRS:
            values: list[object] = [int(part) for part in parts]
        elif vr in _FLOAT_VRS:
            values = [float(part) for part in parts]
        else:
            values = list(parts)
        for value in values:
            validate_value(vr, value, config.RAISE)
    except ValueError as exc:
        raise ValueError(f"override {key!r}: {text!r} is not a valid {vr} value ({exc})") from None
    return values if len(values) > 1 else values[0]


@dataclass(frozen=True)
class Profile:
    """A named, versioned de-identification profile.

    `overrides` maps a keyword or tag ("PatientWeight", "(0018,1000)"), or a path from the
    top level of the object ("ReferencedRequestSequence/AccessionNumber"), to "keep",
    "remove", "empty", "dummy", "pseudonymise" or "replace:<value>"; overrides win over the
    table and the options. Invalid overrides raise ValueError naming the key and the reason.
    """

    name: str
    version: str
    options: frozenset[Option] = frozenset()
    overrides: Mapping[str, str] = field(default_factory=dict, hash=False)
    project_overrides: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", frozenset(self.options))
        if (
            Option.RETAIN_LONGITUDINAL_FULL_DATES in self.options
            and Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in self.options
        ):
            raise ValueError(
                f"profile {self.name!r}: the Retain Longitudinal Temporal Information options "
                "with full dates and with modified dates exclude each other; choose one"
            )
        for mapping in (self.overrides, self.project_overrides):
            for key, word in mapping.items():
                try:
                    compile_override(key, word)
                except ValueError as exc:
                    raise ValueError(f"profile {self.name!r}: {exc}") from None
        object.__setattr__(self, "overrides", types.MappingProxyType(dict(self.overrides)))
        object.__setattr__(
            self, "project_overrides", types.MappingProxyType(dict(self.project_overrides))
        )

    @property
    def method(self) -> str:
        """The text recorded in De-identification Method (LO, at most 64 characters).

        Project overrides are recorded by a digest of their text, so that two outputs name
        the same rules exactly when they were de-identified by the same rules.
        """
        text = f"radbank {self.name} {self.version}"
        if self.project_overrides:
            rules = "\n".join(f"{k}={v}" for k, v in sorted(self.project_overrides.items()))
            text += " overrides " + hashlib.sha256(rules.encode()).hexdigest()[:12]
        return text

    def with_overrides(self, mapping: Mapping[str, str]) -> Profile:
        """This profile with a project's overrides added (they win over the profile's own).

        Raises ValueError naming the first invalid key and why it is invalid.
        """
        return Profile(
            self.name,
            self.version,
            self.options,
            overrides=self.overrides,
            project_overrides={**self.project_overrides, **dict(mapping)},
        )

    def all_overrides(self) -> dict[str, str]:
        return {**self.overrides, **self.project_overrides}

    @classmethod
    def named(cls, name: str) -> Profile:
        """Return a shipped profile, e.g. Profile.named("research-dose")."""
        try:
            return _NAMED_PROFILES[name]
        except KeyError:
            raise ValueError(
                f"unknown de-identification profile {name!r}; shipped profiles: "
                f"{', '.join(PROFILE_NAMES)}"
            ) from None


# The acquisition, calibration and dose attributes CT, NM/PET and X-ray dosimetry need.
# None of them is in Table E.1-1 (2025a), so the table keeps them already; research-dose
# pins them so that a later edition of the table cannot silently remove them. Dates and
# times are not pinned here: they are shifted with the patient (a pinned "keep" would
# leave them unshifted). The attributes the table does touch that dosimetry needs are
# retained by the profile's options: patient characteristics (age, sex, size, weight),
# device identity (station name, device serial number, detector and source IDs) and the
# modified dates (calibration, acquisition, radiopharmaceutical start/stop date-times).
DOSIMETRY_ATTRIBUTES: tuple[str, ...] = (
    # CT acquisition and dose (CT Image, Enhanced CT, CT Exposure macro)
    "KVP", "XRayTubeCurrent", "XRayTubeCurrentInmA", "Exposure", "ExposureInmAs",
    "ExposureTime", "ExposureTimeInms", "CTDIvol", "CTDIPhantomTypeCodeSequence",
    "SpiralPitchFactor", "RevolutionTime", "TableSpeed", "TableFeedPerRotation",
    "SingleCollimationWidth", "TotalCollimationWidth", "DataCollectionDiameter",
    "ReconstructionDiameter", "SliceThickness", "ConvolutionKernel", "FilterType",
    "FocalSpots", "GeneratorPower", "ExposureModulationType", "EstimatedDoseSaving",
    "GantryDetectorTilt", "TableHeight", "BodyPartExamined",
    # Projection X-ray and fluoroscopy dose
    "ImageAndFluoroscopyAreaDoseProduct", "EntranceDoseInmGy", "EntranceDose",
    "OrganDose", "DistanceSourceToDetector", "DistanceSourceToPatient",
    "DistanceSourceToEntrance", "AnodeTargetMaterial", "FilterMaterial",
    "FilterThicknessMinimum", "FilterThicknessMaximum", "Grid", "HalfValueLayer",
    "RelativeXRayExposure", "ExposureIndex", "TargetExposureIndex", "DeviationIndex",
    "CompressionForce", "BodyPartThickness", "PositionerPrimaryAngle",
    "PositionerSecondaryAngle", "FieldOfViewDimensions",
    # NM and PET acquisition, calibration and dose
    "RadiopharmaceuticalInformationSequence", "Radiopharmaceutical",
    "RadiopharmaceuticalVolume", "RadionuclideTotalDose", "RadionuclideHalfLife",
    "RadionuclidePositronFraction", "RadiopharmaceuticalSpecificActivity",
    "RadionuclideCodeSequence", "RadiopharmaceuticalCodeSequence",
    "RadiopharmaceuticalRoute", "AdministrationRouteCodeSequence", "Units",
    "CorrectedImage", "DecayCorrection", "DecayFactor", "DoseCalibrationFactor",
    "ScatterFractionFactor", "DeadTimeFactor", "FrameReferenceTime", "ActualFrameDuration",
    "EnergyWindowInformationSequence", "DetectorInformationSequence",
    "RotationInformationSequence", "CollimatorType", "CollimatorGridName",
    "ReconstructionMethod", "AttenuationCorrectionMethod", "ScatterCorrectionMethod",
    "RealWorldValueMappingSequence", "RescaleSlope", "RescaleIntercept", "RescaleType",
)  # fmt: skip

_RESEARCH_DOSE_OPTIONS = frozenset(
    {
        Option.RETAIN_LONGITUDINAL_MODIFIED_DATES,
        Option.RETAIN_PATIENT_CHARACTERISTICS,
        Option.RETAIN_DEVICE_IDENTITY,
        Option.CLEAN_DESCRIPTORS,
        Option.CLEAN_STRUCTURED_CONTENT,
        Option.RETAIN_SAFE_PRIVATE,
    }
)


# UI attributes naming a class, syntax, coding scheme or other well-known entity, not an
# instance: never remapped. Values starting with WELL_KNOWN_UID_PREFIX are never remapped either.
WELL_KNOWN_UID_PREFIX = "1.2.840.10008."
_CLASS_UID_SUFFIXES = ("ClassUID", "SyntaxUID", "ClassUIDInFile", "SyntaxUIDInFile")
_CLASS_UID_KEYWORDS = frozenset(
    {
        "SOPClassesInStudy",
        "SOPClassesSupported",
        "PertinentSOPClassesInStudy",
        "PertinentSOPClassesInSeries",
        "CodingSchemeUID",
        "ContextUID",
        "ContextGroupExtensionCreatorUID",
        "MappingResourceUID",
        "PrivateInformationCreatorUID",
        "CreatorVersionUID",
        "SegmentationTemplateUID",
    }
)


def is_class_uid_attribute(keyword: str) -> bool:
    return keyword in _CLASS_UID_KEYWORDS or keyword.endswith(_CLASS_UID_SUFFIXES)


@dataclass(frozen=True)
class CompiledProfile:
    """A profile resolved to one action letter per tag (see the module docstring).

    Besides K/X/Z/D/C/U/P/V, `resolve` answers R (keep a sequence and de-identify its items)
    and S (shift the date if the profile shifts dates, else keep) for attributes the table
    does not list; those public attributes are kept, UIDs among them follow the action of
    SOP Instance UID and sequences among them are de-identified item by item.

    A compiled profile is one scope: the top level of the object, or the items of one
    sequence path named by an override. `inside(tag)` gives the scope for the items of a
    sequence; without path overrides below it, that is the generic scope (the table, the
    options and the plain overrides), the same at every depth.
    """

    profile: Profile
    actions: dict[int, str]
    masks: tuple[tuple[int, int, str], ...]
    private_action: str
    uid_action: str
    shift_dates: bool
    replacements: dict[int, object] = field(default_factory=dict)
    # Actions behind "Q" (content item values decided by the item's concept name).
    content_actions: dict[int, str] = field(default_factory=dict)
    cleans_text: bool = False
    # A dummy sequence's items: attributes the table does not list get dummies too.
    strict: bool = False
    resolved: dict[int, str] = field(default_factory=dict, compare=False, repr=False)
    children: dict[int, CompiledProfile] = field(default_factory=dict, compare=False, repr=False)
    generic: CompiledProfile | None = field(default=None, compare=False, repr=False)
    dummy: CompiledProfile | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.resolved.update(self.actions)

    @property
    def options(self) -> frozenset[Option]:
        return self.profile.options

    def inside(self, tag: int) -> CompiledProfile:
        """The scope for the items of sequence `tag` within this scope."""
        if self.strict:
            return self
        child = self.children.get(tag)
        if child is not None:
            return child
        return self.generic or self

    def inside_dummy(self) -> CompiledProfile:
        """The scope for the items of a sequence replaced by a dummy (action D): they are
        kept, each attribute with its own action, and the text attributes that the table
        does not list are replaced by dummies instead of kept."""
        return self.dummy or self

    def resolve(self, tag: int) -> str:
        """The action for `tag`; `resolved` caches every answer for the engine's fast path."""
        tag = int(tag)
        action = self.resolved.get(tag)
        if action is None:
            action = self._resolve_untabled(tag)
            self.resolved[tag] = action
        return action

    def _resolve_untabled(self, tag: int) -> str:
        if tag & 0x10000:
            return self.private_action
        for mask, value, masked_action in self.masks:
            if tag & mask == value:
                return masked_action
        if tag & 0xFFFF == 0:
            return "X"  # group lengths are retired and would be wrong after removals
        vr = dictionary_vr(tag)
        if self.strict and (vr == "SQ" or vr in _STRICT_DUMMY_VRS):
            return "D"
        if vr == "SQ":
            return "R"
        if vr == "UI":
            return "K" if is_class_uid_attribute(keyword_for_tag(tag)) else self.uid_action
        if vr in ("DA", "DT"):
            return "S" if self.shift_dates else "K"
        if vr == "PN":
            return "D"  # a person's name is never kept by default (see docs)
        return "K"


def resolve_combined(action: str, keyword: str) -> str:
    """Reduce a combined action of the table (e.g. "X/Z/D") to one action (see module doc)."""
    if "/" not in action:
        return action
    if keyword in SEQUENCE_REDUCTIONS:
        return SEQUENCE_REDUCTIONS[keyword]
    if keyword in DUMMY_WHEN_COMBINED and action in ("X/Z/D", "Z/D"):
        return "D"
    return _COMBINED[action]


def _row_action(actions: Mapping[str, str], options: frozenset[Option]) -> str:
    modified_dates = Option.RETAIN_LONGITUDINAL_MODIFIED_DATES
    if modified_dates in options and actions.get(modified_dates.value) == "C":
        return "C"
    selected = {actions[option.value] for option in options if option.value in actions}
    if "K" in selected:
        return "K"
    if selected:
        return min(selected)
    return actions["basicProfile"]


_COMPILED: dict[tuple[object, ...], CompiledProfile] = {}


def compile_profile(profile: Profile) -> CompiledProfile:
    """Resolve a profile once; later calls with an equal profile return the cached result."""
    cache_key = (
        profile.name,
        profile.version,
        profile.options,
        tuple(sorted(profile.all_overrides().items())),
    )
    compiled = _COMPILED.get(cache_key)
    if compiled is None:
        compiled = _compile(profile)
        _COMPILED[cache_key] = compiled
    return compiled


def _compile(profile: Profile) -> CompiledProfile:
    actions: dict[int, str] = {}
    masks: list[tuple[int, int, str]] = []
    private_action = "X"
    for row in load_table().rows:
        action = _row_action(row.actions, profile.options)
        if row.is_exact:
            actions[row.value] = _sequence_aware(
                row.value, resolve_combined(action, keyword_for_tag(row.value))
            )
        elif row.mask == row.value == 0x00010000:
            private_action = resolve_combined(action, "")
        else:
            action = resolve_combined(action, "")
            if row.value == _OVERLAY_DATA and action == "X":
                action = "O"  # an overlay without its data is invalid: remove it whole
            elif row.value == _OVERLAY_DATA and action == "C":
                action = "K"  # Clean Graphics keeps graphics; a bitmap has no text to clean
            masks.append((row.mask, row.value, action))
    overlay_text = next(a for m, v, a in masks if v == _OVERLAY_COMMENTS)
    masks.extend((mask, value, overlay_text) for mask, value in _OVERLAY_TEXT_MASKS)
    uid_action = actions[0x00080018]  # SOPInstanceUID, before the overrides
    if Option.RETAIN_INSTITUTION_IDENTITY not in profile.options:
        for tag, action in SUPPLEMENT.items():
            actions.setdefault(tag, action)
    for tag, (action, option) in TEXT_SUPPLEMENT.items():
        actions[tag] = "C" if option in profile.options else action
    content_actions: dict[int, str] = {}
    if Option.CLEAN_STRUCTURED_CONTENT in profile.options:
        actions[PERSON_NAME_ITEM] = "C"
        # A DATE item is shifted like any date, unless it is the subject's birth date.
        content_actions[DATE_ITEM] = actions[DATE_ITEM]
        actions[DATE_ITEM] = "Q"
    actions.update(_PATIENT_TAGS)
    scoped: dict[tuple[int, ...], dict[int, Override]] = {}
    for path, action in PATH_RULES.items():
        scoped.setdefault(path[:-1], {})[path[-1]] = Override(action)
    for key, word in profile.all_overrides().items():
        path, override = compile_override(key, word)
        scoped.setdefault(path[:-1], {})[path[-1]] = override
    plain = scoped.pop((), {})
    shared = (masks, private_action, uid_action, content_actions, _cleans_text(actions, masks))
    generic = _scope(profile, actions, *shared, None)
    _apply_overrides(generic, plain)
    dummy = _scope(profile, actions, *shared, None, strict=True)
    _apply_overrides(dummy, plain)
    object.__setattr__(generic, "dummy", dummy)
    if not scoped:
        return generic
    root = _scope(profile, actions, *shared, generic)
    _apply_overrides(root, plain)
    object.__setattr__(root, "dummy", dummy)
    for prefix in sorted(scoped, key=len):
        parent = root
        for tag in prefix:
            child = parent.children.get(tag)
            if child is None:
                # Plain overrides apply at every depth, path overrides only at their path.
                child = _scope(profile, actions, *shared, generic)
                _apply_overrides(child, plain)
                object.__setattr__(child, "dummy", dummy)
                parent.children[tag] = child
            parent = child
        _apply_overrides(parent, scoped[prefix])
    return root


def _scope(
    profile: Profile,
    actions: dict[int, str],
    masks: list[tuple[int, int, str]],
    private_action: str,
    uid_action: str,
    content_actions: dict[int, str],
    cleans_text: bool,
    generic: CompiledProfile | None,
    strict: bool = False,
) -> CompiledProfile:
    return CompiledProfile(
        profile=profile,
        actions=dict(actions),
        masks=tuple(masks),
        private_action=private_action,
        uid_action=uid_action,
        shift_dates=Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in profile.options,
        content_actions=content_actions,
        cleans_text=cleans_text,
        generic=generic,
        strict=strict,
    )


def _cleans_text(actions: Mapping[int, str], masks: list[tuple[int, int, str]]) -> bool:
    """Whether any text is cleaned ("C" on a text VR), so that the object's identifying
    values must be collected before the walk."""
    text = ("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR")
    return any(
        a == "C" and dictionary_vr(t) in text and t != TIMEZONE_OFFSET for t, a in actions.items()
    ) or any(a == "C" for _, _, a in masks)


def _apply_overrides(scope: CompiledProfile, overrides: Mapping[int, Override]) -> None:
    for tag, override in overrides.items():
        scope.actions[tag] = override.action
        scope.resolved[tag] = override.action
        if override.action == "V":
            scope.replacements[tag] = override.value
        else:
            scope.replacements.pop(tag, None)


def _sequence_aware(tag: int, action: str) -> str:
    """Keeping a sequence still de-identifies its items: K on an SQ attribute becomes R."""
    if action == "K" and dictionary_vr(tag) == "SQ":
        return "R"
    return action


_NAMED_PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile("basic", "1"),
        Profile("basic-dates", "1", frozenset({Option.RETAIN_LONGITUDINAL_MODIFIED_DATES})),
        Profile(
            "research-dose",
            "1",
            _RESEARCH_DOSE_OPTIONS,
            overrides=dict.fromkeys(DOSIMETRY_ATTRIBUTES, "keep"),
        ),
    )
}
PROFILE_NAMES: tuple[str, ...] = tuple(sorted(_NAMED_PROFILES))
