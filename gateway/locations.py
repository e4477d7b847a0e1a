"""Locations in a received document, as a sender reads them: line and readable path."""

from __future__ import annotations

from lxml import etree

from gateway.facts import Loc


def path_of(el: etree._Element) -> str:
    """``/Procedure/Infractions/Infraction[2]/Natinf``: local names, positions when repeated."""
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        name = etree.QName(node).localname
        parent = node.getparent()
        if parent is not None:
            same = [s for s in parent if s.tag == node.tag]
            if len(same) > 1:
                name = f"{name}[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/" + "/".join(reversed(parts))


class ElementLoc(Loc):
    """The location of an element, worked out when a rule first reads it (to report an error).

    Writing a path walks up to the root and counts same-named siblings at every level;
    a message has about a hundred checked values and seldom an error.
    """

    __slots__ = ("_el",)

    def __init__(self, el: etree._Element) -> None:
        self._el = el
        self._line = self._path = None

    @property
    def line(self) -> int | None:
        if self._line is None:
            self._line = self._el.sourceline
        return self._line

    @property
    def path(self) -> str | None:
        if self._path is None:
            self._path = path_of(self._el)
        return self._path


def loc(el: etree._Element) -> Loc:
    """The location of an element (worked out when read)."""
    return ElementLoc(el)


def resolve_positional(root: etree._Element, path: str) -> etree._Element | None:
    """Follow libxml2's positional path (``/*/*[1]/*[3]``) from the validated element.

    libxml2 counts from the element it validated, which is the document's root for a
    REST body and the procedure inside the Body for SOAP.
    """
    node: etree._Element | None = root
    for step in path.strip("/").split("/")[1:]:
        if node is None or not step.startswith("*"):
            return None
        index = int(step[2:-1]) - 1 if step.startswith("*[") else 0
        children = [c for c in node if isinstance(c.tag, str)]
        node = children[index] if 0 <= index < len(children) else None
    return node
