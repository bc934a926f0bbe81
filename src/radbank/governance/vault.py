"""The pseudonym vault: pseudonym -> original identifiers, for the honest broker only.

For consent withdrawal and follow-up linkage, the ingest pipeline keeps, per project with a
vault, the identifiers a de-identified object came from (Issuer of Patient ID, Patient ID,
Patient's Name, Patient's Birth Date, Other Patient IDs, the original Study Instance UID and
Accession Number). Each distinct set becomes one entry sealed to the honest broker's
X25519 public key (an ephemeral key agreement, HKDF-SHA256, AES-256-GCM: a sealed box);
the node stores only the public key, so neither the database nor the node can open the
vault. The private key lives in a file the broker keeps (`init_vault`). Entries are
deduplicated by a keyed HMAC of the plaintext (keyed with a key derived from the project
key): the database holds no plaintext and no unkeyed hash that a dictionary could reverse.

Opening (`open_vault`), looking a patient up (`lookup`), creating and rotating the vault
key are recorded in the audit trail, including failed openings. Rotating the vault key or
the master key never changes a pseudonym: pseudonyms come from the project key alone.

Vault key file (mode 0600, never overwritten):
    {"format": "radbank-vault-key", "version": 1, "project": "...", "broker": "...",
     "key_id": "...", "private_key": "<base64>", "public_key": "<base64>"}
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydicom import Dataset
from pydicom.multival import MultiValue

from radbank.dicom.deid import patient_pseudonym
from radbank.governance.audit import AuditTrail, Outcome
from radbank.governance.secretfile import create_private_file, read_private_json
from radbank.index import Index, Project, VaultEntry, VaultKeyChanged

FORMAT = "radbank-vault-key"
VERSION = 1
_SEAL_VERSION = b"\x01"
_NONCE_BYTES = 12
_RAW = serialization.Encoding.Raw


class VaultError(RuntimeError):
    """The vault cannot do what was asked; the message says why and what to do."""


@dataclass(frozen=True)
class Identifiers:
    """The original identifiers of one object, read before de-identification."""

    issuer_of_patient_id: str = ""
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    other_patient_ids: tuple[tuple[str, str], ...] = ()
    """(Patient ID, Issuer of Patient ID) pairs of Other Patient IDs and its sequence."""
    study_instance_uid: str = ""
    accession_number: str = ""

    @classmethod
    def of(cls, dataset: Dataset) -> Identifiers:
        others = [(value, "") for value in _values(dataset, "OtherPatientIDs")]
        for item in _items(dataset, "OtherPatientIDsSequence"):
            others.append((_text(item, "PatientID"), _text(item, "IssuerOfPatientID")))
        return cls(
            issuer_of_patient_id=_text(dataset, "IssuerOfPatientID"),
            patient_id=_text(dataset, "PatientID"),
            patient_name=_text(dataset, "PatientName"),
            patient_birth_date=_text(dataset, "PatientBirthDate"),
            other_patient_ids=tuple(o for o in others if o[0]),
            study_instance_uid=_text(dataset, "StudyInstanceUID"),
            accession_number=_text(dataset, "AccessionNumber"),
        )

    def as_json(self) -> dict[str, Any]:
        """By DICOM keyword, as the honest broker sees them."""
        return {
            "IssuerOfPatientID": self.issuer_of_patient_id,
            "PatientID": self.patient_id,
            "PatientName": self.patient_name,
            "PatientBirthDate": self.patient_birth_date,
            "OtherPatientIDs": [
                {"PatientID": pid, "IssuerOfPatientID": issuer}
                for pid, issuer in self.other_patient_ids
            ],
            "StudyInstanceUID": self.study_instance_uid,
            "AccessionNumber": self.accession_number,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Identifiers:
        return cls(
            issuer_of_patient_id=data["IssuerOfPatientID"],
            patient_id=data["PatientID"],
            patient_name=data["PatientName"],
            patient_birth_date=data["PatientBirthDate"],
            other_patient_ids=tuple(
                (o["PatientID"], o["IssuerOfPatientID"]) for o in data["OtherPatientIDs"]
            ),
            study_instance_uid=data["StudyInstanceUID"],
            accession_number=data["AccessionNumber"],
        )


def _text(dataset: Dataset, keyword: str) -> str:
    try:
        value = dataset.get(keyword)
    except Exception:  # noqa: BLE001 - an undecodable value is reported by de-identification
        return ""
    if value is None:
        return ""
    if isinstance(value, MultiValue):
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


def _values(dataset: Dataset, keyword: str) -> list[str]:
    try:
        value = dataset.get(keyword)
    except Exception:  # noqa: BLE001 - see _text
        return []
    values = value if isinstance(value, MultiValue) else [] if value is None else [value]
    return [str(v).strip() for v in values if str(v).strip()]


def _items(dataset: Dataset, keyword: str) -> list[Dataset]:
    try:
        value = dataset.get(keyword)
    except Exception:  # noqa: BLE001 - see _text
        return []
    return [item for item in value or () if isinstance(item, Dataset)]


def vault_key_id(public_key: bytes) -> str:
    """A short public name of a vault key pair (from its public key)."""
    return hashlib.sha256(b"radbank vault key\x00" + public_key).hexdigest()[:16]


def digest_key(project_key: bytes) -> bytes:
    """The key of the deduplication digests, from the project key (not the vault key, so
    rotating the vault key keeps the digests)."""
    return hmac.new(project_key, b"radbank vault digest", "sha256").digest()


def _associated_data(project: str, pseudonym: str) -> bytes:
    # Binds an entry to its project and pseudonym: a row moved elsewhere does not open.
    return b"radbank vault entry\x00" + project.encode() + b"\x00" + pseudonym.encode()


def _box_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=ephemeral + recipient,
        info=b"radbank vault sealed box v1",
    ).derive(shared)


def seal(public_key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """Encrypt to `public_key` so that only its private key opens it."""
    recipient = X25519PublicKey.from_public_bytes(public_key)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
    key = _box_key(ephemeral.exchange(recipient), ephemeral_public, public_key)
    nonce = os.urandom(_NONCE_BYTES)
    return (
        _SEAL_VERSION
        + ephemeral_public
        + nonce
        + AESGCM(key).encrypt(nonce, plaintext, associated_data)
    )


def unseal(private_key: X25519PrivateKey, sealed: bytes, associated_data: bytes) -> bytes:
    """Open what `seal` produced; raises InvalidTag for another key or altered bytes."""
    if not sealed.startswith(_SEAL_VERSION) or len(sealed) < 1 + 32 + _NONCE_BYTES + 16:
        raise InvalidTag()
    ephemeral_public = sealed[1:33]
    nonce, body = sealed[33 : 33 + _NONCE_BYTES], sealed[33 + _NONCE_BYTES :]
    public = private_key.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    key = _box_key(shared, ephemeral_public, public)
    return AESGCM(key).decrypt(nonce, body, associated_data)


class Sealer:
    """Builds the vault entries of one project for the ingest pipeline."""

    def __init__(self, project: Project, project_key: bytes) -> None:
        if project.vault_public_key is None or project.vault_key_id is None:
            raise VaultError(f"project {project.name!r} has no vault")
        self.project = project.name
        self.key_id = project.vault_key_id
        self._public_key = project.vault_public_key
        self._digest_key = digest_key(project_key)

    def digest(self, identifiers: Identifiers) -> bytes:
        canonical = json.dumps(identifiers.as_json(), sort_keys=True, separators=(",", ":"))
        return hmac.new(self._digest_key, canonical.encode(), "sha256").digest()

    def entry(self, identifiers: Identifiers, pseudonym: str, digest: bytes) -> VaultEntry:
        plaintext = json.dumps(identifiers.as_json(), sort_keys=True).encode()
        sealed = seal(self._public_key, plaintext, _associated_data(self.project, pseudonym))
        return VaultEntry(pseudonym=pseudonym, digest=digest, sealed=sealed, key_id=self.key_id)


@dataclass(frozen=True)
class VaultKey:
    """An honest broker's private key, read from its file."""

    private_key: X25519PrivateKey
    public_key: bytes
    key_id: str
    project: str
    broker: str
    path: Path


def write_vault_key(path: Path, project: str, broker: str) -> VaultKey:
    """Create a key pair and write it to the new file `path` (0600); never overwrites."""
    private = X25519PrivateKey.generate()
    private_bytes = private.private_bytes(
        _RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
    key = VaultKey(private, public, vault_key_id(public), project, broker, path)
    payload = json.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "project": project,
            "broker": broker,
            "key_id": key.key_id,
            "private_key": base64.b64encode(private_bytes).decode(),
            "public_key": base64.b64encode(public).decode(),
        },
        indent=2,
    )
    create_private_file(path, payload.encode(), what="vault key file", error=VaultError)
    return key


def read_vault_key(path: Path) -> VaultKey:
    """Read a vault key file; refuses files readable by group or others."""
    data = read_private_json(
        path,
        what="vault key file",
        holds="opens the pseudonym vault",
        error=VaultError,
        format_name=FORMAT,
        version=VERSION,
    )
    try:
        private = X25519PrivateKey.from_private_bytes(
            base64.b64decode(data["private_key"], validate=True)
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise VaultError(f"{path} is not a radbank vault key file: {exc!r}") from exc
    public = private.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
    return VaultKey(
        private, public, vault_key_id(public), str(data["project"]), str(data["broker"]), path
    )


@dataclass(frozen=True)
class OpenedEntry:
    pseudonym: str
    identifiers: Identifiers
    recorded_at: datetime | None


@dataclass(frozen=True)
class Lookup:
    pseudonym: str
    studies: int
    """Studies of the project under this pseudonym."""
    vault_entries: int
    """Vault entries under this pseudonym (0 without a vault)."""


class Vault:
    """The vault operations of the honest broker; every one is audited."""

    def __init__(self, index: Index, trail: AuditTrail) -> None:
        self.index = index
        self.trail = trail

    def init(
        self, project: Project, out: Path, *, broker: str, actor: str, source: str = "local"
    ) -> VaultKey:
        """Create the project's vault key pair: the public key goes to the project, the
        private key to the new file `out` (written first, so no entry is ever sealed to a
        key that nobody holds)."""
        if project.vault_key_id is not None:
            raise VaultError(
                f"project {project.name!r} already has a vault (key id {project.vault_key_id}, "
                f"broker {project.vault_broker!r}); use 'radbank vault rotate' to replace its key"
            )
        key = write_vault_key(out, project.name, broker)
        try:
            self.index.set_vault_key(
                project.id,
                public_key=key.public_key,
                key_id=key.key_id,
                broker=broker,
                expected_key_id=None,
                audit=self.trail.project_event(
                    "vault.init",
                    project.name,
                    actor=actor,
                    source=source,
                    detail={"key_id": key.key_id, "broker": broker},
                ),
            )
        except VaultKeyChanged as exc:
            raise VaultError(
                f"project {project.name!r} got a vault key from someone else meanwhile; "
                f"{out} (key id {key.key_id}) is not in use, delete it"
            ) from exc
        return key

    def open(
        self,
        project: Project,
        key_path: Path,
        *,
        actor: str,
        reason: str = "",
        pseudonyms: Sequence[str] | None = None,
        source: str = "local",
    ) -> list[OpenedEntry]:
        """Decrypt the project's entries (of `pseudonyms` only, when given). Audited, also
        when it fails: a wrong or unreadable key file is recorded as a failed opening."""
        resource = f"project:{project.name}"
        requested = sorted(set(pseudonyms)) if pseudonyms else None

        def refuse(message: str) -> VaultError:
            self.trail.record(
                "vault.open",
                actor=actor,
                resource=resource,
                project=project.name,
                source=source,
                outcome=Outcome.FAILURE,
                detail={"reason": reason, "pseudonyms": requested, "error": message},
            )
            return VaultError(message)

        if project.vault_key_id is None:
            raise refuse(
                f"project {project.name!r} has no vault ('radbank vault init' creates one)"
            )
        try:
            key = read_vault_key(key_path)
        except VaultError as exc:
            raise refuse(str(exc)) from exc
        if key.key_id != project.vault_key_id:
            raise refuse(
                f"{key_path} holds vault key {key.key_id}, but the vault of project "
                f"{project.name!r} is sealed to key {project.vault_key_id}; use the broker's "
                "current key file"
            )
        opened: list[OpenedEntry] = []
        for entry in self.index.vault_entries(project.id, requested):
            try:
                plaintext = unseal(
                    key.private_key,
                    entry.sealed,
                    _associated_data(project.name, entry.pseudonym),
                )
            except InvalidTag:
                raise refuse(
                    f"vault entry {entry.id} of project {project.name!r} does not open with "
                    f"{key_path}: it was altered or sealed to another key"
                ) from None
            identifiers = Identifiers.from_json(json.loads(plaintext))
            opened.append(OpenedEntry(entry.pseudonym, identifiers, entry.recorded_at))
        self.trail.record(
            "vault.open",
            actor=actor,
            resource=resource,
            project=project.name,
            source=source,
            detail={
                "reason": reason,
                "pseudonyms": sorted({o.pseudonym for o in opened}),
                "requested": requested,
                "entries": len(opened),
                "key_id": key.key_id,
            },
        )
        return opened

    def lookup(
        self,
        project: Project,
        project_key: bytes,
        *,
        patient_id: str,
        issuer: str = "",
        actor: str,
        reason: str = "",
        source: str = "local",
    ) -> Lookup:
        """The pseudonym a known patient has in the project (follow-up linkage). Audited
        with the pseudonym, never with the identifiers asked about."""
        pseudonym = patient_pseudonym(issuer, patient_id, project_key)
        found = Lookup(
            pseudonym,
            self.index.count_patient_studies(project.id, pseudonym),
            len(self.index.vault_entries(project.id, [pseudonym])),
        )
        self.trail.record(
            "vault.lookup",
            actor=actor,
            resource=f"project:{project.name}",
            project=project.name,
            source=source,
            detail={"reason": reason, "pseudonym": pseudonym, "studies": found.studies},
        )
        return found

    def rotate(
        self,
        project: Project,
        old_key_path: Path,
        out: Path,
        *,
        actor: str,
        broker: str | None = None,
        source: str = "local",
    ) -> tuple[VaultKey, int]:
        """Seal every entry to a new key pair (written to the new file `out`); returns the
        new key and how many entries were re-sealed. Pseudonyms do not change."""
        resource = f"project:{project.name}"
        if project.vault_key_id is None:
            raise VaultError(
                f"project {project.name!r} has no vault ('radbank vault init' creates one)"
            )
        try:
            old = read_vault_key(old_key_path)
        except VaultError as exc:
            self._failed_rotation(project, actor, source, str(exc))
            raise
        if old.key_id != project.vault_key_id:
            message = (
                f"{old_key_path} holds vault key {old.key_id}, not the project's current key "
                f"{project.vault_key_id}; rotation needs the current key"
            )
            self._failed_rotation(project, actor, source, message)
            raise VaultError(message)
        new = write_vault_key(out, project.name, broker or project.vault_broker or old.broker)

        def reseal(entry: VaultEntry) -> bytes:
            aad = _associated_data(project.name, entry.pseudonym)
            try:
                plaintext = unseal(old.private_key, entry.sealed, aad)
            except InvalidTag:
                raise VaultError(
                    f"vault entry {entry.id} of project {project.name!r} does not open with "
                    f"{old_key_path}; nothing was changed and {out} is not in use"
                ) from None
            return seal(new.public_key, plaintext, aad)

        try:
            count = self.index.set_vault_key(
                project.id,
                public_key=new.public_key,
                key_id=new.key_id,
                broker=new.broker,
                expected_key_id=old.key_id,
                reseal=reseal,
                audit=self.trail.event(
                    "vault.rotate",
                    actor=actor,
                    resource=resource,
                    project=project.name,
                    source=source,
                    detail={"from_key_id": old.key_id, "to_key_id": new.key_id},
                ),
            )
        except VaultKeyChanged as exc:
            raise VaultError(
                f"the vault key of project {project.name!r} changed meanwhile; nothing was "
                f"re-sealed and {out} is not in use"
            ) from exc
        return new, count

    def _failed_rotation(self, project: Project, actor: str, source: str, error: str) -> None:
        self.trail.record(
            "vault.rotate",
            actor=actor,
            resource=f"project:{project.name}",
            project=project.name,
            source=source,
            outcome=Outcome.FAILURE,
            detail={"error": error},
        )
