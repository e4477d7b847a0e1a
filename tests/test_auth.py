"""Credentials: sender tokens and certificate identities, operators and their roles, console
sessions, rate limits and trusted proxies (the parts below HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from gateway.auth.credentials import CredentialError, Role
from gateway.auth.limits import RateLimiter
from gateway.auth.proxy import TrustedProxies
from gateway.auth.secrets import check_password, hash_password
from gateway.composition import Container, build
from gateway.settings import Settings
from gateway.store.audit import verify_chain
from gateway.store.tables import audit_records, operators, senders


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def wired(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'auth.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    container = build(Settings(database_url=url, session_minutes=30))
    container.credentials.clock = Clock()
    yield container
    container.close()


def clock(container: Container) -> Clock:
    assert isinstance(container.credentials.clock, Clock)
    return container.credentials.clock


def test_a_sender_token_is_shown_once_and_stored_only_as_its_hash(wired: Container) -> None:
    creds = wired.credentials
    sender, token = creds.add_sender("gendarmerie", ["01234", "05678", "01234"], by="admin")
    assert token is not None and token.startswith("ssn_snd_") and len(token) > 40
    assert sender.units == ("01234", "05678") and sender.agency == "gendarmerie"
    assert sender.token_hint is not None and token.startswith(sender.token_hint.rstrip("…"))
    with wired.engine.connect() as conn:
        stored = conn.execute(select(senders)).one()._mapping
        dump = " ".join(str(v) for v in stored.values())
    assert token not in dump and token[12:] not in dump
    assert creds.sender_by_token(token) == sender
    assert creds.sender_by_token(token + "x") is None
    assert creds.sender_by_token("") is None


def test_expired_and_revoked_sender_credentials_stop_working(wired: Container) -> None:
    creds = wired.credentials
    expiring, token = creds.add_sender("police", ["PN750"], expires_at=clock(wired).now + timedelta(days=1))
    assert token is not None and creds.sender_by_token(token) is not None
    clock(wired).now += timedelta(days=1)
    assert creds.sender_by_token(token) is None, "expired"
    kept, other = creds.add_sender("police", ["PN751"])
    assert other is not None
    revoked = creds.revoke_sender(kept.id, by="admin")
    assert revoked.revoked_at is not None and creds.sender_by_token(other) is None
    with pytest.raises(CredentialError):
        creds.revoke_sender(kept.id)
    assert [s.id for s in creds.senders()] == [expiring.id, kept.id]


def test_certificate_identities(wired: Container) -> None:
    creds = wired.credentials
    subject = "CN=BR Lyon,OU=01234,O=Gendarmerie nationale,C=FR"
    sender, token = creds.add_sender("gendarmerie", ["01234"], certificate=subject, with_token=False)
    assert token is None and creds.sender_by_certificate(subject) == sender
    assert creds.sender_by_certificate("CN=someone else") is None
    with pytest.raises(CredentialError, match="already"):
        creds.add_sender("gendarmerie", ["09999"], certificate=subject)
    with pytest.raises(CredentialError):
        creds.add_sender("gendarmerie", ["09999"], with_token=False)
    with pytest.raises(CredentialError):
        creds.add_sender("gendarmerie", [" "])


def test_every_credential_change_is_an_audit_record_without_the_secret(wired: Container) -> None:
    creds = wired.credentials
    sender, token = creds.add_sender("gendarmerie", ["01234"], by="admin")
    creds.revoke_sender(sender.id, by="admin")
    operator, op_token = creds.add_operator("alice", Role.INTEGRATOR, password="a long passphrase", by="root")
    creds.revoke_operator("alice", by="root")
    with wired.engine.connect() as conn:
        rows = conn.execute(
            select(audit_records).where(audit_records.c.kind == "credential").order_by(audit_records.c.seq)
        ).all()
    assert [(r.actor, r.subject, r.detail["action"]) for r in rows] == [
        ("admin", sender.id, "sender_added"),
        ("admin", sender.id, "sender_revoked"),
        ("root", operator.id, "operator_added"),
        ("root", operator.id, "operator_revoked"),
    ]
    assert token is not None and op_token is not None
    assert all(token not in str(r.detail) and op_token not in str(r.detail) for r in rows)
    assert verify_chain(wired.engine).ok


def test_operator_roles_tokens_and_passwords(wired: Container) -> None:
    creds = wired.credentials
    viewer, token = creds.add_operator("victor", Role.VIEWER)
    assert token is not None and creds.operator_by_token(token) == viewer
    assert viewer.may(Role.VIEWER) and not viewer.may(Role.INTEGRATOR)
    admin, _ = creds.add_operator("ada", Role.ADMINISTRATOR, password="correct horse battery")
    assert admin.may(Role.INTEGRATOR) and admin.may(Role.ADMINISTRATOR)
    with pytest.raises(CredentialError, match="exists"):
        creds.add_operator("ada", Role.VIEWER)
    with pytest.raises(CredentialError, match="role"):
        creds.add_operator("bob", "superuser")
    with pytest.raises(CredentialError, match="12 characters"):
        creds.add_operator("bob", Role.VIEWER, password="short")
    with wired.engine.connect() as conn:
        stored = conn.execute(select(operators.c.password_hash).where(operators.c.name == "ada")).scalar_one()
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert creds.login("ada", "wrong password!") is None
    assert creds.login("nobody", "correct horse battery") is None
    assert creds.login("victor", "anything at all") is None, "no password: no console login"


def test_console_sessions_expire_when_idle_and_end_at_logout_or_revocation(wired: Container) -> None:
    creds = wired.credentials
    creds.add_operator("ada", Role.ADMINISTRATOR, password="correct horse battery")
    logged = creds.login("ada", "correct horse battery")
    assert logged is not None
    cookie, session = logged
    assert session.operator.name == "ada" and len(session.csrf) >= 32
    with wired.engine.connect() as conn:
        assert cookie not in str(conn.execute(text("SELECT * FROM operator_sessions")).all())
    clock(wired).now += timedelta(minutes=20)
    assert creds.session(cookie) is not None, "used within the idle time: moved on"
    clock(wired).now += timedelta(minutes=25)
    assert creds.session(cookie) is not None, "45 minutes after login, 25 after last use"
    clock(wired).now += timedelta(minutes=31)
    assert creds.session(cookie) is None, "idle too long"
    cookie, _ = creds.login("ada", "correct horse battery") or ("", None)
    creds.logout(cookie)
    assert creds.session(cookie) is None
    cookie, _ = creds.login("ada", "correct horse battery") or ("", None)
    creds.revoke_operator("ada")
    assert creds.session(cookie) is None and creds.login("ada", "correct horse battery") is None


def test_password_hashes_are_salted_and_checked_in_constant_time() -> None:
    one, two = hash_password("the same password"), hash_password("the same password")
    assert one != two
    assert check_password("the same password", one) and check_password("the same password", two)
    assert not check_password("the same passwort", one)
    assert (
        not check_password("x", "md5$abc")
        and not check_password("x", "garbage")
        and not check_password("x", None)
    )


def test_rate_limiter_lets_a_burst_through_then_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    wait = limiter.take("a")
    assert wait is not None and wait == pytest.approx(0.5)
    assert RateLimiter.retry_after(wait) == "1"
    assert limiter.take("b") is None, "each sender has its own bucket"
    now[0] += 0.5
    assert limiter.take("a") is None and limiter.take("a") is not None


def test_trusted_proxies() -> None:
    proxies = TrustedProxies(["127.0.0.1", "10.1.0.0/16", "::1"])
    assert proxies.trusts("127.0.0.1") and proxies.trusts("10.1.200.3") and proxies.trusts("::1")
    assert not proxies.trusts("10.2.0.1") and not proxies.trusts(None) and not proxies.trusts("proxy")
    assert not TrustedProxies([]).trusts("127.0.0.1")
