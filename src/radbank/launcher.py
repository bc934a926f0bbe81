"""The `radbank` executable: `radbank deid` starts without the node's server stack.

A site runs `radbank deid` on workstations where start-up time counts (scripts call it per
export); the other commands need the whole node (FastAPI, SQLAlchemy, alembic), whose
imports take over a second. Everything else goes to `radbank.cli`.

Before either, the C allocator is told to keep the memory of large objects (see
`tune_allocator`) and numpy's OpenBLAS to start no threads (`limit_math_threads`). A
process about to ingest many objects (a server worker, `radbank import`) calls
`settle_heap` once it has started.
"""

from __future__ import annotations

import ctypes
import gc
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin, get_type_hints

if TYPE_CHECKING:
    import typer

# glibc mallopt(3) parameters, and the values radbank sets (bytes)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_ALLOCATOR = (
    ("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD, 4 * 1024 * 1024),
    ("MALLOC_TRIM_THRESHOLD_", _M_TRIM_THRESHOLD, 32 * 1024 * 1024),
)


def tune_allocator() -> None:
    """Serve buffers under 4 MB from the heap and keep up to 32 MB of freed heap.

    By default glibc maps every allocation above 128 kB afresh and unmaps it at free, so
    each buffer the size of an image (the file read, pydicom's pixel data value, the
    encoded output: three per 0.5 MB CT slice) costs a page fault per 4 kB page. On the
    planted CT corpus `radbank deid` took 223,000 minor page faults for 550 files by
    default and 11,000 with these settings, 5.9 against 4.1-4.8 ms per file, same peak
    memory (60 MB). Set in this process with mallopt and in the environment for the
    processes it starts (server workers); values a user put in the environment win.
    Elsewhere than glibc nothing happens.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    for variable, parameter, value in _ALLOCATOR:
        if variable in os.environ:
            continue  # glibc read it at start-up
        os.environ[variable] = str(value)
        mallopt(parameter, value)


def limit_math_threads() -> None:
    """One OpenBLAS thread: radbank's numpy work (water-equivalent diameters, pixel rules,
    dose statistics, the OCR check's small image products) gains nothing from threads,
    and OpenBLAS starts a thread per core at numpy's import that spins waiting for work. In `radbank deid` that
    thread took ~0.1 s of CPU per run from the workers on a 2-core machine (perf sched).
    Set for this process and the processes it starts; a value in the environment wins."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


# Container objects allocated (less those freed) between two young collections: 700 by
# default. Ingest makes many per instance (a data set's elements, SQL statements), nearly
# all freed by reference counting: the cyclic garbage is ~5 small objects per instance
# (SQL bind parameters), never a buffer. At 700 a young collection ran every 2-3
# instances, each moving the live data sets of the batch in flight into the older
# generations, to be walked again there (an older collection every 30 instances).
# STOW-RS with 2 clients, 4 A/B pairs: 478 -> 521 instances/s, worker CPU -8 %.
# `radbank import` of 1,000 CT slices, 3 pairs: 4.71 -> 3.83 s with `settle_heap`, 4.30 s
# with the threshold alone.
_GC_THRESHOLDS = (50_000, 10, 10)


def settle_heap() -> None:
    """Move what the start made (modules, the app, its routes and models: most of the heap)
    out of the cyclic garbage collector's way, and collect the young generation less
    often. Every full collection would walk all of the start's objects again, and ingest
    allocates enough to trigger one every few hundred objects stored: 7 % of a server
    worker's CPU went there."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)


def plain_arguments(command: Callable[..., object], argv: list[str]) -> dict[str, Any] | None:
    """The keyword arguments Typer would call `command` with for `argv`, when `argv` is
    plain; None for anything else, which then goes to Typer with its help and messages.

    Typer builds a pydantic validator for every option on each start (~0.08 s of the
    ~0.35 s `radbank deid` takes to start, 3 % of a 2,000-file run). Plain here means:
    the command's arguments in order, and its options as `--name value`, `--name=value`
    or `-x value`, each given once, of type path, text, integer (within its minimum) or
    flag. Help, `--` and everything unusual or wrong are Typer's to answer.
    tests/test_launcher.py checks the results equal Typer's for many command lines.
    """
    from typer.models import ArgumentInfo, OptionInfo

    hints = get_type_hints(command, include_extras=True)
    arguments: list[tuple[str, type]] = []
    options: dict[str, tuple[str, type, OptionInfo]] = {}
    values: dict[str, Any] = {}
    for name, parameter in inspect.signature(command).parameters.items():
        hint = hints[name]
        if get_origin(hint) is not Annotated:
            return None
        kind, *metadata = get_args(hint)
        info = next((m for m in metadata if isinstance(m, ArgumentInfo | OptionInfo)), None)
        kind = _plain_kind(kind)
        if info is None or kind is None or info.envvar or info.callback or info.parser:
            return None
        if kind is Path and not _default_path_checks(info):
            return None
        if isinstance(info, ArgumentInfo):
            arguments.append((name, kind))
            continue
        # In Annotated form Typer reads a first positional string as a declaration too.
        first = [info.default] if isinstance(info.default, str) else []
        declared = [d for d in (*first, *(info.param_decls or ())) if d.startswith("-")]
        for declaration in declared or [f"--{name.replace('_', '-')}"]:
            if "/" in declaration:
                return None
            options[declaration] = (name, kind, info)
        if parameter.default is inspect.Parameter.empty:
            continue
        values[name] = parameter.default
    given: set[str] = set()
    positional: list[str] = []
    words = iter(argv)
    for word in words:
        if not word.startswith("-") or word == "-":
            positional.append(word)
            continue
        declaration, equals, inline = word.partition("=")
        if declaration not in options or (equals and not declaration.startswith("--")):
            return None
        name, kind, info = options[declaration]
        if name in given:
            return None
        given.add(name)
        if kind is bool:
            if equals:
                return None
            values[name] = True
            continue
        text = inline if equals else next(words, None)
        if text is None or (not equals and text.startswith("-")):
            return None
        value = _plain_value(kind, text)
        if value is None or (info.min is not None and value < info.min):
            return None
        values[name] = value
    if len(positional) != len(arguments):
        return None
    for (name, kind), text in zip(arguments, positional, strict=True):
        values[name] = _plain_value(kind, text)
        if values[name] is None:
            return None
    if any(name not in values for name in hints if name != "return"):
        return None  # a required option is missing: Typer says which
    return values


def _default_path_checks(info: Any) -> bool:
    """Whether Typer checks nothing of a path but that it is readable where it exists."""
    return (
        not getattr(info, "exists", False)
        and getattr(info, "file_okay", True)
        and getattr(info, "dir_okay", True)
        and not getattr(info, "writable", False)
        and getattr(info, "readable", True)
        and not getattr(info, "resolve_path", False)
    )


def _plain_kind(kind: Any) -> type | None:
    """Path, str, int or bool, also `X | None`; None for any other type."""
    if get_origin(kind) in (Union, UnionType):
        members = [m for m in get_args(kind) if m is not type(None)]
        if len(members) != 1:
            return None
        kind = members[0]
    return kind if kind in (Path, str, int, bool) else None


def _plain_value(kind: type, text: str) -> Any:
    if kind is int:
        return int(text) if text.isascii() and text.isdigit() else None
    if not text:
        return None
    if kind is not Path:
        return text
    if os.path.exists(text) and not os.access(text, os.R_OK):
        return None  # Typer refuses it ("is not readable"), with its message
    return Path(text)


def main() -> None:
    tune_allocator()
    limit_math_threads()
    if sys.argv[1:2] == ["deid"]:
        import typer

        from radbank.offline import deid_command

        arguments = plain_arguments(deid_command, sys.argv[2:])
        if arguments is not None:
            try:
                deid_command(**arguments)
            except typer.Exit as exc:
                sys.exit(exc.exit_code)
            except KeyboardInterrupt:
                sys.exit(130)
            return
        command = typer.Typer(add_completion=False)
        command.command()(deid_command)
        reflow_help(command)
        sys.argv = [f"{sys.argv[0]} deid", *sys.argv[2:]]
        try:
            command()
        except KeyboardInterrupt:
            sys.exit(130)
        return
    from radbank.cli import main as node_main

    node_main()


def reflow_help(app: typer.Typer) -> None:
    """Join the lines of every paragraph of the commands' help texts (their docstrings).

    typer (0.29) keeps the source's line breaks in the paragraphs after the first, and rich
    wraps those lines again, so the help showed sentences cut in the middle."""
    for info in app.registered_commands:
        text = info.help or (inspect.getdoc(info.callback) if info.callback else None)
        if text:
            info.help = "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))
    for group in app.registered_groups:
        if group.typer_instance is not None:
            reflow_help(group.typer_instance)
