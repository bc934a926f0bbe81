"""Property tests: whatever a client sends, the parsers answer with their own error type
(which the API turns into a 4xx naming the problem) and never with anything else."""

from __future__ import annotations

import asyncio
import io
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import corpus
import pydicom
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radbank.api.multipart import MultipartError, write_parts
from radbank.api.multipart import read_parts as _read_parts
from radbank.dicom.query import QUERYABLE, QueryError, parse_qido
from radbank.governance.policy import ADMIN
from radbank.index import Index
from radbank.ingest import Item, Status
from radbank.projects import create_project

CT = corpus.path("CT_small.dcm").read_bytes()
KEYWORDS = sorted({k for level in QUERYABLE.values() for k in level})
PARAM_NAMES = st.one_of(
    st.sampled_from([*KEYWORDS, "limit", "offset", "includefield", "fuzzymatching"]),
    st.text(max_size=20),
)
PARAM_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["*", "?", "-", "19000101-", "-20991231", "1.2.3\\4.5", "%", "_", "'", "\\", ","]
    ),
    st.integers(-(2**40), 2**40).map(str),
)


@settings(
    max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    level=st.sampled_from(["study", "series", "instance"]),
    params=st.lists(st.tuples(PARAM_NAMES, PARAM_VALUES), max_size=6),
)
def test_qido_parameters_parse_or_fail_with_query_error(level: str, params: list) -> None:
    try:
        query = parse_qido(level, params)
    except QueryError as exc:
        assert str(exc)
        return
    assert query.level == level
    _index().search(_project_id(), query)  # an accepted query runs without error


_STATE: dict[str, object] = {}


def _index() -> Index:
    if "index" not in _STATE:
        directory = Path(tempfile.mkdtemp())
        index = Index(f"sqlite:///{directory / 'index.sqlite3'}")
        _STATE["index"] = index
        _STATE["project"] = index.create_project("fuzz", key_salt=b"fuzz").id
    return _STATE["index"]  # type: ignore[return-value]


def _project_id() -> int:
    _index()
    return _STATE["project"]  # type: ignore[return-value]


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    body=st.one_of(
        st.binary(max_size=2000),
        st.lists(st.binary(max_size=300), max_size=4).map(
            lambda parts: b"".join(
                write_parts([({"Content-Type": "x"}, iter([p])) for p in parts], "bnd")
            )
        ),
    ),
    cut=st.integers(0, 2000),
    chunk=st.integers(1, 700),
    boundary=st.sampled_from(["bnd", "", "x" * 80, "other"]),
)
def test_multipart_bodies_parse_or_fail_with_multipart_error(
    body: bytes, cut: int, chunk: int, boundary: str
) -> None:
    async def consume() -> None:
        async for part in _read_parts(
            _chunks(body[:cut] if cut else body, chunk), boundary, max_part_bytes=1000
        ):
            assert part.index >= 1

    try:
        asyncio.run(consume())
    except MultipartError as exc:
        assert str(exc)


@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    edits=st.lists(st.tuples(st.integers(0, len(CT) - 1), st.integers(0, 255)), max_size=12),
    cut=st.integers(0, len(CT)),
)
def test_damaged_dicom_is_stored_or_refused_with_a_reason(edits: list, cut: int) -> None:
    data = bytearray(CT)
    for position, value in edits:
        data[position] = value
    data = bytes(data[:cut] if cut else data)
    services = _services()
    project = services.index.get_project("damage")
    [outcome] = services.pipeline.ingest(
        [Item("damaged.dcm", data)], project, source="test", principal=ADMIN
    )
    if outcome.status in (Status.REJECTED, Status.CONFLICT):
        assert "damaged.dcm" in outcome.reason
    else:
        assert outcome.status in (Status.STORED, Status.DUPLICATE, Status.QUARANTINED)
        stored = services.index.get_instances(project.id, [outcome.sop_instance_uid])
        for record in stored.values():  # what was kept reads back as DICOM
            back = pydicom.dcmread(io.BytesIO(services.store.get(record.blob_key)))
            assert back.file_meta.TransferSyntaxUID.is_transfer_syntax
            assert back.SOPInstanceUID == outcome.sop_instance_uid


def _services():  # noqa: ANN202
    if "services" not in _STATE:
        from radbank.app import build_services
        from radbank.config import Settings

        services, _ = build_services(
            Settings(data_dir=Path(tempfile.mkdtemp()) / "d", admin_token="t")
        )
        create_project(
            services.index, "damage", keys=services.keys, trail=services.trail, actor="fuzz"
        )
        _STATE["services"] = services
    return _STATE["services"]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    tag=st.sampled_from([0x00200013, 0x00200011, 0x00280008]),
    value=st.one_of(
        st.integers(-(10**30), 10**30).map(str),
        st.sampled_from(["1e999", "-1e999", "nan", "2147483648", "-2147483649", "1e12"]),
    ),
)
def test_integers_a_column_cannot_hold_are_stored_not_failed(tag: int, value: str) -> None:
    """Instance Number, Series Number and Number of Frames are integer columns of the index;
    a value no IS can hold is stored (kept in the attributes), not a server error."""
    dataset = pydicom.dcmread(io.BytesIO(CT))
    encoded = (value + " " * (len(value) % 2)).encode()
    dataset[tag] = pydicom.dataelem.RawDataElement(
        pydicom.tag.Tag(tag), "IS", len(encoded), encoded, 0, False, True
    )
    dataset.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{tag}.{abs(hash(value))}"
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    services = _services()
    project = services.index.get_project("damage")
    [outcome] = services.pipeline.ingest(
        [Item("big.dcm", out.getvalue())], project, source="test", principal=ADMIN
    )
    assert outcome.status in (Status.STORED, Status.DUPLICATE, Status.QUARANTINED), outcome.reason
