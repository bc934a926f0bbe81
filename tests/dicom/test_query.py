"""QIDO-RS query parameters: what is accepted, how it is parsed, and what is refused (400)."""

from __future__ import annotations

import pytest

from radbank.dicom.query import MAX_VALUE_LENGTH, AttributeFilter, QueryError, parse_qido


def only_filter(level: str, name: str, value: str) -> AttributeFilter:
    (attribute_filter,) = parse_qido(level, [(name, value)]).filters
    return attribute_filter


def test_defaults() -> None:
    query = parse_qido("study", [])
    assert query.level == "study"
    assert query.filters == ()
    assert query.include_fields == frozenset()
    assert not query.include_all
    assert query.limit is None
    assert query.offset == 0
    assert not query.fuzzy_matching


def test_keywords_and_tags_name_the_same_attribute() -> None:
    by_keyword = only_filter("study", "PatientID", "P1")
    by_tag = only_filter("study", "00100020", "P1")
    assert by_keyword == by_tag
    assert (by_tag.keyword, by_tag.tag, by_tag.vr) == ("PatientID", "00100020", "LO")
    assert only_filter("study", "0020000d", "1.2").keyword == "StudyInstanceUID"


def test_kinds_of_matching() -> None:
    assert only_filter("study", "PatientID", "").kind == "universal"
    assert only_filter("study", "PatientID", "*").kind == "universal"
    single = only_filter("study", "PatientID", "P1")
    assert (single.kind, single.values) == ("single", ("P1",))
    wildcard = only_filter("study", "PatientName", "Doe^J?hn*")
    assert (wildcard.kind, wildcard.values) == ("wildcard", ("Doe^J?hn*",))
    uids = only_filter("study", "StudyInstanceUID", "1.2.3,1.2.4\\2.25.1")
    assert (uids.kind, uids.values) == ("list", ("1.2.3", "1.2.4", "2.25.1"))
    codes = only_filter("study", "ModalitiesInStudy", "CT\\MR")
    assert (codes.kind, codes.values) == ("list", ("CT", "MR"))
    number = only_filter("series", "SeriesNumber", "007")
    assert (number.kind, number.values) == ("single", ("7",))


@pytest.mark.parametrize(
    ("value", "kind", "lower", "upper"),
    [
        ("20240115", "single", "20240115", "20240115"),
        ("20240101-20241231", "range", "20240101", "20241231"),
        ("-20241231", "range", None, "20241231"),
        ("20240101-", "range", "20240101", None),
        ("20240229", "single", "20240229", "20240229"),
    ],
)
def test_date_values_and_ranges(value: str, kind: str, lower, upper) -> None:
    parsed = only_filter("study", "StudyDate", value)
    assert (parsed.kind, parsed.lower, parsed.upper) == (kind, lower, upper)


@pytest.mark.parametrize(
    ("value", "lower", "upper"),
    [
        ("0800-1700", "0800", "1700"),
        ("-235959.999999", None, "235959.999999"),
        ("07-", "07", None),
    ],
)
def test_time_ranges(value: str, lower, upper) -> None:
    parsed = only_filter("study", "StudyTime", value)
    assert (parsed.kind, parsed.lower, parsed.upper) == ("range", lower, upper)


@pytest.mark.parametrize(
    ("value", "kind", "lower", "upper"),
    [
        ("20240101120000", "single", "20240101120000", "20240101120000"),
        # A `-` that starts a UTC offset is not a range separator.
        ("20240101120000-0500", "single", "20240101120000-0500", "20240101120000-0500"),
        ("2024-2025", "range", "2024", "2025"),
        ("20240101120000+0100-20240102", "range", "20240101120000+0100", "20240102"),
        ("-202401", "range", None, "202401"),
    ],
)
def test_date_time_values_and_ranges(value: str, kind: str, lower, upper) -> None:
    parsed = only_filter("instance", "AcquisitionDateTime", value)
    assert (parsed.kind, parsed.lower, parsed.upper) == (kind, lower, upper)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("StudyDate", "99999999", "not a calendar date"),
        ("StudyDate", "20241399", "not a calendar date"),
        ("StudyDate", "20230229", "not a calendar date"),
        ("StudyDate", "2024", "not a date"),
        ("StudyDate", "2024-01-01", "use YYYYMMDD"),
        ("StudyDate", "20241231-20240101", "ends before it starts"),
        ("StudyDate", "2024*", "wildcards are not allowed"),
        ("StudyTime", "2500", "not a time"),
        ("StudyTime", "1261", "not a time"),
        ("StudyTime", "12.5", "fractional seconds"),
        ("StudyTime", "1700-0800", "ends before it starts"),
        ("PatientBirthDate", "--", "not a DA value or range"),
    ],
)
def test_absurd_dates_and_times_are_refused(name: str, value: str, message: str) -> None:
    with pytest.raises(QueryError, match=message) as raised:
        parse_qido("study", [(name, value)])
    assert name in str(raised.value)


@pytest.mark.parametrize(
    "value", ["20241399000000", "2024010125", "202401011200+9999", "20240101-20231231"]
)
def test_absurd_date_times_are_refused(value: str) -> None:
    with pytest.raises(QueryError, match="AcquisitionDateTime"):
        parse_qido("instance", [("AcquisitionDateTime", value)])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.2.*", "wildcards are not allowed in UIDs"),
        ("1.02.3", "not a valid UID"),
        ("1.2.3,", "empty item"),
        ("abc", "not a valid UID"),
        ("1." + "2" * 70, "not a valid UID"),
    ],
)
def test_invalid_uids_are_refused(value: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_qido("study", [("StudyInstanceUID", value)])


def test_sql_metacharacters_are_kept_literally() -> None:
    for value in ("O'Brien", "a;b", "50%", "P_1", "x -- y", '"quoted"', "Robert'); DROP--"):
        parsed = only_filter("study", "StudyDescription", value)
        assert (parsed.kind, parsed.values) == ("single", (value,))
    assert only_filter("study", "PatientID", "P_%*").values == ("P_%*",)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([("PatientNmae", "x")], "unknown query parameter 'PatientNmae'"),
        ([("patientid", "x")], "did you mean PatientID"),
        ([("0010abcd", "x")], "unknown query parameter"),
        ([("Modality", "CT")], "Modality .* cannot be matched in a study-level query"),
        ([("00080060", "CT")], "cannot be matched in a study-level query"),
        ([("Rows", "512")], "cannot be matched"),
        ([("00081032.00080100", "x")], "inside sequences is not supported"),
        ([("PatientID", "a"), ("PatientID", "b")], "more than once"),
        ([("PatientID", "x" * (MAX_VALUE_LENGTH + 1))], "at most 1024"),
        ([("PatientID", "a\x00b")], "control characters"),
        ([("PatientID", "a\\b")], "backslash"),
        ([("PatientSex", "M*\\F")], "wildcards cannot be combined"),
        ([("includefield", "NoSuchKeyword")], "includefield 'NoSuchKeyword'"),
        ([("includefield", "00081032.00080100")], "inside sequences"),
        ([("fuzzymatching", "yes")], "fuzzymatching must be true or false"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(params, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_qido("study", params)


def test_levels_allow_the_attributes_of_the_levels_above() -> None:
    assert parse_qido("series", [("PatientID", "1"), ("Modality", "CT")]).filters
    assert parse_qido("instance", [("StudyDate", "20240101"), ("Rows", "512")]).filters
    with pytest.raises(QueryError, match="series-level"):
        parse_qido("series", [("SOPInstanceUID", "1.2")])
    with pytest.raises(QueryError, match="not an integer"):
        parse_qido("series", [("SeriesNumber", "one")])
    with pytest.raises(QueryError, match="wildcards are not allowed in US"):
        parse_qido("instance", [("Rows", "5*")])


@pytest.mark.parametrize(
    ("params", "limit", "offset"),
    [
        ([("limit", "10")], 10, 0),
        ([("limit", "5000")], 1000, 0),  # capped at max_limit
        ([("offset", "0")], None, 0),
        ([("limit", "1"), ("offset", "20")], 1, 20),
    ],
)
def test_limit_and_offset(params, limit, offset) -> None:
    query = parse_qido("study", params)
    assert (query.limit, query.offset) == (limit, offset)


def test_max_limit_is_configurable() -> None:
    assert parse_qido("study", [("limit", "300")], max_limit=200).limit == 200


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("limit", "-1"),
        ("limit", "0"),
        ("limit", "1.5"),
        ("limit", "ten"),
        ("limit", ""),
        ("offset", "-3"),
        ("offset", "1e3"),
        ("offset", "99999999999999999999"),
        ("limit", "١٢"),  # Unicode digits are not ASCII integers
    ],
)
def test_bad_limit_and_offset(name: str, value: str) -> None:
    with pytest.raises(QueryError, match=name):
        parse_qido("study", [(name, value)])


def test_includefield() -> None:
    query = parse_qido(
        "study",
        [
            ("includefield", "StudyDescription,00081032"),
            ("includefield", " PatientAge , "),
            ("includefield", "00091001"),  # private: no keyword, kept as a tag
        ],
    )
    assert query.include_fields == {
        "StudyDescription",
        "ProcedureCodeSequence",
        "PatientAge",
        "00091001",
    }
    assert not query.include_all
    assert parse_qido("study", [("includefield", "all")]).include_all
    assert parse_qido("study", [("includefield", "PatientAge,all")]).include_all


def test_fuzzymatching_and_ignored_negotiation_parameters() -> None:
    assert parse_qido("study", [("fuzzymatching", "true")]).fuzzy_matching
    assert not parse_qido("study", [("fuzzymatching", "false")]).fuzzy_matching
    query = parse_qido("study", [("accept", "application/dicom+json"), ("charset", "utf-8")])
    assert query.filters == ()


def test_scopes() -> None:
    query = parse_qido("instance", [], study_instance_uid="1.2", series_instance_uid="1.2.3")
    assert (query.study_instance_uid, query.series_instance_uid) == ("1.2", "1.2.3")
    with pytest.raises(QueryError, match="path"):
        parse_qido("series", [], study_instance_uid="1.2.x")
    with pytest.raises(QueryError, match="study-level"):
        parse_qido("study", [], study_instance_uid="1.2")
    with pytest.raises(QueryError, match="level"):
        parse_qido("patient", [])  # type: ignore[arg-type]
