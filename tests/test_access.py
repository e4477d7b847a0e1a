"""Who may send and who may see, over real HTTP: sender tokens and certificate identities on
REST and SOAP, the unit check, own receipts only, rate limits; operator tokens and roles on the
API; the console's login, session, CSRF and the purpose asked before personal data."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import zeep
from sqlalchemy import select

from gateway.auth.credentials import Role
from gateway.composition import Container, build
from gateway.logs import configure_logging
from gateway.settings import Settings
from gateway.store.tables import audit_records, messages
from tests.conftest import GENDARMERIE_V1, LiveServer, with_new_id

SAMPLE = GENDARMERIE_V1 / "valid" / "01-stupefiants-controle-routier.xml"
UNIT = "00741234"  # the sample's unit
OTHER_UNIT = "00999999"
INTAKE = "/api/v1/gendarmerie/procedures"
XML = {"Content-Type": "application/xml"}


def secured(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'access.db'}",
        "sender_auth": "token",
        "operator_auth": True,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Container]:
    container = build(secured(tmp_path))
    yield container
    container.close()


@pytest.fixture
def server(wired: Container) -> Iterator[LiveServer]:
    with LiveServer(wired) as live:
        yield live


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sender_token(container: Container, *units: str, agency: str = "gendarmerie") -> str:
    _, token = container.credentials.add_sender(agency, list(units or (UNIT,)))
    assert token is not None
    return token


def operator_token(container: Container, name: str, role: str) -> str:
    _, token = container.credentials.add_operator(name, role)
    assert token is not None
    return token


def codes(response: httpx.Response) -> list[str]:
    return [e["code"] for e in response.json()["errors"]]


def stored(container: Container) -> list[Any]:
    with container.engine.connect() as conn:
        return list(conn.execute(select(messages.c.status, messages.c.errors)).all())


# ----- senders over REST -------------------------------------------------------------------------


def test_a_sender_sends_for_its_own_units_only(wired: Container, http: httpx.Client) -> None:
    token = sender_token(wired, UNIT)
    accepted = http.post(INTAKE, content=with_new_id(SAMPLE.read_bytes()), headers={**XML, **bearer(token)})
    assert accepted.status_code == 202, accepted.text

    elsewhere = sender_token(wired, OTHER_UNIT)
    refused = http.post(
        INTAKE, content=with_new_id(SAMPLE.read_bytes()), headers={**XML, **bearer(elsewhere)}
    )
    assert refused.status_code == 403 and codes(refused) == ["UNIT_NOT_ALLOWED"]
    assert UNIT in refused.json()["errors"][0]["message"]
    # refused and recorded: kept as a rejection, and on the audit record
    assert sorted(s for s, _ in stored(wired)) == ["accepted", "rejected"]
    with wired.engine.connect() as conn:
        kinds = conn.execute(select(audit_records.c.kind, audit_records.c.detail)).all()
    assert any(k == "rejection" and "UNIT_NOT_ALLOWED" in str(d) for k, d in kinds)


def test_missing_bad_revoked_or_expired_credentials_get_401_and_store_nothing(
    wired: Container, http: httpx.Client
) -> None:
    body = SAMPLE.read_bytes()
    missing = http.post(INTAKE, content=body, headers=XML)
    assert missing.status_code == 401 and codes(missing) == ["AUTH_REQUIRED"]
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    bad = http.post(INTAKE, content=body, headers={**XML, **bearer("ssn_snd_guess")})
    assert bad.status_code == 401 and codes(bad) == ["AUTH_INVALID"]
    sender, token = wired.credentials.add_sender("gendarmerie", [UNIT])
    wired.credentials.revoke_sender(sender.id)
    revoked = http.post(INTAKE, content=body, headers={**XML, **bearer(token)})
    assert revoked.status_code == 401 and codes(revoked) == ["AUTH_INVALID"]
    validate = http.post(f"{INTAKE}/validate", content=body, headers=XML)
    assert validate.status_code == 401
    assert stored(wired) == [], "an unauthenticated body is neither read nor kept"


def test_a_police_credential_cannot_send_for_the_gendarmerie(wired: Container, http: httpx.Client) -> None:
    token = sender_token(wired, UNIT, agency="police")
    refused = http.post(INTAKE, content=SAMPLE.read_bytes(), headers={**XML, **bearer(token)})
    assert refused.status_code == 403 and codes(refused) == ["AGENCY_NOT_ALLOWED"]


def test_a_unit_reads_its_own_receipts_only(wired: Container, http: httpx.Client) -> None:
    token = sender_token(wired, UNIT)
    receipt = http.post(INTAKE, content=SAMPLE.read_bytes(), headers={**XML, **bearer(token)}).json()
    url = f"/api/v1/receipts/{receipt['receipt_id']}"
    assert http.get(url, headers=bearer(token)).status_code == 200
    assert http.get(url).status_code == 401
    other = http.get(url, headers=bearer(sender_token(wired, OTHER_UNIT)))
    assert other.status_code == 404, "another unit's receipt is unknown to it, not forbidden"


def test_each_sender_has_a_rate_limit_with_retry_after(tmp_path: Path) -> None:
    container = build(secured(tmp_path, sender_rate_per_second=0.5, sender_burst=2))
    try:
        token = sender_token(container, UNIT)
        other = sender_token(container, UNIT)
        with LiveServer(container) as live, httpx.Client(base_url=live.url, timeout=30) as http:
            answers = [
                http.post(INTAKE, content=with_new_id(SAMPLE.read_bytes()), headers={**XML, **bearer(token)})
                for _ in range(3)
            ]
            assert [a.status_code for a in answers] == [202, 202, 429]
            assert codes(answers[2]) == ["RATE_LIMITED"] and int(answers[2].headers["Retry-After"]) >= 1
            again = http.post(
                INTAKE, content=with_new_id(SAMPLE.read_bytes()), headers={**XML, **bearer(other)}
            )
            assert again.status_code == 202, "another sender is not slowed down"
    finally:
        container.close()


# ----- certificate identities --------------------------------------------------------------------


SUBJECT = "CN=BTA Thones,OU=00741234,O=Gendarmerie nationale,C=FR"
HEADER = "X-Client-Certificate-Subject"


def test_a_certificate_identity_is_believed_from_the_trusted_proxy_only(tmp_path: Path) -> None:
    settings = secured(tmp_path, sender_auth="token,certificate", trusted_proxies=["127.0.0.1/32"])
    container = build(settings)
    try:
        container.credentials.add_sender("gendarmerie", [UNIT], certificate=SUBJECT, with_token=False)
        with LiveServer(container) as live, httpx.Client(base_url=live.url, timeout=30) as http:
            ok = http.post(INTAKE, content=with_new_id(SAMPLE.read_bytes()), headers={**XML, HEADER: SUBJECT})
            assert ok.status_code == 202, ok.text
            unknown = http.post(INTAKE, content=SAMPLE.read_bytes(), headers={**XML, HEADER: "CN=nobody"})
            assert unknown.status_code == 401 and codes(unknown) == ["AUTH_INVALID"]
    finally:
        container.close()


def test_the_certificate_header_from_anywhere_else_is_refused(tmp_path: Path) -> None:
    container = build(secured(tmp_path, sender_auth="token,certificate", trusted_proxies=["10.0.0.1"]))
    try:
        container.credentials.add_sender("gendarmerie", [UNIT], certificate=SUBJECT, with_token=False)
        token = sender_token(container, UNIT)
        with LiveServer(container) as live, httpx.Client(base_url=live.url, timeout=30) as http:
            forged = http.post(INTAKE, content=SAMPLE.read_bytes(), headers={**XML, HEADER: SUBJECT})
            assert forged.status_code == 403 and codes(forged) == ["IDENTITY_HEADER_UNTRUSTED"]
            both = http.post(
                INTAKE, content=SAMPLE.read_bytes(), headers={**XML, HEADER: SUBJECT, **bearer(token)}
            )
            assert both.status_code == 403, "a valid token does not excuse a forged identity header"
        assert stored(container) == []
    finally:
        container.close()


# ----- senders over SOAP -------------------------------------------------------------------------


def soap_client(url: str, token: str | None) -> Any:
    session = requests.Session()
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    transport = zeep.Transport(session=session)
    settings = zeep.Settings(forbid_dtd=True, forbid_entities=True, strict=True)
    return zeep.Client(f"{url}/soap/gendarmerie?wsdl", settings=settings, transport=transport)


def test_soap_checks_the_same_credentials_and_units(wired: Container, server: LiveServer) -> None:
    from lxml import etree

    procedure = etree.fromstring(with_new_id(SAMPLE.read_bytes()))
    answer = soap_client(server.url, sender_token(wired, UNIT)).service.SubmitProcedure(_value_1=procedure)
    assert str(answer.status) == "accepted"
    mine = soap_client(server.url, sender_token(wired, UNIT))
    assert str(mine.service.GetReceiptStatus(receiptId=answer.receiptId).status) == "accepted"

    for token, code in ((None, "AUTH_REQUIRED"), ("ssn_snd_guess", "AUTH_INVALID")):
        with pytest.raises(zeep.exceptions.Fault) as caught:
            soap_client(server.url, token).service.SubmitProcedure(
                _value_1=etree.fromstring(with_new_id(SAMPLE.read_bytes()))
            )
        assert caught.value.code.endswith("Client") and code in etree.tostring(caught.value.detail).decode()

    other = soap_client(server.url, sender_token(wired, OTHER_UNIT))
    with pytest.raises(zeep.exceptions.Fault) as caught:
        other.service.SubmitProcedure(_value_1=etree.fromstring(with_new_id(SAMPLE.read_bytes())))
    assert "UNIT_NOT_ALLOWED" in etree.tostring(caught.value.detail).decode()
    with pytest.raises(zeep.exceptions.Fault) as caught:
        other.service.GetReceiptStatus(receiptId=answer.receiptId)
    assert "RECEIPT_NOT_FOUND" in etree.tostring(caught.value.detail).decode()


# ----- operators on the API ----------------------------------------------------------------------


def test_operator_api_needs_a_token_and_the_right_role(wired: Container, http: httpx.Client) -> None:
    token = sender_token(wired, UNIT)
    receipt = http.post(INTAKE, content=SAMPLE.read_bytes(), headers={**XML, **bearer(token)}).json()[
        "receipt_id"
    ]
    assert http.get("/api/v1/messages").status_code == 401
    assert http.get("/api/v1/messages", headers=bearer(token)).status_code == 401, "a sender is no operator"
    viewer = operator_token(wired, "victor", Role.VIEWER)
    assert http.get("/api/v1/messages", headers=bearer(viewer)).status_code == 200
    preview = {"mode": "redeliver", "receipt_ids": [receipt]}
    refused = http.post("/api/v1/replays/preview", json=preview, headers=bearer(viewer))
    assert refused.status_code == 403 and codes(refused) == ["ROLE_FORBIDDEN"]
    integrator = operator_token(wired, "ines", Role.INTEGRATOR)
    assert http.post("/api/v1/replays/preview", json=preview, headers=bearer(integrator)).status_code == 200
    started = http.post(
        "/api/v1/replays",
        json={**preview, "reason": "check", "requested_by": "someone else"},
        headers=bearer(integrator),
    )
    assert started.status_code == 202 and started.json()["requested_by"] == "ines", "who is authenticated"


def test_personal_data_needs_a_purpose_and_is_recorded(wired: Container, http: httpx.Client) -> None:
    token = sender_token(wired, UNIT)
    receipt = http.post(INTAKE, content=SAMPLE.read_bytes(), headers={**XML, **bearer(token)}).json()[
        "receipt_id"
    ]
    viewer = bearer(operator_token(wired, "victor", Role.VIEWER))
    plain = http.get(f"/api/v1/messages/{receipt}", headers=viewer).json()
    assert plain["personal_data"] == "withheld" and plain["raw"] is None and plain["case"] is None
    assert plain["status"] == "accepted" and plain["timeline"], "metadata and timeline stay visible"
    shown = http.get(f"/api/v1/messages/{receipt}", params={"purpose": "INC-77 check"}, headers=viewer).json()
    assert shown["personal_data"] == "shown" and shown["raw"] and shown["case"]["affaire"]["parties"]
    with wired.engine.connect() as conn:
        records = conn.execute(
            select(audit_records.c.actor, audit_records.c.subject, audit_records.c.detail).where(
                audit_records.c.kind == "consultation"
            )
        ).all()
    assert [(r.actor, r.subject, r.detail) for r in records] == [
        ("victor", receipt, {"purpose": "INC-77 check"})
    ]


# ----- the console -------------------------------------------------------------------------------


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "every form of a signed-in page carries the CSRF token"
    return found.group(1)


def test_console_login_session_csrf_roles_and_logout(wired: Container, server: LiveServer) -> None:
    wired.credentials.add_operator("ada", Role.INTEGRATOR, password="correct horse battery")
    wired.credentials.add_operator("victor", Role.VIEWER, password="another long one")
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        first = browser.get("/console/messages?status=rejected")
        assert first.status_code == 303 and first.headers["location"].startswith("/console/login?next=")
        wrong = browser.post("/console/login", data={"name": "ada", "password": "nope", "next": "/console"})
        assert wrong.status_code == 401 and "wrong password" in wrong.text
        evil = browser.post(
            "/console/login",
            data={"name": "ada", "password": "correct horse battery", "next": "//evil.example"},
        )
        assert evil.status_code == 303 and evil.headers["location"] == "/console", "no open redirect"
        cookie = evil.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
        home = browser.get("/console")
        assert home.status_code == 200 and "ada" in home.text
        token = csrf_of(home.text)
        # a POST without the session's CSRF token is refused
        assert browser.post("/console/logout", data={}).status_code == 403
        assert browser.post("/console/logout", data={"csrf": "forged"}).status_code == 403
        out = browser.post("/console/logout", data={"csrf": token})
        assert out.status_code == 303 and out.headers["location"] == "/console/login"
        assert browser.get("/console").status_code == 303, "the session ended"
    with httpx.Client(base_url=server.url, timeout=30) as viewer:
        viewer.post(
            "/console/login", data={"name": "victor", "password": "another long one", "next": "/console"}
        )
        assert viewer.get("/console/messages").status_code == 200
        assert viewer.get("/console/replays/new?receipt_id=x&mode=redeliver").status_code == 403, (
            "viewers do not replay"
        )


def test_console_message_page_asks_a_purpose_before_personal_data(
    wired: Container, server: LiveServer
) -> None:
    token = sender_token(wired, UNIT)
    wired.credentials.add_operator("ada", Role.INTEGRATOR, password="correct horse battery")
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        receipt = browser.post(INTAKE, content=SAMPLE.read_bytes(), headers={**XML, **bearer(token)}).json()
        page_url = f"/console/messages/{receipt['receipt_id']}"
        browser.post(
            "/console/login", data={"name": "ada", "password": "correct horse battery", "next": page_url}
        )
        withheld = browser.get(page_url)
        assert withheld.status_code == 200 and "Purpose of the consultation" in withheld.text
        assert "Thônes" not in withheld.text and "XML as received" not in withheld.text
        shown = browser.get(page_url, params={"purpose": "checking INC-9"})
        assert "XML as received" in shown.text and "Girard" in shown.text
    with wired.engine.connect() as conn:
        records = conn.execute(
            select(audit_records.c.actor, audit_records.c.detail).where(
                audit_records.c.kind == "consultation"
            )
        ).all()
    assert [(r.actor, r.detail) for r in records] == [("ada", {"purpose": "checking INC-9"})]


def test_a_revoked_token_stops_working_within_the_cache_time(tmp_path: Path) -> None:
    container = build(secured(tmp_path, credential_cache_seconds=0.3))
    try:
        sender, token = container.credentials.add_sender("gendarmerie", [UNIT])
        with LiveServer(container) as live, httpx.Client(base_url=live.url, timeout=30) as http:
            send = {"content": with_new_id(SAMPLE.read_bytes()), "headers": {**XML, **bearer(token)}}
            assert http.post(INTAKE, **send).status_code == 202
            container.credentials.revoke_sender(sender.id)
            time.sleep(0.4)
            send["content"] = with_new_id(SAMPLE.read_bytes())
            assert http.post(INTAKE, **send).status_code == 401
    finally:
        container.close()


def test_administrators_manage_senders_over_the_api(wired: Container, http: httpx.Client) -> None:
    admin = bearer(operator_token(wired, "ada", Role.ADMINISTRATOR))
    integrator = bearer(operator_token(wired, "ines", Role.INTEGRATOR))
    body = {"agency": "gendarmerie", "units": [UNIT], "name": "BTA Thônes"}
    refused = http.post("/api/v1/senders", json=body, headers=integrator)
    assert refused.status_code == 403 and codes(refused) == ["ROLE_FORBIDDEN"]
    assert http.get("/api/v1/settings", headers=integrator).status_code == 403

    made = http.post("/api/v1/senders", json=body, headers=admin)
    assert made.status_code == 201, made.text
    sender = made.json()
    assert sender["token"].startswith("ssn_snd_") and sender["state"] == "active"
    listed = http.get("/api/v1/senders", headers=admin).json()
    assert [s["id"] for s in listed] == [sender["id"]] and "token" not in listed[0]
    sent = http.post(INTAKE, content=SAMPLE.read_bytes(), headers={**XML, **bearer(sender["token"])})
    assert sent.status_code == 202

    unknown = http.post("/api/v1/senders", json={**body, "agency": "douane"}, headers=admin)
    assert unknown.status_code == 422 and codes(unknown) == ["SENDER_INVALID"]
    revoked = http.post(f"/api/v1/senders/{sender['id']}/revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    again = http.post(f"/api/v1/senders/{sender['id']}/revoke", headers=admin)
    assert again.status_code == 404 and codes(again) == ["SENDER_UNKNOWN"]

    settings = http.get("/api/v1/settings", headers=admin).json()
    assert (
        settings["sender_auth"] == "token"
        and "payload_keys" not in settings
        and "database_url" not in settings
    )
    with wired.engine.connect() as conn:
        actors = conn.execute(
            select(audit_records.c.actor, audit_records.c.detail["action"].as_string()).where(
                audit_records.c.kind == "credential", audit_records.c.subject == sender["id"]
            )
        ).all()
    assert [tuple(a) for a in actors] == [("ada", "sender_added"), ("ada", "sender_revoked")]


def test_a_refused_sender_is_logged_with_its_code_never_its_token(
    wired: Container, http: httpx.Client, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", json=True)
    guess = "ssn_snd_a-guessed-token-that-must-not-be-logged"
    http.post(INTAKE, content=SAMPLE.read_bytes(), headers={**XML, **bearer(guess)})
    http.get("/api/v1/messages")
    output = "".join(capfd.readouterr())
    refused = [json.loads(line) for line in output.splitlines() if '"sender_refused"' in line]
    assert [(r["code"], r["http_status"], r["path"]) for r in refused] == [("AUTH_INVALID", 401, INTAKE)]
    assert '"operator_refused"' in output and "OPERATOR_AUTH_REQUIRED" in output
    assert guess not in output
