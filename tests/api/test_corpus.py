"""Every file of pydicom's real test corpus, good and malformed, through STOW-RS: readable
files are stored and retrievable, every other gets a reason naming it; never a 500."""

from __future__ import annotations

from pathlib import Path

import corpus  # noqa: E402
import pydicom

from radbank.api.multipart import write_parts  # noqa: E402

FAILED, REFERENCED, REASON = "00081198", "00081199", "00091001"


def _store_one(http, node, data: bytes):  # noqa: ANN001, ANN202
    body = b"".join(write_parts([({"Content-Type": "application/dicom"}, iter([data]))], "b"))
    return http.post(
        f"{node.dicomweb_url}/studies",
        content=body,
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
    )


def test_every_corpus_file_is_stored_or_refused_with_a_reason(live_node) -> None:  # noqa: ANN001
    readable, unreadable = corpus.classified()
    stored: dict[str, Path] = {}
    refused: dict[Path, str] = {}
    with live_node.client() as http:
        for path in corpus.all_files():
            reply = _store_one(http, live_node, path.read_bytes())
            assert reply.status_code < 500, f"{path.name}: {reply.status_code} {reply.text}"
            body = reply.json()
            if reply.status_code == 200:
                item = body[REFERENCED]["Value"][0]
                stored[item["00081190"]["Value"][0]] = path
            else:
                assert reply.status_code in (202, 400, 409), (path.name, reply.status_code)
                # Failed, or held in quarantine (acknowledged with a Warning Reason).
                text = (body.get(FAILED) or body[REFERENCED])["Value"][0][REASON]["Value"][0]
                assert "part 1" in text and len(text) > 20
                # One line, without a traceback (pydicom puts one into some messages).
                assert "\n" not in text and "Traceback" not in text, (path.name, text)
                refused[path] = text
        not_dicom = [
            p for p in unreadable if p.suffix in (".json", ".txt", ".icc", ".gz", ".dump", "")
        ]
        assert not_dicom
        for path in not_dicom:
            assert path in refused, f"{path.name} is not DICOM yet was stored"
        refused_readable = {p.name: r for p, r in refused.items() if p in readable}
        # Readable files are refused only by a quality rule that says what to do.
        for name, reason in refused_readable.items():
            assert any(
                words in reason
                for words in ("DICOMDIR", "quarantined", "UID", "different content", "truncated")
            ), (name, reason)
        assert len(stored) >= len(readable) - len(refused_readable) - 5
        for url, path in stored.items():
            reply = http.get(
                url,
                headers={
                    "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'
                },
            )
            assert reply.status_code == 200, (path.name, reply.text)
            original = pydicom.dcmread(path, force=True)
            if "PixelData" in original:
                assert bytes(original.PixelData)[:64] in reply.content, path.name
