"""Generate radbank's package copy of DICOM PS3.15 Table E.1-1 (the de-identification table).

The input is innolitics/dicom-standard's `confidentiality_profile_attributes.json` (MIT); the
output, src/radbank/dicom/deid/data/ps3.15-table-e.1-1.json, is committed as package data
because the standard's files are not available at runtime.

Each row gets `mask` and `value` (8 hex digits) so that a tag matches a row when
`tag & mask == value`: exact tags have mask FFFFFFFF, "(50XX,XXXX)" becomes FF000000/50000000
and "(gggg,eeee) where gggg is odd" becomes 00010000/00010000.

    python tools/make_deid_table.py [SOURCE_DIR] [OUTPUT]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

EDITION = "2025a"
SOURCE = "DICOM PS3.15 Table E.1-1, parsed by innolitics/dicom-standard (MIT)"
DEFAULT_SOURCE_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "dicom-standard"
DEFAULT_OUTPUT = (
    Path(__file__).resolve().parent.parent / "src/radbank/dicom/deid/data/ps3.15-table-e.1-1.json"
)
COLUMNS = (
    "basicProfile",
    "rtnSafePrivOpt",
    "rtnUIDsOpt",
    "rtnDevIdOpt",
    "rtnInstIdOpt",
    "rtnPatCharsOpt",
    "rtnLongFullDatesOpt",
    "rtnLongModifDatesOpt",
    "cleanDescOpt",
    "cleanStructContOpt",
    "cleanGraphOpt",
)
_TAG = re.compile(r"\(([0-9A-FX]{4}),([0-9A-FX]{4})\)")
_PRIVATE = "(GGGG,EEEE) WHERE GGGG IS ODD"


def tag_mask(tag: str) -> tuple[int, int]:
    """Return (mask, value) for a tag of the table, masks included."""
    tag = tag.strip().upper()
    if tag == _PRIVATE:
        return 0x00010000, 0x00010000
    match = _TAG.fullmatch(tag)
    if match is None:
        raise ValueError(f"unrecognised tag {tag!r} in Table E.1-1")
    digits = match.group(1) + match.group(2)
    mask = int("".join("0" if c == "X" else "F" for c in digits), 16)
    value = int("".join("0" if c == "X" else c for c in digits), 16)
    return mask, value


def convert(rows: list[dict[str, str]], license_text: str) -> dict[str, object]:
    converted = []
    for row in rows:
        mask, value = tag_mask(row["tag"])
        item: dict[str, str] = {
            "tag": row["tag"],
            "name": row["name"],
            "mask": f"{mask:08X}",
            "value": f"{value:08X}",
            "stdCompIOD": row["stdCompIOD"],
        }
        item.update({column: row[column] for column in COLUMNS if column in row})
        converted.append(item)
    converted.sort(key=lambda item: (item["value"], item["mask"]))
    return {
        "edition": EDITION,
        "source": SOURCE,
        "license": license_text,
        "columns": list(COLUMNS),
        "rows": converted,
    }


def main(argv: list[str]) -> int:
    source_dir = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE_DIR
    output = Path(argv[2]) if len(argv) > 2 else DEFAULT_OUTPUT
    rows = json.loads((source_dir / "confidentiality_profile_attributes.json").read_text())
    license_text = (source_dir / "LICENSE-innolitics.txt").read_text()
    table = convert(rows, license_text)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(table['rows'])} rows of Table E.1-1 ({EDITION}) to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
