"""Keyed pseudonyms: deterministic under one key, unlinkable across keys."""

from __future__ import annotations

import re

from deid_helpers import OTHER_KEY, PROJECT_KEY

from radbank.dicom.deid import patient_pseudonym, pseudonymise_uid


def test_patient_pseudonym_is_deterministic_and_well_formed() -> None:
    first = patient_pseudonym("HOSP-A", "PAT-0001", PROJECT_KEY)
    assert first == patient_pseudonym("HOSP-A", "PAT-0001", PROJECT_KEY)
    assert re.fullmatch(r"RB-[A-Z2-7]{20}", first)


def test_patient_pseudonym_depends_on_issuer_id_and_key() -> None:
    base = patient_pseudonym("HOSP-A", "PAT-0001", PROJECT_KEY)
    assert patient_pseudonym("HOSP-B", "PAT-0001", PROJECT_KEY) != base
    assert patient_pseudonym("HOSP-A", "PAT-0002", PROJECT_KEY) != base
    assert patient_pseudonym("HOSP-A", "PAT-0001", OTHER_KEY) != base
    # The separator keeps ("AB", "C") and ("A", "BC") apart.
    assert patient_pseudonym("AB", "C", PROJECT_KEY) != patient_pseudonym("A", "BC", PROJECT_KEY)


def test_patient_pseudonym_ignores_insignificant_padding() -> None:
    assert patient_pseudonym("", "PAT-0001 ", PROJECT_KEY) == patient_pseudonym(
        "", "PAT-0001", PROJECT_KEY
    )


def test_uid_pseudonym_is_a_valid_2_25_uid_and_stable() -> None:
    uid = "1.2.826.0.1.3680043.8.498.12345678901234567890123456789012345678901"
    new = pseudonymise_uid(uid, PROJECT_KEY)
    assert new == pseudonymise_uid(uid, PROJECT_KEY)
    assert re.fullmatch(r"2\.25\.[1-9][0-9]*", new)
    assert len(new) <= 64
    assert int(new[5:]) < 2**128
    assert pseudonymise_uid(uid, OTHER_KEY) != new
    assert pseudonymise_uid(uid + "1", PROJECT_KEY) != new
