"""QIDO-RS matching (PS3.4 C.2.2.2) and return attributes (PS3.18 10.6.3), on both backends.

One small archive per backend, shared by the tests of this module, which only read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from radbank.dicom.query import parse_qido
from radbank.index import Index, InstanceRecord

RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
HOSTILE = "O'Brien; DROP TABLE studies;--"


@dataclass
class Archive:
    index: Index
    project_id: int
    other_project_id: int

    def search(self, level: str, params: list[tuple[str, str]], **scope: str) -> list[dict]:
        return self.index.search(self.project_id, parse_qido(level, params, **scope))

    def uids(self, level: str, params: list[tuple[str, str]], **scope: str) -> list[str]:
        tag = {"study": "0020000D", "series": "0020000E", "instance": "00080018"}[level]
        return [r[tag]["Value"][0] for r in self.search(level, params, **scope)]


def _study(
    record: Callable[..., InstanceRecord],
    project_id: int,
    study: str,
    series: list[tuple[str, dict]],
    **study_attributes: Any,
) -> list[InstanceRecord]:
    return [
        record(
            project_id,
            study,
            f"{study}.{s}",
            f"{study}.{s}.{n}",
            InstanceNumber=n,
            **study_attributes,
            **series_attributes,
        )
        for s, series_attributes in series
        for n in range(1, series_attributes.pop("_count", 1) + 1)
    ]


@pytest.fixture(scope="module")
def archive(module_database_url: str, record: Callable[..., InstanceRecord]) -> Iterator[Archive]:
    index = Index(module_database_url)
    project = index.create_project("search", key_salt=b"s")
    other = index.create_project("other", key_salt=b"o")
    p = project.id
    records = [
        *_study(
            record,
            p,
            "1.1",
            [
                (
                    "1",
                    {
                        "Modality": "CT",
                        "SeriesNumber": 1,
                        "Rows": 512,
                        "Columns": 512,
                        "BitsAllocated": 16,
                        "SeriesDescription": "Thorax 1mm",
                        "BodyPartExamined": "CHEST",
                        "SliceThickness": "1.0",
                        "_count": 3,
                    },
                ),
                ("2", {"Modality": "SR", "SeriesNumber": 2, "SOPClassUID": RDSR}),
            ],
            PatientName="Doe^John",
            PatientID="P_1",
            PatientBirthDate="19700101",
            PatientSex="M",
            StudyDate="20240115",
            StudyTime="083000",
            AccessionNumber="ACC%1",
            StudyID="1",
            ReferringPhysicianName="House^Gregory",
            StudyDescription="CT Thorax",
            SpecificCharacterSet="ISO_IR 100",
        ),
        *_study(
            record,
            p,
            "1.2",
            [
                ("1", {"Modality": "MR", "SeriesNumber": 1, "Rows": 256, "_count": 2}),
                (
                    "2",
                    {
                        "Modality": "MR",
                        "SeriesNumber": 3,
                        "SeriesDate": "20240302",
                        "SeriesTime": "091500",
                        "PerformedProcedureStepStartDate": "20240302",
                        "PerformedProcedureStepStartTime": "091000",
                    },
                ),
            ],
            PatientName="DOE^JANE",
            PatientID="PX1",
            PatientSex="F",
            StudyDate="20240301",
            StudyTime="141500",
            AccessionNumber="ACC1",
            StudyDescription=HOSTILE,
        ),
        *_study(
            record,
            p,
            "1.3",
            [
                (
                    "1",
                    {
                        "Modality": "PT",
                        "SeriesNumber": 1,
                        "NumberOfFrames": 4,
                        "AcquisitionDateTime": "20231231235959.5+0100",
                    },
                ),
                ("2", {"Modality": "CT", "SeriesNumber": 2}),
            ],
            PatientName="Smith^Anna",
            PatientID="P%1",
            StudyDate="20231231",
            StudyTime="235959",
            StudyDescription="PET 50%",
        ),
        # No StudyDate/StudyTime and no SeriesNumber at all.
        *_study(
            record, p, "1.4", [("1", {"Modality": "NM"})], PatientName="dOe^jOhN", PatientID="[abc]"
        ),
        *_study(record, other.id, "1.5", [("1", {"Modality": "CT"})], PatientID="P_1"),
    ]
    index.add_instances(records)
    yield Archive(index, p, other.id)
    index.close()


def test_universal_query_lists_all_studies_in_date_order(archive: Archive) -> None:
    # The study without a date sorts first on both backends.
    assert archive.uids("study", []) == ["1.4", "1.3", "1.1", "1.2"]
    assert archive.uids("study", [("PatientID", ""), ("PatientName", "*")]) == [
        "1.4",
        "1.3",
        "1.1",
        "1.2",
    ]


def test_projects_are_separate(archive: Archive) -> None:
    assert archive.uids("study", [("PatientID", "P_1")]) == ["1.1"]
    other = archive.index.search(archive.other_project_id, parse_qido("study", []))
    assert [r["0020000D"]["Value"][0] for r in other] == ["1.5"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("PatientName", "doe^john")], ["1.4", "1.1"]),
        ([("PatientName", "DOE^JOHN")], ["1.4", "1.1"]),
        ([("00100010", "Doe^Jane")], ["1.2"]),
        ([("PatientName", "doe*")], ["1.4", "1.1", "1.2"]),
        ([("PatientName", "*^j?n*")], ["1.2"]),
        ([("ReferringPhysicianName", "house*")], ["1.1"]),
    ],
)
def test_person_names_match_case_insensitively(archive: Archive, params, expected) -> None:
    assert archive.uids("study", params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("PatientID", "P*")], ["1.3", "1.1", "1.2"]),
        ([("PatientID", "p*")], []),  # other VRs are case-sensitive
        ([("PatientID", "P?1")], ["1.3", "1.1", "1.2"]),
        ([("PatientID", "P_1")], ["1.1"]),  # `_` is not a wildcard
        ([("PatientID", "P_*")], ["1.1"]),
        ([("PatientID", "P%1")], ["1.3"]),  # nor is `%`
        ([("PatientID", "P%*")], ["1.3"]),
        ([("AccessionNumber", "ACC%1")], ["1.1"]),
        ([("PatientID", "[abc]")], ["1.4"]),  # nor `[` (GLOB on SQLite)
        ([("PatientID", "[a*")], ["1.4"]),
        ([("StudyDescription", "*50%")], ["1.3"]),
        ([("StudyDescription", "ct thorax")], []),
    ],
)
def test_wildcards_and_literal_metacharacters(archive: Archive, params, expected) -> None:
    assert archive.uids("study", params) == expected


def test_sql_metacharacters_are_matched_literally(archive: Archive) -> None:
    assert archive.uids("study", [("StudyDescription", HOSTILE)]) == ["1.2"]
    assert archive.uids("study", [("StudyDescription", "O'Brien*")]) == ["1.2"]
    assert archive.uids("study", [("PatientID", "' OR '1'='1")]) == []
    assert archive.uids("study", [("PatientID", "x'; DELETE FROM studies; --")]) == []
    assert len(archive.uids("study", [])) == 4


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("StudyDate", "20240115")], ["1.1"]),
        ([("StudyDate", "20240101-20241231")], ["1.1", "1.2"]),
        ([("StudyDate", "-20231231")], ["1.3"]),  # the study without a date never matches
        ([("StudyDate", "20240201-")], ["1.2"]),
        ([("StudyTime", "0800-0900")], ["1.1"]),
        ([("StudyTime", "-1415")], ["1.1", "1.2"]),  # up to and including 14:15:59
        ([("StudyTime", "2359")], ["1.3"]),  # a single time matches at its precision
        ([("StudyTime", "1415-")], ["1.3", "1.2"]),
        ([("StudyDate", "20240101-"), ("StudyTime", "-1200")], ["1.1"]),
        ([("PatientBirthDate", "19700101")], ["1.1"]),
    ],
)
def test_date_and_time_ranges(archive: Archive, params, expected) -> None:
    assert archive.uids("study", params) == expected


def test_uid_lists(archive: Archive) -> None:
    assert archive.uids("study", [("StudyInstanceUID", "1.1,1.3")]) == ["1.3", "1.1"]
    assert archive.uids("study", [("StudyInstanceUID", "1.2\\1.4\\9.9")]) == ["1.4", "1.2"]
    assert archive.uids("series", [("SeriesInstanceUID", "1.1.2,1.3.1")]) == ["1.1.2", "1.3.1"]


def test_modalities_in_study_matches_any_series(archive: Archive) -> None:
    assert archive.uids("study", [("ModalitiesInStudy", "MR")]) == ["1.2"]
    assert archive.uids("study", [("ModalitiesInStudy", "CT")]) == ["1.3", "1.1"]
    assert archive.uids("study", [("ModalitiesInStudy", "SR\\PT")]) == ["1.3", "1.1"]
    assert archive.uids("study", [("ModalitiesInStudy", "N*")]) == ["1.4"]
    (study,) = archive.search("study", [("ModalitiesInStudy", "SR")])
    assert study["00080061"] == {"vr": "CS", "Value": ["CT", "SR"]}


def test_series_queries_match_study_attributes(archive: Archive) -> None:
    assert archive.uids("series", [("PatientID", "P_1")]) == ["1.1.1", "1.1.2"]
    assert archive.uids("series", [("Modality", "CT")]) == ["1.1.1", "1.3.2"]
    assert archive.uids("series", [("Modality", "CT,PT")]) == ["1.1.1", "1.3.1", "1.3.2"]
    assert archive.uids("series", [("ModalitiesInStudy", "SR")]) == ["1.1.1", "1.1.2"]
    assert archive.uids("series", [("SeriesNumber", "3")]) == ["1.2.2"]
    assert archive.uids("series", [("SeriesDescription", "thorax*")]) == []
    assert archive.uids("series", [("SeriesDescription", "Thorax*")]) == ["1.1.1"]
    assert archive.uids("series", [("SeriesDate", "20240301-"), ("SeriesTime", "0915")]) == [
        "1.2.2"
    ]
    assert archive.uids(
        "series",
        [
            ("PerformedProcedureStepStartDate", "20240302"),
            ("PerformedProcedureStepStartTime", "0900-0910"),
        ],
    ) == ["1.2.2"]


def test_study_scoped_series(archive: Archive) -> None:
    assert archive.uids("series", [], study_instance_uid="1.2") == ["1.2.1", "1.2.2"]
    assert archive.uids("series", [("Modality", "MR")], study_instance_uid="1.1") == []
    assert archive.uids("series", [], study_instance_uid="9.9") == []


def test_instance_queries(archive: Archive) -> None:
    assert archive.uids("instance", [("Rows", "512")]) == ["1.1.1.1", "1.1.1.2", "1.1.1.3"]
    assert archive.uids("instance", [("SOPClassUID", RDSR)]) == ["1.1.2.1"]
    assert archive.uids("instance", [("InstanceNumber", "2"), ("Modality", "MR")]) == ["1.2.1.2"]
    assert archive.uids("instance", [("PatientName", "smith*"), ("NumberOfFrames", "4")]) == [
        "1.3.1.1"
    ]
    # 20231231235959.5+0100 is 22:59:59.5 UTC: date-times compare as the moments they name.
    assert archive.uids("instance", [("AcquisitionDateTime", "20231231-20240101")]) == ["1.3.1.1"]
    assert archive.uids("instance", [("AcquisitionDateTime", "2023123122")]) == ["1.3.1.1"]
    assert archive.uids("instance", [("AcquisitionDateTime", "2023123123")]) == []
    assert archive.uids("instance", [("AcquisitionDateTime", "-20231230")]) == []


def test_scoped_instance_queries(archive: Archive) -> None:
    assert archive.uids("instance", [], study_instance_uid="1.2") == [
        "1.2.1.1",
        "1.2.1.2",
        "1.2.2.1",
    ]
    assert archive.uids("instance", [], study_instance_uid="1.1", series_instance_uid="1.1.1") == [
        "1.1.1.1",
        "1.1.1.2",
        "1.1.1.3",
    ]
    assert archive.uids("instance", [], study_instance_uid="1.2", series_instance_uid="1.1.1") == []


def test_limit_and_offset(archive: Archive) -> None:
    assert archive.uids("study", [("limit", "2")]) == ["1.4", "1.3"]
    assert archive.uids("study", [("limit", "2"), ("offset", "1")]) == ["1.3", "1.1"]
    assert archive.uids("study", [("offset", "3")]) == ["1.2"]
    assert archive.uids("study", [("offset", "10")]) == []
    assert archive.uids(
        "instance", [("limit", "1"), ("offset", "3")], study_instance_uid="1.1"
    ) == ["1.1.2.1"]


def test_study_results_carry_the_required_attributes(archive: Archive) -> None:
    (study,) = archive.search("study", [("PatientID", "P_1")])
    assert list(study) == sorted(study)
    assert study["00080005"] == {"vr": "CS", "Value": ["ISO_IR 100"]}
    assert study["00080020"] == {"vr": "DA", "Value": ["20240115"]}
    assert study["00080030"] == {"vr": "TM", "Value": ["083000"]}
    assert study["00080050"] == {"vr": "SH", "Value": ["ACC%1"]}
    assert study["00080056"] == {"vr": "CS", "Value": ["ONLINE"]}
    assert study["00080090"] == {"vr": "PN", "Value": [{"Alphabetic": "House^Gregory"}]}
    assert study["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]}
    assert study["00100030"] == {"vr": "DA", "Value": ["19700101"]}
    assert study["00100040"] == {"vr": "CS", "Value": ["M"]}
    assert study["0020000D"] == {"vr": "UI", "Value": ["1.1"]}
    assert study["00200010"] == {"vr": "SH", "Value": ["1"]}
    assert study["00201206"] == {"vr": "IS", "Value": [2]}
    assert study["00201208"] == {"vr": "IS", "Value": [4]}
    assert "00081190" not in study  # RetrieveURL is the router's
    assert "00081030" not in study  # StudyDescription only when asked for


def test_attributes_without_value_are_returned_empty(archive: Archive) -> None:
    (study,) = archive.search("study", [("PatientID", "[abc]")])
    assert study["00080020"] == {"vr": "DA"}
    assert study["00080050"] == {"vr": "SH"}
    assert study["00100040"] == {"vr": "CS"}
    assert "00080005" not in study  # SpecificCharacterSet only when known


def test_matching_and_included_attributes_are_returned(archive: Archive) -> None:
    (study,) = archive.search(
        "study",
        [
            ("StudyDescription", "CT*"),
            ("includefield", "PatientID,00081030"),
            ("includefield", "IssuerOfPatientID"),
        ],
    )
    assert study["00081030"] == {"vr": "LO", "Value": ["CT Thorax"]}
    assert study["00100021"] == {"vr": "LO"}  # asked for, not known


def test_includefield_all(archive: Archive) -> None:
    (study,) = archive.search("study", [("PatientID", "P_1"), ("includefield", "all")])
    assert study["00081030"]["Value"] == ["CT Thorax"]
    assert "00180015" not in study  # BodyPartExamined is a series attribute
    (series,) = archive.search("series", [("SeriesInstanceUID", "1.1.1"), ("includefield", "all")])
    assert series["00180015"]["Value"] == ["CHEST"]
    (instance,) = archive.search(
        "instance", [("SOPInstanceUID", "1.1.1.1"), ("includefield", "all")]
    )
    assert instance["00180050"]["Value"] == [1.0]  # SliceThickness, an instance attribute
    assert list(instance) == sorted(instance)


def test_series_results(archive: Archive) -> None:
    (series,) = archive.search("series", [("SeriesNumber", "3")])
    assert series["00080060"] == {"vr": "CS", "Value": ["MR"]}
    assert series["0020000E"] == {"vr": "UI", "Value": ["1.2.2"]}
    assert series["00200011"] == {"vr": "IS", "Value": [3]}
    assert series["00201209"] == {"vr": "IS", "Value": [1]}
    assert series["00400244"] == {"vr": "DA", "Value": ["20240302"]}
    assert series["00400245"] == {"vr": "TM", "Value": ["091000"]}
    assert series["0008103E"] == {"vr": "LO"}
    # Not scoped to a study: the study attributes come along (PS3.18 10.6.3.3.2).
    assert series["0020000D"] == {"vr": "UI", "Value": ["1.2"]}
    assert series["00100020"] == {"vr": "LO", "Value": ["PX1"]}
    assert series["00201208"] == {"vr": "IS", "Value": [3]}
    (scoped,) = archive.search("series", [("SeriesNumber", "3")], study_instance_uid="1.2")
    assert scoped["0020000D"] == {"vr": "UI", "Value": ["1.2"]}
    assert "00100020" not in scoped


def test_instance_results(archive: Archive) -> None:
    (instance,) = archive.search("instance", [("SOPInstanceUID", "1.1.1.2")])
    assert instance["00080016"] == {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]}
    assert instance["00080018"] == {"vr": "UI", "Value": ["1.1.1.2"]}
    assert instance["00200013"] == {"vr": "IS", "Value": [2]}
    assert instance["00280010"] == {"vr": "US", "Value": [512]}
    assert instance["00280011"] == {"vr": "US", "Value": [512]}
    assert instance["00280100"] == {"vr": "US", "Value": [16]}
    assert instance["00280008"] == {"vr": "IS"}
    assert instance["0020000D"]["Value"] == ["1.1"]
    assert instance["0020000E"]["Value"] == ["1.1.1"]
    assert instance["00201209"] == {"vr": "IS", "Value": [3]}
    (scoped,) = archive.search(
        "instance",
        [("InstanceNumber", "2")],
        study_instance_uid="1.1",
        series_instance_uid="1.1.1",
    )
    assert "00201209" not in scoped and "00100020" not in scoped


def test_times_stored_with_fewer_digits_are_in_the_ranges_they_fall_in(
    index: Index, record: Callable[..., InstanceRecord]
) -> None:
    """A TM may leave out its trailing parts ("1430" is 14:30:00) and a DT too ("2020" is
    its first moment): a range or single time compares them at their lowest, as PS3.4
    C.2.2.2.5 asks, not as the shorter text they are stored as."""
    p = index.create_project("times", key_salt=b"t").id
    times = {"2.1": "14", "2.2": "1430", "2.3": "143000.123456", "2.4": "2300", "2.5": "0959"}
    index.add_instances(
        [
            record(p, uid, f"{uid}.1", f"{uid}.1.1", StudyDate="20240101", StudyTime=time)
            for uid, time in times.items()
        ]
        + [
            record(p, "3.1", "3.1.1", "3.1.1.1", AcquisitionDateTime="2020"),
            record(p, "3.2", "3.2.1", "3.2.1.1", AcquisitionDateTime="202001011200"),
            record(p, "3.3", "3.3.1", "3.3.1.1", AcquisitionDateTime="20191231235959.5"),
        ]
    )

    def studies(value: str) -> set[str]:
        query = parse_qido("study", [("StudyTime", value)])
        return {r["0020000D"]["Value"][0] for r in index.search(p, query)}

    def instances(value: str) -> set[str]:
        query = parse_qido("instance", [("AcquisitionDateTime", value)])
        return {r["00080018"]["Value"][0] for r in index.search(p, query)}

    assert studies("140000-150000") == {"2.1", "2.2", "2.3"}
    assert studies("1400-1500") == {"2.1", "2.2", "2.3"}
    assert studies("143000-150000") == {"2.2", "2.3"}
    assert studies("143000.1-") == {"2.3", "2.4"}
    assert studies("230000") == {"2.4"}
    assert studies("-1359") == {"2.5"}
    assert studies("14") == {"2.1", "2.2", "2.3"}
    assert instances("20200101-") == {"3.1.1.1", "3.2.1.1"}
    assert instances("20200101120000-20200101120000") == {"3.2.1.1"}
    assert instances("-20191231235959") == {"3.3.1.1"}


def test_a_pattern_of_only_asterisks_matches_empty_values_too(
    index: Index, record: Callable[..., InstanceRecord]
) -> None:
    """`*` matches any sequence of characters, a zero-length one included (PS3.4
    C.2.2.2.4): "**" is the universal match "*" is, not a match of non-empty values."""
    p = index.create_project("stars", key_salt=b"s").id
    index.add_instances(
        [
            record(p, "4.1", "4.1.1", "4.1.1.1", StudyID="7", ReferringPhysicianName="Doe"),
            record(p, "4.2", "4.2.1", "4.2.1.1"),
        ]
    )
    for key in ("StudyID", "ReferringPhysicianName", "StudyDescription"):
        for pattern in ("*", "**", "***"):
            found = index.search(p, parse_qido("study", [(key, pattern)]))
            assert {r["0020000D"]["Value"][0] for r in found} == {"4.1", "4.2"}, (key, pattern)


def test_names_match_by_character_and_without_trailing_empty_components(
    index: Index, record: Callable[..., InstanceRecord]
) -> None:
    """`?` is one character of a name, a "ß" too; "Doe^John^^^" and "Doe^John" are the
    same name (PS3.5 6.2); a name given with its ideographic and phonetic groups matches
    on its alphabetic group, the one the index holds."""
    p = index.create_project("names", key_salt=b"n").id
    index.add_instances(
        [
            record(p, "5.1", "5.1.1", "5.1.1.1", ReferringPhysicianName="Straße^Ulf"),
            record(p, "5.2", "5.2.1", "5.2.1.1", ReferringPhysicianName="Doe^John^^^"),
            record(p, "5.3", "5.3.1", "5.3.1.1", ReferringPhysicianName="Yamada^Tarou=山田^太郎"),
        ]
    )

    def studies(value: str) -> list[str]:
        query = parse_qido("study", [("ReferringPhysicianName", value)])
        return [r["0020000D"]["Value"][0] for r in index.search(p, query)]

    assert studies("stra?e*") == ["5.1"]
    assert studies("STRASSE*") == []
    assert studies("Doe^John") == ["5.2"]
    assert studies("doe^john^") == ["5.2"]
    assert studies("Yamada^Tarou=山田^太郎=やまだ^たろう") == ["5.3"]
    assert studies("yamada*=*") == ["5.3"]


def test_date_times_with_a_utc_offset_match_the_moment_they_name(
    index: Index, record: Callable[..., InstanceRecord]
) -> None:
    """PS3.4 C.2.2.2.5: the offset from UTC in a value is taken into account, in stored
    values and query values alike; a value without one is compared as written."""
    p = index.create_project("zones", key_salt=b"z").id
    index.add_instances(
        [
            record(p, "6.1", "6.1.1", "6.1.1.1", AcquisitionDateTime="20200101120000+0200"),
            record(p, "6.2", "6.2.1", "6.2.1.1", AcquisitionDateTime="20191231235959.5-0500"),
            record(p, "6.3", "6.3.1", "6.3.1.1", AcquisitionDateTime="20200101120000"),
        ]
    )

    def instances(value: str) -> list[str]:
        query = parse_qido("instance", [("AcquisitionDateTime", value)])
        return sorted(r["00080018"]["Value"][0] for r in index.search(p, query))

    assert instances("20200101100000") == ["6.1.1.1"]
    assert instances("20200101120000") == ["6.3.1.1"]
    assert instances("20200101045959-20200101050000") == ["6.2.1.1"]
    assert instances("20191231235959-20191231235959") == []
    assert instances("20200101120000+0200") == ["6.1.1.1"]
    assert instances("20200101-20200101") == ["6.1.1.1", "6.2.1.1", "6.3.1.1"]
