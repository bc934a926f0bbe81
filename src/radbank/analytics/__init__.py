"""Dose statistics over the index: diagnostic reference levels (drl), streamed CSV and
Parquet exports of the dose tables (export)."""
