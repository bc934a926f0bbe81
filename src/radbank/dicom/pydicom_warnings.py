"""pydicom's warnings about a received object, said about that object and without its values.

pydicom warns (through the warnings module, and its `pydicom` logger) when a value does
not fit its VR or an element is encoded against the transfer syntax, naming its own source
line and quoting the value. A received object is still identified when it is read, so the
value may be a date or an identifier, and neither may reach a log. Here:

- `object_in_hand` names the object being worked on (a file's path, a STOW-RS part); the
  pipeline and the site tool set it around each object;
- `naming_pydicom_warnings` (command line, one thread) hands each warning with that name
  to a caller, which prints it in its summary;
- `log_pydicom_warnings` (server processes, once) logs each warning with that name and its
  quoted values withheld (`withheld`);
- both keep pydicom's logger from passing the raw message to the application's handlers.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import pydicom
from pydicom.datadict import DicomDictionary

__all__ = [
    "log_pydicom_warnings",
    "naming_pydicom_warnings",
    "object_in_hand",
    "warning_lines",
    "withheld",
]

object_in_hand: ContextVar[str | None] = ContextVar("object_in_hand", default=None)
_PYDICOM = str(Path(pydicom.__file__).parent)
_SEE_PART5 = re.compile(r"\s*Please see <[^>]*> for allowed values for each VR\.?")


def _text(message: object) -> str:
    # pydicom names the file it reads, which is none here (received bytes), and points to
    # PS3.5 in every value warning.
    return _SEE_PART5.sub("", str(message).replace(" in file <no filename>", ""))


def _quiet_pydicom_logger() -> None:
    """pydicom logs every warning it gives, value included, to its `pydicom` logger, which
    passes it on to the root logger's handlers (a deployment's logging configuration)."""
    logging.getLogger("pydicom").propagate = False


@contextmanager
def naming_pydicom_warnings(report: Callable[[str, str], None]) -> Iterator[None]:
    """Within the block, each warning pydicom gives goes to `report(object, message)`
    instead of stderr, where it would name pydicom's source line and not the object
    (`object_in_hand`; "an object" outside one). The message still quotes values: pass
    it through `withheld` unless it stays where the originals are. Other warnings are
    shown as usual.

    For one-thread programs (the command line): the warnings module's state is global."""
    _quiet_pydicom_logger()
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        if str(filename).startswith(_PYDICOM):
            report(object_in_hand.get() or "an object", _text(message))
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        # Each of pydicom's, not once per source line: two files may have the same fault.
        warnings.filterwarnings("always", module=r"pydicom(\.|$)")
        warnings.showwarning = show
        yield


def log_pydicom_warnings(log: logging.Logger) -> None:
    """For the server's processes: each warning pydicom gives goes to `log`, naming the
    object in hand (`object_in_hand`) and withholding the values it quotes, instead of
    stderr with pydicom's source line and the values of received, identified objects.
    Once per process; the warnings module's filters still apply (a warning of one source
    line is shown once)."""
    _quiet_pydicom_logger()
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        if str(filename).startswith(_PYDICOM):
            log.warning("%s: %s", object_in_hand.get() or "an object", withheld(_text(message)))
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show


# A quoted text (repr of a str or bytes; not an apostrophe inside a word).
_QUOTED = re.compile(r"(?<![A-Za-z])b?(?:'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*")')
# What pydicom quotes that is not a value of the object: attribute names and keywords, VRs,
# and the defined terms its messages name. Anything else quoted is withheld.
_ATTRIBUTE_NAMES = frozenset(
    name for entry in DicomDictionary.values() for name in (entry[2], entry[4]) if name
)
_VRS = "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV"
_PHOTOMETRIC = "MONOCHROME1 MONOCHROME2 RGB YBR_FULL YBR_FULL_422 YBR_ICT YBR_RCT YBR_PARTIAL_420"
_TERMS = frozenset({*_VRS.split(), *_PHOTOMETRIC.split(), "PALETTE COLOR"})
_KEPT = _ATTRIBUTE_NAMES | _TERMS
# Names with an apostrophe ("Patient's Name") would pair with the wrong quote.
_APOSTROPHE_NAMES = sorted((n for n in _ATTRIBUTE_NAMES if "'" in n), key=len, reverse=True)


def withheld(text: str) -> str:
    """A pydicom warning without the values of the object it quotes (a date, an identifier,
    a UID of the original), which must not reach a log or another person: every quoted
    text but an attribute's name or keyword, a VR or a Photometric Interpretation becomes
    "(value withheld)"."""
    names: dict[str, str] = {}
    if "'" in text:
        for name in _APOSTROPHE_NAMES:
            if f"'{name}'" in text:
                token = f"\0{len(names)}\0"
                names[token] = f"'{name}'"
                text = text.replace(f"'{name}'", token)

    def value(match: re.Match[str]) -> str:
        quoted = match.group()
        inner = quoted[2:-1] if quoted.startswith("b") else quoted[1:-1]
        return quoted if inner in _KEPT else "(value withheld)"

    text = _QUOTED.sub(value, text)
    for token, name in names.items():
        text = text.replace(token, name)
    return text


_WARNINGS_SHOWN = 5  # per object: a damaged file can draw one warning per element


def warning_lines(warned: Mapping[str, Iterable[str]]) -> Iterator[str]:
    """Lines for a summary: pydicom's warnings by the object they are about (values it
    could not read as their VR says, kept as sent but worth telling the sender about), at
    most a few per object."""
    for name, texts in warned.items():
        texts = list(texts)
        for text in texts[:_WARNINGS_SHOWN]:
            yield f"  warning: {name}: {text}"
        if len(texts) > _WARNINGS_SHOWN:
            yield f"  warning: {name}: and {len(texts) - _WARNINGS_SHOWN} more warning(s)"
