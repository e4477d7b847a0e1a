"""The reference registry's own SQLite file: affaires, compléments and the numbering counters.

A numéro parquet is ``<tribunal code>-<year>-<7-digit sequence>`` (see registry.wsdl).
The counter of a (tribunal, year) is raised in the same transaction as the
affaire is inserted, so numbers are unique and gap-free: a failed insert rolls
the counter back too. Writes are serialized by a lock (one registry process
per file, which is what a sandbox runs); each answer given for an
idempotency key is stored, so the same key always gets the same answer.

The file is in WAL mode (the clerk's page reads while calls write) with
``synchronous=NORMAL``: a commit survives the registry process dying, not a
power cut, which is enough for a sandbox and spares each call a disk sync (on a
busy disk, the sync and not the registry's work would set its pace).
Statements are built once, values bound at each call: with SQLAlchemy, building
a statement costs more than running it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

metadata = MetaData()

affaires = Table(
    "affaires",
    metadata,
    Column("numero_parquet", String(32), primary_key=True),
    Column("tribunal_code", String(16), nullable=False),
    Column("year", Integer, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("revision", Integer, nullable=False),
    Column("affaire_xml", Text, nullable=False),
    # ISO 8601 in UTC, kept as text: the exact registeredAt answered for the key
    Column("received_at", String(40), nullable=False),
)

complements = Table(
    "complements",
    metadata,
    Column("idempotency_key", String(128), primary_key=True),
    Column("numero_parquet", String(32), nullable=False, index=True),
    Column("revision", Integer, nullable=False, server_default="1"),
    Column("xml", Text, nullable=False),
    Column("received_at", String(40), nullable=False),
)

counters = Table(
    "counters",
    metadata,
    Column("tribunal_code", String(16), nullable=False),
    Column("year", Integer, nullable=False),
    Column("last_seq", Integer, nullable=False),
    PrimaryKeyConstraint("tribunal_code", "year"),
)

Outcome = Literal["registered", "revised", "repeat"]

_KEY = bindparam("key", type_=String())
_COMPLEMENT_BY_KEY = select(complements).where(complements.c.idempotency_key == _KEY)
_AFFAIRE_BY_KEY = select(affaires).where(affaires.c.idempotency_key == _KEY)
_AFFAIRE_EXISTS = select(affaires.c.numero_parquet).where(affaires.c.numero_parquet == bindparam("numero"))
_REVISE = affaires.update().where(affaires.c.numero_parquet == bindparam("b_numero"))
_REVISE_COMPLEMENT = complements.update().where(complements.c.idempotency_key == bindparam("b_key"))
_INSERT_AFFAIRE = affaires.insert()
_INSERT_COMPLEMENT = complements.insert()
# the (tribunal, year) counter raised, or started at 1, in the caller's transaction
_NEXT_SEQ = (
    sqlite_insert(counters)
    .values(tribunal_code=bindparam("tribunal_code"), year=bindparam("year"), last_seq=1)
    .on_conflict_do_update(
        index_elements=[counters.c.tribunal_code, counters.c.year],
        set_={"last_seq": counters.c.last_seq + 1},
    )
    .returning(counters.c.last_seq)
)


class KeyConflict(Exception):
    """The idempotency key was already used for another request (other operation or affaire)."""


class UnknownAffaire(Exception):
    """No affaire has this numéro parquet."""


@dataclass(frozen=True, slots=True)
class Registration:
    """The answer for one key: the same every time the key comes back."""

    numero_parquet: str
    registered_at: str
    outcome: Outcome

    @property
    def repeat(self) -> bool:
        return self.outcome == "repeat"


@dataclass(frozen=True, slots=True)
class CaseRow:
    """A registered affaire as the clerk's page and the JSON API list it."""

    numero_parquet: str
    tribunal_code: str
    idempotency_key: str
    revision: int
    received_at: str
    affaire_xml: str
    complements: int


def numero_parquet(tribunal_code: str, year: int, seq: int) -> str:
    """``TJ75056-2026-0000042``: the documented format of registry.wsdl."""
    return f"{tribunal_code}-{year:04d}-{seq:07d}"


class RegistryStore:
    """Thread-safe access to the registry's SQLite file (created on first use)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(f"sqlite:///{path}")
        event.listen(self.engine, "connect", _wal)
        metadata.create_all(self.engine)
        self._write = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    def register_affaire(
        self, key: str, revision: int, tribunal_code: str, xml: str, now: datetime
    ) -> Registration:
        """A new numéro for a new key; the stored answer for a known one (a higher revision
        replaces the stored affaire, keeping its numéro)."""
        with self._write, self.engine.begin() as conn:
            if conn.execute(_COMPLEMENT_BY_KEY, {"key": key}).first():
                raise KeyConflict(f"idempotency key {key!r} was used for a complément")
            row = conn.execute(_AFFAIRE_BY_KEY, {"key": key}).first()
            if row is not None:
                if revision <= row.revision:
                    return Registration(row.numero_parquet, row.received_at, "repeat")
                revised = {"b_numero": row.numero_parquet, "revision": revision, "affaire_xml": xml}
                conn.execute(_REVISE, revised)
                return Registration(row.numero_parquet, row.received_at, "revised")
            year = now.year
            seq = int(conn.execute(_NEXT_SEQ, {"tribunal_code": tribunal_code, "year": year}).scalar_one())
            numero = numero_parquet(tribunal_code, year, seq)
            received_at = now.isoformat(timespec="seconds")
            conn.execute(
                _INSERT_AFFAIRE,
                {
                    "numero_parquet": numero,
                    "tribunal_code": tribunal_code,
                    "year": year,
                    "seq": seq,
                    "idempotency_key": key,
                    "revision": revision,
                    "affaire_xml": xml,
                    "received_at": received_at,
                },
            )
            return Registration(numero, received_at, "registered")

    def add_complement(
        self, key: str, numero: str, xml: str, now: datetime, revision: int = 1
    ) -> Registration:
        """Attach a complément to the affaire ``numero``; the stored answer for a known key (a
        higher revision replaces the stored complément)."""
        with self._write, self.engine.begin() as conn:
            if conn.execute(_AFFAIRE_BY_KEY, {"key": key}).first():
                raise KeyConflict(f"idempotency key {key!r} was used for an affaire")
            row = conn.execute(_COMPLEMENT_BY_KEY, {"key": key}).first()
            if row is not None:
                if row.numero_parquet != numero:
                    raise KeyConflict(f"idempotency key {key!r} was used for affaire {row.numero_parquet}")
                if revision <= row.revision:
                    return Registration(row.numero_parquet, row.received_at, "repeat")
                conn.execute(_REVISE_COMPLEMENT, {"b_key": key, "revision": revision, "xml": xml})
                return Registration(row.numero_parquet, row.received_at, "revised")
            if not conn.execute(_AFFAIRE_EXISTS, {"numero": numero}).first():
                raise UnknownAffaire(f"no affaire has the numéro parquet {numero}")
            received_at = now.isoformat(timespec="seconds")
            conn.execute(
                _INSERT_COMPLEMENT,
                {
                    "idempotency_key": key,
                    "numero_parquet": numero,
                    "revision": revision,
                    "xml": xml,
                    "received_at": received_at,
                },
            )
            return Registration(numero, received_at, "registered")

    def cases(self) -> list[CaseRow]:
        """Every affaire, most recent first, with its number of compléments."""
        count = (
            select(func.count())
            .select_from(complements)
            .where(complements.c.numero_parquet == affaires.c.numero_parquet)
            .scalar_subquery()
        )
        query = select(affaires, count.label("complements")).order_by(
            affaires.c.received_at.desc(), affaires.c.numero_parquet.desc()
        )
        with self.engine.connect() as conn:
            return [
                CaseRow(
                    numero_parquet=row.numero_parquet,
                    tribunal_code=row.tribunal_code,
                    idempotency_key=row.idempotency_key,
                    revision=row.revision,
                    received_at=row.received_at,
                    affaire_xml=row.affaire_xml,
                    complements=row.complements,
                )
                for row in conn.execute(query)
            ]


def _wal(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
