"""Absolute DICOMweb URLs of stored objects, as returned in RetrieveURL."""

from __future__ import annotations

from fastapi import Request


def base_url(request: Request) -> str:
    """The node's URL as the caller reached it.

    The configured public URL wins (a node behind a reverse proxy); otherwise the Host
    header, completed with the listening port when a client left it out.
    """
    public = request.app.state.services.settings.public_url
    if public:
        return public.rstrip("/")
    scheme = request.url.scheme
    host = request.headers.get("host", "")
    server = request.scope.get("server")
    if not host and server:
        host = server[0]
    if ":" not in host.rsplit("]", 1)[-1] and server:
        default = {"http": 80, "https": 443}.get(scheme)
        if server[1] and server[1] != default:
            host = f"{host}:{server[1]}"
    return f"{scheme}://{host}"


def project_url(request: Request, project: str) -> str:
    return f"{base_url(request)}/dicom-web/projects/{project}"


def study_url(request: Request, project: str, study: str | None) -> str:
    return f"{project_url(request, project)}/studies/{study}"


def series_url(request: Request, project: str, study: str | None, series: str | None) -> str:
    return f"{study_url(request, project, study)}/series/{series}"


def instance_url(
    request: Request, project: str, study: str | None, series: str | None, sop: str | None
) -> str:
    return f"{series_url(request, project, study, series)}/instances/{sop}"
