"""Small helpers to read a schema-valid message: namespaced look-ups and locations.

Mappings run only on documents the XSD has accepted, so a required element is
there; these helpers keep the mapping functions short and uniform.
"""

from __future__ import annotations

from datetime import date, datetime

from lxml import etree

from gateway.facts import Value
from gateway.locations import loc, path_of


class Reader:
    """Namespaced reads of a message in one format's namespace."""

    def __init__(self, namespace: str) -> None:
        self.ns = namespace
        self._nsmap = {"m": namespace}

    def q(self, path: str) -> str:
        """``Faits/Place`` -> ``{ns}Faits/{ns}Place`` for ElementPath."""
        return "/".join(f"{{{self.ns}}}{p}" if p not in (".", "..") else p for p in path.split("/"))

    def el(self, parent: etree._Element, path: str) -> etree._Element | None:
        return parent.find(self.q(path))

    def all(self, parent: etree._Element, path: str) -> list[etree._Element]:
        return list(parent.findall(self.q(path)))

    def text(self, parent: etree._Element, path: str) -> str | None:
        found = parent.find(self.q(path))
        if found is None or found.text is None:
            return None
        return " ".join(found.text.split())

    def req(self, parent: etree._Element, path: str) -> str:
        value = self.text(parent, path)
        if value is None:
            raise ValueError(f"{path} missing under {path_of(parent)}: the schema should have refused it")
        return value

    def texts(self, parent: etree._Element, path: str) -> list[str]:
        return [" ".join(e.text.split()) for e in self.all(parent, path) if e.text]

    def dt(self, parent: etree._Element, path: str) -> datetime | None:
        value = self.text(parent, path)
        return parse_datetime(value) if value else None

    def value_dt(self, parent: etree._Element, path: str) -> Value[datetime] | None:
        found = self.el(parent, path)
        if found is None or not found.text:
            return None
        return Value(parse_datetime(found.text.strip()), loc(found))

    def value(self, parent: etree._Element, path: str) -> Value[str] | None:
        found = self.el(parent, path)
        if found is None or found.text is None:
            return None
        return Value(found.text.strip(), loc(found))

    def attr(self, el: etree._Element, name: str) -> Value[str]:
        return Value(str(el.get(name, "")).strip(), loc(el))


def parse_datetime(text: str) -> datetime:
    """xs:dateTime with an offset (``Z`` allowed) to an aware datetime."""
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


def parse_date(text: str) -> date:
    return date.fromisoformat(text.strip()[:10])
