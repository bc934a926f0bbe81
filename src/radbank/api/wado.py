"""WADO-RS (PS3.18 10.4): retrieve instances, metadata, frames and bulk data of a project."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import BinaryIO

import pydicom
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydicom.dataelem import RawDataElement
from pydicom.uid import DeflatedExplicitVRLittleEndian
from starlette.concurrency import run_in_threadpool

from radbank.api.deps import ReadableProject, check_uid, services, visible_studies
from radbank.api.media import acceptable_multipart, choose_multipart, require_json
from radbank.api.multipart import new_boundary, write_parts
from radbank.api.urls import instance_url
from radbank.dicom.byteorder import swap_byte_order
from radbank.dicom.dataset_json import (
    BulkDataPathError,
    bulk_data_element,
    bulk_left_in_file,
    json_bytes,
    metadata_json,
    parse_bulk_data_path,
)
from radbank.dicom.decode import read_part10
from radbank.dicom.decompression import can_decode, decompress
from radbank.dicom.elements import held
from radbank.dicom.encode import part10_bytes
from radbank.dicom.frames import (
    UNCOMPRESSED,
    FrameError,
    decoded_frames,
    extract_frames,
    frame_media_type,
)
from radbank.index import InstanceRecord, Project
from radbank.store import BlobStore

log = logging.getLogger(__name__)

router = APIRouter(prefix="/dicom-web/projects/{project}", tags=["DICOMweb WADO-RS"])

_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_BIG_ENDIAN = "1.2.840.10008.1.2.2"
# Objects larger than this are read for their metadata without their values larger than
# _DEFER_SIZE (read_stored_metadata).
DEFERRED_READ_BYTES = 16 * 1024 * 1024
_DEFER_SIZE = 1024 * 1024
_CHUNK = 1024 * 1024


def find_records(
    request: Request,
    project: Project,
    study: str,
    series: str | None = None,
    sop: str | None = None,
) -> list[InstanceRecord]:
    check_uid(study, "study")
    if series is not None:
        check_uid(series, "series")
    if sop is not None:
        check_uid(sop, "SOP instance")
    visible = visible_studies(request, project)
    hidden = visible is not None and study not in visible
    records = (
        [] if hidden else services(request).index.find_instances(project.id, study, series, sop)
    )
    if not records:
        what = f"instance {sop}" if sop else f"series {series}" if series else f"study {study}"
        raise HTTPException(404, f"{what} not found in project {project.name!r}")
    return records


def read_stored_metadata(request: Request, record: InstanceRecord) -> pydicom.Dataset:
    """The stored instance for its metadata and frames: as `read_stored`, but a large
    object is read from its file without its values of more than 1 MB (left there,
    pydicom's deferred read), so that the metadata or a frame of a multi-gigabyte
    multi-frame object does not hold it in memory (twice: the file's bytes and the value
    cut from them). Big Endian and deflated objects are read whole: their values are
    swapped or inflated in memory."""
    if record.size_bytes <= DEFERRED_READ_BYTES or record.transfer_syntax_uid in (
        _BIG_ENDIAN,
        DeflatedExplicitVRLittleEndian,
    ):
        return read_stored(request, record)
    with services(request).store.open(record.blob_key) as handle:
        return pydicom.dcmread(handle, defer_size=_DEFER_SIZE)


def read_stored(request: Request, record: InstanceRecord) -> pydicom.Dataset:
    """The stored instance with its binary values in Little Endian byte order, the only
    one of web services (PS3.18 8.7.3): frames, bulk data and InlineBinary of an instance
    stored as Big Endian are sent swapped. The data set's transfer syntax then says Explicit
    VR Little Endian, as its values now are (pydicom's pixel decoder reads it)."""
    data = services(request).store.get(record.blob_key)
    dataset = read_part10(data) or pydicom.dcmread(io.BytesIO(data))
    if record.transfer_syntax_uid == _BIG_ENDIAN:
        swap_byte_order(dataset, is_little_endian=False)
        dataset.file_meta.TransferSyntaxUID = _EXPLICIT_LE
    return dataset


def _syntax_to_send(stored: str, asked: str | None) -> str | None:
    """The transfer syntax to send an instance stored in `stored` in, for a media range
    asking for `asked` (None: no transfer-syntax parameter), or None if it cannot be.

    Without a parameter the default is Explicit VR Little Endian (PS3.18 Table 8.7.3-2),
    and '*' leaves the choice to the server; Implicit VR Little Endian and Big Endian are
    not for web services (PS3.18 8.7.3), so both send those two converted. A compressed
    instance is decoded for Explicit VR Little Endian, asked for or by default, when a
    decoder for its transfer syntax is installed (radbank.dicom.decompression); without
    one the default sends it as stored and an explicit request cannot be met. '*' sends
    compressed instances as stored."""
    decodable = stored in UNCOMPRESSED or can_decode(stored)
    if asked == "*":
        return _EXPLICIT_LE if stored in (_IMPLICIT_LE, _BIG_ENDIAN) else stored
    if asked is None:
        return _EXPLICIT_LE if decodable else stored
    if asked == stored or (asked in UNCOMPRESSED and stored in UNCOMPRESSED):
        return asked
    if asked == _EXPLICIT_LE and decodable:
        return asked
    return None


def _retrieve(
    request: Request, project: Project, records: list[InstanceRecord]
) -> StreamingResponse:
    ranges = acceptable_multipart(request.headers.get("accept"), ("application/dicom",))
    part_type = ranges[0][0]
    chosen: list[str] = []
    for record in records:
        stored = record.transfer_syntax_uid
        syntax = next(
            (s for s in (_syntax_to_send(stored, asked) for _, asked in ranges) if s), None
        )
        if syntax is None:
            asked = ", ".join(sorted({str(asked) for _, asked in ranges}))
            raise HTTPException(
                406,
                f"cannot convert instance {record.sop_instance_uid} stored as {stored} to "
                f"transfer syntax {asked}; ask for transfer-syntax=* to receive it as stored",
            )
        chosen.append(syntax)
    store = services(request).store

    def parts() -> Iterator[tuple[dict[str, str], Iterator[bytes]]]:
        for record, syntax in zip(records, chosen, strict=True):
            if syntax == record.transfer_syntax_uid:
                yield (
                    {"Content-Type": f"application/dicom; transfer-syntax={syntax}"},
                    _file_chunks(store, record.blob_key),
                )
            else:
                yield _transcoded(store, record, syntax)

    return multipart_response(parts(), part_type)


def multipart_response(
    parts: Iterable[tuple[dict[str, str], Iterable[bytes]]],
    part_type: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> StreamingResponse:
    """A streamed multipart/related answer whose parts are of part_type."""
    boundary = new_boundary()
    return StreamingResponse(
        write_parts(parts, boundary),
        status_code=status_code,
        media_type=f'multipart/related; type="{part_type}"; boundary={boundary}',
        headers=headers,
    )


def _file_chunks(
    store: BlobStore, key: str, start: int = 0, length: int | None = None
) -> Iterator[bytes]:
    """The stored file's bytes, or `length` of them from `start`, in chunks."""
    with store.open(key) as handle:
        handle.seek(start)
        left = length
        while left is None or left > 0:
            chunk = handle.read(_CHUNK if left is None else min(_CHUNK, left))
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            yield chunk


def _transcoded(
    store: BlobStore, record: InstanceRecord, syntax: str
) -> tuple[dict[str, str], Iterator[bytes]]:
    """A part of the instance in `syntax`; as stored (its part saying so, as PS3.18 8.7.3.4
    has each part name its transfer syntax) when a value of it cannot be converted (an IS
    of "inf", an FD of 4 bytes) or its compressed pixel data cannot be decoded although a
    decoder for its transfer syntax is installed (a damaged codestream, or one whose header
    describes another image than the data set does): the answer's status is sent before
    the parts are made, so failing here would cut it off. The instance is converted here,
    in the thread that streams the answer, one instance at a time."""
    data = store.get(record.blob_key)
    try:
        converted = _transcode(data, syntax)
    except Exception as exc:  # noqa: BLE001 - malformed stored values fail anywhere in pydicom
        log.warning(
            "WADO-RS: instance %s cannot be converted to %s (%s: %s); sent as stored",
            record.sop_instance_uid,
            syntax,
            type(exc).__name__,
            str(exc)[:400],
        )
        content_type = f"application/dicom; transfer-syntax={record.transfer_syntax_uid}"
        return {"Content-Type": content_type}, iter([data])
    return {"Content-Type": f"application/dicom; transfer-syntax={syntax}"}, iter([converted])


def _transcode(data: bytes, syntax: str) -> bytes:
    dataset = pydicom.dcmread(io.BytesIO(data))
    stored = dataset.file_meta.TransferSyntaxUID
    if stored not in UNCOMPRESSED:
        decompress(dataset)
    elif (stored == _BIG_ENDIAN) != (syntax == _BIG_ENDIAN):
        swap_byte_order(dataset, is_little_endian=stored != _BIG_ENDIAN)
    dataset.file_meta.TransferSyntaxUID = syntax
    # Untouched elements copied as their bytes (what dcmwrite writes, faster); a deflated
    # object's elements lie in the inflated stream, not in `data`.
    return part10_bytes(dataset, None if stored == DeflatedExplicitVRLittleEndian else data)


async def _metadata(request: Request, project: Project, records: list[InstanceRecord]) -> Response:
    require_json(request.headers.get("accept"))

    def build() -> bytes:
        result = []
        for record in records:
            base = instance_url(
                request,
                project.name,
                record.study_instance_uid,
                record.series_instance_uid,
                record.sop_instance_uid,
            )

            def uri(path: str, base: str = base) -> str:
                return f"{base}/bulkdata/{path}"

            result.append(metadata_json(read_stored_metadata(request, record), uri))
        return json_bytes(result)

    return Response(await run_in_threadpool(build), media_type="application/dicom+json")


@router.get("/studies/{study}", summary="Retrieve a study")
def retrieve_study(request: Request, project: ReadableProject, study: str) -> StreamingResponse:
    return _retrieve(request, project, find_records(request, project, study))


@router.get("/studies/{study}/series/{series}", summary="Retrieve a series")
def retrieve_series(
    request: Request, project: ReadableProject, study: str, series: str
) -> StreamingResponse:
    return _retrieve(request, project, find_records(request, project, study, series))


@router.get("/studies/{study}/series/{series}/instances/{sop}", summary="Retrieve an instance")
def retrieve_instance(
    request: Request, project: ReadableProject, study: str, series: str, sop: str
) -> StreamingResponse:
    return _retrieve(request, project, find_records(request, project, study, series, sop))


@router.get("/studies/{study}/metadata", summary="Metadata of a study")
async def study_metadata(request: Request, project: ReadableProject, study: str) -> Response:
    records = await run_in_threadpool(find_records, request, project, study)
    return await _metadata(request, project, records)


@router.get("/studies/{study}/series/{series}/metadata", summary="Metadata of a series")
async def series_metadata(
    request: Request, project: ReadableProject, study: str, series: str
) -> Response:
    records = await run_in_threadpool(find_records, request, project, study, series)
    return await _metadata(request, project, records)


@router.get(
    "/studies/{study}/series/{series}/instances/{sop}/metadata", summary="Metadata of an instance"
)
async def instance_metadata(
    request: Request, project: ReadableProject, study: str, series: str, sop: str
) -> Response:
    records = await run_in_threadpool(find_records, request, project, study, series, sop)
    return await _metadata(request, project, records)


@router.get(
    "/studies/{study}/series/{series}/instances/{sop}/frames/{frames}",
    summary="Retrieve frames of an instance",
)
def retrieve_frames(
    request: Request, project: ReadableProject, study: str, series: str, sop: str, frames: str
) -> StreamingResponse:
    numbers = frame_numbers(frames)
    record = find_records(request, project, study, series, sop)[0]
    stored = record.transfer_syntax_uid
    native = frame_media_type(stored)
    ranges = acceptable_multipart(
        request.headers.get("accept"), tuple(dict.fromkeys((native, "application/octet-stream")))
    )
    decodable = stored not in UNCOMPRESSED and can_decode(stored)
    # For each range that can be served, in the client's order: whether the frames go
    # decoded. application/octet-stream without a transfer syntax, or with Explicit VR
    # Little Endian, is native frames (PS3.18 Table 8.7.3-2), those of a compressed
    # instance decoded. transfer-syntax=* means "as stored", whatever part type was named:
    # OHIF asks for application/octet-stream with * and decodes the compressed frames it
    # gets. Native frames are sent as Explicit VR Little Endian, Big Endian ones swapped.
    forms: list[bool] = []
    for part_type, syntax in ranges:
        if decodable and part_type == "application/octet-stream" and syntax in (None, _EXPLICIT_LE):
            forms.append(True)
        elif (
            syntax == "*"
            or (part_type == native and syntax in (None, stored))
            or (stored in UNCOMPRESSED and syntax == _EXPLICIT_LE)
        ):
            forms.append(False)
    if not forms:
        decoded_too = 'type="application/octet-stream" for them decoded, or ' if decodable else ""
        raise HTTPException(
            406,
            f"frames of instance {sop} are stored as {stored} ({native}); ask for "
            f'multipart/related; {decoded_too}type="{native}"; transfer-syntax=*',
        )
    dataset = read_stored_metadata(request, record)
    with ExitStack() as opened:
        handles: list[BinaryIO] = []

        def read(position: int, size: int) -> bytes:
            """Bytes of the stored file, for frames left in it (one open per request)."""
            if not handles:
                handles.append(opened.enter_context(services(request).store.open(record.blob_key)))
            handles[0].seek(position)
            return handles[0].read(size)

        return _frames_answer(dataset, numbers, forms, stored, native, read)


def _frames_answer(
    dataset: pydicom.Dataset,
    numbers: list[int],
    forms: list[bool],
    stored: str,
    native: str,
    read: Callable[[int, int], bytes],
) -> StreamingResponse:
    failure: FrameError | None = None
    # A range whose frames cannot be made (a decoder refusing the object) gives way to
    # the next one the client accepts (PS3.18 8.7.8); this is decided before the answer
    # starts, so a failure of the last one is a 406 that says why.
    for decode in dict.fromkeys(forms):
        try:
            payload = (
                decoded_frames(dataset, numbers)
                if decode
                else extract_frames(dataset, numbers, read)
            )
        except FrameError as exc:
            if exc.missing:
                raise HTTPException(404, str(exc)) from exc
            failure = exc
            continue
        syntax_out = _EXPLICIT_LE if decode or stored in UNCOMPRESSED else stored
        part_type = "application/octet-stream" if syntax_out == _EXPLICIT_LE else native
        parts = (
            ({"Content-Type": f"{part_type}; transfer-syntax={syntax_out}"}, iter([frame]))
            for frame in payload
        )
        return multipart_response(parts, part_type)
    as_stored = (
        f'; ask for multipart/related; type="{native}"; transfer-syntax=* to have them as stored'
    )
    raise HTTPException(406, f"{failure}{as_stored if all(forms) else ''}")


# `tag` is a bulk data path (radbank.dicom.dataset_json): a tag, or the sequence tags and
# item numbers leading to one, as in metadata's BulkDataURI. It keeps its name, and the
# function has no docstring, so the OpenAPI schema (docs/openapi.json) stays as published.
@router.get(
    "/studies/{study}/series/{series}/instances/{sop}/bulkdata/{tag:path}",
    summary="Retrieve a bulk data element of an instance",
)
def retrieve_bulkdata(
    request: Request, project: ReadableProject, study: str, series: str, sop: str, tag: str
) -> StreamingResponse:
    try:
        path = parse_bulk_data_path(tag)
    except BulkDataPathError as exc:
        raise HTTPException(400, str(exc)) from exc
    record = find_records(request, project, study, series, sop)[0]
    dataset = read_stored_metadata(request, record)
    left = held(dataset, path[0], keep_deferred=True) if len(path) == 1 else None
    if type(left) is RawDataElement and bulk_left_in_file(left):  # streamed from the file
        choose_multipart(request.headers.get("accept"), ("application/octet-stream",))
        chunks = _file_chunks(
            services(request).store, record.blob_key, left.value_tell, left.length
        )
        return multipart_response(
            [({"Content-Type": "application/octet-stream"}, chunks)], "application/octet-stream"
        )
    try:
        element = bulk_data_element(dataset, path)
    except BulkDataPathError as exc:
        raise HTTPException(404, f"instance {sop}: {exc}") from exc
    choose_multipart(request.headers.get("accept"), ("application/octet-stream",))
    value = bytes(element.value)
    return multipart_response(
        [({"Content-Type": "application/octet-stream"}, iter([value]))], "application/octet-stream"
    )


def frame_numbers(text: str) -> list[int]:
    # ASCII digits only (int() also takes "+1", " 1" and other scripts' digits), and no
    # more of them than a frame count can have.
    parts = text.split(",")
    numbers = [int(p) for p in parts if p.isascii() and p.isdigit() and len(p) <= 9]
    if len(numbers) != len(parts):
        numbers = []
    if not numbers or len(numbers) > 10000 or any(n < 1 for n in numbers):
        raise HTTPException(
            400, f"frame list {text[:40]!r} must be comma-separated frame numbers starting at 1"
        )
    return numbers
