"""Business-rule building blocks: the NATINF list, INSEE codes, SIREN/SIRET checksums."""

from __future__ import annotations

import pytest

from gateway.model import Nature
from gateway.natinf import NatinfReference, parse_nature
from gateway.rules import luhn_valid, siret_valid, valid_insee_commune
from gateway.settings import SAMPLE_NATINF


def test_sample_natinf_list_loads_every_code() -> None:
    """The shipped sample (real codes checked against public sources) loads whole."""
    reference = NatinfReference.from_file(SAMPLE_NATINF)
    assert len(reference) == 8
    entry = reference.get("23800")
    assert entry is not None and entry.nature == Nature.CONTRAVENTION_4 and entry.in_force


def test_withdrawn_code_is_known_but_not_in_force() -> None:
    """en_vigueur=non marks a code that can no longer be used."""
    entry = NatinfReference.from_file(SAMPLE_NATINF).get("6166")
    assert entry is not None and not entry.in_force


def test_stray_spaces_and_bom_are_tolerated() -> None:
    """Real exports carry spaces around cells and a byte-order mark."""
    text = "\ufeffnatinf ; qualification_simplifiee ;nature\n 180 ; USAGE ILLICITE DE STUPEFIANTS ;  Délit \n"
    reference = NatinfReference.from_csv_text(text)
    entry = reference.get("180")
    assert entry is not None
    assert entry.qualification == "USAGE ILLICITE DE STUPEFIANTS"
    assert entry.nature == Nature.DELIT and entry.in_force


def test_leading_zeros_do_not_change_a_code() -> None:
    """NATINF 00180 is 180."""
    reference = NatinfReference.from_csv_text("natinf;q;nature\n180;X;Délit\n")
    assert reference.get("00180") is not None


@pytest.mark.parametrize(
    ("text", "nature"),
    [
        ("Crime", Nature.CRIME),
        ("Délit", Nature.DELIT),
        ("Contravention de 4ème classe", Nature.CONTRAVENTION_4),
        ("Contravention de 2ème classe", Nature.CONTRAVENTION_2),
        ("Contravention de 1ère classe", Nature.CONTRAVENTION_1),
        ("inconnue", None),
    ],
)
def test_nature_labels_of_the_ministry(text: str, nature: Nature | None) -> None:
    """The ministry's nature labels map to the court model's natures."""
    assert parse_nature(text) == nature


@pytest.mark.parametrize("code", ["75056", "2A004", "2B033", "97411", "97608", "01001", "95680"])
def test_well_formed_insee_communes(code: str) -> None:
    """Metropolitan, Corsican and overseas communes."""
    assert valid_insee_commune(code)


@pytest.mark.parametrize(
    "code", ["20004", "00123", "96001", "75000", "2C004", "2A000", "98735", "9741", "97900"]
)
def test_malformed_insee_communes(code: str) -> None:
    """Department 20 no longer exists, 00/96 never did, 000 is no commune."""
    assert not valid_insee_commune(code)


def test_luhn_on_known_numbers() -> None:
    """The Luhn checksum accepts a valid SIREN and refuses a one-digit change."""
    assert luhn_valid("732829320")
    assert not luhn_valid("732829321")
    assert luhn_valid("73282932000074")
    assert not luhn_valid("12345678A")


def test_la_poste_sirets_use_their_own_rule() -> None:
    """La Poste's establishments (SIREN 356000000) sum their digits to a multiple of 5."""
    assert siret_valid("35600000049837")
    assert not siret_valid("35600000049838")
