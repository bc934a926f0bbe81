"""Keyed, deterministic pseudonyms: patients, UIDs, free-text values and date shifts.

Everything is HMAC-SHA256 under the project key, so the same input under the same key always
gives the same output (follow-up studies link, re-sends are idempotent) while outputs under
different keys cannot be linked. Each use has its own domain prefix so that, for example,
a UID and a patient identifier that happen to be equal never map to related values.
"""

from __future__ import annotations

import base64
import hmac
from functools import lru_cache

PSEUDONYM_PREFIX = "RB-"
MAX_DATE_SHIFT_DAYS = 3650


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")  # one-shot, in C


def _base32(digest: bytes, length: int) -> str:
    return base64.b32encode(digest).decode("ascii").rstrip("=")[:length]


def patient_pseudonym(issuer: str, patient_id: str, key: bytes) -> str:
    """Return the project pseudonym of a patient, e.g. "RB-7Q2K...": 3 + 20 characters.

    The patient is the pair (Issuer of Patient ID, Patient ID); a missing issuer is "".
    Leading and trailing spaces are insignificant in LO values and are ignored.
    """
    message = f"{issuer.strip()}\x00{patient_id.strip()}".encode()
    return PSEUDONYM_PREFIX + _base32(_mac(key, message), 20)


@lru_cache(maxsize=65536)
def pseudonymise_uid(uid: str, key: bytes) -> str:
    """Map a UID to "2.25.<128-bit integer>" (at most 44 characters), the same way every time."""
    digest = _mac(key, b"uid\x00" + uid.strip("\x00 ").encode("ascii", "replace"))
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def pseudonymise_text(value: str, key: bytes, max_length: int) -> str:
    """Replace a free-text identifier (e.g. an Accession Number) by a keyed pseudonym."""
    digest = _mac(key, b"text\x00" + value.strip().encode())
    return (PSEUDONYM_PREFIX + _base32(digest, 26))[:max_length]


def date_shift_days(pseudonym: str, key: bytes) -> int:
    """Return the patient's date shift: between -MAX_DATE_SHIFT_DAYS and -1 days.

    One shift per patient keeps intervals between that patient's studies exact.
    """
    digest = _mac(key, b"dateshift\x00" + pseudonym.encode())
    return -(int.from_bytes(digest[:8], "big") % MAX_DATE_SHIFT_DAYS + 1)
