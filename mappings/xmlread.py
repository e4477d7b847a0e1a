"""Small helpers to read a schema-valid message: one pass over the tree, then look-ups.

Mappings run only on documents the XSD has accepted, so a required element is
there; these helpers keep the mapping functions short and uniform.

:meth:`Reader.read` walks the element tree once and groups every element's
children by local name. A mapping then reads ``Faits/Place/CommuneInsee`` with
three dictionary look-ups instead of an ElementPath search per value (a typical
message is read about 600 times). The nodes of that reading are plain tuples,
``(element, children or None)``: one is made per element, so they are kept as
cheap as Python allows. The element stays at hand for attributes and locations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeAlias

from gateway.facts import Value
from gateway.locations import ElementLoc, path_of

# (element, its child elements by local name, "*" for all of them in document order;
# None for an element without child elements)
Node: TypeAlias = "tuple[Any, dict[str, list[Node]] | None]"
ALL = "*"

# XML's whitespace (space, tab, CR, LF), which xs:token collapses. Python's str.split() would also
# eat a non-breaking space, which is content (French typography puts one before ':').
_XML_SPACE = re.compile(r"[ \t\r\n]+")
_MIDNIGHT_24 = re.compile(r"T24:00:00(\.0+)?")


def collapse(text: str) -> str:
    """XML whitespace collapsed as xs:token does: trimmed, each run made one space."""
    # Most values have nothing to collapse; tab, CR and LF are not printable, so this test
    # (three to five times cheaper than the substitution) lets none of them through.
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    return _XML_SPACE.sub(" ", text).strip(" ")


@dataclass(frozen=True, slots=True)
class Document:
    """A schema-valid message read once: its root node, children grouped at every level."""

    root: Node
    namespace: str

    def everywhere(self, name: str) -> list[Any]:
        """Every element of that local name (in the format's namespace), in document order.

        libxml2 walks the tree and matches the tag, so only the elements found are handed
        to Python (a Python index of every element by name cost more than ten such walks).
        """
        tag = name if name.startswith("{") else f"{{{self.namespace}}}{name}"
        return list(self.root[0].iterdescendants(tag))

    def by_name(self, *names: str) -> dict[str, list[Any]]:
        """:meth:`everywhere` for several local names at once (one walk of the tree)."""
        prefix = f"{{{self.namespace}}}"
        found: dict[str, list[Any]] = {name: [] for name in names}
        for el in self.root[0].iterdescendants(*(prefix + name for name in names)):
            found[el.tag[len(prefix) :]].append(el)
        return found


class Reader:
    """Reads of a message in one format's namespace."""

    def __init__(self, namespace: str) -> None:
        self.ns = namespace
        self._prefix = f"{{{namespace}}}"
        self._clark: dict[str, str] = {}
        self._steps: dict[str, tuple[str, ...]] = {}

    # ------------------------------------------------------------ one pass

    def read(self, root: Any) -> Document:
        """Group the children of every element by local name, in one walk of the tree."""
        prefix, cut = self._prefix, len(self._prefix)

        def walk(el: Any) -> dict[str, list[Node]]:
            kids: dict[str, list[Node]] = {ALL: []}
            everything = kids[ALL]
            for child in el:
                tag = child.tag
                if tag.__class__ is not str:  # comments (the parser refuses processing instructions)
                    continue
                name = tag[cut:] if tag.startswith(prefix) else tag  # another namespace keeps its {ns}
                node = (child, walk(child)) if len(child) else (child, None)
                everything.append(node)
                same = kids.get(name)
                if same is None:
                    kids[name] = [node]
                else:
                    same.append(node)
            return kids

        return Document((root, walk(root)), self.ns)

    def _split(self, path: str) -> tuple[str, ...]:
        steps = self._steps.get(path)
        if steps is None:
            steps = self._steps[path] = tuple(path.split("/"))
        return steps

    # ------------------------------------------------------------ look-ups on nodes

    def all(self, node: Node, path: str) -> Sequence[Node]:
        """Every node at ``path`` under ``node`` (``*`` for any child), in document order."""
        kids = node[1]
        if "/" not in path:  # one step, most reads
            return kids.get(path, ()) if kids else ()
        nodes = [node]
        for step in self._split(path):
            nodes = [found for _, kids in nodes if kids for found in kids.get(step, ())]
        return nodes

    def el(self, node: Node, path: str) -> Node | None:
        """The first node at ``path`` under ``node``, or None."""
        kids = node[1]
        found = kids.get(path) if kids else None  # one step, most reads (no key holds a "/")
        if found:
            return found[0]
        return self._first(node, path) if "/" in path else None

    def _first(self, node: Node, path: str) -> Node | None:
        several = False
        for step in self._split(path):
            kids = node[1]
            found = kids.get(step) if kids else None
            if not found:
                if several:  # a later sibling of an earlier step may have it: search them all
                    every = self.all(node, path)
                    return every[0] if every else None
                return None
            several = several or len(found) > 1
            node = found[0]
        return node

    def text(self, node: Node, path: str) -> str | None:
        """The text at ``path``, whitespace collapsed; None when the element is absent or empty."""
        kids = node[1]
        found = kids.get(path) if kids else None
        el = found[0][0] if found else None
        if el is None and "/" in path:
            at = self._first(node, path)
            el = at[0] if at is not None else None
        if el is None or el.text is None:
            return None
        return collapse(el.text)

    def req(self, node: Node, path: str) -> str:
        value = self.text(node, path)
        if value is None:
            raise ValueError(f"{path} missing under {path_of(node[0])}: the schema should have refused it")
        return value

    def texts(self, node: Node, path: str) -> list[str]:
        return [collapse(n[0].text) for n in self.all(node, path) if n[0].text]

    def dt(self, node: Node, path: str) -> datetime | None:
        value = self.text(node, path)
        return parse_datetime(value) if value else None

    def value_dt(self, node: Node, path: str) -> Value[datetime] | None:
        found = self.el(node, path)
        if found is None or not found[0].text:
            return None
        return Value(parse_datetime(found[0].text.strip()), ElementLoc(found[0]))

    def value(self, node: Node, path: str) -> Value[str] | None:
        found = self.el(node, path)
        if found is None or found[0].text is None:
            return None
        return Value(found[0].text.strip(), ElementLoc(found[0]))

    def attr(self, node: Node, name: str) -> Value[str]:
        el = node[0]
        return Value(str(el.get(name, "")).strip(), ElementLoc(el))

    def name(self, node: Node) -> str:
        """The local name of the node's element."""
        tag: str = node[0].tag
        return tag.rpartition("}")[2]

    # ------------------------------------------------------------ look-ups on elements

    def q(self, path: str) -> str:
        """``Faits/Place`` -> ``{ns}Faits/{ns}Place`` for ElementPath (computed once per path)."""
        clark = self._clark.get(path)
        if clark is None:
            clark = self._clark[path] = "/".join(
                f"{{{self.ns}}}{p}" if p not in (".", "..") else p for p in path.split("/")
            )
        return clark

    def find_text(self, parent: Any, path: str) -> str | None:
        """Like :meth:`text`, on an element of a tree that may not be schema-valid (headers)."""
        found = parent.find(self.q(path))
        if found is None or found.text is None:
            return None
        return collapse(found.text)


def parse_datetime(text: str) -> datetime:
    """xs:dateTime with an offset (``Z`` allowed) to an aware datetime.

    ``24:00:00`` is valid xs:dateTime: the midnight that ends the day, i.e. 00:00 the day after.
    """
    value = text.strip(" \t\r\n").replace("Z", "+00:00")
    if _MIDNIGHT_24.search(value):
        return datetime.fromisoformat(_MIDNIGHT_24.sub("T00:00:00", value)) + timedelta(days=1)
    return datetime.fromisoformat(value)


def parse_date(text: str) -> date:
    return date.fromisoformat(text.strip()[:10])
