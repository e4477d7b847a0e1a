"""The NATINF reference list, loaded from the ministry's CSV export.

The ministry publishes the full list every quarter (separator ``;``, UTF-8,
first columns: number, simplified qualification, nature, defining texts,
punishing texts). Real exports carry stray spaces: every cell is stripped.
An optional ``en_vigueur`` column (``oui``/``non``) marks withdrawn codes.
The list is always read from a configured file, never from code.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from gateway.model import Nature


@dataclass(frozen=True, slots=True)
class NatinfEntry:
    code: str
    qualification: str
    nature: Nature | None
    in_force: bool


_CONTRAVENTION = re.compile(r"contravention\s+de\s+(\d)")


def parse_nature(text: str) -> Nature | None:
    """'Délit' -> DELIT, 'Contravention de 4ème classe' -> CONTRAVENTION_4."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().strip()
    if folded.startswith("crime"):
        return Nature.CRIME
    if folded.startswith("delit"):
        return Nature.DELIT
    match = _CONTRAVENTION.search(folded)
    return Nature(f"contravention_{match.group(1)}") if match and match.group(1) in "12345" else None


class NatinfReference:
    """Look-ups of NATINF codes; codes are compared without leading zeros."""

    def __init__(self, entries: dict[str, NatinfEntry]) -> None:
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, code: str) -> NatinfEntry | None:
        return self._entries.get(code.strip().lstrip("0") or "0")

    @classmethod
    def from_csv_text(cls, text: str) -> NatinfReference:
        reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";")
        header = [h.strip().lower() for h in next(reader, [])]
        in_force_col = header.index("en_vigueur") if "en_vigueur" in header else None
        entries: dict[str, NatinfEntry] = {}
        for row in reader:
            cells = [c.strip() for c in row]
            if len(cells) < 3 or not cells[0].isdigit():
                continue
            in_force = (
                in_force_col is None or len(cells) <= in_force_col or cells[in_force_col].lower() != "non"
            )
            entry = NatinfEntry(cells[0].lstrip("0") or "0", cells[1], parse_nature(cells[2]), in_force)
            entries[entry.code] = entry
        return cls(entries)

    @classmethod
    def from_file(cls, path: Path) -> NatinfReference:
        return cls.from_csv_text(path.read_text(encoding="utf-8"))
