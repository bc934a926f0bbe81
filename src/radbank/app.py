"""Composition root: builds the services of a node from Settings. No globals elsewhere."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI

from radbank.analytics.dose import DoseAnalytics
from radbank.config import Settings
from radbank.consents import Consents
from radbank.dicom.pydicom_warnings import log_pydicom_warnings
from radbank.governance import keys as keyfile
from radbank.governance.audit import AuditTrail
from radbank.governance.identities import Identities
from radbank.governance.keys import NodeKeys
from radbank.governance.vault import Vault
from radbank.graphs import Graphs
from radbank.index import Index
from radbank.ingest import Pipeline
from radbank.ingest.journal import Journal
from radbank.semantic.store import open_store
from radbank.store import FileStore

if TYPE_CHECKING:  # only nodes configured for OpenID Connect load it
    from radbank.governance.oidc import OidcValidator


@dataclass
class Services:
    settings: Settings
    store: FileStore
    index: Index
    keys: NodeKeys
    journal: Journal
    pipeline: Pipeline
    trail: AuditTrail
    vault: Vault
    identities: Identities
    consents: Consents
    dose: DoseAnalytics
    graphs: Graphs

    def close(self) -> None:
        if self.identities.oidc is not None:
            self.identities.oidc.close()
        self.graphs.close()
        self.index.close()


def build_services(settings: Settings) -> tuple[Services, str | None]:
    """Open (creating on first start) the data directory; returns the services and, on first
    start only, the generated admin token to show once."""
    data_dir = settings.resolved_data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    # Only the node's own account may look inside: pseudonymised data is still personal data.
    data_dir.chmod(0o700)
    ring, generated_token = keyfile.load_or_create(settings.key_file, settings.admin_token)
    keys = NodeKeys(settings.key_file, ring)
    store = FileStore(settings.blob_dir)
    index = Index(settings.resolved_database_url)
    journal = Journal(data_dir / "journal")
    trail = AuditTrail(index)
    graphs = Graphs(
        open_store(settings.rdf_store, data_dir),
        index,
        store,
        keys,
        trail,
        Journal(data_dir / "rdf-journal"),
    )
    pipeline = Pipeline(store, index, keys, journal, graphs)
    identities = Identities(index, trail, oidc=_oidc(settings))
    services = Services(
        settings,
        store,
        index,
        keys,
        journal,
        pipeline,
        trail,
        Vault(index, trail),
        identities,
        Consents(index, store, keys, trail, journal, graphs),
        DoseAnalytics(index),
        graphs,
    )
    return services, generated_token


def _oidc(settings: Settings) -> OidcValidator | None:
    if not settings.oidc_issuer:
        return None
    from radbank.governance.oidc import OidcConfig, OidcValidator

    return OidcValidator(
        OidcConfig(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            jwks_url=settings.oidc_jwks_url,
            username_claim=settings.oidc_username_claim,
            roles_claim=settings.oidc_roles_claim,
            role_map=settings.oidc_role_map,
        )
    )


def recover(services: Services) -> int:
    """Undo what a crash left half-done: temp files and journalled blobs never indexed,
    erasures not finished, triples of stored instances never written; rebuild the graphs
    of projects whose description does not match the index (data of an older version)."""
    services.store.remove_temporaries()
    removed = services.journal.recover(services.index.blob_key_exists, services.store.delete)
    services.consents.resume()
    services.graphs.ensure_ontology()
    services.graphs.replay()
    for name in services.graphs.stale_projects():
        project = services.index.get_project(name)
        if project is not None:
            services.graphs.rebuild(project)
    return removed


def create_app(settings: Settings | None = None) -> FastAPI:
    from radbank.api import build_api

    services, _ = build_services(settings or Settings())
    return build_api(services)


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: Settings come from RADBANK_* variables."""
    log_pydicom_warnings(logging.getLogger("radbank.ingest"))
    return create_app(Settings())
