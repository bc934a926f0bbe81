"""Dose event queries and DRL computation over 1,000,000 irradiation events: radbank's
index against a peer on the same data in the same process.

The index (SQLite by default, PostgreSQL with --database-url) is filled with --events
(default 1,000,000) CT events in studies of 1-4 events, over --devices devices and
--protocols protocols, with per-device and per-protocol dose levels and patient size
spread, written in bulk through the index's own tables (ingest itself is measured by
ingest_vs_orthanc.py). Then each query is timed --repeat times (median printed):

- events: the event search the REST API runs (a modality, a protocol, a date range and a
  CTDIvol range, sorted by CTDIvol descending, first page of 100 plus the total count);
- drl-ctdivol: DRLs of CTDIvol per protocol over every event (ICRP 135: device medians,
  75th percentile), min 20 patients per device;
- drl-dlp: DRLs of total DLP per study description over every study.

The peer is pyarrow: the same rows exported to an in-memory Arrow table (what a researcher
gets from the Parquet export), filtered, sorted and grouped with pyarrow.compute; the
ratio radbank/peer is printed (above 1: radbank is slower). The peer holds everything in
memory and pays no database access; radbank answers from the database each time.

    python benchmarks/dose_queries.py                      # 1,000,000 events, SQLite
    python benchmarks/dose_queries.py --events 100000      # quick look
    python benchmarks/dose_queries.py --database-url postgresql+psycopg://127.0.0.1/test
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from radbank.analytics import drl
from radbank.index import DoseFilter, Index
from radbank.index._engine import write_transaction
from radbank.index._schema import dose_events, dose_studies, studies

PROTOCOLS = [
    ("HEAD ROUTINE", "Head", "16", 55.0, 150.0),
    ("CHEST ROUTINE", "Chest", "32", 8.0, 350.0),
    ("ABDOMEN PELVIS", "Abdomen and Pelvis", "32", 12.0, 450.0),
    ("CT ANGIO", "Chest", "32", 10.0, 400.0),
    ("LOW DOSE LUNG", "Chest", "32", 2.0, 350.0),
    ("SINUS", "Head", "16", 12.0, 100.0),
    ("SPINE LUMBAR", "Abdomen", "32", 18.0, 200.0),
    ("CARDIAC", "Chest", "32", 25.0, 150.0),
]


def fill(index: Index, events: int, devices: int, seed: int) -> tuple[int, float]:
    """Write `events` CT events (and their studies) into a new project; returns (project id,
    seconds)."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    name = f"bench-{seed}-{random.randrange(1 << 30)}"
    project_id = index.create_project(name, key_salt=b"0" * 16).id
    device_bias = rng.lognormal(0.0, 0.25, devices)
    patients = max(1, events // 6)
    with write_transaction(index._engine) as connection:
        made = 0
        study_number = 0
        batch_events: list[dict[str, Any]] = []
        while made < events:
            study_rows = []
            plans = []
            for _ in range(5000):
                if made >= events:
                    break
                study_number += 1
                count = int(min(events - made, rng.integers(1, 5)))
                protocol = PROTOCOLS[int(rng.integers(len(PROTOCOLS)))]
                device = int(rng.integers(devices))
                patient = f"P{int(rng.integers(patients)):07d}"
                date = f"{2015 + int(rng.integers(10))}{1 + int(rng.integers(12)):02d}{1 + int(rng.integers(28)):02d}"
                uid = f"2.25.{seed}{study_number:012d}"
                study_rows.append(
                    {
                        "project_id": project_id,
                        "study_instance_uid": uid,
                        "patient_id": patient,
                        "study_date": date,
                        "study_time": "",
                        "study_description": protocol[0],
                        "number_of_study_related_series": 1,
                        "number_of_study_related_instances": count,
                        "attributes": {},
                    }
                )
                plans.append((uid, count, protocol, device, patient, date))
                made += count
            connection.execute(studies.insert(), study_rows)
            pks = dict(
                connection.execute(
                    sa.select(studies.c.study_instance_uid, studies.c.id).where(
                        studies.c.project_id == project_id,
                        studies.c.study_instance_uid.in_([p[0] for p in plans]),
                    )
                ).all()
            )
            summaries = []
            for uid, count, protocol, device, patient, date in plans:
                name, region, phantom, ctdivol, length = protocol
                size = rng.lognormal(0.0, 0.3)
                dlp_total = 0.0
                values = []
                for event in range(count):
                    value = float(ctdivol * device_bias[device] * size * rng.lognormal(0, 0.1))
                    scan = float(length * rng.uniform(0.8, 1.2))
                    dlp = value * scan / 10
                    dlp_total += dlp
                    values.append(value)
                    batch_events.append(
                        {
                            "project_id": project_id,
                            "study_pk": pks[uid],
                            "pseudonym": patient,
                            "study_date": date,
                            "device_key": f"device-{device}",
                            "event_key": f"{uid}.{event}",
                            "study_instance_uid": uid,
                            "sop_instance_uid": f"{uid}.9",
                            "irradiation_event_uid": f"{uid}.{event}",
                            "source": "report",
                            "template": "TID 10011",
                            "kind": "CT",
                            "modality": "CT",
                            "manufacturer": "Vendor",
                            "model_name": f"Model {device % 4}",
                            "station_name": f"CT{device:02d}",
                            "protocol": name,
                            "target_region": region,
                            "phantom": phantom,
                            "ctdivol_mgy": value,
                            "dlp_mgycm": dlp,
                            "scan_length_mm": scan,
                            "kvp": 120.0,
                        }
                    )
                summaries.append(
                    {
                        "project_id": project_id,
                        "study_pk": pks[uid],
                        "study_instance_uid": uid,
                        "pseudonym": patient,
                        "study_date": date,
                        "source": "report",
                        "modality": "CT",
                        "device_key": f"device-{device}",
                        "device": f"Vendor Model {device % 4} (CT{device:02d})",
                        "study_description": name,
                        "protocols": name,
                        "events": count,
                        "ctdivol_mean_mgy": sum(values) / len(values),
                        "ctdivol_max_mgy": max(values),
                        "dlp_total_mgycm": dlp_total,
                        "above_notification": False,
                    }
                )
            connection.execute(dose_events.insert(), batch_events)
            connection.execute(dose_studies.insert(), summaries)
            batch_events = []
    if index._dialect == "postgresql":
        with index._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("ANALYZE dose_events")
            c.exec_driver_sql("ANALYZE dose_studies")
    else:
        with index._engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
    return project_id, time.perf_counter() - started


def arrow_tables(index: Index, project_id: int) -> tuple[pa.Table, pa.Table]:
    with index._engine.connect() as connection:
        tables = []
        for table, columns in (
            (dose_events, ("pseudonym", "study_date", "device_key", "modality", "protocol",
                           "ctdivol_mgy", "irradiation_event_uid")),
            (dose_studies, ("pseudonym", "device_key", "study_description", "dlp_total_mgycm")),
        ):  # fmt: skip
            rows = connection.execute(
                sa.select(*(table.c[c] for c in columns)).where(table.c.project_id == project_id)
            ).all()
            tables.append(pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)}))
    return tables[0], tables[1]


def peer_events(
    table: pa.Table, protocol: str, low: str, high: str, minimum: float
) -> tuple[int, list[float]]:
    mask = pc.and_(
        pc.and_(pc.equal(table["modality"], "CT"), pc.equal(table["protocol"], protocol)),
        pc.and_(
            pc.and_(
                pc.greater_equal(table["study_date"], low), pc.less_equal(table["study_date"], high)
            ),
            pc.greater_equal(table["ctdivol_mgy"], minimum),
        ),
    )
    selected = table.filter(mask)
    order = pc.sort_indices(selected, sort_keys=[("ctdivol_mgy", "descending")])
    top = pc.take(selected["ctdivol_mgy"], order[:100])
    return selected.num_rows, top.to_pylist()


def peer_drl(table: pa.Table, group: str, value: str, min_patients: int) -> dict[str, float | None]:
    per_device = table.group_by([group, "device_key"]).aggregate(
        [(value, "approximate_median"), ("pseudonym", "count_distinct")]
    )
    # Exact medians, as radbank computes them: tdigest/approximate medians would be cheaper.
    exact = {}
    keys = pc.binary_join_element_wise(table[group], table["device_key"], "\x1f")
    order = pc.sort_indices(keys)
    sorted_keys = pc.take(keys, order).to_numpy(zero_copy_only=False)
    values = pc.take(table[value], order).to_numpy()
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(sorted_keys)]
    for start, end in zip(starts, ends, strict=True):
        exact[sorted_keys[start]] = float(np.median(values[start:end]))
    result: dict[str, list[float]] = {}
    for row in per_device.to_pylist():
        if row["pseudonym_count_distinct"] >= min_patients:
            result.setdefault(row[group], []).append(exact[f"{row[group]}\x1f{row['device_key']}"])
    return {
        name: float(np.percentile(medians, 75)) if len(medians) > 1 else None
        for name, medians in result.items()
    }


@contextmanager
def _database(server_url: str | None, directory: str) -> Iterator[str]:
    """SQLite in `directory`, or a PostgreSQL schema of its own, dropped afterwards."""
    if server_url is None:
        yield f"sqlite:///{directory}/index.db"
        return
    schema = f"radbank_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = sa.make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def timed(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--database-url", default=None, help="default: SQLite in a temporary directory"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory, _database(args.database_url, directory) as url:
        index = Index(url)
        project_id, fill_seconds = fill(index, args.events, args.devices, args.seed)
        print(f"filled {args.events:,} events in {fill_seconds:.1f} s ({index._dialect})")
        events_table, studies_table = arrow_tables(index, project_id)
        print(
            f"peer: {events_table.num_rows:,} events, {studies_table.num_rows:,} studies in Arrow"
        )

        index.close()
        # A fresh index object: the first query of each kind reads the columns it needs
        # ("cold"); the later ones find them in memory and read only what was added.
        index = Index(url)
        cold: dict[str, float] = {}
        query = DoseFilter(
            equal={"modality": "CT", "protocol": "CHEST ROUTINE"},
            date_from="20180101",
            date_to="20211231",
            ranges={"ctdivol_mgy": (10.0, None)},
            sort="-ctdivol_mgy",
            limit=100,
        )
        results = {}
        cold["events"], _ = timed(lambda: index.dose_events(project_id, query), 1)
        radbank_events, (rows, total) = timed(
            lambda: index.dose_events(project_id, query), args.repeat
        )
        peer_events_s, (peer_total, peer_top) = timed(
            lambda: peer_events(events_table, "CHEST ROUTINE", "20180101", "20211231", 10.0),
            args.repeat,
        )
        assert total == peer_total, (total, peer_total)
        assert [round(r["ctdivol_mgy"], 9) for r in rows] == [round(v, 9) for v in peer_top]
        results["events"] = (radbank_events, peer_events_s, total)

        def radbank_drl(quantity: str) -> list[drl.ExaminationDrl]:
            q = drl.QUANTITIES[quantity]
            values = index.dose_values(
                q.table, project_id, q.default_group, q.column, DoseFilter(limit=None)
            )
            return drl.compute(values, q, min_patients=20)

        for quantity, table, group, column in (
            ("ctdivol", events_table, "protocol", "ctdivol_mgy"),
            ("dlp", studies_table, "study_description", "dlp_total_mgycm"),
        ):
            cold[f"drl-{quantity}"], _ = timed(lambda quantity=quantity: radbank_drl(quantity), 1)
            ours_s, levels = timed(lambda quantity=quantity: radbank_drl(quantity), args.repeat)
            peer_s, peer_levels = timed(
                lambda t=table, g=group, c=column: peer_drl(t, g, c, 20), args.repeat
            )
            for level in levels:
                expected = peer_levels.get(level.examination)
                assert (level.local_drl is None and expected is None) or abs(
                    level.local_drl - expected
                ) < 1e-6 * expected, (level, expected)
            results[f"drl-{quantity}"] = (
                ours_s,
                peer_s,
                sum(level.examinations for level in levels),
            )

        print(
            f"\n{'query':14s} {'radbank ms':>11s} {'(cold ms)':>10s} {'pyarrow ms':>11s} "
            f"{'ratio':>6s} {'rows':>10s}"
        )
        for name, (ours, peer, count) in results.items():
            print(
                f"{name:14s} {ours * 1e3:11.1f} {cold[name] * 1e3:10.1f} {peer * 1e3:11.1f} "
                f"{ours / peer:6.2f} {count:10,d}"
            )
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "events": args.events,
                        "devices": args.devices,
                        "backend": index._dialect,
                        "measured_at": datetime.now(UTC).isoformat(),
                        "results": {
                            name: {
                                "radbank_s": ours,
                                "radbank_cold_s": cold[name],
                                "pyarrow_s": peer,
                                "rows": count,
                            }
                            for name, (ours, peer, count) in results.items()
                        },
                    },
                    indent=2,
                )
            )
        index.close()


if __name__ == "__main__":
    main()
