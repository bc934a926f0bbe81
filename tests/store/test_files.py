"""The file blob store: atomic, durable writes and keys that cannot escape the root."""

from __future__ import annotations

from pathlib import Path

import pagecache
import pytest

from radbank.store import FileStore, InvalidBlobKey


def test_put_get_delete_round_trip(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "blobs")
    store.put_many([("1/a/x.dcm", b"first"), ("1/b/y.dcm", b"second")])
    assert store.get("1/a/x.dcm") == b"first"
    assert store.exists("1/b/y.dcm")
    assert sorted(store.keys()) == ["1/a/x.dcm", "1/b/y.dcm"]
    store.delete("1/a/x.dcm")
    assert not store.exists("1/a/x.dcm")
    store.delete("1/a/x.dcm")  # deleting twice is not an error


def test_put_replaces_atomically_and_leaves_no_temporaries(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put("k.dcm", b"old")
    store.put("k.dcm", b"new")
    assert store.get("k.dcm") == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["k.dcm"]


@pytest.mark.parametrize("count", [1, 3, 2000])
def test_a_blob_given_in_pieces_is_stored_joined(tmp_path: Path, count: int) -> None:
    """The pipeline hands the encoder's pieces (bytes and views of the received file)
    over unjoined; the stored blob is the same bytes, however many pieces there are
    (more than one writev(2) call takes are written joined)."""
    source = bytes(range(256)) * 40
    view = memoryview(source)
    pieces: list[bytes | memoryview] = [
        view[i * 5 : i * 5 + 5] if i % 2 else bytes([i % 256]) * 3 for i in range(count)
    ]
    store = FileStore(tmp_path)
    store.put_many([("1/s/x.dcm", pieces), ("1/s/y.dcm", b"whole")])
    assert store.get("1/s/x.dcm") == b"".join(pieces)
    assert store.get("1/s/y.dcm") == b"whole"


@pagecache.linux_only
def test_stored_blobs_do_not_stay_in_memory(tmp_path: Path) -> None:
    """Once a blob is on disk its cached pages are released, so a bulk import reuses the
    same memory instead of filling the machine's with write-once data; reads still work."""
    pagecache.skip_in_memory(tmp_path)
    store = FileStore(tmp_path)
    blobs = [(f"1/s/{n}.dcm", bytes([n]) * 512 * 1024) for n in range(4)]
    store.put_many(blobs)
    store.put("1/t/single.dcm", b"x" * 300_000)
    paths = [tmp_path / key for key, _ in blobs] + [tmp_path / "1/t/single.dcm"]
    # Without the release every page of every blob stayed cached (128 per blob here).
    assert sum(pagecache.resident_pages(path) for path in paths) == 0
    assert [store.get(key) for key, _ in blobs] == [data for _, data in blobs]


def test_crash_leftovers_are_not_listed_and_are_removed(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / ".x.dcm.abc.part").write_bytes(b"half")
    assert list(store.keys()) == []
    assert store.remove_temporaries() == 1
    assert not any(tmp_path.rglob("*.part"))


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/abs", "a//b", "", "a/./b", "a\\b"])
def test_keys_cannot_escape_the_root(tmp_path: Path, key: str) -> None:
    store = FileStore(tmp_path / "root")
    with pytest.raises(InvalidBlobKey):
        store.put(key, b"x")
    assert not (tmp_path / "escape").exists()
