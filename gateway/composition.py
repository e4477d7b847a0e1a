"""The composition root: the one place that wires the real parts together."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from tenacity import wait_exponential_jitter

from gateway.auth.credentials import Credentials
from gateway.delivery.breaker import CircuitBreaker
from gateway.delivery.policy import RetryPolicy
from gateway.delivery.worker import DeliveryWorker, WorkerSettings
from gateway.formats import FormatRegistry, SenderFormat, SoapService
from gateway.intake import Checker, Intake
from gateway.metrics import Metrics
from gateway.natinf import NatinfReference
from gateway.ports import Clock, CourtRegistry
from gateway.registry_client import ZeepCourtRegistry
from gateway.settings import Settings
from gateway.store.engine import make_engine
from gateway.store.migrate import upgrade
from gateway.store.repository import SqlStore
from gateway.store.retention import Retention
from gateway.store.sealing import PayloadCipher
from replay.service import ReplayService


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    settings: Settings
    engine: Engine
    store: SqlStore
    formats: FormatRegistry
    intake: Intake
    metrics: Metrics
    breaker: CircuitBreaker
    replays: ReplayService
    credentials: Credentials
    retention: Retention
    soap_services: tuple[SoapService, ...] = ()
    registry: CourtRegistry | None = field(default=None)
    clock: Clock = utc_now

    def worker(self) -> DeliveryWorker:
        """A delivery worker on this container's store, registry client and breaker."""
        s = self.settings
        if self.registry is None:
            self.registry = ZeepCourtRegistry(
                s.registry_wsdl, s.registry_url, s.registry_connect_timeout, s.registry_read_timeout
            )
        policy = RetryPolicy(
            max_attempts=s.retry_max_attempts,
            max_age=timedelta(hours=s.retry_max_age_hours),
            wait=wait_exponential_jitter(
                multiplier=s.retry_initial_seconds, max=s.retry_max_seconds, jitter=1
            ),
        )
        settings = WorkerSettings(s.worker_concurrency, s.worker_lease_seconds, s.worker_poll_seconds)
        return DeliveryWorker(
            self.store.deliveries, self.registry, self.breaker, self.clock, policy, settings, self.metrics
        )

    def close(self) -> None:
        self.store.close()
        self.engine.dispose()


def default_formats() -> tuple[tuple[SenderFormat, ...], tuple[SoapService, ...]]:
    from adapters.registry import FORMATS, SOAP_SERVICES  # adapters are wired here, and only here

    return FORMATS, SOAP_SERVICES


def build(
    settings: Settings,
    formats: tuple[SenderFormat, ...] | None = None,
    soap_services: tuple[SoapService, ...] | None = None,
    migrate: bool = True,
) -> Container:
    """Compile the schemas, load the reference list, open the store (migrating it if asked)."""
    if migrate:
        upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    store = SqlStore(engine, PayloadCipher(settings.payload_keys))
    known_formats, known_soap = default_formats()
    checker = build_checker(settings, formats if formats is not None else known_formats)
    metrics = Metrics(store.deliveries.queue_depth)
    intake = Intake(checker, store, metrics)
    breaker = CircuitBreaker(
        settings.registry_url,
        threshold=settings.breaker_threshold,
        cooldown=settings.breaker_cooldown_seconds,
        on_change=metrics.circuit_changed,
    )
    metrics.circuit_changed(settings.registry_url, breaker.state)
    soap = soap_services if soap_services is not None else known_soap
    replays = ReplayService(store, checker, utc_now, settings.replay_rate_per_second)
    credentials = Credentials(engine, store.writing, store.audit, utc_now, settings.session_minutes)
    retention = Retention(
        engine, store.writing, store.audit, utc_now, settings.retention_days, settings.rejected_retention_days
    )
    return Container(
        settings,
        engine,
        store,
        checker.formats,
        intake,
        metrics,
        breaker,
        replays,
        credentials,
        retention,
        soap,
    )


def build_checker(settings: Settings, formats: tuple[SenderFormat, ...] | None = None) -> Checker:
    """Everything needed to check a message offline: schemas and the reference list."""
    chosen = formats if formats is not None else default_formats()[0]
    registry = FormatRegistry(with_deprecations(chosen, settings.deprecated_formats))
    natinf = NatinfReference.from_file(settings.natinf_csv)
    return Checker(registry, natinf, utc_now, clock_skew_seconds=settings.clock_skew_seconds)


def with_deprecations(
    formats: tuple[SenderFormat, ...], deprecated: dict[str, date]
) -> tuple[SenderFormat, ...]:
    """The formats with the configured end-of-support dates; an unknown name stops start-up."""
    names = {f.name for f in formats}
    unknown = sorted(set(deprecated) - names)
    if unknown:
        raise ValueError(
            f"SAISINE_DEPRECATED_FORMATS names unknown formats {unknown}; known: {sorted(names)}"
        )
    return tuple(
        dataclasses.replace(f, deprecated_until=deprecated[f.name]) if f.name in deprecated else f
        for f in formats
    )
