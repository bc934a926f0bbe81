"""DICOM unique identifiers (PS3.5 9.1): the one validity check every layer uses."""

from __future__ import annotations

from pydicom.uid import RE_VALID_UID


def is_valid_uid(value: str) -> bool:
    """Digits and dots, no leading zeros, at most 64 characters (no trailing newline)."""
    return len(value) <= 64 and RE_VALID_UID.fullmatch(value) is not None
