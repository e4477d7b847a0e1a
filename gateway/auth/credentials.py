"""Sender credentials, operators and console sessions, on the gateway's database.

Nothing secret is stored: tokens and session ids as SHA-256, passwords with scrypt. A token is
shown once, when it is made. Every change of a credential is an audit record (kind
``credential``), written in the same transaction.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway.audit import CREDENTIAL, Entry
from gateway.auth.secrets import check_password, hash_password, new_token, token_hash, token_hint
from gateway.ports import Clock
from gateway.store.audit import AuditLog
from gateway.store.tables import operator_sessions, operators, senders
from gateway.store.times import aware, utc


class Role:
    """What an operator may do; each role may do what the ones before it may."""

    VIEWER = "viewer"  # read the message list, the dashboard, replay history
    INTEGRATOR = "integrator"  # and preview and run replays
    ADMINISTRATOR = "administrator"  # and manage senders, operators and settings
    ALL = (VIEWER, INTEGRATOR, ADMINISTRATOR)

    @classmethod
    def allows(cls, role: str, needed: str) -> bool:
        return role in cls.ALL and cls.ALL.index(role) >= cls.ALL.index(needed)


class CredentialError(ValueError):
    """A credential request that cannot be carried out (unknown agency, duplicate name...)."""


@dataclass(frozen=True, slots=True)
class Sender:
    id: str
    name: str
    agency: str
    units: tuple[str, ...]
    token_hint: str | None
    certificate: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or utc(now) < utc(self.expires_at))

    def may_send_for(self, unit: str | None) -> bool:
        return unit is not None and unit in self.units


@dataclass(frozen=True, slots=True)
class Operator:
    id: str
    name: str
    role: str
    token_hint: str | None
    has_password: bool
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or utc(now) < utc(self.expires_at))

    def may(self, needed: str) -> bool:
        return Role.allows(self.role, needed)


@dataclass(frozen=True, slots=True)
class Session:
    operator: Operator
    csrf: str
    expires_at: datetime


def _when(value: Any) -> datetime | None:
    return aware(value) if value is not None else None


def _sender(row: Any) -> Sender:
    return Sender(
        id=row.id,
        name=row.name,
        agency=row.agency,
        units=tuple(row.units),
        token_hint=row.token_hint,
        certificate=row.certificate,
        created_at=aware(row.created_at),
        expires_at=_when(row.expires_at),
        revoked_at=_when(row.revoked_at),
    )


def _operator(row: Any) -> Operator:
    return Operator(
        id=row.id,
        name=row.name,
        role=row.role,
        token_hint=row.token_hint,
        has_password=row.password_hash is not None,
        created_at=aware(row.created_at),
        expires_at=_when(row.expires_at),
        revoked_at=_when(row.revoked_at),
    )


class Credentials:
    """Senders, operators and sessions over SQLAlchemy; ``writing`` is the store's write
    transaction (queued behind the other writers on SQLite)."""

    def __init__(
        self,
        engine: Engine,
        writing: Any,
        audit: AuditLog,
        clock: Clock,
        session_minutes: float = 30.0,
    ) -> None:
        self.engine = engine
        self._writing = writing
        self.audit = audit
        self.clock = clock
        self.session_ttl = timedelta(minutes=session_minutes)

    @contextmanager
    def _change(self, actor: str, subject: str, detail: dict[str, Any]) -> Iterator[Connection]:
        """A change of credentials and its audit record, in one transaction."""
        with self._writing() as conn:
            yield conn
            self.audit.append(conn, Entry(CREDENTIAL, actor, subject, self.clock(), detail))

    # ------------------------------------------------------------ senders

    def add_sender(
        self,
        agency: str,
        units: Sequence[str],
        name: str | None = None,
        certificate: str | None = None,
        with_token: bool = True,
        expires_at: datetime | None = None,
        by: str = "cli",
    ) -> tuple[Sender, str | None]:
        """A new sender credential; its token (if any) is returned here and never again."""
        units = tuple(dict.fromkeys(u.strip() for u in units if u.strip()))
        if not units:
            raise CredentialError("A sender credential needs at least one unit code.")
        if not with_token and not certificate:
            raise CredentialError("A sender credential needs a token, a certificate identity or both.")
        token = new_token("snd") if with_token else None
        sender_id = str(uuid.uuid4())
        row = {
            "id": sender_id,
            "name": (name or f"{agency} {' '.join(units)}")[:128],
            "agency": agency,
            "units": list(units),
            "token_hash": token_hash(token) if token else None,
            "token_hint": token_hint(token) if token else None,
            "certificate": certificate.strip() if certificate else None,
            "created_at": utc(self.clock()),
            "expires_at": utc(expires_at) if expires_at else None,
        }
        detail = {"action": "sender_added", "agency": agency, "units": list(units), "token": bool(token)}
        try:
            with self._change(by, sender_id, detail) as conn:
                conn.execute(insert(senders), row)
        except IntegrityError as exc:
            raise CredentialError("That certificate identity already belongs to a sender.") from exc
        return self.sender(sender_id), token  # type: ignore[return-value]

    def sender(self, sender_id: str) -> Sender | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(senders).where(senders.c.id == sender_id)).first()
        return _sender(row) if row is not None else None

    def senders(self) -> list[Sender]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(senders).order_by(senders.c.created_at, senders.c.id)).all()
        return [_sender(row) for row in rows]

    def revoke_sender(self, sender_id: str, by: str = "cli") -> Sender:
        now = utc(self.clock())
        with self._change(by, sender_id, {"action": "sender_revoked"}) as conn:
            done = conn.execute(
                update(senders)
                .where(senders.c.id == sender_id, senders.c.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount
            if not done:
                raise CredentialError(f"No active sender {sender_id}.")
        found = self.sender(sender_id)
        assert found is not None
        return found

    def sender_by_token(self, token: str) -> Sender | None:
        """The active sender holding ``token``, or None (unknown, expired, revoked)."""
        return self._active_sender(senders.c.token_hash == token_hash(token))

    def sender_by_certificate(self, subject: str) -> Sender | None:
        return self._active_sender(senders.c.certificate == subject.strip())

    def _active_sender(self, condition: Any) -> Sender | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(senders).where(condition)).first()
        found = _sender(row) if row is not None else None
        return found if found is not None and found.active(self.clock()) else None

    # ------------------------------------------------------------ operators

    def add_operator(
        self,
        name: str,
        role: str,
        password: str | None = None,
        with_token: bool = True,
        expires_at: datetime | None = None,
        by: str = "cli",
    ) -> tuple[Operator, str | None]:
        """A new operator; the API token (if any) is returned here and never again."""
        if role not in Role.ALL:
            raise CredentialError(f"Unknown role {role!r}: one of {', '.join(Role.ALL)}.")
        name = name.strip()
        if not name:
            raise CredentialError("An operator needs a name.")
        if password is not None and len(password) < 12:
            raise CredentialError("A console password has at least 12 characters.")
        token = new_token("op") if with_token else None
        operator_id = str(uuid.uuid4())
        row = {
            "id": operator_id,
            "name": name[:128],
            "role": role,
            "token_hash": token_hash(token) if token else None,
            "token_hint": token_hint(token) if token else None,
            "password_hash": hash_password(password) if password else None,
            "created_at": utc(self.clock()),
            "expires_at": utc(expires_at) if expires_at else None,
        }
        detail = {"action": "operator_added", "role": role, "token": bool(token), "password": bool(password)}
        try:
            with self._change(by, operator_id, detail) as conn:
                conn.execute(insert(operators), row)
        except IntegrityError as exc:
            raise CredentialError(f"An operator named {name!r} exists already.") from exc
        return self.operator(operator_id), token  # type: ignore[return-value]

    def operator(self, operator_id: str) -> Operator | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(operators).where(operators.c.id == operator_id)).first()
        return _operator(row) if row is not None else None

    def operators(self) -> list[Operator]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(operators).order_by(operators.c.name)).all()
        return [_operator(row) for row in rows]

    def revoke_operator(self, name_or_id: str, by: str = "cli") -> Operator:
        now = utc(self.clock())
        which = or_(operators.c.id == name_or_id, operators.c.name == name_or_id)
        with self._writing() as conn:
            row = conn.execute(select(operators.c.id).where(which, operators.c.revoked_at.is_(None))).first()
            if row is None:
                raise CredentialError(f"No active operator {name_or_id}.")
            conn.execute(update(operators).where(operators.c.id == row.id).values(revoked_at=now))
            conn.execute(
                update(operator_sessions)
                .where(operator_sessions.c.operator_id == row.id, operator_sessions.c.ended_at.is_(None))
                .values(ended_at=now)
            )
            self.audit.append(conn, Entry(CREDENTIAL, by, row.id, now, {"action": "operator_revoked"}))
        found = self.operator(row.id)
        assert found is not None
        return found

    def operator_by_token(self, token: str) -> Operator | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(operators).where(operators.c.token_hash == token_hash(token))).first()
        found = _operator(row) if row is not None else None
        return found if found is not None and found.active(self.clock()) else None

    # ------------------------------------------------------------ console sessions

    def login(self, name: str, password: str) -> tuple[str, Session] | None:
        """A new session for the right password (its cookie value, and the session), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(operators).where(operators.c.name == name.strip())).first()
        if not check_password(password, row.password_hash if row is not None else None):
            return None
        assert row is not None
        operator = _operator(row)
        now = utc(self.clock())
        if not operator.active(now):
            return None
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now + self.session_ttl
        with self._writing() as conn:
            conn.execute(
                insert(operator_sessions),
                {
                    "id_hash": token_hash(cookie),
                    "operator_id": operator.id,
                    "csrf": csrf,
                    "created_at": now,
                    "expires_at": expires,
                },
            )
        return cookie, Session(operator, csrf, expires)

    def session(self, cookie: str) -> Session | None:
        """The live session of a cookie, its expiry moved on (sliding); None if ended or expired."""
        now = utc(self.clock())
        query = (
            select(operator_sessions, operators)
            .join(operators, operators.c.id == operator_sessions.c.operator_id)
            .where(operator_sessions.c.id_hash == token_hash(cookie))
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None or row.ended_at is not None or utc(aware(row.expires_at)) <= now:
            return None
        operator = _operator(row)
        if not operator.active(now):
            return None
        expires = now + self.session_ttl
        if utc(aware(row.expires_at)) - now < self.session_ttl / 2:  # a write at most twice a ttl
            with self._writing() as conn:
                conn.execute(
                    update(operator_sessions)
                    .where(operator_sessions.c.id_hash == token_hash(cookie))
                    .values(expires_at=expires)
                )
        return Session(operator, row.csrf, expires)

    def logout(self, cookie: str) -> None:
        with self._writing() as conn:
            conn.execute(
                update(operator_sessions)
                .where(
                    operator_sessions.c.id_hash == token_hash(cookie), operator_sessions.c.ended_at.is_(None)
                )
                .values(ended_at=utc(self.clock()))
            )
