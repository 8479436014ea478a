"""The composition root: engines, key providers, vault and services, built once from Settings."""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request

from obhut.access.handler import AccessHandler
from obhut.access.login import Throttle
from obhut.access.policies import PolicyService
from obhut.audit.adapters.file import FileSink
from obhut.audit.adapters.webhook import AlertWebhook, WebhookSink
from obhut.audit.handler import AuditHandler
from obhut.audit.ports import CheckpointSink
from obhut.consent import service as consent
from obhut.consent.cache import ConsentIndex, Listener
from obhut.consent.handler import ConsentHandler
from obhut.customers.handler import CustomerHandler
from obhut.customers.models import Customer
from obhut.customers.rules import Category
from obhut.customers.service import CustomerService
from obhut.kit.db import build_engine, session_factory
from obhut.kit.errors import ConfigurationError
from obhut.kit.settings import Settings
from obhut.outbox.adapters.nats import NatsPublisher
from obhut.outbox.adapters.webhook import WebhookSender
from obhut.outbox.handler import OutboxHandler
from obhut.outbox.tasks import Relay, RelayConfig
from obhut.retention.handler import RetentionHandler
from obhut.retention.purge import Purge
from obhut.rights.handler import RightsHandler
from obhut.rights.ledger import ErasureLedger
from obhut.rights.registry import Registry
from obhut.rights.service import RightsService
from obhut.vault.cache import KeyCache
from obhut.vault.providers import build_providers
from obhut.vault.sensitive import SensitiveStore
from obhut.vault.service import Vault


@dataclass
class Container:
    settings: Settings
    engine: Engine
    keystore_engine: Engine
    sessions: sessionmaker[Session]
    vault: Vault
    customers: CustomerService
    policies: PolicyService
    throttle: Throttle
    checkpoint_sinks: list[CheckpointSink]
    alert_webhook: AlertWebhook | None
    rights: RightsService
    _consent_index: ConsentIndex | None = field(default=None, init=False)
    _listener: Listener | None = field(default=None, init=False)
    _index_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def relay(self) -> Relay:
        """The outbox relay with the destinations configured; build one per event loop."""
        settings = self.settings
        publisher = None
        if settings.nats_url:
            publisher = NatsPublisher(settings.nats_url, settings.nats_stream, settings.nats_subject_prefix)
        config = RelayConfig(settings.outbox_batch, settings.webhook_retry_seconds, settings.webhook_max_attempts)
        sender = WebhookSender(settings.webhook_timeout_seconds)
        return Relay(self.sessions, self.vault, consent_allows, publisher, sender, config)

    def purge(self) -> Purge:
        """The retention purge, erasing through the rights registry (every domain) and its ledger."""
        return Purge(self.sessions, self.vault, self.customers, self.rights.registry, self.rights.ledger)

    def consent_index(self) -> ConsentIndex:
        """The in-process consent check, built on first use; on PostgreSQL it listens for the changes of
        other processes and stays empty (every check reads the database) until it does."""
        with self._index_lock:
            return self._build_consent_index()

    def _build_consent_index(self) -> ConsentIndex:
        if self._consent_index is None:
            postgres = self.engine.dialect.name == "postgresql"
            self._consent_index = ConsentIndex(self.sessions)
            if postgres:
                self._consent_index.clear(active=False)
                url = self.engine.url.set(drivername="postgresql")
                self._listener = Listener(self._consent_index, url.render_as_string(hide_password=False))
                self._listener.start()
        return self._consent_index

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        self.engine.dispose()
        self.keystore_engine.dispose()
        if self.vault.sensitive is not None:
            self.vault.sensitive.close()


def container_of(request: Request) -> Container:
    """The container the application was built with (`create_app` keeps it in the app's state)."""
    found: Container = request.app.state.container
    return found


def consent_allows(session: Session, workspace_id: str, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
    """The outbox's gate: the (customer, purpose) pairs whose customer allows the purpose now and has not
    been erased."""
    customers = sorted({customer_id for customer_id, _ in pairs})
    live = set(
        session.scalars(
            select(Customer.id).where(
                Customer.workspace_id == workspace_id, Customer.id.in_(customers), Customer.erased_at.is_(None)
            )
        )
    )
    return consent.allowed_pairs(session, workspace_id, [p for p in pairs if p[0] in live])


def build(settings: Settings) -> Container:
    engine = build_engine(settings.resolved_database_url)
    keystore_engine = build_engine(settings.resolved_keystore_url)
    unknown = sorted(settings.resolved_sensitive_categories - {category.value for category in Category})
    if unknown:
        known = ", ".join(category.value for category in Category)
        raise ConfigurationError(f"OBHUT_SENSITIVE_CATEGORIES names '{unknown[0]}', not a data category ({known})")
    vault = Vault(
        build_providers(settings),
        session_factory(keystore_engine),
        KeyCache(settings.key_cache_seconds),
        settings.key_shards,
    )
    if settings.sensitive_url:
        vault.sensitive = SensitiveStore(
            build_engine(settings.sensitive_url), settings.resolved_sensitive_categories, vault.provider
        )
    sessions = session_factory(engine)
    customers = CustomerService(vault)
    return Container(
        settings,
        engine,
        keystore_engine,
        sessions,
        vault,
        customers,
        PolicyService(),
        Throttle(sessions, settings),
        checkpoint_sinks(settings),
        AlertWebhook(settings.audit_alert_webhook_url) if settings.audit_alert_webhook_url else None,
        RightsService(customers, registry(customers), ErasureLedger(settings.resolved_erasure_ledger)),
    )


def registry(customers: CustomerService) -> Registry:
    """Every domain that stores data about a customer, in the order an erasure asks them: the profile comes
    last, since its data key goes with it."""
    return Registry(
        [
            AccessHandler(),
            AuditHandler(),
            ConsentHandler(),
            OutboxHandler(),
            RightsHandler(),
            RetentionHandler(),
            CustomerHandler(customers),
        ]
    )


def checkpoint_sinks(settings: Settings) -> list[CheckpointSink]:
    sinks: list[CheckpointSink] = []
    if settings.audit_checkpoint_file is not None:
        sinks.append(FileSink(settings.audit_checkpoint_file))
    if settings.audit_webhook_url:
        sinks.append(WebhookSink(settings.audit_webhook_url))
    return sinks
