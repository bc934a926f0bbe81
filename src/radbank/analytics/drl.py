"""Diagnostic reference levels in the sense of ICRP Publication 135 (2017).

For each examination (a protocol, a standardised study name, a procedure or a target
region) and each device (room): the number of examinations and of patients, the median
(the device's typical value) and the quartiles of the DRL quantity. The local DRL of the
examination is the 75th percentile of the medians of the devices that have at least
`min_patients` patients (ICRP 135 para. 129 ff.: a DRL is set on the medians of facilities
or rooms, each from a sufficient number of patients, 20 by default here as in most national
surveys); a device with fewer patients is listed but not counted, and says why. With one
qualifying device there is no distribution of medians: its median is reported as the
typical value and the DRL is left out (ICRP 135 para. 138 calls that value a "typical
value" for comparison, not a DRL).

Reference DRLs (national or European) loaded from a CSV are matched by examination name
(case-blind) and quantity; the comparison gives their ratio to the local DRL, or to the
typical value when there is no local DRL.

Works on coded rows (`radbank.index.DoseValues`: examination, device and patient codes and
values as numpy arrays); numpy does the statistics, so a million rows take a fraction of a
second.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from radbank.index import DoseValues
from radbank.index import ReferenceDrl as ReferenceLevel

__all__ = [
    "QUANTITIES",
    "DeviceStatistics",
    "DrlError",
    "ExaminationDrl",
    "Quantity",
    "ReferenceLevel",
    "compute",
    "parse_reference_csv",
]

DEFAULT_MIN_PATIENTS = 20


class DrlError(ValueError):
    """A request or a reference file that cannot be used; the message says why."""


@dataclass(frozen=True)
class Quantity:
    """A DRL quantity: the dose table it is read from ("events" or "studies"), its column,
    its unit and the examination grouping used when the caller names none."""

    name: str
    table: str
    column: str
    unit: str
    default_group: str
    description: str


QUANTITIES: dict[str, Quantity] = {
    q.name: q
    for q in (
        Quantity("ctdivol", "events", "ctdivol_mgy", "mGy", "protocol",
                 "CTDIvol of each CT irradiation event"),
        Quantity("dlp", "studies", "dlp_total_mgycm", "mGy.cm", "study_description",
                 "total DLP of each CT examination"),
        Quantity("ctdivol_study", "studies", "ctdivol_mean_mgy", "mGy", "study_description",
                 "mean CTDIvol of each CT examination"),
        Quantity("ssde", "studies", "ssde_mgy", "mGy", "study_description",
                 "mean size-specific dose estimate of each CT examination"),
        Quantity("dap", "studies", "dap_total_gym2", "Gy.m2", "study_description",
                 "total dose area product of each projection X-ray examination"),
        Quantity("dose_rp", "studies", "dose_rp_total_gy", "Gy", "study_description",
                 "total dose at the reference point of each examination"),
        Quantity("fluoro_time", "studies", "fluoro_time_total_s", "s", "study_description",
                 "total fluoroscopy time of each examination"),
        Quantity("agd", "events", "agd_mgy", "mGy", "protocol",
                 "average glandular dose of each mammography view"),
        Quantity("activity", "studies", "administered_activity_mbq", "MBq",
                 "study_description", "administered activity of each NM/PET examination"),
    )
}  # fmt: skip

GROUPS = {
    "events": ("protocol", "target_region", "procedure", "modality", "acquisition_type"),
    "studies": ("study_description", "procedure", "protocols", "modality"),
}


@dataclass(frozen=True)
class DeviceStatistics:
    device_key: str
    device: str
    examinations: int
    patients: int
    median: float
    first_quartile: float
    third_quartile: float
    counted: bool
    note: str = ""


@dataclass(frozen=True)
class ExaminationDrl:
    examination: str
    quantity: str
    unit: str
    examinations: int
    patients: int
    median: float
    first_quartile: float
    third_quartile: float
    devices: tuple[DeviceStatistics, ...]
    typical_value: float | None
    local_drl: float | None
    note: str
    references: tuple[dict[str, object], ...] = field(default=())


def _quartiles(values: np.ndarray) -> tuple[float, float, float]:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return float(median), float(q1), float(q3)


def _distinct(patients: np.ndarray) -> int:
    """Distinct known patients among sorted patient codes (-1: unknown); the number of rows
    when none is known."""
    known = patients[patients >= 0]
    if len(known) == 0:
        return len(patients)
    return int(np.count_nonzero(np.diff(known))) + 1


def compute(
    rows: DoseValues,
    quantity: Quantity,
    *,
    min_patients: int = DEFAULT_MIN_PATIENTS,
    references: Iterable[ReferenceLevel] = (),
) -> list[ExaminationDrl]:
    """The DRLs of every examination in `rows`, ordered by examination name."""
    if min_patients < 1:
        raise DrlError("the minimum number of patients per device must be at least 1")
    if len(rows) == 0:
        return []
    by_reference: dict[str, list[ReferenceLevel]] = {}
    for level in references:
        if level.quantity == quantity.name:
            by_reference.setdefault(level.examination.casefold(), []).append(level)
    order = np.lexsort((rows.patients, rows.devices, rows.groups))
    groups, devices = rows.groups[order], rows.devices[order]
    patients, values = rows.patients[order], rows.values[order]
    results = []
    for start, end in _runs(groups):
        name = rows.group_names[int(groups[start])]
        results.append(
            _examination(
                name,
                devices[start:end],
                patients[start:end],
                values[start:end],
                quantity,
                rows,
                min_patients,
                by_reference.get(name.casefold(), []),
            )
        )
    return sorted(results, key=lambda level: level.examination)


def _runs(sorted_keys: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of equal keys."""
    if len(sorted_keys) == 0:
        return []
    starts = [0, *(np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1).tolist()]
    return list(zip(starts, [*starts[1:], len(sorted_keys)], strict=True))


def _examination(
    name: str,
    devices: np.ndarray,
    patients: np.ndarray,
    values: np.ndarray,
    quantity: Quantity,
    rows: DoseValues,
    min_patients: int,
    references: list[ReferenceLevel],
) -> ExaminationDrl:
    device_stats = []
    for start, end in _runs(devices):
        code = int(devices[start])
        median, q1, q3 = _quartiles(values[start:end])
        distinct = _distinct(patients[start:end])
        counted = distinct >= min_patients
        device_stats.append(
            DeviceStatistics(
                rows.device_names[code],
                rows.device_labels[code],
                end - start,
                distinct,
                median,
                q1,
                q3,
                counted,
                "" if counted else f"fewer than {min_patients} patients; not counted for the DRL",
            )
        )
    counted_medians = np.array([d.median for d in device_stats if d.counted])
    median, q1, q3 = _quartiles(values)
    if len(counted_medians) >= 2:
        typical = float(np.median(counted_medians))
        local = float(np.percentile(counted_medians, 75))
        note = f"75th percentile of the medians of {len(counted_medians)} devices"
    elif len(counted_medians) == 1:
        typical, local = float(counted_medians[0]), None
        note = "one device with enough patients: its median is the typical value, no DRL"
    else:
        typical, local = None, None
        note = f"no device has {min_patients} patients or more: no typical value, no DRL"
    compared_value = local if local is not None else typical
    compared = tuple(
        {
            "set": level.set_name,
            "value": level.value,
            "age_band": level.age_band,
            "source": level.source,
            "ratio": compared_value / level.value if compared_value is not None else None,
            "above": compared_value is not None and compared_value > level.value,
        }
        for level in references
    )
    return ExaminationDrl(
        name,
        quantity.name,
        quantity.unit,
        len(values),
        _distinct(np.sort(patients)),
        median,
        q1,
        q3,
        tuple(device_stats),
        typical,
        local,
        note,
        compared,
    )


REFERENCE_COLUMNS = ("examination", "quantity", "value", "unit")


def parse_reference_csv(text: str, set_name: str, source: str = "") -> list[ReferenceLevel]:
    """Reference DRLs from CSV: columns examination, quantity (one of QUANTITIES), value,
    unit (the quantity's unit), optional age_band (default adult) and source. All rows or
    none: every bad row is named."""
    if not set_name.strip():
        raise DrlError("the reference set needs a name (e.g. 'DE 2022' or 'EU CT 2021')")
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in REFERENCE_COLUMNS if name not in header]
    if missing:
        raise DrlError(
            f"the reference CSV lacks the column(s) {', '.join(missing)}; it needs "
            f"{', '.join(REFERENCE_COLUMNS)} (and may have age_band, source)"
        )
    levels, errors = [], []
    seen: set[tuple[str, str, str]] = set()
    for number, raw in enumerate(reader, start=2):
        row = {(key or "").strip().lower(): (value or "").strip() for key, value in raw.items()}
        problems = []
        quantity = QUANTITIES.get(row["quantity"].lower())
        if quantity is None:
            problems.append(f"quantity {row['quantity']!r} is not one of {', '.join(QUANTITIES)}")
        elif row["unit"] != quantity.unit:
            problems.append(
                f"unit {row['unit']!r} is not {quantity.unit}, the unit of {quantity.name}"
            )
        try:
            value = float(row["value"])
            if not value > 0 or value == float("inf"):
                raise ValueError
        except ValueError:
            problems.append(f"value {row['value']!r} is not a positive number")
            value = 0.0
        if not row["examination"]:
            problems.append("examination is empty")
        age_band = row.get("age_band") or "adult"
        key = (row["examination"].casefold(), row["quantity"].lower(), age_band)
        if key in seen:
            problems.append("the same examination, quantity and age band is given twice")
        seen.add(key)
        if problems:
            errors.append(f"row {number}: " + "; ".join(problems))
            continue
        levels.append(
            ReferenceLevel(
                set_name.strip(),
                row["examination"],
                quantity.name if quantity else "",
                value,
                age_band,
                row.get("source") or source,
            )
        )
    if errors:
        raise DrlError("the reference CSV was not loaded: " + "; ".join(errors))
    if not levels:
        raise DrlError("the reference CSV has no rows")
    return levels
