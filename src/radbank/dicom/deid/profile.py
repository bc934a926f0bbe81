"""De-identification profiles and their compilation into a tag -> action lookup.

A profile is the Basic Application Level Confidentiality Profile of PS3.15 Table E.1-1 plus
a set of options (each option is one column of the table) plus project overrides. Compiling
resolves every row once, in this order, later steps winning:

1. the basicProfile column;
2. the columns of the enabled options: an option's value, when present, replaces the basic
   action; if several enabled options give a value for one row, retaining ("K") beats
   cleaning ("C");
3. combined actions are reduced to one, keeping the least destructive action that keeps
   the object valid without knowing its IOD:
   X/Z -> Z, X/D -> D, X/Z/D -> Z, Z/D -> Z, X/Z/U* -> U;
   except for the attributes in `DUMMY_WHEN_COMBINED`, Type 1 in common IODs (Content
   Date/Time in SR documents and multi-frame images, Acquisition DateTime in enhanced images,
   Device Serial Number in the Enhanced General Equipment module of dose SRs), where
   X/Z/D and Z/D -> D;
4. radbank's supplement (`SUPPLEMENT`): attributes the table does not list but that name
   the issuing institution of an identifier, removed unless Retain Institution Identity;
4b. radbank's patient rule: Patient ID and Patient's Name become the patient pseudonym ("P");
5. the profile's overrides ("keep", "remove", "empty", "dummy", "pseudonymise").

Actions: K keep, X remove, Z empty, D dummy value for the VR, C clean, U pseudonymise (UIDs
are remapped, other values get a keyed text pseudonym, sequences are kept and their items
de-identified), P patient pseudonym. Shipping a new profile or option is a table entry in
`_NAMED_PROFILES` / `Option`; the engine does not change.
"""

from __future__ import annotations

import enum
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

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

DUMMY_WHEN_COMBINED = frozenset(
    {"ContentDate", "ContentTime", "AcquisitionDateTime", "DeviceSerialNumber"}
)

_COMBINED = {"X/Z": "Z", "X/D": "D", "X/Z/D": "Z", "Z/D": "Z", "X/Z/U*": "U"}
_PATIENT_TAGS = {0x00100020: "P", 0x00100010: "P"}  # PatientID, PatientName
# Not in Table E.1-1, yet they name who issued an identifier: an institution's namespace
# next to a removed accession number or order number.
SUPPLEMENT = types.MappingProxyType(
    {
        0x00080051: "X",  # Issuer of Accession Number Sequence
        0x00400026: "X",  # Order Placer Identifier Sequence
        0x00400027: "X",  # Order Filler Identifier Sequence
    }
)
_HEX_TAG = re.compile(r"\(?(?:0x)?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?")


def parse_tag(key: str | int) -> int:
    """Return the tag of an override key: a keyword, "(0008,0050)", "00080050" or an int."""
    if isinstance(key, int):
        return key
    tag = tag_for_keyword(key)
    if tag is not None:
        return tag
    match = _HEX_TAG.fullmatch(key.strip())
    if match is None:
        raise ValueError(f"unknown attribute {key!r}: use a DICOM keyword or a tag (gggg,eeee)")
    return int(match.group(1) + match.group(2), 16)


@dataclass(frozen=True)
class Profile:
    """A named, versioned de-identification profile.

    `overrides` maps a keyword or tag to "keep", "remove", "empty", "dummy" or "pseudonymise"
    and wins over the table and options (e.g. keep the acquisition attributes dosimetry needs).
    """

    name: str
    version: str
    options: frozenset[Option] = frozenset()
    overrides: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", frozenset(self.options))
        for key, action in self.overrides.items():
            if action not in OVERRIDE_ACTIONS:
                raise ValueError(
                    f"profile {self.name!r}: override {key!r} -> {action!r} is not one of "
                    f"{', '.join(OVERRIDE_ACTIONS)}"
                )
            parse_tag(key)
        object.__setattr__(self, "overrides", types.MappingProxyType(dict(self.overrides)))

    @property
    def method(self) -> str:
        """The text recorded in De-identification Method."""
        return f"radbank {self.name} {self.version}"

    @classmethod
    def named(cls, name: str) -> Profile:
        """Return a shipped profile, e.g. Profile.named("basic")."""
        try:
            return _NAMED_PROFILES[name]
        except KeyError:
            raise ValueError(
                f"unknown de-identification profile {name!r}; shipped profiles: "
                f"{', '.join(PROFILE_NAMES)}"
            ) from None


_NAMED_PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile("basic", "1"),
        Profile("basic-dates", "1", frozenset({Option.RETAIN_LONGITUDINAL_MODIFIED_DATES})),
    )
}
PROFILE_NAMES: tuple[str, ...] = tuple(sorted(_NAMED_PROFILES))


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


def dictionary_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


@dataclass(frozen=True)
class CompiledProfile:
    """A profile resolved to one action letter per tag (see the module docstring).

    Besides K/X/Z/D/C/U/P, `resolve` answers R (keep a sequence and de-identify its items)
    and S (shift the date if the profile shifts dates, else keep) for attributes the table
    does not list; those public attributes are kept, UIDs among them follow the action of
    SOP Instance UID and sequences among them are de-identified item by item.
    """

    profile: Profile
    actions: dict[int, str]
    masks: tuple[tuple[int, int, str], ...]
    private_action: str
    uid_action: str
    shift_dates: bool
    resolved: dict[int, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.resolved.update(self.actions)

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
        if vr == "SQ":
            return "R"
        if vr == "UI":
            return "K" if is_class_uid_attribute(keyword_for_tag(tag)) else self.uid_action
        if vr in ("DA", "DT"):
            return "S" if self.shift_dates else "K"
        return "K"


def resolve_combined(action: str, keyword: str) -> str:
    """Reduce a combined action of the table (e.g. "X/Z/D") to one action (see module doc)."""
    if "/" not in action:
        return action
    if keyword in DUMMY_WHEN_COMBINED and action in ("X/Z/D", "Z/D"):
        return "D"
    return _COMBINED[action]


def _row_action(actions: Mapping[str, str], options: frozenset[Option]) -> str:
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
        tuple(sorted(profile.overrides.items())),
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
            masks.append((row.mask, row.value, resolve_combined(action, "")))
    uid_action = actions[0x00080018]  # SOPInstanceUID, before the overrides
    if Option.RETAIN_INSTITUTION_IDENTITY not in profile.options:
        for tag, action in SUPPLEMENT.items():
            actions.setdefault(tag, action)
    actions.update(_PATIENT_TAGS)
    for key, word in profile.overrides.items():
        tag = parse_tag(key)
        action = OVERRIDE_ACTIONS[word]
        if action == "U" and tag in _PATIENT_TAGS:
            action = "P"
        actions[tag] = _sequence_aware(tag, action)
    return CompiledProfile(
        profile=profile,
        actions=actions,
        masks=tuple(masks),
        private_action=private_action,
        uid_action=uid_action,
        shift_dates=Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in profile.options,
    )


def _sequence_aware(tag: int, action: str) -> str:
    """Keeping a sequence still de-identifies its items: K on an SQ attribute becomes R."""
    if action == "K" and dictionary_vr(tag) == "SQ":
        return "R"
    return action
