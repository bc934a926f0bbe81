"""Bytes -> text -> draft: the media type and charset, UTF-8 decoding, JSON loading
(duplicate keys, constants and depth refused), and the reader of the media type.
"""

from __future__ import annotations

import json
import re
from typing import Any

from radbank.semantic.submissions._contract import MEDIA_TYPES
from radbank.semantic.submissions._draft import _Bad, _Draft
from radbank.semantic.submissions._jsonld import _read_jsonld
from radbank.semantic.submissions._records import _read_csv, _read_json
from radbank.semantic.submissions._values import _JsonNumber


def _parse(body: bytes, media_type: str, kind: str, max_records: int) -> _Draft:
    draft = _Draft(kind)
    media, _, parameters = media_type.partition(";")
    media = media.strip().lower()
    if media not in MEDIA_TYPES:
        draft.violation(
            None,
            None,
            f"cannot read {media or 'a body without media type'!r}: send "
            f"{', '.join(sorted(MEDIA_TYPES))}",
        )
        return draft
    charset = re.search(r"charset\s*=\s*\"?([^\";\s]+)", parameters, re.IGNORECASE)
    if charset and charset[1].lower().replace("_", "-") not in ("utf-8", "utf8"):
        draft.violation(
            None,
            None,
            f"the body is declared as {charset[1][:40]}: radbank reads UTF-8 only; save the "
            "file as UTF-8 (in Excel: 'CSV UTF-8') and send it again",
        )
        return draft
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        draft.violation(
            None,
            None,
            f"the body is not UTF-8 (byte 0x{body[exc.start]:02x} on line {line} cannot be "
            "read): save the file as UTF-8 (in Excel: 'CSV UTF-8') and send it again",
        )
        return draft
    text = text.removeprefix("\ufeff")  # the byte order mark spreadsheets write
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        draft.violation(
            None, None, f"the body holds a NUL character (line {line}): not a text file"
        )
        return draft
    if media == "text/csv":
        if kind == "mrt-dosimetry":
            draft.violation(
                None,
                None,
                "an mrt-dosimetry submission is a tree (calibration, volumes of interest, "
                "curves with their time points, fit, doses) that one table cannot hold: send "
                "it as JSON (application/json) or JSON-LD (application/ld+json)",
            )
            return draft
        _read_csv(draft, text, kind, max_records)
        return draft
    document = _load_json(draft, text)
    if document is None:
        return draft
    if media == "application/ld+json":
        _read_jsonld(draft, document, max_records)
    else:
        if isinstance(document, dict) and ("@context" in document or "@graph" in document):
            draft.violation(
                None,
                None,
                "this is JSON-LD (it has @context or @graph): send it as application/ld+json",
            )
            return draft
        _read_json(draft, document, kind, max_records)
    return draft


def _no_constant(name: str) -> object:
    raise _Bad(f"{name} is not a JSON number: write a number, or leave the value out")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Bad(f"key {key[:60]!r} appears twice in one object")
        result[key] = value
    return result


_MAX_DEPTH = 64


def _load_json(draft: _Draft, text: str) -> Any:
    try:
        document = json.loads(
            text,
            parse_float=_JsonNumber,
            parse_constant=_no_constant,
            object_pairs_hook=_no_duplicates,
        )
    except _Bad as exc:
        draft.violation(None, None, f"not valid JSON: {exc}")
        return None
    except json.JSONDecodeError as exc:
        draft.violation(
            None, None, f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        )
        return None
    except RecursionError:
        draft.violation(None, None, f"not accepted: JSON nested deeper than {_MAX_DEPTH} levels")
        return None
    except ValueError as exc:  # integers of more than 4300 digits
        draft.violation(None, None, f"not valid JSON: {str(exc)[:200]}")
        return None
    if _depth(document) > _MAX_DEPTH:
        draft.violation(None, None, f"not accepted: JSON nested deeper than {_MAX_DEPTH} levels")
        return None
    return document


def _depth(document: Any) -> int:
    deepest = 0
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > _MAX_DEPTH:
            break
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return deepest
