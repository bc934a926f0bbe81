"""Orthanc on loopback as an independent DICOMweb peer for tests and benchmarks.

`OrthancPeer` runs the Debian `orthanc` server with the `orthanc-dicomweb` plugin as a
child process with a fresh configuration, storage and index in a work directory of its
own, on free ports of 127.0.0.1, and stops it again. It never touches the system service
or its configuration in /etc/orthanc. The module imports nothing outside the standard
library, so benchmarks can use it as well as tests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

ORTHANC_BINARY = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
DICOMWEB_ROOT = "/dicom-web/"


def orthanc_missing_reason() -> str | None:
    """Why Orthanc cannot run here, or None when the server and its DICOMweb plugin exist."""
    if not os.access(ORTHANC_BINARY, os.X_OK):
        return f"Orthanc server not found at {ORTHANC_BINARY} (apt-get install orthanc)"
    if not DICOMWEB_PLUGIN.is_file():
        return (
            f"Orthanc DICOMweb plugin not found at {DICOMWEB_PLUGIN} "
            "(apt-get install orthanc-dicomweb)"
        )
    return None


def orthanc_available() -> bool:
    """Whether the Orthanc server and its DICOMweb plugin are installed."""
    return orthanc_missing_reason() is None


def qido_query_string(params: Iterable[tuple[str, str | int]]) -> str:
    """A QIDO-RS query string that Orthanc 1.10 reads as meant.

    Orthanc 1.10.1 with DICOMweb plugin 1.7 hands percent-encoded characters of a QIDO-RS
    value to its find engine undecoded (`PatientName=Doe%2A` looks for a literal "Doe%2A",
    and no encoding of a space matches), while httpx and requests percent-encode `*` and
    `^`. The characters of DICOM matching (`* ? ^ , - .`) are legal in a URI query (RFC
    3986 section 3.4), so they are sent as they are; values with spaces cannot be queried
    on Orthanc at all.
    """
    return "&".join(
        f"{urllib.parse.quote(str(key), safe='')}={urllib.parse.quote(str(value), safe='*?^,-.:')}"
        for key, value in params
    )


def free_tcp_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OrthancError(RuntimeError):
    """Orthanc did not start or stop as expected; the message carries its log tail."""


class OrthancPeer:
    """One Orthanc server on loopback with its own storage under `workdir`.

    Use as a context manager::

        with OrthancPeer(tmp_path / "orthanc") as orthanc:
            httpx.get(f"{orthanc.dicomweb_url}/studies")

    `case_sensitive_pn` sets how QIDO-RS matches Person Name (PN) attributes: PS3.4
    C.2.2.2.1 lets an SCP match PN case-sensitively or not, so a comparison must start
    Orthanc with the same choice as the server under test. Orthanc 1.10 applies the
    choice to every string attribute of a query, though: case-insensitive PN matching
    also makes Patient ID, Accession Number and descriptions match case-insensitively,
    where PS3.4 wants an exact match.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        case_sensitive_pn: bool = True,
        http_threads: int = 16,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.case_sensitive_pn = case_sensitive_pn
        self.http_threads = http_threads
        self.startup_timeout_s = startup_timeout_s
        self.http_port = 0
        self.dicom_port = 0
        self.config_path = self.workdir / "orthanc.json"
        self.log_path = self.workdir / "orthanc.log"
        self.storage_dir = self.workdir / "storage"
        self.index_dir = self.workdir / "index"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.base_url}{DICOMWEB_ROOT.rstrip('/')}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def config(self) -> dict[str, object]:
        """The Orthanc configuration this peer runs with."""
        return {
            "Name": "radbank-peer",
            "StorageDirectory": str(self.storage_dir),
            "IndexDirectory": str(self.index_dir),
            # Uncompressed files, as radbank stores them, so the benchmark compares like
            # with like; fsync on write (Orthanc's default) for the same reason.
            "StorageCompression": False,
            "SyncStorageArea": True,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "SslEnabled": False,
            "HttpCompressionEnabled": False,
            "HttpThreadsCount": self.http_threads,
            "KeepAlive": True,
            "TcpNoDelay": True,
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": "RADBANKPEER",
            "DicomPort": self.dicom_port,
            "ConcurrentJobs": 2,
            "SaveJobs": False,
            "MetricsEnabled": False,
            "LimitFindResults": 0,
            "LimitFindInstances": 0,
            # Re-sending a study (a test retried, a benchmark repeated) replaces it.
            "OverwriteInstances": True,
            "CaseSensitivePN": self.case_sensitive_pn,
            "DicomWeb": {
                "Enable": True,
                "Root": DICOMWEB_ROOT,
                "EnableWado": False,
                "Ssl": False,
                "QidoCaseSensitive": self.case_sensitive_pn,
                "StudiesMetadata": "Full",
                "SeriesMetadata": "Full",
            },
        }

    def start(self) -> OrthancPeer:
        if self._process is not None:
            raise OrthancError("this Orthanc peer is already running")
        reason = orthanc_missing_reason()
        if reason:
            raise OrthancError(reason)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage_dir.mkdir(exist_ok=True)
        self.index_dir.mkdir(exist_ok=True)
        self.http_port = free_tcp_port()
        self.dicom_port = free_tcp_port()
        while self.dicom_port == self.http_port:
            self.dicom_port = free_tcp_port()
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [str(ORTHANC_BINARY), str(self.config_path)],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # A session of its own, so Ctrl-C in a terminal reaches the caller, which
                # then stops Orthanc in order instead of leaving it half-killed.
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise OrthancError(
                    f"Orthanc exited with code {self._process.returncode} while starting "
                    f"(config {self.config_path}); log tail:\n{self.log_tail()}"
                )
            try:
                plugins = self.get_json("/plugins")
            except (OSError, urllib.error.URLError, ValueError) as exc:
                last_error = str(exc)
                time.sleep(0.1)
                continue
            if "dicom-web" not in plugins:
                raise OrthancError(
                    f"Orthanc started without its DICOMweb plugin (loaded: {plugins}); "
                    f"log tail:\n{self.log_tail()}"
                )
            self.get_json("/system")
            return
        raise OrthancError(
            f"Orthanc did not answer GET /system within {self.startup_timeout_s:.0f} s "
            f"({last_error}); log tail:\n{self.log_tail()}"
        )

    def get_json(self, path: str, timeout_s: float = 5.0) -> object:
        """GET a path of Orthanc's own REST API and decode its JSON answer."""
        with urllib.request.urlopen(f"{self.base_url}{path}", timeout=timeout_s) as answer:
            return json.loads(answer.read())

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log written)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop Orthanc: SIGTERM for a clean shutdown, SIGKILL if it does not come."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)

    def __enter__(self) -> OrthancPeer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
