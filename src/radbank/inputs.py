"""The files of a folder, a file or a zip archive offered for ingest from the command line:
each one to read, or the reason it is not read.

Nothing is lost silently and nothing blocks: every file of a folder and every member of an
archive is listed (members of the same name too, each read by its own entry); a folder
that cannot be read, a link to a folder (not followed: links could loop) and a damaged
archive come back as `Unread`, with the reason; a named pipe or a device is found out
when it is read (`read_input` raises NotAFile without blocking on it). Folders are walked
without recursion, so no depth of nesting fails. Archives are opened once, whatever the
number of members, and kept open until `Inputs.close`.

Names are shown as `shown_name` gives them: control characters in a file name could
otherwise move the cursor, clear the terminal or print a line that looks like the
summary.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydicom.filereader import _read_file_meta_info
from pydicom.uid import MediaStorageDirectoryStorage

from radbank.dicom.instance import failure

__all__ = [
    "Input", "Inputs", "NotAFile", "Unread", "is_dicomdir", "is_system_file", "read_input",
    "shown_name", "walk",
]  # fmt: skip

DICOMDIR_REASON = "a DICOMDIR indexes files on a medium; it is not an instance"
SYSTEM_FILE_REASON = "a file the operating system keeps about a folder, not data"
# What macOS and Windows leave on media they have shown a folder of: Finder's .DS_Store,
# AppleDouble "._" files (a file's resource fork), Thumbs.db, desktop.ini, and the
# __MACOSX folder of zips made by the Finder.
_SYSTEM_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})


def is_system_file(path: str) -> bool:
    """Whether a file (a path within a folder or an archive) is one of those."""
    parts = PurePosixPath(path).parts
    name = parts[-1] if parts else ""
    return name.lower() in _SYSTEM_NAMES or name.startswith("._") or "__MACOSX" in parts[:-1]


# C0 and C1 controls, DEL, bidirectional overrides and isolates (which reorder what a
# terminal shows), and the lone surrogates that stand for undecodable bytes of a name.
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")


class NotAFile(Exception):
    """An input that is not a regular file (its kind is the message)."""


@dataclass(frozen=True)
class Input:
    """One file, or one member of an archive, to read."""

    name: str  # as shown to the user (`shown_name`)
    size: int
    read: Callable[[], bytes]


@dataclass(frozen=True)
class Unread:
    """Something not read, and why. `skipped`: what kind of file it is when nothing of the
    import is missing for it ("DICOMDIR", "system file"); None when data may be, and the
    import says so."""

    name: str
    reason: str
    skipped: str | None = None


def shown_name(name: str) -> str:
    """`name` with the characters a terminal would act on written as escapes (\\x1b)."""
    return _HIDDEN.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else
                       f"\\u{ord(m.group()):04x}", name)  # fmt: skip


def is_dicomdir(data: bytes) -> bool:
    """Whether a Part 10 file is a DICOMDIR (Media Storage Directory Storage), whatever
    it is called; read from its file meta information only."""
    if data[128:132] != b"DICM":
        return False
    buffer = io.BytesIO(data)
    buffer.seek(132)  # after the preamble and "DICM", where pydicom's reader starts
    try:
        meta = _read_file_meta_info(buffer)
    except Exception:  # noqa: BLE001 - damaged meta information: the pipeline says what
        return False
    return meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage


_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def read_input(path: Path) -> bytes:
    """The bytes of an input file, never opened for writing. Anything but a regular file
    (a FIFO would block the run forever, a device could be read without end) raises
    NotAFile: opened without blocking, checked, closed unread."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO and stat.S_ISSOCK(os.stat(path).st_mode):
            raise NotAFile(_KINDS[stat.S_IFSOCK]) from None
        raise
    try:
        handle = open(fd, "rb")  # noqa: SIM115 - closed by the with below
    except BaseException:
        os.close(fd)  # open() leaves a descriptor it was given open when it fails
        raise
    with handle:
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
        if kind != stat.S_IFREG:
            raise NotAFile(_KINDS.get(kind, "a special file"))
        return handle.read()


class Inputs:
    """Everything under `path`, in name order, as `Input`s and `Unread`s; a context
    manager that closes the archives it opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._archives: list[zipfile.ZipFile] = []

    def __enter__(self) -> Inputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for archive in self._archives:
            archive.close()
        self._archives.clear()

    def __iter__(self) -> Iterator[Input | Unread]:
        if self.path.is_dir():
            yield from self._folder()
        else:
            yield from self._file(self.path)

    def _folder(self) -> Iterator[Input | Unread]:
        for path, problem in walk(self.path):
            if problem is None:
                yield from self._file(path)
            else:
                yield Unread(shown_name(str(path)), problem)

    def _file(self, path: Path) -> Iterator[Input | Unread]:
        name = shown_name(str(path))
        try:
            info = path.stat()
        except OSError as exc:
            yield Unread(name, f"cannot read it ({exc.strerror})")
            return
        if stat.S_ISREG(info.st_mode) and _is_archive(path):
            yield from self._members(path, name)
        else:
            skipped = _not_data(name, path.name)
            yield skipped or Input(name, info.st_size, lambda: read_input(path))

    def _members(self, path: Path, name: str) -> Iterator[Input | Unread]:
        try:
            archive = zipfile.ZipFile(path)
        except Exception as exc:  # noqa: BLE001 - a damaged archive fails in many ways
            yield Unread(name, f"not a readable zip archive ({failure(exc)})")
            return
        self._archives.append(archive)
        for info in archive.infolist():
            if info.is_dir():
                continue
            member = f"{name}!{shown_name(info.filename)}"
            skipped = _not_data(member, info.filename)
            if skipped is not None:
                yield skipped
            elif info.filename.lower().endswith(".zip"):
                yield Unread(
                    member,
                    "a zip archive inside the archive is not opened; extract it and import it",
                )
            else:
                yield Input(member, info.file_size, lambda info=info: _read_member(archive, info))


def _not_data(shown: str, name: str) -> Unread | None:
    """The skip of a file that holds no instance, by its name (`name`: a file's, or a
    member's path in its archive): a DICOMDIR, or a file an operating system leaves."""
    if PurePosixPath(name).name.upper() == "DICOMDIR":
        return Unread(shown, DICOMDIR_REASON, skipped="DICOMDIR")
    if is_system_file(name):
        return Unread(shown, SYSTEM_FILE_REASON, skipped="system file")
    return None


def walk(folder: Path) -> Iterator[tuple[Path, str | None]]:
    """Every file under `folder` as (path, None), depth first in name order, without
    recursion (no depth of nesting fails); a folder that cannot be read and a link to a
    folder (not followed: links can loop) as (path, the reason)."""
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            yield current, f"cannot read the folder ({exc.strerror})"
            continue
        folders = []
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(path)
                elif entry.is_symlink() and entry.is_dir():
                    yield (
                        path,
                        (
                            "a link to a folder, not followed (links can loop); import the "
                            "folder it points to"
                        ),
                    )
                else:
                    yield path, None
            except OSError as exc:
                yield path, f"cannot read it ({exc.strerror})"
        stack.extend(reversed(folders))


def _is_archive(path: Path) -> bool:
    """A .zip file, or a file that starts as one (and not as a DICOM file: a Part 10
    preamble may hold anything, and a file's end may hold a zip's end record by chance)."""
    if path.suffix.lower() == ".zip":
        return True
    try:
        with path.open("rb") as handle:
            start = handle.read(132)
    except OSError:
        return False  # read_input says why
    return start[:4] in _ZIP_SIGNATURES and start[128:132] != b"DICM"


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, by its own entry (another member may have the same name); any
    failure (a bad CRC, an encrypted or damaged member, a compression not supported, a
    name that does not decode) as OSError with the reason."""
    try:
        with archive.open(info) as member:
            return member.read()
    except Exception as exc:  # noqa: BLE001
        raise OSError(failure(exc)) from exc
