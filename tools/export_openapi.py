"""Write the node's OpenAPI schema to docs/openapi.json (run after changing a router)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from radbank.api import build_api
from radbank.app import build_services
from radbank.config import Settings

TARGET = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"


def schema() -> str:
    with tempfile.TemporaryDirectory() as directory:
        services, _ = build_services(Settings(data_dir=Path(directory), admin_token="unused"))
        try:
            document = build_api(services).openapi()
        finally:
            services.close()
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    TARGET.write_text(schema())
    sys.stdout.write(f"wrote {TARGET}\n")
