"""The composition root: the one place that wires the real parts together."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from gateway.formats import FormatRegistry, SenderFormat, SoapService
from gateway.intake import Checker, Intake
from gateway.natinf import NatinfReference
from gateway.settings import Settings
from gateway.store.engine import make_engine
from gateway.store.migrate import upgrade
from gateway.store.repository import SqlStore


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    settings: Settings
    engine: Engine
    store: SqlStore
    formats: FormatRegistry
    intake: Intake
    soap_services: tuple[SoapService, ...] = ()

    def close(self) -> None:
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
    store = SqlStore(engine)
    known_formats, known_soap = default_formats()
    checker = build_checker(settings, formats if formats is not None else known_formats)
    intake = Intake(checker, store)
    soap = soap_services if soap_services is not None else known_soap
    return Container(settings, engine, store, checker.formats, intake, soap)


def build_checker(settings: Settings, formats: tuple[SenderFormat, ...] | None = None) -> Checker:
    """Everything needed to check a message offline: schemas and the reference list."""
    registry = FormatRegistry(formats if formats is not None else default_formats()[0])
    natinf = NatinfReference.from_file(settings.natinf_csv)
    return Checker(registry, natinf, utc_now, clock_skew_seconds=settings.clock_skew_seconds)
