"""A server worker after its start: what the start made is kept out of the garbage
collector's full collections (gc.freeze), young collections run less often than Python's
default, and the app serves as before."""

from __future__ import annotations

import subprocess
import sys

HEAP_AFTER_START = (
    "import gc, sys; from fastapi.testclient import TestClient; "
    "from radbank.app import create_app; from radbank.config import Settings; "
    "app = create_app(Settings(data_dir=sys.argv[1], admin_token='t' * 40)); "
    "before = gc.get_freeze_count(), gc.get_threshold()[0]; "
    "client = TestClient(app); client.__enter__(); "
    "print(*before, gc.get_freeze_count() > 10_000, gc.get_threshold()[0], "
    "client.get('/healthz').status_code); "
    "client.__exit__(None, None, None)"
)


def test_a_started_worker_keeps_the_collector_out_of_its_way(tmp_path) -> None:
    """The objects made at start are frozen once the app has started (gc.freeze), so full
    collections during ingest do not walk them again, and a young collection waits for
    50,000 objects instead of 700; the app serves as before."""
    done = subprocess.run(
        [sys.executable, "-c", HEAP_AFTER_START, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "700", "True", "50000", "200"]
