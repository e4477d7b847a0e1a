"""The one parser for untrusted XML: every received byte goes through :func:`parse`.

Hardened once (see ``../shared/security.md``): no DTD, no entity expansion, no
network, no XInclude, no schemaLocation processing, UTF-8 only, and limits on
depth, element count, attributes, namespaces and name length. Each refusal
raises :class:`~gateway.errors.RefusedInput` with its own error code. The
libxml2 catalog lookup is disabled by clearing ``XML_CATALOG_FILES`` at import.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

from lxml import etree

from gateway.errors import ErrorDetail, RefusedInput

# libxml2 reads the catalog variable lazily; make sure it never looks one up.
os.environ["XML_CATALOG_FILES"] = ""

XINCLUDE_NS = "http://www.w3.org/2001/XInclude"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_HINTS = (f"{{{XSI_NS}}}schemaLocation", f"{{{XSI_NS}}}noNamespaceSchemaLocation")
_XINCLUDE = f"{{{XINCLUDE_NS}}}"


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Bounds that a legitimate procedure message never reaches."""

    max_depth: int = 64
    max_elements: int = 200_000
    max_attributes: int = 64
    max_namespaces: int = 32
    max_name_length: int = 256


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=False,  # kept so that we can refuse them, not silently drop them
        remove_comments=False,
        collect_ids=False,
        recover=False,
        strip_cdata=True,
    )


def refuse(code: str, message: str, line: int | None = None, path: str | None = None) -> RefusedInput:
    return RefusedInput([ErrorDetail(code=code, message=message, line=line, path=path)])


_DECL = re.compile(rb"\A<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"']")
_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")


def _check_encoding(data: bytes) -> None:
    if data.startswith(_BOMS) or data[:2] in (b"<\x00", b"\x00<"):
        raise refuse("XML_ENCODING_UNSUPPORTED", "Only UTF-8 is accepted (UTF-16/32 found).", 1)
    match = _DECL.match(data.removeprefix(b"\xef\xbb\xbf"))
    if match and match.group(1).decode("ascii").upper().replace("_", "-") not in ("UTF-8", "UTF8"):
        declared = match.group(1).decode("ascii")
        raise refuse("XML_ENCODING_UNSUPPORTED", f"Only UTF-8 is accepted ({declared} declared).", 1)


def _prolog_has_doctype(data: bytes) -> bool:
    """Look for a DOCTYPE in the prolog, skipping the declaration, comments and PIs."""
    pos, end = 0, len(data)
    if data.startswith(b"\xef\xbb\xbf"):
        pos = 3
    while pos < end:
        while pos < end and data[pos] in b" \t\r\n":
            pos += 1
        if data.startswith(b"<?", pos):
            close = data.find(b"?>", pos)
            pos = end if close < 0 else close + 2
        elif data.startswith(b"<!--", pos):
            close = data.find(b"-->", pos)
            pos = end if close < 0 else close + 3
        else:
            return data.startswith(b"<!DOCTYPE", pos)
    return False


def _syntax_code(message: str) -> str:
    lowered = message.lower()
    if "excessive depth" in lowered:
        return "XML_TOO_DEEP"
    if "entity" in lowered:
        return "XML_ENTITY_FORBIDDEN"
    if "encoding" in lowered or "input is not proper utf-8" in lowered:
        return "XML_ENCODING_UNSUPPORTED"
    return "XML_NOT_WELL_FORMED"


def parse(data: bytes, limits: ParseLimits | None = None) -> etree._Element:
    """Parse untrusted bytes into an element tree, or raise ``RefusedInput``."""
    limits = limits or ParseLimits()
    _check_encoding(data)
    if _prolog_has_doctype(data):
        raise refuse("XML_DOCTYPE_FORBIDDEN", "DOCTYPE declarations (DTDs) are not accepted.", 1)
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) else None
        message = str(exc.msg or exc)
        raise refuse(_syntax_code(message), message, line) from None
    if root.getroottree().docinfo.doctype:  # belt and braces: the scan above should catch it
        raise refuse("XML_DOCTYPE_FORBIDDEN", "DOCTYPE declarations (DTDs) are not accepted.", 1)
    _check_tree(root, limits, data)
    return root


def _check_tree(root: etree._Element, limits: ParseLimits, data: bytes) -> None:
    """Enforce the limits and refuse forbidden constructs anywhere in the document.

    An ordinary message is cleared by :func:`_clearly_within`, a quick pass that makes no
    call per node. Whatever it cannot clear goes through :func:`_walk`, the exact walk,
    which refuses the first problem in document order.
    """
    if not _clearly_within(root, limits, data):
        _walk(root, limits)


@functools.lru_cache(maxsize=8)
def _depth_probe(max_depth: int) -> etree.XPath:
    """True when some element lies deeper than ``max_depth`` (the root is at depth 1)."""
    return etree.XPath("boolean(./" + "*/" * (max_depth - 1) + "*)")


def _clearly_within(root: etree._Element, limits: ParseLimits, data: bytes) -> bool:
    """True only if :func:`_walk` would find nothing; False means "look closer", not "refuse".

    Namespaces in scope at any element are at most the declarations in the document, and
    each declaration writes ``xmlns`` in the bytes (no DTD can add one). The depth is found
    by libxml2 (one XPath). One loop without a call per node does the rest.
    """
    if data.count(b"xmlns") > limits.max_namespaces or limits.max_depth < 1:
        return False
    for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
        if sibling.tag is etree.PI:
            return False
    max_name, max_attributes, elements = limits.max_name_length, limits.max_attributes, 0
    for node in root.iter():
        tag = node.tag
        if tag.__class__ is not str:
            if tag is etree.PI:
                return False
            continue  # a comment
        elements += 1
        if elements > limits.max_elements or len(tag) > max_name or tag.startswith(_XINCLUDE):
            return False
        names = node.keys()
        if names and (len(names) > max_attributes or not _attributes_clear(node, names, max_name)):
            return False
    return not _depth_probe(limits.max_depth)(root)


def _attributes_clear(node: etree._Element, names: list[str], max_name: int) -> bool:
    for name in names:
        if len(name) > max_name or (name in _HINTS and not _local_hint(name, str(node.get(name)))):
            return False
    return True


def _walk(root: etree._Element, limits: ParseLimits) -> None:
    """Walk the tree once, node by node, enforcing the limits and refusing forbidden constructs."""
    for sibling in root.itersiblings(preceding=True):
        _check_node(sibling, limits)
    count = 0
    depth = 0
    for event, node in etree.iterwalk(root, events=("start", "end", "pi")):
        if event == "end":
            depth -= 1
            continue
        _check_node(node, limits)
        if event == "pi":
            continue
        depth += 1
        count += 1
        if depth > limits.max_depth:
            raise refuse("XML_TOO_DEEP", f"Nesting deeper than {limits.max_depth} levels.", node.sourceline)
        if count > limits.max_elements:
            raise refuse(
                "XML_TOO_MANY_ELEMENTS",
                f"More than {limits.max_elements} elements.",
                node.sourceline,
            )
        if len(node.nsmap) > limits.max_namespaces:  # namespaces in scope, inherited included
            raise refuse(
                "XML_TOO_MANY_NAMESPACES",
                f"More than {limits.max_namespaces} namespaces.",
                node.sourceline,
            )
    for sibling in root.itersiblings():
        _check_node(sibling, limits)


def _check_node(node: etree._Element, limits: ParseLimits) -> None:
    line = node.sourceline
    if isinstance(node, etree._ProcessingInstruction):
        raise refuse(
            "XML_PROCESSING_INSTRUCTION_FORBIDDEN",
            "Processing instructions are not accepted.",
            line,
        )
    if not isinstance(node.tag, str):  # comments
        return
    if node.tag.startswith(_XINCLUDE):
        raise refuse("XML_XINCLUDE_FORBIDDEN", "XInclude is not accepted.", line)
    if len(node.tag) > limits.max_name_length:
        raise refuse("XML_NAME_TOO_LONG", f"A name is longer than {limits.max_name_length} characters.", line)
    attrib = node.attrib
    if len(attrib) > limits.max_attributes:
        raise refuse(
            "XML_TOO_MANY_ATTRIBUTES",
            f"An element has more than {limits.max_attributes} attributes.",
            line,
        )
    for name in attrib:
        if len(name) > limits.max_name_length:
            raise refuse(
                "XML_NAME_TOO_LONG",
                f"A name is longer than {limits.max_name_length} characters.",
                line,
            )
        if name in _HINTS and not _local_hint(name, str(attrib[name])):
            raise refuse(
                "XML_SCHEMA_LOCATION_FORBIDDEN",
                "schemaLocation hints may only name a local file; they are never followed.",
                line,
            )


def _local_hint(name: str, value: str) -> bool:
    """A hint naming a bare file (``procedure.xsd``) is tolerated, never followed."""
    tokens = value.split()
    locations = tokens[1::2] if name == _HINTS[0] else tokens
    return all(re.fullmatch(r"[A-Za-z0-9._\-]+\.xsd", loc) for loc in locations)
