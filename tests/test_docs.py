"""The documentation a user reads matches the running code."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_openapi_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "export_openapi", ROOT / "tools" / "export_openapi.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "openapi.json").read_text() == module.schema(), (
        "docs/openapi.json is stale: run python tools/export_openapi.py"
    )


def test_readme_has_exactly_the_two_set_up_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    setup = [b for b in blocks if "pip install" in b]
    assert len(setup) == 2
    assert "radbank serve --demo" in setup[0]
    assert "pytest" in setup[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert setup[1].strip() in ci


def test_dose_column_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "export_dose_columns", ROOT / "tools" / "export_dose_columns.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "docs" / "dose.md").read_text()
    assert module.document(text) == text, (
        "docs/dose.md column reference is stale: run python tools/export_dose_columns.py"
    )


def test_semantic_guide_shows_the_example_queries_as_shipped() -> None:
    guide = (ROOT / "docs" / "semantic.md").read_text()
    shown = re.findall(r"```sparql\n(.*?)```", guide, re.S)
    queries = sorted((ROOT / "src" / "radbank" / "semantic" / "queries").glob("*.rq"))
    assert len(queries) == 3
    for path in queries:
        body = "\n".join(
            line for line in path.read_text().splitlines() if not line.startswith("#")
        ).strip()
        assert path.name in guide
        assert body + "\n" in shown, f"docs/semantic.md does not show {path.name} as shipped"
