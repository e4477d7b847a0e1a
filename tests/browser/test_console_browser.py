"""The operator console in a real browser (issue 5, "done when"): headless Chromium finds a dead
letter by its reason, opens it, previews a replay, replays it with a reason and sees it
registered; a screenshot of each page visited is saved under artifacts/screenshots/."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.registry.testing import RegistryServer
from tests.browser.conftest import Gateway
from tests.conftest import GENDARMERIE_V1, with_new_id

pytestmark = pytest.mark.integration

SAMPLE = GENDARMERIE_V1 / "valid" / "07-mineur-garde-a-vue.xml"
UNIT = "00334490"  # the sample's unit: the sender token is for it


def wait_for_status(http: httpx.Client, receipt_id: str, status: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while http.get(f"/api/v1/receipts/{receipt_id}").json()["status"] != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"{receipt_id} did not become {status} within {timeout}s")
        time.sleep(0.05)


def snap(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def assert_inputs_labelled(page: Any) -> None:
    """Every visible form control of the page has a label (accessibility, issue 5)."""
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
             .filter(e => !e.labels || e.labels.length === 0).map(e => e.name)"""
    )
    assert unlabelled == []


def test_find_a_dead_letter_by_reason_replay_it_and_see_it_registered(
    browser: Any, live_gateway: Gateway, registry: RegistryServer, screenshots: Path
) -> None:
    """Registry down: a dead letter (RETRIES_EXHAUSTED). Registry back: the operator finds it from
    the dashboard's dead letters by reason, previews a redelivery, confirms with a reason, and
    the message page shows it registered with its numéro parquet."""
    credentials = live_gateway.container.credentials
    _, token = credentials.add_sender("gendarmerie", [UNIT])
    credentials.add_operator("camille", "integrator", password="a long console passphrase")
    registry.set_fault("unavailable")
    with httpx.Client(
        base_url=live_gateway.url, timeout=10, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        answer = http.post(
            "/api/v1/gendarmerie/procedures",
            content=with_new_id(SAMPLE.read_bytes()),
            headers={"Content-Type": "application/xml"},
        )
        assert answer.status_code == 202
        receipt_id = answer.json()["receipt_id"]
        wait_for_status(http, receipt_id, "dead_letter")
    registry.clear_fault()

    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.set_default_timeout(15_000)

    page.goto(f"{live_gateway.url}/console")
    page.wait_for_url("**/console/login?next=**")  # no session: the login page first
    assert_inputs_labelled(page)
    snap(page, screenshots, "0-login")
    page.get_by_label("Operator name").fill("camille")
    page.get_by_label("Password").fill("a long console passphrase")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/console$"))
    assert page.locator("h1").inner_text() == "Dashboard"
    assert page.locator("#operator-name").inner_text() == "camille"
    page.keyboard.press("Tab")  # keyboard users first reach the skip link, then the menu
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    snap(page, screenshots, "1-dashboard")
    page.get_by_role("link", name="RETRIES_EXHAUSTED").click()

    page.wait_for_url(re.compile(r"/console/messages\?.*dead_letter_reason=RETRIES_EXHAUSTED"))
    assert page.get_by_label("Dead-letter reason").input_value() == "RETRIES_EXHAUSTED"
    assert_inputs_labelled(page)
    snap(page, screenshots, "2-dead-letters")
    page.get_by_role("link", name=re.compile(receipt_id)).click()

    page.wait_for_url(f"**/console/messages/{receipt_id}")
    assert page.locator("#message-status").inner_text() == "dead letter"
    assert "RETRIES_EXHAUSTED" in page.locator(".lead").inner_text()
    assert page.get_by_label("redeliver the stored case (the registry was at fault)").is_checked()
    snap(page, screenshots, "3-message-dead-letter")
    # personal data (the XML, the case) once a purpose is stated, and recorded
    page.get_by_label("Purpose of the consultation").fill("Dead letter after the registry outage")
    page.get_by_role("button", name="Show the case and the XML").click()
    page.locator("#xml").wait_for()
    snap(page, screenshots, "3-message-with-purpose")
    page.get_by_role("button", name="Preview the replay").click()

    page.wait_for_url("**/console/replays/new?**")
    assert "requeue" in page.locator(".preview-items").inner_text()
    assert_inputs_labelled(page)
    snap(page, screenshots, "4-replay-preview")
    page.get_by_label("Reason (recorded with the replay)").fill("Registry was down on 29/11; it is back.")
    page.get_by_role("button", name=re.compile(r"Replay 1 message")).click()

    page.wait_for_url(re.compile(r"/console/replays/[0-9a-f-]{36}$"))
    assert "camille" in page.locator("main").inner_text()
    snap(page, screenshots, "5-replay")
    # the page's script refreshes the progress block until the replay has done its work
    page.locator("#replay-status", has_text="completed").wait_for(timeout=20_000)
    snap(page, screenshots, "5-replay-completed")

    page.goto(f"{live_gateway.url}/console/messages/{receipt_id}")
    deadline = time.monotonic() + 30
    while page.locator("#message-status").inner_text() != "registered":
        assert time.monotonic() < deadline, "the replayed message was not registered within 30 s"
        time.sleep(0.3)
        page.reload()
    assert re.search(r"numéro parquet \S+", page.locator(".lead").inner_text())
    replays_of = page.locator("section", has=page.locator("#replays-of")).inner_text()
    assert "Registry was down on 29/11" in replays_of and "camille" in replays_of
    snap(page, screenshots, "6-message-registered")

    page.goto(f"{live_gateway.url}/console/replays")
    assert "camille" in page.locator("table").inner_text()
    snap(page, screenshots, "7-replay-history")
    keys = [case["idempotency_key"] for case in registry.cases()]
    assert keys == [_message_id(live_gateway, receipt_id)], "registered once"


def _message_id(gateway: Gateway, receipt_id: str) -> str:
    found = gateway.container.store.receipt(receipt_id)
    assert found is not None and found.message_id is not None
    return found.message_id
