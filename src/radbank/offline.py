"""`radbank deid`: de-identify a folder at the site, before anything leaves the hospital."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def deid_command(
    source: Annotated[Path, typer.Argument(help="Folder (or file) of DICOM files to read")],
    target: Annotated[Path, typer.Argument(help="Folder to write de-identified files to")],
    profile: Annotated[str, typer.Option(help="De-identification profile")] = "research-dose",
    key_file: Annotated[Path, typer.Option("--key-file", help="Project key file")] = Path(
        "radbank-project.key"
    ),
) -> None:
    """De-identify a folder with the same engine as the server."""
    raise NotImplementedError("being written")
