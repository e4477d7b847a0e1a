"""Persons' names as the court keeps them, whatever the sender's software typed."""

from __future__ import annotations

import unicodedata

import pytest

from mappings.names import normalise_name, split_given_names


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        (unicodedata.normalize("NFD", "Lefèvre-Müller"), "Lefèvre-Müller"),
        ("Lefèvre - Müller", "Lefèvre-Müller"),
        ("N’Diaye", "N'Diaye"),
        ("  de   La Fontaine ", "de La Fontaine"),
        ("Dupont--Martin", "Dupont--Martin"),
        ("McBride", "McBride"),
    ],
)
def test_name_is_normalised_but_keeps_its_case(typed: str, kept: str) -> None:
    """NFC, straight apostrophe, single spaces, none around hyphens; case as written."""
    assert normalise_name(typed) == kept


def test_given_names_are_split_on_commas_only() -> None:
    """As on an identity card; a space alone does not separate two given names."""
    assert split_given_names("Élodie, Marie") == ["Élodie", "Marie"]
    assert split_given_names("Jean - Philippe , Marc,") == ["Jean-Philippe", "Marc"]
    assert split_given_names("Ghjuvan Petru") == ["Ghjuvan Petru"]
