"""The Orthanc peer harness: Orthanc starts on loopback, accepts STOW-RS, answers QIDO-RS."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from dicomweb_client import DICOMwebClient
from pydicom import dcmread
from pydicom.data import get_testdata_file

from peers.orthanc import (
    OrthancPeer,
    orthanc_available,
    orthanc_missing_reason,
    qido_query_string,
)

pytestmark = [
    pytest.mark.orthanc,
    pytest.mark.skipif(not orthanc_available(), reason=str(orthanc_missing_reason())),
]


def test_stow_then_qido_finds_the_instance(tmp_path: Path) -> None:
    dataset = dcmread(get_testdata_file("CT_small.dcm"))
    with OrthancPeer(tmp_path / "orthanc") as orthanc:
        client = DICOMwebClient(url=orthanc.dicomweb_url)

        receipt = client.store_instances([dataset])

        assert not receipt.get("FailedSOPSequence")
        studies = client.search_for_studies(search_filters={"PatientID": dataset.PatientID})
        assert [s["0020000D"]["Value"][0] for s in studies] == [dataset.StudyInstanceUID]
        instances = client.search_for_instances(
            study_instance_uid=dataset.StudyInstanceUID,
            series_instance_uid=dataset.SeriesInstanceUID,
        )
        assert [i["00080018"]["Value"][0] for i in instances] == [dataset.SOPInstanceUID]

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{orthanc.base_url}/system")
    assert "Orthanc has stopped" in orthanc.log_path.read_text()


def test_two_peers_run_side_by_side_with_separate_storage(tmp_path: Path) -> None:
    dataset = dcmread(get_testdata_file("MR_small.dcm"))
    with OrthancPeer(tmp_path / "a") as first, OrthancPeer(tmp_path / "b") as second:
        assert first.http_port != second.http_port
        DICOMwebClient(url=first.dicomweb_url).store_instances([dataset])

        assert DICOMwebClient(url=first.dicomweb_url).search_for_studies()
        assert DICOMwebClient(url=second.dicomweb_url).search_for_studies() == []


def test_person_name_case_sensitivity_is_chosen_at_start(tmp_path: Path) -> None:
    dataset = dcmread(get_testdata_file("CT_small.dcm"))
    dataset.PatientName = "Doe^Jane"
    dataset.PatientID = "abc123"
    counts = {}
    for case_sensitive_pn in (True, False):
        with OrthancPeer(
            tmp_path / str(case_sensitive_pn), case_sensitive_pn=case_sensitive_pn
        ) as orthanc:
            DICOMwebClient(url=orthanc.dicomweb_url).store_instances([dataset])
            for params in (
                [("PatientName", "Doe^J*")],
                [("PatientName", "D?e^*")],
                [("PatientName", "dOE^j*")],
                [("PatientID", "abc123")],
            ):
                url = f"{orthanc.dicomweb_url}/studies?{qido_query_string(params)}"
                counts[case_sensitive_pn, params[0][1]] = len(httpx.get(url).json())

    assert counts == {
        (True, "Doe^J*"): 1,
        (True, "D?e^*"): 1,
        (True, "dOE^j*"): 0,
        (True, "abc123"): 1,
        (False, "Doe^J*"): 1,
        (False, "D?e^*"): 1,
        (False, "dOE^j*"): 1,
        (False, "abc123"): 1,
    }
