"""WADO-RS rendered and thumbnail resources (PS3.18 8.3.5, 9.5): images for display, from a
live server on loopback, read back with Pillow and dicomweb-client.

Grayscale pixels are checked against the linear window function of PS3.3 C.11.2.1.2.1
computed here from the original corpus file (de-identification keeps pixels and windows),
and against what Orthanc renders for the same stored object where Orthanc is installed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import corpus
import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from liveserver import LiveNode, RunningServer, new_project
from multipart_parts import parts
from peers.orthanc import OrthancPeer, orthanc_available, orthanc_missing_reason
from PIL import Image
from pydicom.uid import generate_uid

FILES = {
    "CT_small.dcm": None,  # CT, Rescale Intercept -1024, no window stored
    "MR_small.dcm": None,  # window 600/1600 stored
    "RG3_UNCR.dcm": None,  # MONOCHROME1, window 550/1024
    "US1_UNCR.dcm": "NO",  # RGB (BurnedInAnnotation NO: not quarantined)
    "OBXXXX1A.dcm": "NO",  # PALETTE COLOR
    "emri_small.dcm": None,  # 10 frames
    "rtplan.dcm": None,  # no pixel data
    "MR_small_bigendian.dcm": None,  # MR_small in Explicit VR Big Endian
}


@dataclass
class Archive:
    node: LiveNode
    paths: dict[str, str]
    """Corpus file name -> /studies/{study}/series/{series}/instances/{sop}."""

    def get(self, name: str, resource: str = "rendered", **kwargs: object) -> httpx.Response:
        with self.node.client() as http:
            return http.get(f"{self.node.dicomweb_url}{self.paths[name]}/{resource}", **kwargs)

    def image(self, name: str, resource: str = "rendered", **kwargs: object) -> Image.Image:
        reply = self.get(name, resource, **kwargs)
        assert reply.status_code == 200, reply.text[:300]
        return Image.open(io.BytesIO(reply.content))


@pytest.fixture(scope="module")
def archive(server: RunningServer) -> Archive:
    node = LiveNode(server.base_url, server.token, server.data_dir, new_project(server))
    client = DICOMwebClient(url=node.dicomweb_url, headers=node.headers)
    paths = {}
    for name, burned_in in FILES.items():
        dataset = pydicom.dcmread(corpus.path(name))
        if burned_in:
            dataset.BurnedInAnnotation = burned_in
        if name == "MR_small_bigendian.dcm":  # MR_small's SOP Instance UID: a conflict
            dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        url = str(client.store_instances([dataset]).ReferencedSOPSequence[0].RetrieveURL)
        paths[name] = "/" + url.split("/dicom-web/projects/", 1)[1].split("/", 1)[1]
    return Archive(node, paths)


def _original(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(corpus.path(name))


def _linear(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 to 0..255."""
    low, high = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    scaled = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255
    return np.rint(np.where(values <= low, 0, np.where(values > high, 255, scaled))).astype(
        np.uint8
    )


def test_an_instance_renders_as_jpeg_by_default(archive: Archive) -> None:
    reply = archive.get("MR_small.dcm")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(reply.content))
    assert (image.format, image.mode, image.size) == ("JPEG", "L", (64, 64))


def test_the_stored_window_is_applied(archive: Archive) -> None:
    image = archive.image("MR_small.dcm", headers={"Accept": "image/png"})
    assert image.format == "PNG"
    expected = _linear(_original("MR_small.dcm").pixel_array.astype(float), 600, 1600)
    assert np.array_equal(np.asarray(image), expected)


def test_a_window_asked_for_applies_after_the_rescale(archive: Archive) -> None:
    """CT_small: Hounsfield units are the stored values - 1024; a soft-tissue window."""
    image = archive.image(
        "CT_small.dcm", params={"window": "40,400,linear"}, headers={"Accept": "image/png"}
    )
    hounsfield = _original("CT_small.dcm").pixel_array.astype(float) - 1024
    assert np.array_equal(np.asarray(image), _linear(hounsfield, 40, 400))


def test_without_a_stored_window_the_full_range_is_shown(archive: Archive) -> None:
    pixels = np.asarray(archive.image("CT_small.dcm", headers={"Accept": "image/png"}))
    stored = _original("CT_small.dcm").pixel_array
    assert pixels[stored == stored.min()].max() == 0
    assert pixels[stored == stored.max()].min() == 255


def test_sigmoid_and_linear_exact_windows(archive: Archive) -> None:
    values = _original("MR_small.dcm").pixel_array.astype(float)
    png = {"Accept": "image/png"}
    exact = archive.image("MR_small.dcm", params={"window": "600,1600,LINEAR-EXACT"}, headers=png)
    expected = np.rint(np.clip((values - 600) / 1600 + 0.5, 0, 1) * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(exact), expected)
    sigmoid = archive.image("MR_small.dcm", params={"window": "600,1600,sigmoid"}, headers=png)
    expected = np.rint(255 / (1 + np.exp(-4 * (values - 600) / 1600))).astype(np.uint8)
    assert np.array_equal(np.asarray(sigmoid), expected)


def test_monochrome1_is_inverted(archive: Archive) -> None:
    """Low values are white in MONOCHROME1 (a computed radiograph)."""
    pixels = np.asarray(archive.image("RG3_UNCR.dcm", headers={"Accept": "image/png"}))
    expected = 255 - _linear(_original("RG3_UNCR.dcm").pixel_array.astype(float), 550, 1024)
    assert np.array_equal(pixels, expected)


@pytest.mark.parametrize("name", ["US1_UNCR.dcm", "OBXXXX1A.dcm"])
def test_colour_renders_as_rgb(archive: Archive, name: str) -> None:
    """RGB as stored; a palette through its lookup tables (pydicom's apply_color_lut)."""
    image = archive.image(name, headers={"Accept": "image/png"})
    original = _original(name)
    assert image.mode == "RGB"
    expected = original.pixel_array
    if original.PhotometricInterpretation == "PALETTE COLOR":
        expected = pydicom.pixels.apply_color_lut(expected, original)
        if expected.dtype != np.uint8:
            expected = np.rint(expected / 65535 * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(image), expected)


def test_a_big_endian_instance_renders_as_its_little_endian_twin(archive: Archive) -> None:
    png = {"Accept": "image/png"}
    big = np.asarray(archive.image("MR_small_bigendian.dcm", headers=png))
    assert np.array_equal(big, np.asarray(archive.image("MR_small.dcm", headers=png)))


def test_gif_and_the_accept_query_parameter(archive: Archive) -> None:
    """An <img> tag cannot set Accept: the `accept` parameter can (PS3.18 8.3.3.1)."""
    image = archive.image("MR_small.dcm", params={"accept": "image/gif"})
    assert image.format == "GIF"


def test_viewport_scales_within_keeping_the_aspect_ratio(archive: Archive) -> None:
    assert archive.image("US1_UNCR.dcm", params={"viewport": "320,320"}).size == (320, 240)
    assert archive.image("MR_small.dcm", params={"viewport": "256,128"}).size == (128, 128)


def test_viewport_source_region_crops_and_flips(archive: Archive) -> None:
    png = {"Accept": "image/png"}
    whole = np.asarray(archive.image("MR_small.dcm", headers=png))
    region = archive.image("MR_small.dcm", params={"viewport": "32,16,8,4,32,16"}, headers=png)
    assert np.array_equal(np.asarray(region), whole[4:20, 8:40])
    flipped = archive.image("MR_small.dcm", params={"viewport": "64,64,64,0,-64,64"}, headers=png)
    assert np.array_equal(np.asarray(flipped), whole[:, ::-1])


def test_jpeg_quality_changes_the_encoding(archive: Archive) -> None:
    low = archive.get("RG3_UNCR.dcm", params={"quality": "10"}).content
    high = archive.get("RG3_UNCR.dcm", params={"quality": "100"}).content
    assert len(low) < len(high)


def test_frames_render_one_at_a_time(archive: Archive) -> None:
    png = {"Accept": "image/png"}
    frames = _original("emri_small.dcm").pixel_array
    third = np.asarray(archive.image("emri_small.dcm", "frames/3/rendered", headers=png))
    low, high = float(frames[2].min()), float(frames[2].max())
    assert np.array_equal(
        third, _linear(frames[2].astype(float), (low + high + 1) / 2, high - low + 1)
    )
    first = np.asarray(archive.image("emri_small.dcm", "rendered", headers=png))
    assert np.array_equal(
        first, np.asarray(archive.image("emri_small.dcm", "frames/1/rendered", headers=png))
    )
    assert not np.array_equal(first, third)
    missing = archive.get("emri_small.dcm", "frames/11/rendered")
    assert missing.status_code == 404 and "10 frame(s)" in missing.json()["error"]
    several = archive.get("emri_small.dcm", "frames/1,2/rendered")
    assert several.status_code == 400 and "one frame" in several.json()["error"]


def test_thumbnails_fit_128_pixels(archive: Archive) -> None:
    assert archive.image("RG3_UNCR.dcm", "thumbnail").size == (128, 128)
    assert archive.image("US1_UNCR.dcm", "thumbnail").size == (128, 96)
    assert archive.image("MR_small.dcm", "thumbnail").size == (64, 64)  # never enlarged
    assert archive.image("US1_UNCR.dcm", "thumbnail", params={"viewport": "64,64"}).size == (64, 48)
    assert archive.image("emri_small.dcm", "frames/2/thumbnail").size == (64, 64)


def test_study_and_series_thumbnails_come_from_an_image(archive: Archive) -> None:
    """rtplan's study holds no image: 406; a study with images gives one of them."""
    with archive.node.client() as http:
        for name in ("RG3_UNCR.dcm", "emri_small.dcm"):
            study, series = archive.paths[name].split("/")[2:5:2]
            for path in (f"/studies/{study}", f"/studies/{study}/series/{series}"):
                reply = http.get(f"{archive.node.dicomweb_url}{path}/thumbnail")
                assert reply.status_code == 200, reply.text
                assert reply.headers["content-type"] == "image/jpeg"
                assert max(Image.open(io.BytesIO(reply.content)).size) <= 128
        study = archive.paths["rtplan.dcm"].split("/")[2]
        reply = http.get(f"{archive.node.dicomweb_url}/studies/{study}/thumbnail")
    assert reply.status_code == 406 and "no image" in reply.json()["error"]


def test_dicomweb_client_reads_rendered_images(archive: Archive) -> None:
    client = DICOMwebClient(url=archive.node.dicomweb_url, headers=archive.node.headers)
    study, series, sop = archive.paths["emri_small.dcm"].split("/")[2::2]
    png = client.retrieve_instance_rendered(study, series, sop, media_types=("image/png",))
    assert Image.open(io.BytesIO(png)).format == "PNG"
    frame = client.retrieve_instance_frames_rendered(
        study, series, sop, [2], params={"window": "100,200"}
    )
    assert Image.open(io.BytesIO(frame)).format == "JPEG"


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"window": "a,b"}, "window='a,b' must be 2"),
        ({"window": "40"}, "must be center,width or center,width,function"),
        ({"window": "40,400,sigmoid,junk"}, "must be center,width or center,width,function"),
        ({"window": "40,0"}, "at least 1"),
        ({"window": "40,400,cubic"}, "not one of linear, linear-exact, sigmoid"),
        ({"window": "nan,400"}, "must be 2"),
        ({"viewport": "0,10"}, "from 1 to 8192"),
        ({"viewport": "10.5,10"}, "whole numbers"),
        ({"viewport": "100000,10"}, "from 1 to 8192"),
        ({"viewport": "10,10,-1,0"}, "must not be negative"),
        ({"viewport": "8192,8192"}, "more than the 16,777,216 pixels"),
        ({"viewport": "10,10,500,500,10,10"}, "lies outside"),
        ({"quality": "0"}, "from 1 to 100"),
        ({"quality": "high"}, "from 1 to 100"),
        ({"annotation": "patient"}, "burns no annotations"),
        ({"iccprofile": "srgb"}, "only 'no'"),
        ({"PatientID": "x' OR 1=1"}, "is not one of"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    archive: Archive, params: dict[str, str], words: str
) -> None:
    reply = archive.get("MR_small.dcm", params=params)
    assert reply.status_code == 400, reply.text
    assert words in reply.json()["error"], reply.json()["error"]


def test_a_repeated_parameter_is_400(archive: Archive) -> None:
    reply = archive.get("MR_small.dcm", params=[("window", "1,2"), ("window", "3,4")])
    assert reply.status_code == 400 and "2 times" in reply.json()["error"]


def test_what_cannot_be_rendered_is_406(archive: Archive) -> None:
    no_pixels = archive.get("rtplan.dcm")
    assert no_pixels.status_code == 406 and "no pixel data" in no_pixels.json()["error"]
    as_dicom = archive.get("MR_small.dcm", headers={"Accept": "application/dicom"})
    assert as_dicom.status_code == 406
    assert "image/jpeg, image/png, image/gif" in as_dicom.json()["error"]


def test_unknown_objects_and_anonymous_requests(archive: Archive) -> None:
    study, series, _ = archive.paths["MR_small.dcm"].split("/")[2::2]
    base = f"{archive.node.dicomweb_url}/studies/{study}/series/{series}/instances"
    with archive.node.client() as http:
        assert http.get(f"{base}/1.2.3/rendered").status_code == 404
        # The client resolves "..": what reaches the server is the project's own path.
        traversal = f"{archive.node.dicomweb_url}/studies/{study}/../../rendered"
        assert http.get(traversal).status_code in (400, 404)
    assert (
        httpx.get(
            f"{archive.node.dicomweb_url}{archive.paths['MR_small.dcm']}/rendered"
        ).status_code
        == 401
    )


needs_orthanc = pytest.mark.skipif(not orthanc_available(), reason=str(orthanc_missing_reason()))


@pytest.fixture(scope="module")
def orthanc(archive: Archive, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Orthanc holding radbank's stored grayscale files; its DICOMweb URL."""
    with OrthancPeer(tmp_path_factory.mktemp("orthanc")) as peer:
        for name in ("MR_small.dcm", "CT_small.dcm", "RG3_UNCR.dcm"):
            with archive.node.client() as http:
                reply = http.get(
                    f"{archive.node.dicomweb_url}{archive.paths[name]}",
                    headers={
                        "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'
                    },
                )
            [(_, data)] = parts(reply)
            assert httpx.post(f"{peer.base_url}/instances", content=data).status_code == 200
        yield peer.dicomweb_url


@pytest.mark.orthanc
@needs_orthanc
@pytest.mark.parametrize("level", ["instance", "series", "study"])
@pytest.mark.parametrize(
    ("name", "window"),
    [
        ("MR_small.dcm", "600,1600,linear"),
        ("RG3_UNCR.dcm", "550,1024,linear"),  # MONOCHROME1
        ("CT_small.dcm", "40,400,linear"),  # after the rescale
    ],
)
def test_a_window_renders_as_orthanc_renders_it(
    archive: Archive, orthanc: str, name: str, window: str, level: str
) -> None:
    """The same pixels as Orthanc's rendering of the same stored object with the same
    window, within 1 (rounding), for the instance and for its series and study (whose
    images, in both servers, are this one image or its Big Endian twin). Without a window
    they differ by design: radbank applies the image's stored window (PS3.4 N.2's VOI LUT
    transformation), Orthanc 1.10 the full range of the pixels."""
    path = archive.paths[name]
    path = {
        "instance": path,
        "series": path.rsplit("/instances/", 1)[0],
        "study": path.rsplit("/series/", 1)[0],
    }[level]
    png = {"Accept": "image/png"}
    with archive.node.client() as http:
        reply = http.get(
            f"{archive.node.dicomweb_url}{path}/rendered", params={"window": window}, headers=png
        )
    assert reply.status_code == 200, reply.text[:300]
    mine = np.asarray(Image.open(io.BytesIO(reply.content))).astype(int)
    # Orthanc reads the parameter's commas only unencoded.
    reply = httpx.get(f"{orthanc}{path}/rendered?window={window}", headers=png, timeout=60)
    assert reply.status_code == 200, reply.text[:300]
    theirs = np.asarray(Image.open(io.BytesIO(reply.content)).convert("L")).astype(int)
    assert mine.shape == theirs.shape
    assert np.abs(mine - theirs).max() <= 1


# Rendered studies and series (PS3.18 10.4.1.1.3): a study of two series, one of three
# 256 x 256 CT images whose pixels are one value each (their Instance Numbers out of the
# order they are sent in), one of an RT plan (no image).
_SERIES_VALUES = {3: 1100, 1: 1024, 2: 1324}  # Instance Number -> stored value (HU + 1024)


@dataclass
class Group:
    node: LiveNode
    study: str
    series: str
    plan_study: str
    """A study holding only the RT plan."""

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        with self.node.client() as http:
            return http.get(f"{self.node.dicomweb_url}/studies/{path}", **kwargs)


@pytest.fixture(scope="module")
def group(server: RunningServer) -> Group:
    node = LiveNode(server.base_url, server.token, server.data_dir, new_project(server))
    client = DICOMwebClient(url=node.dicomweb_url, headers=node.headers)
    study_uid, series_uid = generate_uid(), generate_uid()
    datasets = []
    for number, value in _SERIES_VALUES.items():
        dataset = _original("CT_small.dcm")
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study_uid, series_uid
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dataset.InstanceNumber = number
        dataset.Rows = dataset.Columns = 256
        dataset.PixelData = np.full((256, 256), value, dtype="<i2").tobytes()
        datasets.append(dataset)
    plan = _original("rtplan.dcm")
    plan.StudyInstanceUID = study_uid
    plan.PatientID, plan.PatientName = datasets[0].PatientID, datasets[0].PatientName
    stored = client.store_instances([*datasets, plan])
    assert "FailedSOPSequence" not in stored
    alone = _original("rtplan.dcm")
    alone.SOPInstanceUID = alone.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    alone.StudyInstanceUID, alone.SeriesInstanceUID = generate_uid(), generate_uid()
    client.store_instances([alone])
    found = client.search_for_series(fuzzymatching=False, search_filters={"Modality": "CT"})
    [series] = [s for s in found if s["00200011"]["Value"] == [datasets[0].SeriesNumber]]
    study = series["0020000D"]["Value"][0]
    plans = client.search_for_studies(search_filters={"ModalitiesInStudy": "RTPLAN"})
    plan_study = next(
        s["0020000D"]["Value"][0] for s in plans if s["0020000D"]["Value"][0] != study
    )
    return Group(node, study, series["0020000E"]["Value"][0], plan_study)


# The window 0,2000 (after the rescale of -1024) shows each image as one grey.
_WINDOW = {"window": "0,2000,linear"}


def _grey(stored: int) -> int:
    return int(_linear(np.array([stored - 1024.0]), 0, 2000)[0])


def test_a_rendered_series_is_its_middle_image_at_full_size(group: Group) -> None:
    for path in (f"{group.study}/series/{group.series}/rendered", f"{group.study}/rendered"):
        reply = group.get(path, params=_WINDOW, headers={"Accept": "image/png"})
        assert reply.status_code == 200, reply.text[:300]
        assert reply.headers["content-type"] == "image/png"
        image = np.asarray(Image.open(io.BytesIO(reply.content)))
        assert image.shape == (256, 256)  # not a thumbnail
        assert set(np.unique(image)) == {_grey(_SERIES_VALUES[2])}  # Instance Number 2


def test_multipart_related_holds_every_image_in_instance_order(group: Group) -> None:
    accept = {"Accept": 'multipart/related; type="image/png"'}
    reply = group.get(
        f"{group.study}/series/{group.series}/rendered", params=_WINDOW, headers=accept
    )
    assert reply.status_code == 200, reply.text[:300]
    assert reply.headers["content-type"].startswith('multipart/related; type="image/png"')
    found = parts(reply)
    assert [kind for kind, _ in found] == ["image/png"] * 3
    greys = [int(np.asarray(Image.open(io.BytesIO(body))).mean()) for _, body in found]
    assert greys == [_grey(_SERIES_VALUES[n]) for n in (1, 2, 3)]
    locations = reply.content.count(b"/rendered\r\n")
    assert locations == 3 and reply.content.count(b"Content-Location: http") == 3


def test_a_study_with_instances_that_are_not_images_is_partial_content(group: Group) -> None:
    reply = group.get(
        f"{group.study}/rendered", headers={"Accept": 'multipart/related; type="image/jpeg"'}
    )
    assert reply.status_code == 206, reply.text[:300]
    assert "1 instance(s) without an image" in reply.headers["warning"]
    assert [kind for kind, _ in parts(reply)] == ["image/jpeg"] * 3


def test_rendered_studies_through_dicomweb_client(group: Group) -> None:
    client = DICOMwebClient(url=group.node.dicomweb_url, headers=group.node.headers)
    series = client.retrieve_series_rendered(group.study, group.series, media_types=("image/png",))
    assert Image.open(io.BytesIO(series)).size == (256, 256)
    # dicomweb-client has no call for a rendered study; with no media type it sends no Accept.
    smaller = client.retrieve_series_rendered(
        group.study, group.series, params={"viewport": "64,64"}
    )
    assert Image.open(io.BytesIO(smaller)).size == (64, 64)


def test_rendered_studies_refuse_what_they_cannot_answer(group: Group) -> None:
    bad_window = group.get(f"{group.study}/rendered", params={"window": "a,b"})
    assert bad_window.status_code == 400 and "window" in bad_window.json()["error"]
    outside = group.get(
        f"{group.study}/rendered",
        params={"viewport": "64,64,300,300,10,10"},
        headers={"Accept": 'multipart/related; type="image/png"'},
    )
    assert outside.status_code == 400 and "lies outside" in outside.json()["error"]
    as_dicom = group.get(f"{group.study}/rendered", headers={"Accept": "application/dicom"})
    assert as_dicom.status_code == 406 and "multipart/related" in as_dicom.json()["error"]
    for accept in ("image/png", 'multipart/related; type="image/png"'):
        no_image = group.get(f"{group.plan_study}/rendered", headers={"Accept": accept})
        assert no_image.status_code == 406 and "no image" in no_image.json()["error"]
    assert group.get("1.2.3/rendered").status_code == 404
    assert group.get(f"{group.study}/series/1.2.3/rendered").status_code == 404
    url = f"{group.node.dicomweb_url}/studies/{group.study}/rendered"
    assert httpx.get(url).status_code == 401
