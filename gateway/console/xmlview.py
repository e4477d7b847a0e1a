"""The received XML as the console shows it: pretty-printed, each line numbered with the line
it holds in the message as received (the line the errors name), error lines marked.

The bytes are untrusted: they are parsed only by :func:`gateway.xmlparse.parse`; what it
refuses (or what is not UTF-8) is shown as text, line by line, escaped.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from lxml import etree
from markupsafe import Markup, escape

from gateway.errors import SaisineError
from gateway.xmlparse import parse

MAX_LINES = 5000  # beyond, the page says the rest is cut (the API gives the whole message)
XML_NS = "http://www.w3.org/XML/1998/namespace"


@dataclass(frozen=True, slots=True)
class XmlLine:
    number: int | None  # the line in the message as received, when this line starts one
    html: Markup
    error: bool = False
    anchor: bool = False  # the first shown line for ``number``: carries id="L<number>"


@dataclass(frozen=True, slots=True)
class XmlView:
    lines: list[XmlLine]
    pretty: bool  # re-indented from the parsed tree (else: the text as received)
    truncated: bool = False
    note: str | None = None  # why the text is shown as received
    targets: dict[int, int] = field(default_factory=dict)  # error line -> shown line to link to


class _Full(Exception):
    """The line budget is spent."""


def xml_view(raw: bytes | None, error_lines: set[int], max_lines: int = MAX_LINES) -> XmlView:
    """The message for display; ``error_lines`` are the lines the message's errors name."""
    if raw is None:
        return XmlView([], pretty=False, note="The message is not kept (too large, or purged).")
    try:
        root = parse(raw)
    except SaisineError:
        return _as_text(raw, error_lines, max_lines, "The message could not be parsed: shown as received.")
    out: list[tuple[int | None, Markup]] = []
    truncated = False
    nodes = [*reversed(list(root.itersiblings(preceding=True))), root, *root.itersiblings()]
    try:
        for node in nodes:  # comments around the root element, and the root
            _element(node, 0, {}, out, max_lines)
    except _Full:
        truncated = True
    return _marked(out, error_lines, pretty=True, truncated=truncated)


def _as_text(raw: bytes, error_lines: set[int], max_lines: int, note: str) -> XmlView:
    text = raw.decode("utf-8", errors="replace")
    lines = text.splitlines() or [""]
    out: list[tuple[int | None, Markup]] = [(n, escape(line)) for n, line in enumerate(lines[:max_lines], 1)]
    view = _marked(out, error_lines, pretty=False, truncated=len(lines) > max_lines)
    return XmlView(view.lines, False, view.truncated, note, view.targets)


def _marked(
    out: list[tuple[int | None, Markup]], error_lines: set[int], pretty: bool, truncated: bool
) -> XmlView:
    numbered = sorted({n for n, _ in out if n is not None})
    targets: dict[int, int] = {}
    for line in error_lines:
        at = bisect.bisect_right(numbered, line)  # the last shown line starting at or before it
        if at:
            targets[line] = numbered[at - 1]
    marked = set(targets.values())
    seen: set[int] = set()
    lines = []
    for number, html in out:
        anchor = number is not None and number not in seen
        if number is not None:
            seen.add(number)
        lines.append(XmlLine(number, html, error=number in marked, anchor=anchor))
    return XmlView(lines, pretty, truncated, targets=targets)


def _emit(out: list[tuple[int | None, Markup]], number: int | None, html: Markup, max_lines: int) -> None:
    if len(out) >= max_lines:
        raise _Full
    out.append((number, html))


def _name(tag: str, nsmap: dict[str | None, str]) -> str:
    """A qualified name as written: prefix:local, with the prefix the element has in scope."""
    if not tag.startswith("{"):
        return tag
    uri, local = tag[1:].split("}", 1)
    if uri == XML_NS:
        return f"xml:{local}"
    prefixes = [p for p, u in nsmap.items() if u == uri]
    if None in prefixes:
        return local
    return f"{prefixes[0]}:{local}" if prefixes else local


def _attributes(element: etree._Element, inherited: dict[str | None, str]) -> Markup:
    parts: list[Markup] = []
    nsmap: dict[str | None, str] = dict(element.nsmap)
    for prefix, uri in nsmap.items():
        if inherited.get(prefix) != uri:
            name = f"xmlns:{prefix}" if prefix else "xmlns"
            parts.append(Markup(' <span class="a">{}</span>=<span class="v">"{}"</span>').format(name, uri))
    for key, value in element.attrib.items():
        # an attribute in a namespace needs a prefix: never the default one
        name = _name(str(key), {p: u for p, u in nsmap.items() if p is not None})
        parts.append(Markup(' <span class="a">{}</span>=<span class="v">"{}"</span>').format(name, value))
    return Markup("").join(parts)


def _element(
    element: etree._Element,
    depth: int,
    inherited: dict[str | None, str],
    out: list[tuple[int | None, Markup]],
    max_lines: int,
) -> None:
    indent = escape("  " * depth)
    line = element.sourceline if isinstance(element.sourceline, int) else None
    if not isinstance(element.tag, str):  # a comment (processing instructions are refused)
        comment = Markup('<span class="c">&lt;!--{}--&gt;</span>').format(element.text)
        _emit(out, line, indent + comment, max_lines)
        return
    name = _name(element.tag, dict(element.nsmap))
    start = Markup('&lt;<span class="t">{}</span>{}').format(name, _attributes(element, inherited))
    text = element.text if element.text and element.text.strip() else ""
    children = list(element)
    end = Markup('&lt;/<span class="t">{}</span>&gt;').format(name)
    if not children:
        body = start + (Markup("&gt;{}").format(text) + end if text else Markup("/&gt;"))
        _emit(out, line, indent + body, max_lines)
        return
    _emit(out, line, indent + start + Markup("&gt;{}").format(text), max_lines)
    scope: dict[str | None, str] = dict(element.nsmap)
    for child in children:
        _element(child, depth + 1, scope, out, max_lines)
        if child.tail and child.tail.strip():
            _emit(out, None, escape("  " * (depth + 1)) + escape(child.tail.strip()), max_lines)
    _emit(out, None, indent + end, max_lines)
