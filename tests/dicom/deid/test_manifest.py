"""The site tool's manifest: tags under the project key, read back as the node reads them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from radbank.dicom.deid.manifest import (
    MANIFEST_NAME,
    append_tags,
    file_tag,
    read_tags,
    tag_of_parts,
)


def test_tags_name_the_bytes_under_one_key_only(tmp_path: Path) -> None:
    data = b"DICM" * 1000
    key, other = b"k" * 32, b"o" * 32
    tag = tag_of_parts(key, [data[:10], memoryview(data)[10:]])
    assert tag == file_tag(key, hashlib.sha256(data).digest())
    assert tag != file_tag(other, hashlib.sha256(data).digest())
    assert tag != tag_of_parts(key, [data + b"\0"])

    append_tags(tmp_path, [tag])
    append_tags(tmp_path, [tag, "f" * 64])
    text = (tmp_path / MANIFEST_NAME).read_bytes()
    assert text.startswith(b"# radbank deid manifest") and text.count(b"# ") == 1
    assert read_tags(text) == {tag, "f" * 64}


def test_a_line_cut_by_a_crash_is_ignored_and_anything_else_refused() -> None:
    tag = "a" * 64
    assert read_tags(f"{tag}\n{'b' * 30}".encode()) == {tag}
    with pytest.raises(ValueError, match="line 2"):
        read_tags(f"{tag}\nPatient: Doe\n".encode())
    with pytest.raises(ValueError, match="line 1"):
        read_tags(b"\x89PNG\r\n")
