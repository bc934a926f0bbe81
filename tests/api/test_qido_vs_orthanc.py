"""QIDO-RS answers of radbank compared with Orthanc's for the same de-identified data.

radbank de-identifies on ingest, so the two servers can only hold the same data if Orthanc
receives what radbank kept: identified instances go into radbank by STOW-RS, radbank's
de-identified instances come back by WADO-RS and go into Orthanc by STOW-RS. Then the
same queries run on both; query values are taken from the de-identified data.

For each query the SET of matched UIDs must be equal, and for each match the values of the
required return attributes (PS3.18 Table 10.6.1-5, -6, -7) that both servers return must
be equal. Known, justified differences of Orthanc 1.10.1 with its DICOMweb plugin 1.7:

- Retrieve URL (0008,1190) names the host and the server's own URL layout: not compared.
- Instance Availability (0008,0056) and Request Attribute Sequence (0040,0275) are not
  returned by Orthanc at all; attributes Orthanc does not return are not compared.
- Orthanc also returns study attributes in searches scoped to one study (and series
  attributes in searches scoped to one series); PS3.18 10.6.3.3 does not ask for them
  there, so only the attributes required for each resource are compared.
- Orthanc answers in no defined order; neither does PS3.18, so sets are compared. With
  limit/offset each server is checked against itself: pages of the expected size, no
  study twice, together exactly the unpaged answer.
- Orthanc reads percent-encoded characters of query values literally (`%2A` is not `*`),
  so the queries send the characters of DICOM matching unencoded
  (`tests/peers/orthanc.py: qido_query_string`); radbank decodes either form. A value
  with a space or a non-ASCII character cannot be queried on Orthanc at all, so name
  queries use an ASCII name (radbank's pseudonyms are).
- Person Name matching is case-insensitive in radbank (PS3.4 C.2.2.2.1 leaves it to the
  SCP); Orthanc is started with CaseSensitivePN/QidoCaseSensitive false to match. Orthanc
  then folds the case of every string attribute (Patient ID, Accession Number...), where
  PS3.4 and radbank match exactly; so queries on those use the values as stored, on
  which both rules agree, and case variants are only tried on PatientName.
- Numbers (IS, DS, US...) are compared as numbers, so 1, 1.0 and "1" are equal whichever
  JSON form a server chooses. Modalities in Study is compared as a set.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from dicomweb_client import DICOMwebClient
from peers.orthanc import (
    OrthancPeer,
    orthanc_available,
    orthanc_missing_reason,
    qido_query_string,
)
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from radbank.synthetic import demo_studies

pytestmark = [
    pytest.mark.orthanc,
    pytest.mark.skipif(not orthanc_available(), reason=str(orthanc_missing_reason())),
]

STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"
LEVEL_KEY = {"studies": STUDY_UID, "series": SERIES_UID, "instances": SOP_UID}

# PS3.18 Table 10.6.1-5 (study), -6 (series), -7 (instance), without Retrieve URL.
STUDY_RETURN = {
    "00080020": "StudyDate",
    "00080030": "StudyTime",
    "00080050": "AccessionNumber",
    "00080056": "InstanceAvailability",
    "00080061": "ModalitiesInStudy",
    "00080090": "ReferringPhysicianName",
    "00080201": "TimezoneOffsetFromUTC",
    "00100010": "PatientName",
    "00100020": "PatientID",
    "00100030": "PatientBirthDate",
    "00100040": "PatientSex",
    "0020000D": "StudyInstanceUID",
    "00200010": "StudyID",
    "00201206": "NumberOfStudyRelatedSeries",
    "00201208": "NumberOfStudyRelatedInstances",
}
SERIES_RETURN = {
    "00080060": "Modality",
    "00080201": "TimezoneOffsetFromUTC",
    "0008103E": "SeriesDescription",
    "0020000E": "SeriesInstanceUID",
    "00200011": "SeriesNumber",
    "00201209": "NumberOfSeriesRelatedInstances",
    "00400244": "PerformedProcedureStepStartDate",
    "00400245": "PerformedProcedureStepStartTime",
    "00400275": "RequestAttributesSequence",
}
INSTANCE_RETURN = {
    "00080016": "SOPClassUID",
    "00080018": "SOPInstanceUID",
    "00080056": "InstanceAvailability",
    "00080201": "TimezoneOffsetFromUTC",
    "00200013": "InstanceNumber",
    "00280010": "Rows",
    "00280011": "Columns",
    "00280100": "BitsAllocated",
    "00280008": "NumberOfFrames",
}
# PS3.18 10.6.3.3: a search returns its own level's attributes, plus those of each level
# above that its URL does not fix (all series: study too; a study's instances: series too).
REQUIRED = {
    "/studies": STUDY_RETURN,
    "/series": {**STUDY_RETURN, **SERIES_RETURN},
    "/studies/{}/series": SERIES_RETURN,
    "/instances": {**STUDY_RETURN, **SERIES_RETURN, **INSTANCE_RETURN},
    "/studies/{}/instances": {**SERIES_RETURN, **INSTANCE_RETURN},
    "/studies/{}/series/{}/instances": INSTANCE_RETURN,
}
NUMERIC_VRS = {"IS", "DS", "US", "UL", "SS", "SL", "FL", "FD"}


@dataclass
class Query:
    name: str
    path: str
    params: list[tuple[str, str]]
    include: tuple[str, ...] = ()
    """Tags asked for with includefield: compared whenever either server has a value."""

    @property
    def level(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def required(self) -> dict[str, str]:
        """Tag -> keyword of the attributes this search must return (PS3.18 10.6.3.3)."""
        segments = self.path.strip("/").split("/")
        resource = "/" + "/".join(s if i % 2 == 0 else "{}" for i, s in enumerate(segments))
        return REQUIRED[resource]

    def url(self, dicomweb_url: str) -> str:
        query_string = qido_query_string(self.params)
        return f"{dicomweb_url}{self.path}" + (f"?{query_string}" if query_string else "")


@dataclass
class Peers:
    radbank_url: str
    orthanc_url: str
    headers: dict[str, str]
    datasets: list[Dataset]
    """radbank's de-identified instances, as retrieved by WADO-RS."""

    def search(self, server: str, query: Query) -> list[dict[str, Any]]:
        url = query.url(self.radbank_url if server == "radbank" else self.orthanc_url)
        response = httpx.get(url, headers=self.headers if server == "radbank" else {}, timeout=60)
        assert response.status_code in (200, 204), f"{server} {url}: {response.text[:500]}"
        return response.json() if response.content else []


# ------------------------------------------------------------------------------ data


def identified_instances() -> list[Dataset]:
    """A multi-site identified CT dataset plus MR-only studies, so modalities differ."""
    datasets = list(
        demo_studies(
            sites=2,
            patients_per_site=2,
            studies_per_patient=2,
            series_per_study=2,
            instances_per_series=2,
        )
    )
    template = dcmread(get_testdata_file("MR_small.dcm"))
    for patient in range(2):
        for study in range(1 + patient):
            study_uid = generate_uid()
            for series in range(1, 3):
                series_uid = generate_uid()
                for number in range(1, 3):
                    ds = copy.deepcopy(template)
                    ds.PatientName = f"Ångström^Mira{patient}"
                    ds.SpecificCharacterSet = "ISO_IR 192"
                    ds.PatientID = f"MR-{patient:03d}"
                    ds.PatientBirthDate = f"1960010{patient + 1}"
                    ds.StudyDate = f"2021060{study + 1}"
                    ds.AccessionNumber = f"MRACC{patient}{study}"
                    ds.StudyInstanceUID = study_uid
                    ds.SeriesInstanceUID = series_uid
                    ds.SeriesNumber = series
                    ds.InstanceNumber = number
                    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
                    datasets.append(ds)
    return datasets


@pytest.fixture
def peers(live_node: Any, tmp_path: Path) -> Iterator[Peers]:
    headers = {"Authorization": f"Bearer {live_node.token}"}
    radbank = DICOMwebClient(url=live_node.dicomweb_url, headers=headers)
    by_study: dict[str, list[Dataset]] = {}
    for ds in identified_instances():
        by_study.setdefault(ds.StudyInstanceUID, []).append(ds)
    for datasets in by_study.values():
        receipt = radbank.store_instances(datasets)
        assert not receipt.get("FailedSOPSequence"), receipt

    deidentified = [
        ds
        for study in radbank.search_for_studies()
        for ds in radbank.retrieve_study(study[STUDY_UID]["Value"][0])
    ]
    assert len(deidentified) == sum(map(len, by_study.values()))

    with OrthancPeer(tmp_path / "orthanc", case_sensitive_pn=False) as orthanc:
        receipt = DICOMwebClient(url=orthanc.dicomweb_url).store_instances(deidentified)
        assert not receipt.get("FailedSOPSequence"), orthanc.log_tail()
        yield Peers(live_node.dicomweb_url, orthanc.dicomweb_url, headers, deidentified)


# --------------------------------------------------------------------------- queries


def _text(ds: Dataset, keyword: str) -> str:
    return str(ds.get(keyword, "") or "")


def build_queries(datasets: list[Dataset]) -> list[Query]:
    """~25 typical queries whose values come from radbank's de-identified instances."""
    first = datasets[0]
    names = sorted({_text(ds, "PatientName") for ds in datasets} - {""})
    dates = sorted({_text(ds, "StudyDate") for ds in datasets} - {""})
    accessions = sorted({_text(ds, "AccessionNumber") for ds in datasets} - {""})
    study_uids = sorted({ds.StudyInstanceUID for ds in datasets})
    mr = next(ds for ds in datasets if ds.Modality == "MR")
    series_numbers = sorted({int(ds.SeriesNumber) for ds in datasets if "SeriesNumber" in ds})
    # Orthanc cannot match a percent-encoded non-ASCII character or a space (see
    # qido_query_string), so name queries use a name without them.
    plain_names = [n for n in names if n.isascii() and " " not in n and len(n) >= 4]
    assert plain_names, f"no ASCII patient name without spaces to query Orthanc with: {names}"
    name = plain_names[len(plain_names) // 2]
    prefix = name[: max(2, len(name) // 3)]
    assert len(dates) >= 3, f"too few distinct study dates to test ranges: {dates}"
    low, middle, high = dates[1], dates[len(dates) // 2], dates[-2]

    queries = [
        Query("all studies", "/studies", []),
        Query("PatientID exact", "/studies", [("PatientID", _text(first, "PatientID"))]),
        Query("PatientName exact", "/studies", [("PatientName", name)]),
        Query("PatientName prefix*", "/studies", [("PatientName", f"{prefix}*")]),
        Query(
            "PatientName prefix* lower case", "/studies", [("PatientName", f"{prefix.lower()}*")]
        ),
        Query(
            "PatientName prefix* swapped case",
            "/studies",
            [("PatientName", f"{prefix.swapcase()}*")],
        ),
        Query("PatientName ? and *", "/studies", [("PatientName", f"{name[0]}?{name[2:4]}*")]),
        Query("PatientName *", "/studies", [("PatientName", "*")]),
        Query("StudyDate single", "/studies", [("StudyDate", middle)]),
        Query("StudyDate A-B", "/studies", [("StudyDate", f"{low}-{high}")]),
        Query("StudyDate -B", "/studies", [("StudyDate", f"-{middle}")]),
        Query("StudyDate A-", "/studies", [("StudyDate", f"{middle}-")]),
        Query(
            "StudyInstanceUID list", "/studies", [("StudyInstanceUID", ",".join(study_uids[1:4]))]
        ),
        Query("ModalitiesInStudy MR", "/studies", [("ModalitiesInStudy", "MR")]),
        Query("ModalitiesInStudy CT", "/studies", [("ModalitiesInStudy", "CT")]),
        Query(
            "PatientID and StudyDate range",
            "/studies",
            [("PatientID", _text(first, "PatientID")), ("StudyDate", f"-{middle}")],
        ),
        Query(
            "includefield StudyDescription, PatientAge",
            "/studies",
            [("includefield", "StudyDescription"), ("includefield", "00101010")],
            include=("00081030", "00101010"),
        ),
        Query("series Modality MR", "/series", [("Modality", "MR")]),
        Query("series SeriesNumber", "/series", [("SeriesNumber", str(series_numbers[-1]))]),
        Query("series of a patient", "/series", [("PatientID", _text(mr, "PatientID"))]),
        Query("series of a study", f"/studies/{first.StudyInstanceUID}/series", []),
        Query(
            "series of a study, includefield",
            f"/studies/{first.StudyInstanceUID}/series",
            [("includefield", "BodyPartExamined"), ("includefield", "00180015")],
            include=("00180015",),
        ),
        Query("instances of a study", f"/studies/{first.StudyInstanceUID}/instances", []),
        Query(
            "instances of a series, InstanceNumber",
            f"/studies/{first.StudyInstanceUID}/series/{first.SeriesInstanceUID}/instances",
            [("InstanceNumber", str(first.InstanceNumber))],
        ),
        Query("instances Modality MR", "/instances", [("Modality", "MR")]),
        Query(
            "instances includefield SliceThickness",
            "/instances",
            [("PatientID", _text(first, "PatientID")), ("includefield", "SliceThickness")],
            include=("00180050",),
        ),
    ]
    if accessions:
        accession = accessions[len(accessions) // 2]
        queries.append(Query("AccessionNumber", "/studies", [("AccessionNumber", accession)]))
    return queries


# ------------------------------------------------------------------------- compare


def _normalised(element: dict[str, Any] | None) -> tuple[Any, ...]:
    if not element:
        return ()
    values = element.get("Value") or []
    vr = element.get("vr")
    if vr in NUMERIC_VRS:
        return tuple(float(v) for v in values)
    if vr == "PN":
        return tuple(
            tuple((v or {}).get(group, "").rstrip() for group in ("Alphabetic", "Ideographic"))
            for v in values
        )
    if vr == "SQ":
        return tuple(
            tuple(sorted((tag, _normalised(item[tag])) for tag in item)) for item in values
        )
    return tuple(str(v).rstrip() for v in values)


def _has_value(element: dict[str, Any] | None) -> bool:
    return bool(element and element.get("Value"))


def attribute_differences(
    query: Query, radbank: dict[str, Any], orthanc: dict[str, Any]
) -> list[str]:
    differences = []
    uid = radbank[LEVEL_KEY[query.level]]["Value"][0]
    for tag in sorted({*query.required, *query.include}):
        mine, theirs = radbank.get(tag), orthanc.get(tag)
        name = query.required.get(tag, tag)
        if theirs is None and tag not in query.include:
            continue  # Orthanc does not return it: nothing to compare with.
        if mine is None and not _has_value(theirs):
            continue
        if mine is None:
            differences.append(f"{uid}: {name} missing, Orthanc has {theirs.get('Value')}")
            continue
        if tag == "00080061":
            same = set(_normalised(mine)) == set(_normalised(theirs))
        else:
            same = _normalised(mine) == _normalised(theirs)
        if not same:
            differences.append(
                f"{uid}: {name} radbank {mine.get('Value')} != Orthanc {theirs.get('Value')}"
            )
    return differences


def compare(peers: Peers, query: Query) -> list[str]:
    key = LEVEL_KEY[query.level]
    answers = {server: peers.search(server, query) for server in ("radbank", "orthanc")}
    by_uid = {
        server: {result[key]["Value"][0]: result for result in results}
        for server, results in answers.items()
    }
    problems = []
    for server, results in answers.items():
        if len(results) != len(by_uid[server]):
            problems.append(f"{server} returned a {key} more than once")
    only_radbank = by_uid["radbank"].keys() - by_uid["orthanc"].keys()
    only_orthanc = by_uid["orthanc"].keys() - by_uid["radbank"].keys()
    if only_radbank or only_orthanc:
        problems.append(
            f"matches differ: only radbank {sorted(only_radbank)}, "
            f"only Orthanc {sorted(only_orthanc)}"
        )
    for uid in sorted(by_uid["radbank"].keys() & by_uid["orthanc"].keys()):
        problems += attribute_differences(query, by_uid["radbank"][uid], by_uid["orthanc"][uid])
    return [f"{query.name} ({query.url('')}): {problem}" for problem in problems]


def paging_problems(peers: Peers, server: str, page_size: int) -> list[str]:
    everything = {r[STUDY_UID]["Value"][0] for r in peers.search(server, Query("", "/studies", []))}
    seen: list[str] = []
    for offset in range(0, len(everything) + page_size, page_size):
        page = peers.search(
            server,
            Query("page", "/studies", [("limit", str(page_size)), ("offset", str(offset))]),
        )
        expected = max(0, min(page_size, len(everything) - offset))
        if len(page) != expected:
            return [f"{server}: offset {offset} returned {len(page)} studies, not {expected}"]
        seen += [r[STUDY_UID]["Value"][0] for r in page]
    if len(seen) != len(set(seen)) or set(seen) != everything:
        return [f"{server}: pages of {page_size} repeat or miss studies"]
    return []


# --------------------------------------------------------------------------- tests


def test_qido_answers_match_orthanc(peers: Peers) -> None:
    queries = build_queries(peers.datasets)
    problems = [problem for query in queries for problem in compare(peers, query)]

    assert not problems, "\n".join(problems)


def test_every_query_finds_something(peers: Peers) -> None:
    """Guards the comparison: queries that match nothing anywhere would prove nothing."""
    empty = [q.name for q in build_queries(peers.datasets) if not peers.search("orthanc", q)]

    assert not empty, f"queries that match nothing on Orthanc: {empty}"


def test_limit_and_offset_page_through_the_same_studies(peers: Peers) -> None:
    total = {
        server: len(peers.search(server, Query("", "/studies", [])))
        for server in ("radbank", "orthanc")
    }
    problems = paging_problems(peers, "radbank", 3) + paging_problems(peers, "orthanc", 3)

    assert total["radbank"] == total["orthanc"]
    assert not problems, "\n".join(problems)
