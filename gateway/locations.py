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


def loc(el: etree._Element) -> Loc:
    return Loc(line=el.sourceline, path=path_of(el))


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
