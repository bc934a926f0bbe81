"""Table-driven de-identification of DICOM objects (PS3.15 Annex E), pure logic.

    from radbank.dicom.deid import Profile, deidentify
    result = deidentify(dataset, Profile.named("basic-dates"), project_key)
    result.dataset            # the same Dataset, de-identified in place
    result.patient_pseudonym  # "RB-..." also written to PatientID and PatientName

Modules: table (the shipped PS3.15 Table E.1-1), profile (options, profiles, how a row
resolves to one action), pseudonyms (keyed HMAC pseudonyms, UIDs, date shifts), dates,
private (the safe private list), records (CID 7050 records, file meta), engine.
"""

from radbank.dicom.deid.engine import DeidentificationError, DeidResult, deidentify
from radbank.dicom.deid.profile import PROFILE_NAMES, Option, Profile
from radbank.dicom.deid.pseudonyms import patient_pseudonym, pseudonymise_uid
from radbank.dicom.deid.table import load_table

__all__ = [
    "PROFILE_NAMES",
    "DeidResult",
    "DeidentificationError",
    "Option",
    "Profile",
    "deidentify",
    "load_table",
    "patient_pseudonym",
    "pseudonymise_uid",
]
