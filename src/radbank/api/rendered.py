"""WADO-RS rendered and thumbnail resources (PS3.18 8.3.5, 9.5): a frame of a stored image
as JPEG, PNG or GIF for display, windowed and scaled as the query asks
(radbank.dicom.rendering).

An instance is rendered by its first frame, a frame by its number (one at a time). A
study's or series' thumbnail is that of a representative image: the middle image of the
first series (by Series Number) that holds images. The media type comes from Accept or
the `accept` query parameter (for an <img> tag), JPEG when any image will do."""

from __future__ import annotations

import pydicom
from fastapi import APIRouter, HTTPException, Request, Response

from radbank.api.deps import ReadableProject
from radbank.api.media import parse_accept
from radbank.api.wado import find_records, frame_numbers, read_stored
from radbank.dicom.rendering import (
    MEDIA_TYPES,
    RegionError,
    RenderError,
    RenderOptions,
    parse_options,
    render,
)
from radbank.index import InstanceRecord, Project

router = APIRouter(prefix="/dicom-web/projects/{project}", tags=["DICOMweb WADO-RS"])

THUMBNAIL_SIZE = (128, 128)
_ROWS = "00280010"
# How many images of a study or series are tried for its thumbnail before giving up.
_THUMBNAIL_TRIES = 10
_INSTANCE = "/studies/{study}/series/{series}/instances/{sop}"


def _media_type(request: Request) -> str:
    asked = request.query_params.getlist("accept")
    header = ", ".join(asked) if asked else request.headers.get("accept")
    for media_range in parse_accept(header):
        kind = media_range.media_type
        if kind in ("*/*", "image/*"):
            return "image/jpeg"
        if kind in MEDIA_TYPES:
            return kind
    raise HTTPException(
        406, f"images are rendered as {', '.join(MEDIA_TYPES)}, not as {(header or '')[:100]!r}"
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
    media_type = _media_type(request)
    options = _options(request, thumbnail=thumbnail)
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
    return Response(content, media_type=media_type)


def _one_frame(frames: str) -> int:
    numbers = frame_numbers(frames)
    if len(numbers) != 1:
        raise HTTPException(
            400, f"frames {frames[:40]!r}: one frame is rendered at a time; ask for each on its own"
        )
    return numbers[0] - 1


def _representative(request: Request, project: Project, records: list[InstanceRecord]) -> Response:
    """The thumbnail of the first image of the candidates that renders."""
    media_type = _media_type(request)
    _options(request, thumbnail=True)
    images = [record for record in records if _ROWS in record.attributes]
    if not images:
        raise HTTPException(406, "no image to make a thumbnail of")
    first_series = images[0].series_instance_uid
    series = [record for record in images if record.series_instance_uid == first_series]
    middle = series[len(series) // 2]
    candidates = [middle, *(record for record in images if record is not middle)]
    reasons = []
    for record in candidates[:_THUMBNAIL_TRIES]:
        try:
            return _rendered(request, record, 0, thumbnail=True)
        except HTTPException as exc:
            if exc.status_code != 406:
                raise
            reasons.append(str(exc.detail))
    raise HTTPException(406, f"no image renders as {media_type}: {reasons[0]}")


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
    return _representative(request, project, find_records(request, project, study, series))


@router.get("/studies/{study}/thumbnail", summary="Thumbnail of a study")
def study_thumbnail(request: Request, project: ReadableProject, study: str) -> Response:
    return _representative(request, project, find_records(request, project, study))
