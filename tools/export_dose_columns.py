"""Write the column reference of the dose table into docs/dose.md (run after changing
radbank.dicom.dose.table.COLUMNS); tests/test_docs.py checks it is current."""

from __future__ import annotations

import sys
from pathlib import Path

from radbank.dicom.dose.table import COLUMNS

TARGET = Path(__file__).resolve().parents[1] / "docs" / "dose.md"
START, END = "<!-- columns:start -->", "<!-- columns:end -->"


def table() -> str:
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.kind} | {c.description} |" for c in COLUMNS]
    return "\n".join(lines)


def document(text: str) -> str:
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{table()}\n{END}{after}"


if __name__ == "__main__":
    TARGET.write_text(document(TARGET.read_text()))
    sys.stdout.write(f"wrote {TARGET}\n")
