"""WADO-RS rendered and thumbnail resources (PS3.18 8.3.5, 9.5): a frame of a stored image
as JPEG, PNG or GIF for display, windowed and scaled as the query asks
(radbank.dicom.rendering).

An instance is rendered by its first frame, a frame by its number (one at a time). A
study's or series' thumbnail is that of a representative image: the middle image of the
first series (by Series Number) that holds images. A rendered study or series is that
image at full size when the client asks for an image media type (as Orthanc answers, and
as dicomweb-client reads it), or every image of it, each by its first frame, when the
client asks for multipart/related with an image type (PS3.18 10.4.3.3: "one or more
representations"). The media type comes from Accept or the `accept` query parameter (for
an <img> tag), JPEG when any image will do."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pydicom
from fastapi import APIRouter, HTTPException, Request, Response

from radbank.api.deps import ReadableProject
from radbank.api.media import parse_accept
from radbank.api.urls import instance_url
from radbank.api.wado import find_records, frame_numbers, multipart_response, read_stored
from radbank.dicom.rendering import (
    MEDIA_TYPES,
    RegionError,
    RenderError,
    RenderOptions,
    parse_options,
    render,
)
from radbank.index import InstanceRecord, Project

log = logging.getLogger(__name__)

router = APIRouter(prefix="/dicom-web/projects/{project}", tags=["DICOMweb WADO-RS"])

THUMBNAIL_SIZE = (128, 128)
_ROWS = "00280010"
# How many images of a study or series are tried for its representative (or first) image
# before giving up.
_TRIES = 10
_INSTANCE = "/studies/{study}/series/{series}/instances/{sop}"


def _media_type(request: Request, *, multipart: bool = False) -> tuple[str, bool]:
    """The image media type to answer in, and whether the answer is a multipart/related
    of such images (only where `multipart` allows it: a rendered study or series)."""
    asked = request.query_params.getlist("accept")
    header = ", ".join(asked) if asked else request.headers.get("accept")
    for media_range in parse_accept(header):
        kind = media_range.media_type
        if kind in ("*/*", "image/*"):
            return "image/jpeg", False
        if kind in MEDIA_TYPES:
            return kind, False
        if multipart and kind == "multipart/related":
            part_type = media_range.part_type or "image/jpeg"
            if part_type in ("*/*", "image/*"):
                return "image/jpeg", True
            if part_type in MEDIA_TYPES:
                return part_type, True
    also = ", or multipart/related of one of them" if multipart else ""
    raise HTTPException(
        406,
        f"images are rendered as {', '.join(MEDIA_TYPES)}{also}, not as {(header or '')[:100]!r}",
    )


def _options(request: Request, *, thumbnail: bool) -> RenderOptions:
    params: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, []).append(value)
    try:
        return parse_options(params, thumbnail=thumbnail)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc


def _frame_count(dataset: pydicom.Dataset) -> int:
    try:
        return max(int(dataset.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def _rendered(
    request: Request,
    record: InstanceRecord,
    frame: int,
    *,
    thumbnail: bool,
) -> Response:
    media_type, _ = _media_type(request)
    options = _options(request, thumbnail=thumbnail)
    content = _image(request, record, frame, media_type, options, thumbnail=thumbnail)
    return Response(content, media_type=media_type)


def _image(
    request: Request,
    record: InstanceRecord,
    frame: int,
    media_type: str,
    options: RenderOptions,
    *,
    thumbnail: bool,
) -> bytes:
    dataset = read_stored(request, record)
    if "PixelData" in dataset and frame >= _frame_count(dataset):
        raise HTTPException(
            404,
            f"instance {record.sop_instance_uid} has {_frame_count(dataset)} frame(s), "
            f"not a frame {frame + 1}",
        )
    try:
        content = render(
            dataset,
            frame,
            media_type,
            options,
            default_viewport=THUMBNAIL_SIZE if thumbnail else None,
        )
    except RegionError as exc:
        raise HTTPException(400, f"instance {record.sop_instance_uid}: {exc}") from exc
    except RenderError as exc:
        raise HTTPException(406, f"cannot render as {media_type}: {exc}") from exc
    return content


def _one_frame(frames: str) -> int:
    numbers = frame_numbers(frames)
    if len(numbers) != 1:
        raise HTTPException(
            400, f"frames {frames[:40]!r}: one frame is rendered at a time; ask for each on its own"
        )
    return numbers[0] - 1


def _images(records: list[InstanceRecord], what: str) -> list[InstanceRecord]:
    images = [record for record in records if _ROWS in record.attributes]
    if not images:
        raise HTTPException(406, f"no image to make {what} of")
    return images


def _representative(
    request: Request, records: list[InstanceRecord], *, thumbnail: bool
) -> Response:
    """The middle image of the first series that holds images, else the first of the
    others that renders."""
    media_type, _ = _media_type(request)
    options = _options(request, thumbnail=thumbnail)
    images = _images(records, "a thumbnail" if thumbnail else "a rendered image")
    first_series = images[0].series_instance_uid
    series = [record for record in images if record.series_instance_uid == first_series]
    middle = series[len(series) // 2]
    candidates = [middle, *(record for record in images if record is not middle)]
    _, content = _first_rendering(request, candidates, media_type, options, thumbnail=thumbnail)
    return Response(content, media_type=media_type)


def _first_rendering(
    request: Request,
    candidates: list[InstanceRecord],
    media_type: str,
    options: RenderOptions,
    *,
    thumbnail: bool,
) -> tuple[InstanceRecord, bytes]:
    """The first of at most _TRIES candidates that renders, and its image; 406
    when none does (a client's mistake, such as a region outside the image, is its 400)."""
    reasons = []
    for record in candidates[:_TRIES]:
        try:
            return record, _image(request, record, 0, media_type, options, thumbnail=thumbnail)
        except HTTPException as exc:
            if exc.status_code != 406:
                raise
            reasons.append(str(exc.detail))
    raise HTTPException(406, f"no image renders as {media_type}: {reasons[0]}")


def _rendered_group(request: Request, project: Project, records: list[InstanceRecord]) -> Response:
    """A rendered study or series: one image, or every image as a multipart/related."""
    media_type, multipart = _media_type(request, multipart=True)
    if not multipart:
        return _representative(request, records, thumbnail=False)
    options = _options(request, thumbnail=False)
    images = _images(records, "a rendered image")
    # The first image is made before the answer starts: a request that no image can meet
    # (a region outside the image, pixels that cannot be decoded) is still a 400 or 406.
    first, content = _first_rendering(request, images, media_type, options, thumbnail=False)

    def part(record: InstanceRecord, content: bytes) -> tuple[dict[str, str], list[bytes]]:
        location = instance_url(
            request,
            project.name,
            record.study_instance_uid,
            record.series_instance_uid,
            record.sop_instance_uid,
        )
        return {"Content-Type": media_type, "Content-Location": f"{location}/rendered"}, [content]

    def parts() -> Iterator[tuple[dict[str, str], list[bytes]]]:
        yield part(first, content)
        for record in images[images.index(first) + 1 :]:
            try:
                rendered = _image(request, record, 0, media_type, options, thumbnail=False)
            except Exception as exc:  # noqa: BLE001 - the status is sent: the image is left out
                detail = exc.detail if isinstance(exc, HTTPException) else repr(exc)[:300]
                log.warning("rendered %s left out: %s", record.sop_instance_uid, detail)
                continue
            yield part(record, rendered)

    # 206 (PS3.18 Table 10.4.3-1): some instances of the resource are not images.
    left_out = len(records) - len(images)
    return multipart_response(
        parts(),
        media_type,
        status_code=206 if left_out else 200,
        headers=(
            {"Warning": f'299 radbank "{left_out} instance(s) without an image not rendered"'}
            if left_out
            else None
        ),
    )


@router.get(_INSTANCE + "/rendered", summary="Render an instance (its first frame)")
def instance_rendered(
    request: Request, project: ReadableProject, study: str, series: str, sop: str
) -> Response:
    record = find_records(request, project, study, series, sop)[0]
    return _rendered(request, record, 0, thumbnail=False)


@router.get(_INSTANCE + "/frames/{frames}/rendered", summary="Render a frame of an instance")
def frame_rendered(
    request: Request, project: ReadableProject, study: str, series: str, sop: str, frames: str
) -> Response:
    frame = _one_frame(frames)
    record = find_records(request, project, study, series, sop)[0]
    return _rendered(request, record, frame, thumbnail=False)


@router.get(_INSTANCE + "/thumbnail", summary="Thumbnail of an instance")
def instance_thumbnail(
    request: Request, project: ReadableProject, study: str, series: str, sop: str
) -> Response:
    record = find_records(request, project, study, series, sop)[0]
    return _rendered(request, record, 0, thumbnail=True)


@router.get(_INSTANCE + "/frames/{frames}/thumbnail", summary="Thumbnail of a frame")
def frame_thumbnail(
    request: Request, project: ReadableProject, study: str, series: str, sop: str, frames: str
) -> Response:
    frame = _one_frame(frames)
    record = find_records(request, project, study, series, sop)[0]
    return _rendered(request, record, frame, thumbnail=True)


@router.get("/studies/{study}/series/{series}/thumbnail", summary="Thumbnail of a series")
def series_thumbnail(
    request: Request, project: ReadableProject, study: str, series: str
) -> Response:
    records = find_records(request, project, study, series)
    return _representative(request, records, thumbnail=True)


@router.get("/studies/{study}/thumbnail", summary="Thumbnail of a study")
def study_thumbnail(request: Request, project: ReadableProject, study: str) -> Response:
    return _representative(request, find_records(request, project, study), thumbnail=True)


@router.get(
    "/studies/{study}/series/{series}/rendered",
    summary="Render a series: its representative image, or every image as multipart/related",
)
def series_rendered(
    request: Request, project: ReadableProject, study: str, series: str
) -> Response:
    return _rendered_group(request, project, find_records(request, project, study, series))


@router.get(
    "/studies/{study}/rendered",
    summary="Render a study: its representative image, or every image as multipart/related",
)
def study_rendered(request: Request, project: ReadableProject, study: str) -> Response:
    return _rendered_group(request, project, find_records(request, project, study))
