"""Streamed exports of dose tables: CSV (RFC 4180, a header row) and Parquet (one row
group per batch), produced batch by batch so that a million rows never sit in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["csv_chunks", "parquet_chunks"]

ARROW_TYPES = {"text": pa.string(), "real": pa.float64(), "integer": pa.int64(), "bool": pa.bool_()}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_chunks(
    columns: Sequence[str], batches: Iterable[Sequence[Sequence[object]]]
) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for batch in batches:
        writer.writerows([_text(value) for value in row] for row in batch)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue().encode()


class _Sink(io.RawIOBase):
    """A write-only file that hands what was written to the generator draining it."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def parquet_chunks(
    columns: Sequence[str],
    kinds: Sequence[str],
    batches: Iterable[Sequence[Sequence[object]]],
) -> Iterator[bytes]:
    """Parquet bytes; `kinds` gives each column's type ("text", "real", "integer", "bool")."""
    schema = pa.schema(
        [pa.field(name, ARROW_TYPES[kind]) for name, kind in zip(columns, kinds, strict=True)]
    )
    sink = _Sink()
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for batch in batches:
            if not batch:
                continue
            arrays = [
                pa.array([row[i] for row in batch], type=schema.field(i).type)
                for i in range(len(columns))
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            if data := sink.take():
                yield data
    yield sink.take()
