"""Dose rows in the index, on SQLite and PostgreSQL: events are written with their
instances and kept once per Irradiation Event UID; study summaries follow; searches
answered from the in-memory columns give exactly what the database gives, also after rows
are added and after a subject is erased; DRL statistics match a computation by hand."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
import sqlalchemy as sa

from radbank.analytics import drl
from radbank.dicom.dose.table import column_names
from radbank.index import DoseFilter, Index, InstanceRecord
from radbank.index._consent import delete_subject_rows
from radbank.index._dose import _REAL_EVENT_COLUMNS, _order, _page, _where
from radbank.index._engine import write_transaction
from radbank.index._schema import dose_events

Record = Callable[..., InstanceRecord]
PROTOCOLS = ["HEAD", "CHEST", "ABDOMEN", None]


def _event(study: str, number: int, rng: random.Random, device: int, **values: object) -> dict:
    row = dict.fromkeys(column_names())
    row.update(
        study_instance_uid=study,
        sop_instance_uid=f"{study}.99",
        irradiation_event_uid=f"{study}.ev{number}",
        source="report",
        template="TID 10011",
        kind="CT",
        modality="CT",
        manufacturer="Vendor",
        model_name=f"Model {device}",
        station_name=f"CT{device}",
        protocol=rng.choice(PROTOCOLS),
        ctdivol_mGy=rng.choice([None, round(rng.uniform(1, 80), 3)]),
        dlp_mGycm=round(rng.uniform(10, 2000), 2),
        patient_age_years=rng.choice([None, rng.uniform(0, 95)]),
        patient_sex=rng.choice(["M", "F", None]),
    )
    row.update(values)
    return row


def _fill(index: Index, record: Record, project_id: int, studies: int, seed: int) -> None:
    rng = random.Random(seed)
    records = []
    for number in range(studies):
        study = f"2.25.{seed}{number:05d}"
        device = rng.randrange(4)
        rows = tuple(_event(study, e, rng, device) for e in range(rng.randint(1, 3)))
        records.append(
            replace(
                record(
                    project_id,
                    study,
                    f"{study}.1",
                    f"{study}.99",
                    PatientID=f"PAT{rng.randrange(studies // 2 + 1)}",
                    StudyDate=f"20{rng.randint(10, 24)}0{rng.randint(1, 9)}15",
                    SOPClassUID="1.2.840.10008.5.1.4.1.1.88.67",
                ),
                dose_rows=rows,
            )
        )
    index.add_instances(records)


FILTERS = [
    DoseFilter(),
    DoseFilter(equal={"protocol": "CHEST"}, sort="-ctdivol_mgy", limit=7),
    DoseFilter(equal={"protocol": "*e*"}, sort="protocol", limit=50, offset=3),
    DoseFilter(equal={"station_name": "CT?"}, sort="-protocol", limit=20),
    DoseFilter(date_from="20150101", date_to="20191231", sort="study_date"),
    DoseFilter(age_min=40, age_max=60, sort="-patient_age_years", limit=None),
    DoseFilter(ranges={"ctdivol_mgy": (10, 40), "dlp_mgycm": (None, 1500)}, sort="dlp_mgycm"),
    DoseFilter(equal={"patient_sex": "F", "modality": "CT"}, limit=5, offset=2),
    DoseFilter(equal={"protocol": "nothing"}),
]


def _sql(index: Index, project_id: int, query: DoseFilter) -> tuple[list[int], int]:
    """The same search with the database alone (what a cohort-limited search does)."""
    clauses = _where(dose_events, project_id, query, _REAL_EVENT_COLUMNS)
    with index._engine.connect() as connection:
        total = connection.execute(
            sa.select(sa.func.count()).select_from(dose_events).where(*clauses)
        ).scalar_one()
        ids = connection.scalars(
            _page(
                query,
                sa.select(dose_events.c.id)
                .where(*clauses)
                .order_by(*_order(dose_events, query.sort)),
            )
        ).all()
    return list(ids), total


@pytest.mark.parametrize("query", FILTERS, ids=range(len(FILTERS)))
def test_searches_from_memory_equal_the_database(
    index: Index, record: Record, query: DoseFilter
) -> None:
    project = index.create_project("p", key_salt=b"s")
    _fill(index, record, project.id, 120, seed=1)
    rows, total = index.dose_events(project.id, query)
    assert ([row["id"] for row in rows], total) == _sql(index, project.id, query)
    # Rows added later are seen; the columns read so far are completed, not re-read.
    _fill(index, record, project.id, 40, seed=2)
    rows, total = index.dose_events(project.id, query)
    assert ([row["id"] for row in rows], total) == _sql(index, project.id, query)


def test_erasure_is_seen_by_the_columns_in_memory(index: Index, record: Record) -> None:
    project = index.create_project("p", key_salt=b"s")
    _fill(index, record, project.id, 60, seed=3)
    everything = DoseFilter(limit=None)
    before = index.dose_events(project.id, everything)[1]
    subject = index.dose_events(project.id, everything)[0][0]["pseudonym"]
    with write_transaction(index._engine) as connection:
        delete_subject_rows(connection, project.id, subject)
    rows, after = index.dose_events(project.id, everything)
    assert after < before
    assert subject not in {row["pseudonym"] for row in rows}
    assert ([row["id"] for row in rows], after) == _sql(index, project.id, everything)
    studies, _ = index.dose_studies(project.id, everything)
    assert subject not in {row["pseudonym"] for row in studies}


def test_an_event_sent_in_two_reports_is_kept_once(index: Index, record: Record) -> None:
    project = index.create_project("p", key_salt=b"s")
    rng = random.Random(4)
    first = _event("2.25.7", 1, rng, 0, ctdivol_mGy=10.0, dlp_mGycm=100.0, protocol="A")
    second = _event("2.25.7", 2, rng, 0, ctdivol_mGy=20.0, dlp_mGycm=300.0, protocol="B")
    study = dict(PatientID="PAT", StudyDate="20200101")
    index.add_instances(
        [
            replace(
                record(project.id, "2.25.7", "2.25.7.1", "2.25.7.50", **study), dose_rows=(first,)
            )
        ]
    )
    # A cumulative report repeats the first event and adds the second.
    index.add_instances(
        [
            replace(
                record(project.id, "2.25.7", "2.25.7.1", "2.25.7.51", **study),
                dose_rows=(first, second),
            )
        ]
    )
    rows, total = index.dose_events(project.id, DoseFilter())
    assert total == 2
    studies, _ = index.dose_studies(project.id, DoseFilter())
    assert len(studies) == 1
    assert studies[0]["events"] == 2
    assert studies[0]["dlp_total_mgycm"] == pytest.approx(400.0)
    assert studies[0]["ctdivol_mean_mgy"] == pytest.approx(15.0)
    assert studies[0]["protocols"] == "A; B"


def test_drl_statistics_match_a_computation_by_hand(index: Index, record: Record) -> None:
    project = index.create_project("p", key_salt=b"s")
    rng = np.random.default_rng(5)
    records = []
    expected_medians = {}
    for device, (level, patients) in enumerate([(10.0, 25), (20.0, 30), (40.0, 22), (5.0, 3)]):
        values = level * rng.lognormal(0, 0.2, patients)
        expected_medians[f"CT{device}"] = float(np.median(values))
        for number, value in enumerate(values):
            study = f"2.25.9{device}{number:03d}"
            row = _event(
                study, 0, random.Random(number), 0, protocol="HEAD", ctdivol_mGy=float(value)
            )
            row.update(station_name=f"CT{device}", model_name="M", manufacturer="V")
            records.append(
                replace(
                    record(
                        project.id,
                        study,
                        f"{study}.1",
                        f"{study}.9",
                        PatientID=f"D{device}P{number}",
                    ),
                    dose_rows=(row,),
                )
            )
    index.add_instances(records)
    quantity = drl.QUANTITIES["ctdivol"]
    values = index.dose_values(
        "events", project.id, "protocol", "ctdivol_mgy", DoseFilter(limit=None)
    )
    [head] = drl.compute(values, quantity, min_patients=20)
    medians = {d.device.split("(")[-1].rstrip(")"): d for d in head.devices}
    for station, median in expected_medians.items():
        assert medians[station].median == pytest.approx(median)
    assert [medians[f"CT{d}"].counted for d in range(4)] == [True, True, True, False]
    counted = [expected_medians[f"CT{d}"] for d in range(3)]
    assert head.local_drl == pytest.approx(float(np.percentile(counted, 75)))
    assert head.typical_value == pytest.approx(float(np.median(counted)))
    assert head.examinations == 80 and head.patients == 80
    # One qualifying device: a typical value, no DRL, and the reason.
    [few] = drl.compute(values, quantity, min_patients=26)
    assert few.local_drl is None and few.typical_value == pytest.approx(expected_medians["CT1"])
    assert "one device" in few.note
    # Cohort-limited callers are answered by the database: same numbers.
    uids = [r.study_instance_uid for r in records]
    limited = index.dose_values(
        "events", project.id, "protocol", "ctdivol_mgy", DoseFilter(limit=None, study_uids=uids)
    )
    [same] = drl.compute(limited, quantity, min_patients=20)
    assert same.local_drl == pytest.approx(head.local_drl)


def test_reference_csv_is_checked_row_by_row() -> None:
    with pytest.raises(drl.DrlError) as error:
        drl.parse_reference_csv(
            "examination,quantity,value,unit\n"
            "Head,dlp,abc,mGy.cm\n"
            "Chest,ctdivol,10,mGy.cm\n"
            "Chest,volume,3,l\n",
            "DE",
        )
    message = str(error.value)
    assert "row 2" in message and "row 3" in message and "row 4" in message
    levels = drl.parse_reference_csv(
        "\ufeffExamination,Quantity,Value,Unit,Source\nHead,dlp,850,mGy.cm,BfS 2022\n", "DE"
    )
    assert levels[0].examination == "Head" and levels[0].value == 850.0
    assert levels[0].source == "BfS 2022"


def test_select_ids_orders_missing_values_last(index: Index, record: Record) -> None:
    project = index.create_project("p", key_salt=b"s")
    _fill(index, record, project.id, 30, seed=6)
    for sort in ("ctdivol_mgy", "-ctdivol_mgy"):
        rows, _ = index.dose_events(project.id, DoseFilter(sort=sort, limit=None))
        values = [row["ctdivol_mgy"] for row in rows]
        present = [v for v in values if v is not None]
        assert values[: len(present)] == sorted(present, reverse=sort.startswith("-"))
        assert all(v is None for v in values[len(present) :])
