"""Adding, finding and counting instances; duplicates; quarantine; concurrent writers."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from radbank.dicom.query import parse_qido
from radbank.index import (
    DuplicateInstance,
    HierarchyConflict,
    Index,
    InstanceRecord,
    UnknownProject,
)

Record = Callable[..., InstanceRecord]


def _series_of_ct(
    record: Record, project_id: int, study: str, series: str, count: int, **attributes
) -> list[InstanceRecord]:
    return [
        record(
            project_id,
            study,
            series,
            f"{series}.{number}",
            Modality="CT",
            InstanceNumber=number,
            **attributes,
        )
        for number in range(1, count + 1)
    ]


def test_added_instances_are_found_again(index: Index, record: Record) -> None:
    project = index.create_project("p", key_salt=b"s")
    records = _series_of_ct(record, project.id, "1.2.3", "1.2.3.1", 3, PatientID="PAT1")
    index.add_instances(records)

    found = index.get_instances(project.id, ["1.2.3.1.2", "1.2.3.1.3", "9.9.9"])
    assert set(found) == {"1.2.3.1.2", "1.2.3.1.3"}
    assert found["1.2.3.1.2"] == records[1]
    assert found["1.2.3.1.2"].received_at.tzinfo is not None


def test_find_instances_in_series_and_instance_number_order(index: Index, record: Record) -> None:
    project = index.create_project("p", key_salt=b"s")
    index.add_instances(
        [
            record(project.id, "1.2", "1.2.20", "1.2.20.1", SeriesNumber=2, InstanceNumber=1),
            record(project.id, "1.2", "1.2.10", "1.2.10.2", SeriesNumber=1, InstanceNumber=10),
            record(project.id, "1.2", "1.2.10", "1.2.10.1", SeriesNumber=1, InstanceNumber=9),
            record(project.id, "1.3", "1.3.10", "1.3.10.1", SeriesNumber=1, InstanceNumber=1),
        ]
    )
    study = index.find_instances(project.id, "1.2")
    assert [r.sop_instance_uid for r in study] == ["1.2.10.1", "1.2.10.2", "1.2.20.1"]
    series = index.find_instances(project.id, "1.2", "1.2.20")
    assert [r.sop_instance_uid for r in series] == ["1.2.20.1"]
    one = index.find_instances(project.id, "1.2", "1.2.10", "1.2.10.2")
    assert [(r.study_instance_uid, r.series_instance_uid) for r in one] == [("1.2", "1.2.10")]
    assert index.find_instances(project.id, "1.3", "1.2.10") == []
    assert index.find_instances(project.id, "7.7") == []


def test_projects_do_not_see_each_others_instances(index: Index, record: Record) -> None:
    first = index.create_project("first", key_salt=b"1")
    second = index.create_project("second", key_salt=b"2")
    index.add_instances([record(first.id, "1.2", "1.2.3", "1.2.3.4")])
    # The same UIDs in another project are another instance, not a duplicate.
    index.add_instances([record(second.id, "1.2", "1.2.3", "1.2.3.4", PatientID="other")])
    assert index.get_instances(second.id, ["1.2.3.4"])["1.2.3.4"].project_id == second.id
    assert len(index.find_instances(first.id, "1.2")) == 1
    assert len(list(index.iter_instances())) == 2


def test_duplicate_sop_instance_uid_is_rejected_and_nothing_is_indexed(
    index: Index, record: Record
) -> None:
    project = index.create_project("p", key_salt=b"s")
    index.add_instances([record(project.id, "1.2", "1.2.3", "1.2.3.1")])
    batch = [
        record(project.id, "1.2", "1.2.3", "1.2.3.2"),
        record(project.id, "1.2", "1.2.3", "1.2.3.1", sha256="f" * 64),
    ]
    with pytest.raises(DuplicateInstance, match=r"1\.2\.3\.1") as raised:
        index.add_instances(batch)
    assert raised.value.sop_instance_uids == ["1.2.3.1"]
    assert set(index.get_instances(project.id, ["1.2.3.1", "1.2.3.2"])) == {"1.2.3.1"}
    assert index.get_instances(project.id, ["1.2.3.1"])["1.2.3.1"].sha256 == "0" * 64


def test_duplicate_within_one_batch_is_rejected(index: Index, record: Record) -> None:
    project = index.create_project("p", key_salt=b"s")
    twice = record(project.id, "1.2", "1.2.3", "1.2.3.1")
    with pytest.raises(DuplicateInstance):
        index.add_instances([twice, twice])
    assert index.find_instances(project.id, "1.2") == []
    assert index.search(project.id, parse_qido("study", [])) == []


def test_series_cannot_move_to_another_study(index: Index, record: Record) -> None:
    project = index.create_project("p", key_salt=b"s")
    index.add_instances([record(project.id, "1.2", "1.2.3", "1.2.3.1")])
    with pytest.raises(HierarchyConflict, match=r"1\.2\.3"):
        index.add_instances([record(project.id, "1.9", "1.2.3", "1.2.3.2")])
    with pytest.raises(HierarchyConflict):
        index.add_instances(
            [
                record(project.id, "2.1", "2.1.1", "2.1.1.1"),
                record(project.id, "2.2", "2.1.1", "2.1.1.2"),
            ]
        )
    assert index.find_instances(project.id, "1.9") == []
    assert index.find_instances(project.id, "2.1") == []


def test_a_study_cannot_hold_two_patients(index: Index, record: Record) -> None:
    project = index.create_project("p", key_salt=b"s")
    index.add_instances([record(project.id, "1.2", "1.2.3", "1.2.3.1", PatientID="RB-A")])
    with pytest.raises(
        HierarchyConflict, match=r"study 1\.2 already belongs to patient RB-A in this project"
    ):
        index.add_instances([record(project.id, "1.2", "1.2.4", "1.2.4.1", PatientID="RB-B")])
    with pytest.raises(HierarchyConflict, match="two patients"):
        index.add_instances(
            [
                record(project.id, "3.1", "3.1.1", "3.1.1.1", PatientID="RB-C"),
                record(project.id, "3.1", "3.1.2", "3.1.2.1", PatientID="RB-D"),
            ]
        )
    assert len(index.find_instances(project.id, "1.2")) == 1
    assert index.find_instances(project.id, "3.1") == []
    # The same patient adds to their study as before.
    index.add_instances([record(project.id, "1.2", "1.2.5", "1.2.5.1", PatientID="RB-A")])
    assert len(index.find_instances(project.id, "1.2")) == 2


def test_unknown_project_is_refused(index: Index, record: Record) -> None:
    with pytest.raises(UnknownProject, match="42"):
        index.add_instances([record(42, "1.2", "1.2.3", "1.2.3.1")])
    with pytest.raises(UnknownProject):
        index.add_quarantine(42, reason="r", source="s", blob_key="k", sop_instance_uid=None)


def test_study_and_series_aggregates(index: Index, record: Record) -> None:
    project = index.create_project("p", key_salt=b"s")
    index.add_instances(_series_of_ct(record, project.id, "1.2", "1.2.1", 3))
    index.add_instances(
        [record(project.id, "1.2", "1.2.2", "1.2.2.1", Modality="SR")]
        + _series_of_ct(record, project.id, "1.2", "1.2.1", 5)[3:]
    )
    index.add_instances([record(project.id, "1.2", "1.2.3", "1.2.3.1", Modality="CT")])

    (study,) = index.search(project.id, parse_qido("study", []))
    assert study["00080061"] == {"vr": "CS", "Value": ["CT", "SR"]}  # ModalitiesInStudy
    assert study["00201206"] == {"vr": "IS", "Value": [3]}  # NumberOfStudyRelatedSeries
    assert study["00201208"] == {"vr": "IS", "Value": [7]}  # NumberOfStudyRelatedInstances
    counts = {
        s["0020000E"]["Value"][0]: s["00201209"]["Value"][0]
        for s in index.search(project.id, parse_qido("series", []))
    }
    assert counts == {"1.2.1": 5, "1.2.2": 1, "1.2.3": 1}


def test_study_attributes_missing_from_the_first_instance_are_completed(
    index: Index, record: Record
) -> None:
    project = index.create_project("p", key_salt=b"s")
    index.add_instances(
        [record(project.id, "1.2", "1.2.3", "1.2.3.1", PatientID="A", AccessionNumber="one")]
    )
    index.add_instances(
        [
            record(
                project.id,
                "1.2",
                "1.2.3",
                "1.2.3.2",
                PatientID="A",
                AccessionNumber="two",
                StudyDate="20240101",
            )
        ]
    )
    (study,) = index.search(project.id, parse_qido("study", [("StudyDate", "20240101-")]))
    assert study["00080050"]["Value"] == ["one"]  # the first instance's value stays
    assert study["00080020"]["Value"] == ["20240101"]


def test_fifty_instances_in_one_call(index: Index, record: Record) -> None:
    project = index.create_project("p", key_salt=b"s")
    index.add_instances(_series_of_ct(record, project.id, "1.2", "1.2.1", 50, Rows=512))
    assert len(index.find_instances(project.id, "1.2", "1.2.1")) == 50


def test_quarantine(index: Index) -> None:
    project = index.create_project("p", key_salt=b"s")
    index.add_quarantine(
        project.id, reason="no pixel data", source="a.dcm", blob_key="q/1", sop_instance_uid="1.2"
    )
    index.add_quarantine(
        project.id, reason="unreadable", source="b.dcm", blob_key="q/2", sop_instance_uid=None
    )
    entries = index.list_quarantine(project.id)
    assert [(e["reason"], e["source"], e["blob_key"], e["sop_instance_uid"]) for e in entries] == [
        ("no pixel data", "a.dcm", "q/1", "1.2"),
        ("unreadable", "b.dcm", "q/2", None),
    ]
    assert all(e["received_at"].tzinfo is not None for e in entries)


def test_iter_instances_streams_every_project(index: Index, record: Record) -> None:
    first = index.create_project("a", key_salt=b"1")
    second = index.create_project("b", key_salt=b"2")
    index.add_instances(_series_of_ct(record, first.id, "1.2", "1.2.1", 1200))
    index.add_instances(_series_of_ct(record, second.id, "1.3", "1.3.1", 2))
    seen = [(r.project_id, r.sop_instance_uid) for r in index.iter_instances()]
    assert len(seen) == 1202 and len(set(seen)) == 1202


def test_concurrent_writers_do_not_fail(database_url: str, record: Record) -> None:
    """Two writers (own engines, as two processes would have) fill the same study at once."""
    setup = Index(database_url)
    project = setup.create_project("p", key_salt=b"s")
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        index = Index(database_url)
        try:
            for batch in range(15):
                series = f"1.2.{writer}.{batch}"
                index.add_instances(
                    [
                        record(project.id, "1.2", series, f"{series}.{n}", Modality="CT")
                        for n in range(10)
                    ]
                    + [
                        record(
                            project.id,
                            f"2.{writer}.{batch}",
                            f"2.{writer}.{batch}.1",
                            f"2.{writer}.{batch}.1.1",
                            Modality="MR",
                        )
                    ]
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            index.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    (study,) = setup.search(project.id, parse_qido("study", [("StudyInstanceUID", "1.2")]))
    setup.close()
    assert study["00201206"]["Value"] == [30]
    assert study["00201208"]["Value"] == [300]


def test_concurrent_stores_of_the_same_instance_leave_one(
    database_url: str, record: Record
) -> None:
    """Two writers racing with the same instances: one stores them, the other is told."""
    setup = Index(database_url)
    project = setup.create_project("p", key_salt=b"s")
    batch = _series_of_ct(record, project.id, "1.2", "1.2.1", 20)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def write() -> None:
        index = Index(database_url)
        try:
            barrier.wait()
            index.add_instances(batch)
            outcomes.append("stored")
        except DuplicateInstance as exc:
            outcomes.append(f"duplicate {len(exc.sop_instance_uids)}")
        finally:
            index.close()

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["duplicate 20", "stored"]
    (study,) = setup.search(project.id, parse_qido("study", []))
    setup.close()
    assert study["00201208"]["Value"] == [20]


def test_attribute_values_json_cannot_hold_are_indexed_on_both_backends(
    index: Index, record: Record
) -> None:
    """The JSON columns are written by orjson, and by the json module where orjson refuses:
    non-ASCII names, numbers beyond 64 bits, and a NaN (which is not JSON: written as null,
    which PostgreSQL accepts) are stored and read back."""
    project = index.create_project("p", key_salt=b"s")
    kept = record(project.id, "1.2.3", "1.2.3.1", "1.2.3.1.1", PatientName="Müller^Jürgen")
    kept.attributes["00181170"] = {"vr": "IS", "Value": [2**70]}
    kept.attributes["00181150"] = {"vr": "DS", "Value": [float("nan"), 1.5]}
    index.add_instances([kept])

    found = index.get_instances(project.id, ["1.2.3.1.1"])["1.2.3.1.1"]
    assert found.attributes["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Müller^Jürgen"}]}
    assert found.attributes["00181170"] == {"vr": "IS", "Value": [2**70]}
    assert found.attributes["00181150"] == {"vr": "DS", "Value": [None, 1.5]}


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 10**23, "1e999", "-1e999"])
def test_integer_attributes_outside_the_is_range_are_kept_but_not_in_columns(
    index: Index, record: Record, value: object
) -> None:
    """A malformed Instance Number, Series Number or Number of Frames (beyond what an IS
    can hold, or infinite) is indexed: the value stays in the attributes; the integer
    column, which matches QIDO's queries, is left empty instead of overflowing."""
    project = index.create_project("p", key_salt=b"s")
    kept = record(project.id, "1.2.3", "1.2.3.1", "1.2.3.1.1")
    for tag in ("00200013", "00200011", "00280008"):
        kept.attributes[tag] = {"vr": "IS", "Value": [value]}
    index.add_instances([kept])

    found = index.get_instances(project.id, ["1.2.3.1.1"])["1.2.3.1.1"]
    assert found.attributes["00200013"] == {"vr": "IS", "Value": [value]}
    for level in ("series", "instance"):
        [result] = index.search(project.id, parse_qido(level, [], study_instance_uid="1.2.3"))
        number = "00200011" if level == "series" else "00200013"
        assert result[number] == {"vr": "IS", "Value": [value]}
    assert index.search(project.id, parse_qido("instance", [("InstanceNumber", "1")])) == []
