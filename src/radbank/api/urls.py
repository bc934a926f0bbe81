"""Absolute DICOMweb URLs of stored objects, as returned in RetrieveURL."""

from __future__ import annotations

from fastapi import Request


def project_url(request: Request, project: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/dicom-web/projects/{project}"


def study_url(request: Request, project: str, study: str | None) -> str:
    return f"{project_url(request, project)}/studies/{study}"


def series_url(request: Request, project: str, study: str | None, series: str | None) -> str:
    return f"{study_url(request, project, study)}/series/{series}"


def instance_url(
    request: Request, project: str, study: str | None, series: str | None, sop: str | None
) -> str:
    return f"{series_url(request, project, study, series)}/instances/{sop}"
