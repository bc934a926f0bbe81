"""A project's pseudonymisation applied to the identifiers of non-DICOM submissions, by the
same functions and the same profile as the DICOM pipeline, so that a case report form, an
outcome or a dosimetry names the subject and the studies exactly as their images do.

    identity = ProjectIdentity.for_project(project, keys)
    identity.pseudonym("PAT-0001", "HOSP-A")   # the Patient ID the images got
    identity.uid("1.2.826.0.1...")             # the UID the stored object got
    identity.date(date(2024, 3, 1), pseudonym) # shifted, kept or None (removed)

Dates follow the rule the profile applies to Study Date (0008,0020): shifted by the
patient's date shift when it shifts dates, kept when it keeps them (Retain Longitudinal
Temporal Information With Full Dates, or an override), removed otherwise. UIDs are remapped
unless the profile retains UIDs; DICOM-defined UIDs (1.2.840.10008.) never are. Free text
is cleaned by the DICOM text cleaner (radbank.dicom.deid.clean) with the submission's own
identifying values for the subject.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Collection

from radbank.dicom.deid import Profile
from radbank.dicom.deid.clean import Cleaner, _date_spellings, _name_parts
from radbank.dicom.deid.profile import WELL_KNOWN_UID_PREFIX, Option, compile_profile
from radbank.dicom.deid.pseudonyms import date_shift_days, patient_pseudonym, pseudonymise_uid
from radbank.governance.keys import NodeKeys
from radbank.index import Project
from radbank.projects import deid_profile
from radbank.semantic.submissions import SiteIdentity

__all__ = ["ProjectIdentity"]

_STUDY_DATE = 0x00080020
_CLEANERS = 1024  # cleaners kept per identity (one per subject of a submission)


class ProjectIdentity(SiteIdentity):
    """The pseudonymisation of one project: its key and its de-identification profile."""

    def __init__(self, key: bytes, profile: Profile) -> None:
        compiled = compile_profile(profile)
        self.profile_name = profile.name
        self._key = key
        action = compiled.resolve(_STUDY_DATE)
        self._keeps_dates = action == "K"
        self._shifts_dates = action in ("C", "S") and compiled.shift_dates
        self._remaps_uids = compiled.uid_action != "K"
        self._keeps_age = Option.RETAIN_PATIENT_CHARACTERISTICS in profile.options
        self._cleaners: dict[frozenset[str], Cleaner] = {}

    @classmethod
    def for_project(cls, project: Project, keys: NodeKeys) -> ProjectIdentity:
        """The identity of `project` as its pipeline applies it (key, profile, overrides)."""
        return cls(keys.project_key(project), deid_profile(project.profile, project.overrides))

    def pseudonym(self, patient_id: str, issuer: str = "") -> str:
        return patient_pseudonym(issuer, patient_id, self._key)

    def uid(self, original_uid: str) -> str:
        uid = original_uid.strip("\x00 ")
        if not self._remaps_uids or uid.startswith(WELL_KNOWN_UID_PREFIX):
            return uid
        return pseudonymise_uid(uid, self._key)

    def date(self, value: datetime.date, pseudonym: str) -> datetime.date | None:
        if self._keeps_dates:
            return value
        if not self._shifts_dates:
            return None
        try:
            return value + datetime.timedelta(days=date_shift_days(pseudonym, self._key))
        except OverflowError:  # before year 1: DICOM empties such a date too
            return None

    def datetime(self, value: datetime.datetime, pseudonym: str) -> datetime.datetime | None:
        # The date part moves, the time of day and the offset stay (as shift_datetime does).
        if self._keeps_dates:
            return value
        shifted = self.date(value.date(), pseudonym)
        if shifted is None:
            return None
        return datetime.datetime.combine(shifted, value.timetz())

    def clean_text(self, text: str, identifiers: Collection[str], *, narrative: bool = True) -> str:
        cleaner = self._cleaner(frozenset(identifiers))
        return cleaner.clean_narrative(text) if narrative else cleaner.clean(text)

    def _cleaner(self, identifiers: frozenset[str]) -> Cleaner:
        cleaner = self._cleaners.get(identifiers)
        if cleaner is None:
            names: set[str] = set()
            values: set[str] = set()
            for value in identifiers:
                date = _iso_date(value)
                if date is not None:
                    values |= _date_spellings(date)  # 1960-02-14, 14.02.1960, 14 Feb 1960...
                elif not any(c.isdigit() for c in value):
                    names |= _name_parts(value)  # "Jane Doe", "Doe^Jane"
                else:
                    values.add(value)  # a patient ID, a telephone number
            if len(self._cleaners) >= _CLEANERS:
                self._cleaners.clear()
            cleaner = Cleaner(names, values, self._keeps_age)
            self._cleaners[identifiers] = cleaner
        return cleaner


def _iso_date(value: str) -> str | None:
    """ "1960-02-14" -> "19600214", the form the DICOM date spellings start from."""
    match = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", value.strip())
    return "".join(match.groups()) if match else None
