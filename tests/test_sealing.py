"""Sealed payloads: encrypted at rest, authenticated, keys rotated, old plain payloads readable."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.store.sealing import PREFIX, PayloadCipher, PayloadUnreadable, new_key

RAW = b"<Procedure><Nom>DUPONT</Nom></Procedure>"


def test_sealed_payloads_hide_the_bytes_and_open_again() -> None:
    cipher = PayloadCipher([new_key()])
    sealed = cipher.seal(RAW)
    assert sealed is not None and sealed.startswith(PREFIX) and b"DUPONT" not in sealed
    assert cipher.seal(RAW) != sealed, "a fresh IV each time"
    assert cipher.open(sealed) == RAW
    assert cipher.open(None) is None and cipher.seal(None) is None


def test_an_altered_payload_or_a_wrong_key_is_refused_not_misread() -> None:
    cipher = PayloadCipher([new_key()])
    sealed = cipher.seal(RAW)
    assert sealed is not None
    altered = sealed[:-5] + (b"A" if sealed[-5:-4] != b"A" else b"B") + sealed[-4:]
    with pytest.raises(PayloadUnreadable):
        cipher.open(altered)
    with pytest.raises(PayloadUnreadable):
        PayloadCipher([new_key()]).open(sealed)
    with pytest.raises(PayloadUnreadable, match="no key"):
        PayloadCipher().open(sealed)


def test_keys_rotate_and_payloads_stored_before_encryption_still_open() -> None:
    old, new = new_key(), new_key()
    sealed_before = PayloadCipher([old]).seal(RAW)
    rotated = PayloadCipher([new, old])
    assert rotated.open(sealed_before) == RAW
    assert PayloadCipher([new]).open(rotated.seal(RAW)) == RAW, "the first key seals"
    assert rotated.open(RAW) == RAW, "plain payloads from before stay readable"
    assert PayloadCipher().seal(RAW) == RAW and not PayloadCipher().enabled


def test_the_store_seals_raw_payloads_and_every_reader_opens_them(tmp_path: Path) -> None:
    from gateway.composition import build
    from gateway.settings import Settings
    from gateway.store.queries import message_detail
    from replay.model import Action, Mode, Selection
    from tests.conftest import GENDARMERIE_V1

    sample = GENDARMERIE_V1 / "valid" / "07-mineur-garde-a-vue.xml"
    url = f"sqlite:///{tmp_path / 'sealed.db'}"
    key = new_key()
    container = build(Settings(database_url=url, payload_keys=[key]))
    try:
        receipt = container.intake.submit("gendarmerie", sample.read_bytes(), "rest").receipt.receipt_id
        with container.engine.connect() as conn:
            stored = conn.execute(text("SELECT raw FROM messages")).scalar_one()
        assert b"<BirthName>Da Silva</BirthName>" in sample.read_bytes()
        assert bytes(stored).startswith(PREFIX) and b"Da Silva" not in bytes(stored)
        assert container.store.raw(receipt) == sample.read_bytes()
        detail = message_detail(container.engine, receipt, container.store.cipher)
        assert detail is not None and detail["raw"] == sample.read_bytes() and not detail["raw_unreadable"]
        [item] = container.replays.preview(Mode.REPROCESS, Selection(receipt_ids=(receipt,))).items
        assert item.action == Action.SKIP and "unchanged" in item.reason, "reprocess reads the sealed bytes"
    finally:
        container.close()
    without = build(Settings(database_url=url, payload_keys=[new_key()]))
    try:
        detail = message_detail(without.engine, receipt, without.store.cipher)
        assert detail is not None and detail["raw"] is None and detail["raw_unreadable"]
    finally:
        without.close()
