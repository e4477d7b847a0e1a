"""The operator console over HTTP (a live gateway on loopback, no delivery worker): each page,
the list's filters, escaping, the message page's XML and case, the replay forms (preview,
confirm, pause / resume / cancel), and the store queries behind the dashboard."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, update

from gateway.composition import Container, build
from gateway.console.xmlview import xml_view
from gateway.ports import DeliveryOutcome, OutcomeKind
from gateway.settings import Settings
from gateway.store.dashboard import counts_by_hour, dead_letters_by_reason, list_dead_letters
from gateway.store.queries import MessageFilter
from gateway.store.tables import cases, messages
from tests.conftest import GENDARMERIE_V1, with_new_id

VALID = GENDARMERIE_V1 / "valid" / "07-mineur-garde-a-vue.xml"
OTHER = GENDARMERIE_V1 / "valid" / "02-contraventions-routieres-bastia.xml"
FUTURE = GENDARMERIE_V1 / "invalid" / "date-in-future.xml"  # DATE_IN_FUTURE at line 256
NATINF_UNKNOWN = GENDARMERIE_V1 / "invalid" / "natinf-unknown.xml"


def submit(container: Container, data: bytes) -> str:
    return container.intake.submit("gendarmerie", data, "rest").receipt.receipt_id


def submit_file(container: Container, path: Path) -> str:
    return submit(container, with_new_id(path.read_bytes()))


def dead_letter(container: Container, receipt_id: str, code: str = "UNKNOWN_TRIBUNAL") -> None:
    """Settle the message's delivery as the worker does when the registry refuses the case."""
    deliveries = container.store.deliveries
    now = datetime.now(UTC) + timedelta(minutes=5)
    task = next(t for t in deliveries.claim("test", 100, 30, now) if t.receipt_id == receipt_id)
    outcome = DeliveryOutcome(task, OutcomeKind.DEAD_LETTER, now, 9, code=code, reason=f"refused: {code}")
    deliveries.settle([outcome], "test", 0, 30, now)


@pytest.fixture
def seeded(container: Container) -> dict[str, str]:
    """Two accepted messages (one then made a dead letter), two rejected; receipt ids by name."""
    ids = {
        "dead": submit_file(container, VALID),
        "accepted": submit_file(container, OTHER),
        "future": submit_file(container, FUTURE),
        "natinf": submit_file(container, NATINF_UNKNOWN),
    }
    dead_letter(container, ids["dead"])
    return ids


def page_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def form_inputs_without_label(html: str) -> list[str]:
    """Ids of visible inputs, selects and textareas that no <label for> names."""
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    controls = re.findall(r"<(?:input|select|textarea)\b([^>]*)>", html)
    missing = []
    for attributes in controls:
        if 'type="hidden"' in attributes or 'type="radio"' in attributes:
            continue  # radios are wrapped in their <label>
        found = re.search(r'id="([^"]+)"', attributes)
        if found is None or found.group(1) not in labelled:
            missing.append(attributes)
    return missing


# ----- pages -----------------------------------------------------------------------------------


def test_dashboard_shows_counts_by_hour_dead_letters_by_reason_circuit_and_queue(
    http: httpx.Client, seeded: dict[str, str]
) -> None:
    """The dashboard counts this hour's messages by status, links each dead-letter reason to the
    filtered list, and shows the breaker's state and the delivery queue."""
    answer = http.get("/console")
    assert answer.status_code == 200
    html = answer.text
    assert '<html lang="en">' in html
    assert "/console/messages?status=dead_letter&amp;dead_letter_reason=UNKNOWN_TRIBUNAL" in html
    assert re.search(r"Circuit: <strong[^>]*>closed</strong>", html)
    text = page_text(html)
    # accepted, delivering (claimed with the dead letter), held, registered, dead letter, rejected,
    # failed, total
    assert " 24 h 0 1 0 0 1 2 0 4 " in text, text[text.index("24 h ") :][:80]
    assert "dead letter 1" in text and "pending 1" in text


def test_message_list_filters_as_the_api_and_by_dead_letter_reason(
    http: httpx.Client, seeded: dict[str, str]
) -> None:
    """Status, error code and the console's dead-letter reason each narrow the list; every
    control of the filter form has its label."""

    def found(**params: str) -> set[str]:
        answer = http.get("/console/messages", params=params)
        assert answer.status_code == 200
        return set(re.findall(r'href="/console/messages/([0-9a-f-]{36})"', answer.text))

    assert found() == set(seeded.values())
    assert found(status="rejected") == {seeded["future"], seeded["natinf"]}
    assert found(error_code="NATINF_UNKNOWN") == {seeded["natinf"]}
    assert found(status="dead_letter", dead_letter_reason="UNKNOWN_TRIBUNAL") == {seeded["dead"]}
    assert found(dead_letter_reason="RETRIES_EXHAUSTED") == set()
    assert found(unit="00334490") == {seeded["dead"]}
    html = http.get("/console/messages", params={"status": "dead_letter"}).text
    assert form_inputs_without_label(html) == []
    assert "<code>UNKNOWN_TRIBUNAL</code>" in html, "the dead letter's reason is shown in its row"
    assert '<th scope="col">Receipt</th>' in html


def test_message_list_pages_by_cursor(http: httpx.Client, seeded: dict[str, str]) -> None:
    """One message per page: following "Next page" walks every message once."""
    seen: list[str] = []
    url: str | None = "/console/messages?limit=1"
    while url:
        html = http.get(url.replace("&amp;", "&")).text
        seen += re.findall(r'href="/console/messages/([0-9a-f-]{36})"', html)
        more = re.search(r'href="(/console/messages\?[^"]*cursor=[^"]*)" rel="next"', html)
        url = more.group(1) if more else None
    assert sorted(seen) == sorted(seeded.values())


def test_message_list_reports_filters_it_cannot_read(http: httpx.Client, seeded: dict[str, str]) -> None:
    """A date that is not one, or an altered page link, is said on the page, not a crash."""
    answer = http.get("/console/messages", params={"received_from": "yesterday"})
    assert answer.status_code == 400
    assert "received from: not a date and time" in answer.text
    answer = http.get("/console/messages", params={"cursor": "not-a-cursor"})
    assert answer.status_code == 400 and "The page link was altered" in answer.text


def test_message_page_links_each_error_to_its_highlighted_line(
    http: httpx.Client, seeded: dict[str, str]
) -> None:
    """A rejected message: each error links to the XML line it names, which is marked."""
    html = http.get(f"/console/messages/{seeded['future']}").text
    assert re.search(r'<code>DATE_IN_FUTURE</code>.*?<a href="#L256">line 256', html, re.S)
    assert re.search(r'<div class="ln err" id="L256"><span class="no" aria-hidden="true">256</span>', html)
    assert html.count('class="ln err"') == 1
    assert "reprocess" in re.search(r'value="(\w+)" checked', html).group(1)  # type: ignore[union-attr]


def test_message_page_shows_the_case_as_the_court_sees_it_and_the_timeline(
    http: httpx.Client, seeded: dict[str, str]
) -> None:
    """The dead letter's page: its reason, versions, timeline with the registry's answer, and
    the mapped case in the court's words (parties, NATINF, measures)."""
    html = http.get(f"/console/messages/{seeded['dead']}").text
    text = page_text(html)
    assert "reason UNKNOWN_TRIBUNAL" in text
    assert "gendarmerie-v1" in text and "schema 1.0" in text
    assert "registry call #1" in text and "refused: UNKNOWN_TRIBUNAL" in text
    assert "Tribunal judiciaire de Bordeaux (TJ33063)" in text
    assert "DA SILVA Enzo" in text and "mis en cause" in text and "témoin" in text
    assert "USAGE ILLICITE DE STUPEFIANTS" in text and "garde à vue (mineur)" in text
    assert '<div lang="fr" class="affaire">' in html
    assert 'value="redeliver" checked' in html


def test_unparsable_message_is_shown_as_received_escaped(container: Container, http: httpx.Client) -> None:
    """XML the hardened parser refuses is shown line by line as text, escaped, error line marked."""
    receipt = submit(container, b'<Procedure>\n<script>alert("x")</script>\n<oops></Procedure>')
    html = http.get(f"/console/messages/{receipt}").text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "could not be parsed: shown as received" in html
    assert re.search(r'<div class="ln err" id="L3">', html)


def test_everything_from_a_sender_or_a_query_is_escaped(container: Container, http: httpx.Client) -> None:
    """Markup in a case's text and in a filter value is shown as text, never interpreted."""
    data = with_new_id(VALID.read_bytes()).replace(
        b"<Summary>Un mineur", b"<Summary>&lt;img src=x onerror=alert(1)&gt; Un mineur"
    )
    receipt = submit(container, data)
    html = http.get(f"/console/messages/{receipt}").text
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt; Un mineur" in html
    listed = http.get("/console/messages", params={"unit": '"><script>x</script>'}).text
    assert "<script>x" not in listed and 'value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in listed


def test_unknown_pages_answer_404(http: httpx.Client) -> None:
    """An unknown receipt, replay or static file is a 404 page."""
    assert http.get(f"/console/messages/{uuid.uuid4()}").status_code == 404
    assert http.get(f"/console/replays/{uuid.uuid4()}").status_code == 404
    assert http.get("/console/static/nothing.css").status_code == 404


def test_pages_carry_a_strict_content_security_policy_and_their_assets(http: httpx.Client) -> None:
    """No inline script or style is needed: the policy allows only the console's own files."""
    answer = http.get("/console")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-store"
    assert " style=" not in answer.text and "<script>" not in answer.text
    assert http.get("/console/static/console.css").headers["content-type"].startswith("text/css")
    assert http.get("/console/static/console.js").status_code == 200


# ----- replay forms ----------------------------------------------------------------------------


def start_replay(http: httpx.Client, **form: str) -> httpx.Response:
    return http.post("/console/replays", data=form, follow_redirects=True)


def test_replay_one_message_preview_then_confirm_with_reason_and_name(
    http: httpx.Client, seeded: dict[str, str]
) -> None:
    """The preview says what would happen; confirming without a reason gives the preview back;
    with one, the replay starts and its page shows who asked and why."""
    dead = seeded["dead"]
    preview = http.get("/console/replays/new", params={"receipt_id": dead, "mode": "redeliver"})
    assert preview.status_code == 200
    assert "requeue" in preview.text and form_inputs_without_label(preview.text) == []
    assert 'method="post" action="/console/replays"' in preview.text

    refused = start_replay(http, mode="redeliver", receipt_id=dead, reason=" ", requested_by="Ana")
    assert refused.status_code == 400 and "Give your name and the reason" in refused.text

    started = start_replay(
        http, mode="redeliver", receipt_id=dead, reason="Registry fixed", requested_by="Ana"
    )
    assert started.status_code == 200 and re.search(r"/console/replays/[0-9a-f-]{36}$", str(started.url))
    text = page_text(started.text)
    assert "Ana" in text and "Registry fixed" in text and "1 message(s) by receipt" in text
    assert http.get(f"/console/messages/{dead}").text.count("Registry fixed") == 1
    history = http.get("/console/replays").text
    assert "Ana" in history and "redeliver" in history


def test_reprocess_preview_shows_the_differences_old_to_new(container: Container, http: httpx.Client) -> None:
    """A stored case that today's mapping would write differently: the preview shows the field,
    the old value and the new one, and changes nothing."""
    receipt_id = submit_file(container, OTHER)
    with container.engine.begin() as conn:
        pk = conn.execute(select(messages.c.id).where(messages.c.receipt_id == receipt_id)).scalar_one()
        affaire = dict(conn.execute(select(cases.c.affaire).where(cases.c.message_pk == pk)).scalar_one())
        conn.execute(
            update(cases)
            .where(cases.c.message_pk == pk)
            .values(affaire={**affaire, "tribunal_name": "Old <b>"})
        )
    before = container.store.receipt(receipt_id)
    preview = http.get("/console/replays/new", params={"receipt_id": receipt_id, "mode": "reprocess"})
    assert preview.status_code == 200
    assert "Replay preview: reprocess" in preview.text and 'class="action act-revise"' in preview.text
    assert re.search(
        r"<code>/tribunal_name</code></th><td><del>Old &lt;b&gt;</del></td><td><ins>Tribunal judiciaire de ",
        preview.text,
    )
    assert container.store.receipt(receipt_id) == before


def test_bulk_replay_by_the_lists_filters(http: httpx.Client, seeded: dict[str, str]) -> None:
    """From the list: "replay these" previews every message the filters find, and confirming
    records the replay with those filters (or, for a dead-letter reason, their receipts)."""
    listed = http.get("/console/messages", params={"status": "rejected"}).text
    assert "Replay these" in listed and '<input type="hidden" name="status" value="rejected">' in listed
    preview = http.get("/console/replays/new", params={"status": "rejected", "mode": "reprocess"})
    assert preview.status_code == 200 and "2 message(s) selected" in preview.text
    started = start_replay(
        http, mode="reprocess", status="rejected", reason="NATINF list updated", requested_by="Bo"
    )
    assert started.status_code == 200, page_text(started.text)
    assert "status rejected" in page_text(started.text)

    by_reason = {"status": "dead_letter", "dead_letter_reason": "UNKNOWN_TRIBUNAL"}
    preview = http.get("/console/replays/new", params={**by_reason, "mode": "redeliver"})
    assert "1 message(s) selected" in preview.text
    started = start_replay(http, mode="redeliver", reason="Tribunal added", requested_by="Bo", **by_reason)
    assert "1 message(s) by receipt" in page_text(started.text)


def test_bulk_replay_needs_at_least_one_filter(http: httpx.Client, seeded: dict[str, str]) -> None:
    """Replaying "everything" is not one click away: the list without filters offers no replay."""
    assert "Replay these" not in http.get("/console/messages").text
    answer = http.get("/console/replays/new", params={"mode": "redeliver"})
    assert answer.status_code == 400 and "Choose at least one filter" in answer.text
    answer = http.get("/console/replays/new", params={"mode": "again", "receipt_id": seeded["dead"]})
    assert answer.status_code == 400 and "Unknown replay mode" in answer.text


def control(http: httpx.Client, url: str, data: dict[str, str]) -> httpx.Response:
    return http.post(url, data=data, follow_redirects=True)


def test_pause_resume_and_cancel_buttons(http: httpx.Client, seeded: dict[str, str]) -> None:
    """With no runner in this server the replay stays running: pause, resume and cancel are
    recorded with the name given, and a control that does not fit the state is refused."""
    started = start_replay(
        http, mode="redeliver", receipt_id=seeded["dead"], reason="test", requested_by="Ana"
    )
    url = str(started.url).removeprefix(str(http.base_url).rstrip("/"))
    assert "Pause" in started.text and "Resume" not in started.text
    assert control(http, f"{url}/pause", data={"by": ""}).status_code == 400
    paused = control(http, f"{url}/pause", data={"by": "Chloé"})
    assert paused.status_code == 200 and 'id="replay-status">paused<' in paused.text
    assert "Resume" in paused.text and "Chloé" in paused.text
    resumed = control(http, f"{url}/resume", data={"by": "Chloé"})
    assert 'id="replay-status">running<' in resumed.text
    cancelled = control(http, f"{url}/cancel", data={"by": "Chloé"})
    assert 'id="replay-status">cancelled<' in cancelled.text and "Pause" not in cancelled.text
    assert control(http, f"{url}/pause", data={"by": "Chloé"}).status_code == 409
    assert control(http, f"{url}/explode", data={"by": "Chloé"}).status_code == 404
    progress = http.get(f"{url}/progress")
    assert progress.status_code == 200 and progress.text.lstrip().startswith('<div id="progress"')


def test_a_form_posted_from_another_site_is_refused(http: httpx.Client, seeded: dict[str, str]) -> None:
    """A browser names the page a form comes from: another origin cannot start a replay."""
    form = {"mode": "redeliver", "receipt_id": seeded["dead"], "reason": "x", "requested_by": "x"}
    answer = http.post("/console/replays", data=form, headers={"Origin": "https://elsewhere.example"})
    assert answer.status_code == 403
    assert "Replays" in http.get("/console/replays").text
    assert "by receipt" not in http.get("/console/replays").text


# ----- store queries and cost ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def wired(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'console.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    container = build(Settings(database_url=url))
    yield container
    container.close()


def test_counts_by_hour_and_dead_letters_by_reason_on_each_database(wired: Container) -> None:
    """The hour buckets (UTC) and the dead-letter reasons read the same on SQLite and PostgreSQL."""
    dead = submit_file(wired, VALID)
    submit_file(wired, FUTURE)
    dead_letter(wired, dead, "RETRIES_EXHAUSTED")
    hours = counts_by_hour(wired.engine, datetime.now(UTC))
    assert len(hours) == 24 and hours[-1].counts == {"dead_letter": 1, "rejected": 1}
    assert sum(h.total for h in hours[:-1]) == 0
    assert dead_letters_by_reason(wired.engine) == [("RETRIES_EXHAUSTED", 1)]
    page = list_dead_letters(wired.engine, "RETRIES_EXHAUSTED", MessageFilter(status="dead_letter"))
    assert [item["receipt_id"] for item in page.items] == [dead]
    assert list_dead_letters(wired.engine, "RETRIES_EXHAUSTED", MessageFilter(unit_code="x")).items == []


def statements(container: Container, http: httpx.Client, url: str) -> int:
    count = 0

    def counted(*_: Any) -> None:
        nonlocal count
        count += 1

    event.listen(container.engine, "before_cursor_execute", counted)
    try:
        assert http.get(url).status_code == 200
    finally:
        event.remove(container.engine, "before_cursor_execute", counted)
    return count


def test_pages_run_as_many_queries_for_many_rows_as_for_few(container: Container, http: httpx.Client) -> None:
    """No query per row: the dashboard, the list and a message page cost the same with 2 or 12
    messages in the store."""
    first = [submit_file(container, VALID), submit_file(container, FUTURE)]
    urls = [
        "/console",
        "/console/messages",
        "/console/messages?status=rejected",
        f"/console/messages/{first[0]}",
    ]
    few = [statements(container, http, url) for url in urls]
    for _ in range(5):
        submit_file(container, VALID)
        submit_file(container, FUTURE)
    assert [statements(container, http, url) for url in urls] == few


def test_xml_view_numbers_lines_as_received_and_marks_the_nearest_line_shown() -> None:
    """Pretty-printing keeps the line each element starts on in the message as received; an
    error on a line no element starts on is marked on the nearest line above."""
    view = xml_view(b'<a xmlns="urn:x">\n  <b>1</b>\n\n  <c x="&lt;"/>\n</a>', {2, 5})
    assert [(line.number, str(line.html)) for line in view.lines] == [
        (1, '&lt;<span class="t">a</span> <span class="a">xmlns</span>=<span class="v">"urn:x"</span>&gt;'),
        (2, '  &lt;<span class="t">b</span>&gt;1&lt;/<span class="t">b</span>&gt;'),
        (4, '  &lt;<span class="t">c</span> <span class="a">x</span>=<span class="v">"&lt;"</span>/&gt;'),
        (None, '&lt;/<span class="t">a</span>&gt;'),
    ]
    assert view.targets == {2: 2, 5: 4} and [line.error for line in view.lines] == [False, True, True, False]
    assert xml_view(None, set()).note is not None
