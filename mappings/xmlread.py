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
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeAlias

from gateway.facts import Value
from gateway.locations import ElementLoc, path_of

# (element, its child elements by local name; None for an element without child elements)
Node: TypeAlias = "tuple[Any, dict[str, list[Node]] | None]"
ALL = "*"  # a path step for every child element, in document order
# Tags whose local name a reader keeps (a format's vocabulary is a few hundred names; the bound
# only matters for elements of other namespaces, which a schema may let through).
_NAMES_KEPT = 4096

# XML's whitespace (space, tab, CR, LF), which xs:token collapses. Python's str.split() would also
# eat a non-breaking space, which is content (French typography puts one before ':').
_XML_SPACE = re.compile(r"[ \t\r\n]+")
_MIDNIGHT_24 = re.compile(r"T24:00:00(\.0+)?")


def collapse(text: str) -> str:
    """XML whitespace collapsed as xs:token does: trimmed, each run made one space."""
    # Most values have nothing to collapse; tab, CR and LF are not printable, so this test
    # (three to five times cheaper than the substitution) lets none of them through. The
    # strip compares equal at once when nothing is stripped (the same string comes back),
    # and costs less than two one-character slices.
    if text.isprintable() and "  " not in text and text.strip(" ") == text:
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
        self._tags: dict[str, tuple[str, ...]] = {}  # a path's steps, each a {ns}name
        self._steps: dict[str, tuple[str, ...]] = {}
        self._names: dict[str, str] = {}  # tag -> the local name its element is filed under

    # ------------------------------------------------------------ one pass

    def read(self, root: Any) -> Document:
        """Group the children of every element by local name, in one walk of the tree.

        This runs once per element (253 in a typical message), so each choice was measured:
        ``getchildren()`` hands over an element's children in one C call (``for child in el``
        makes an iterator per element, most of the former cost); local names come from
        :meth:`_local`'s cache, whose strings are interned, so the dict keys hash once and
        match the mappings' literal names by identity; no list of all children is kept
        (:meth:`_every` rebuilds that order from the element, for the few ``*`` steps).
        """
        local = self._names.get

        def group(children: list[Any]) -> dict[str, list[Node]]:
            kids: dict[str, list[Node]] = {}
            for child in children:
                tag = child.tag
                name = local(tag)
                if name is None:
                    if tag.__class__ is not str:  # comments (the parser refuses processing instructions)
                        continue
                    name = self._local(tag)
                node = (child, group(child.getchildren())) if len(child) else (child, None)
                if name in kids:
                    kids[name].append(node)
                else:
                    kids[name] = [node]
            return kids

        children = root.getchildren()
        return Document((root, group(children) if children else None), self.ns)

    def _local(self, tag: str) -> str:
        """The key a child is filed under: its local name; another namespace keeps its ``{ns}``."""
        name = sys.intern(tag[len(self._prefix) :] if tag.startswith(self._prefix) else tag)
        if len(self._names) < _NAMES_KEPT:
            self._names[tag] = name
        return name

    @staticmethod
    def _every(node: Node) -> list[Node]:
        """All child nodes in document order (a ``*`` step), in the order of the element's children.

        The nodes hold the very element objects ``getchildren()`` returns (lxml keeps one proxy
        per element while it is referenced), and elements hash by identity; comments have no node.
        A node filed under a second name as well (v2's renamed elements) still comes once.
        """
        kids = node[1]
        if not kids:
            return []
        nodes = {found[0]: found for same in kids.values() for found in same}
        return [nodes[child] for child in node[0].getchildren() if child in nodes]

    def _split(self, path: str) -> tuple[str, ...]:
        steps = self._steps.get(path)
        if steps is None:
            steps = self._steps[path] = tuple(path.split("/"))
        return steps

    # ------------------------------------------------------------ look-ups on nodes

    def all(self, node: Node, path: str) -> Sequence[Node]:
        """Every node at ``path`` under ``node`` (``*`` for any child), in document order.

        Not a copy: the sequence may be the reading's own list, which callers only iterate.
        Most steps have one parent, whose list is taken as it is; a path stops at its first
        step that finds nothing (an absent optional block, about half the reads).
        """
        kids = node[1]
        if "/" not in path:  # one step, most reads
            if path == ALL:
                return self._every(node)
            return kids.get(path, ()) if kids else ()
        nodes: Sequence[Node] = (node,)
        for step in self._split(path):
            if step == ALL:
                nodes = [found for parent in nodes for found in self._every(parent)]
            elif len(nodes) == 1:
                kids = nodes[0][1]
                nodes = kids.get(step, ()) if kids else ()
            else:
                gathered: list[Node] = []
                for _, kids in nodes:
                    if kids and step in kids:
                        gathered += kids[step]
                nodes = gathered
            if not nodes:
                return ()
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
        for step in self._steps.get(path) or self._split(path):
            kids = node[1]
            found = kids.get(step) if kids else None
            if not found:
                if several or step == ALL:  # a later sibling of an earlier step may have it: search them all
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
        value: str | None
        if found:
            value = found[0][0].text  # each .text makes a new string: read it once
        elif "/" in path:
            at = self._first(node, path)
            value = at[0].text if at is not None else None
        else:
            return None
        if value is None:
            return None
        # collapse(), its test inlined: this runs about 200 times per message, mostly on plain text.
        if value.isprintable() and "  " not in value and value.strip(" ") == value:
            return value
        return _XML_SPACE.sub(" ", value).strip(" ")

    def req(self, node: Node, path: str) -> str:
        """:meth:`text` of a required element (the schema saw it there)."""
        kids = node[1]
        found = kids.get(path) if kids else None
        if found:  # :meth:`text`'s commonest case, without the call (about 120 per message)
            value: str | None = found[0][0].text
            if value is not None and value.isprintable() and "  " not in value and value.strip(" ") == value:
                return value
        value = self.text(node, path)
        if value is None:
            raise ValueError(f"{path} missing under {path_of(node[0])}: the schema should have refused it")
        return value

    def texts(self, node: Node, path: str) -> list[str]:
        """The text of every element at ``path`` that has some, whitespace collapsed."""
        values = []
        for found in self.all(node, path):
            value = found[0].text  # read once: each .text makes a new string
            if value:
                values.append(collapse(value))
        return values

    def dt(self, node: Node, path: str) -> datetime | None:
        value = self.text(node, path)
        return parse_datetime(value) if value else None

    def value_dt(self, node: Node, path: str) -> Value[datetime] | None:
        found = self.el(node, path)
        if found is None:
            return None
        text = found[0].text  # read once: each .text makes a new string
        if not text:
            return None
        return Value(parse_datetime(text.strip()), ElementLoc(found[0]))

    def value(self, node: Node, path: str) -> Value[str] | None:
        found = self.el(node, path)
        if found is None:
            return None
        text = found[0].text
        if text is None:
            return None
        return Value(text.strip(), ElementLoc(found[0]))

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
        steps = self._tags.get(path)
        if steps is None:
            steps = self._tags[path] = tuple(self.q(step) for step in path.split("/"))
        # ElementPath for "." and ".." steps, which _find_first does not follow.
        found = _find_first(parent, steps) if "." not in path else parent.find(self.q(path))
        if found is None:
            return None
        text = found.text
        return None if text is None else collapse(text)


def _find_first(parent: Any, tags: tuple[str, ...]) -> Any:
    """``parent.find("{ns}a/{ns}b")`` without ElementPath (twice as fast on a header's paths).

    The same element: the first ``b`` under the first ``a`` that has one, in document order
    (an invalid message may repeat ``a``).
    """
    tag, rest = tags[0], tags[1:]
    for child in parent.iterchildren(tag):
        found = _find_first(child, rest) if rest else child
        if found is not None:
            return found
    return None


def parse_datetime(text: str) -> datetime:
    """xs:dateTime with an offset (``Z`` allowed) to an aware datetime.

    ``24:00:00`` is valid xs:dateTime: the midnight that ends the day, i.e. 00:00 the day after.
    """
    value = text.strip(" \t\r\n").replace("Z", "+00:00")
    if "T24" in value and _MIDNIGHT_24.search(value):  # the substring test is ten times cheaper
        return datetime.fromisoformat(_MIDNIGHT_24.sub("T00:00:00", value)) + timedelta(days=1)
    return datetime.fromisoformat(value)


def parse_date(text: str) -> date:
    return date.fromisoformat(text.strip()[:10])
