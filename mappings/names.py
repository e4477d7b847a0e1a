"""Persons' names as the court keeps them, whatever the sender's software typed.

The court case carries names in the case they were written ("Garnier",
"Dupont d'Arçon", "de La Fontaine"): no case change is made, as none is
reliable for particles and compound names. What is normalised is what differs
between two ways of typing the same name: Unicode composition (NFC), the
apostrophe (typographic ’ to '), spaces (single, none around a hyphen).
"""

from __future__ import annotations

import re
import unicodedata

from mappings.xmlread import collapse

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'", "`": "'"})
_SPACED_HYPHEN = re.compile(r"[ \t\r\n]*-[ \t\r\n]*")


def normalise_name(text: str) -> str:
    """``"Lefe\\u0300vre - Mu\\u0308ller"`` -> ``"Lefèvre-Müller"``; ``"N’Diaye"`` -> ``"N'Diaye"``."""
    text = unicodedata.normalize("NFC", text).translate(_APOSTROPHES)
    return _SPACED_HYPHEN.sub("-", collapse(text))


def split_given_names(text: str) -> list[str]:
    """Given names written on one line, comma-separated as on an identity card:
    ``"Élodie, Marie"`` -> ``["Élodie", "Marie"]`` (a space alone does not separate:
    "Ghjuvan Petru" is one given name)."""
    return [normalise_name(part) for part in text.split(",") if part.strip()]
