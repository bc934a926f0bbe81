"""The single ingest pipeline that every receiver (STOW-RS, C-STORE, CLI, browser) calls."""

from radbank.ingest.pipeline import Item, Outcome, Pipeline, Status

__all__ = ["Item", "Outcome", "Pipeline", "Status"]
