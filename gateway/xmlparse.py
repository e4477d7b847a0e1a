"""The one parser for untrusted XML: every received byte goes through :func:`parse`.

Hardened once (see ``../shared/security.md``): no DTD, no entity expansion, no
network, no XInclude, no schemaLocation processing, UTF-8 only, and limits on
depth, element count, attributes, namespaces and name length. Each refusal
raises :class:`~gateway.errors.RefusedInput` with its own error code. The
libxml2 catalog lookup is disabled by clearing ``XML_CATALOG_FILES`` at import.

Memory stays bounded by the limits, not by the body: a body past
:data:`STREAM_ABOVE_BYTES` with more ``<`` or ``=`` than elements or attributes
allowed is first read by :class:`_Stream`, which builds no tree and stops at
the first limit passed (20 MB of ``<e/>`` would otherwise become a 600 MB tree
before the element count is looked at). Comments are not kept in the tree
(``remove_comments``): they carry nothing and would cost a node each.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
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
    max_attributes_total: int = 200_000  # in the whole document: with max_elements, bounds the nodes


# Bodies larger than this may go through the streaming check before any tree is built.
STREAM_ABOVE_BYTES = 256 * 1024


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=False,  # kept so that we can refuse them, not silently drop them
        remove_comments=True,  # never a node: a flood of comments costs nothing
        collect_ids=False,
        recover=False,
        strip_cdata=True,
    )


def refuse(code: str, message: str, line: int | None = None, path: str | None = None) -> RefusedInput:
    return RefusedInput([ErrorDetail(code=code, message=message, line=line, path=path)])


_DECL = re.compile(rb"\A<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"']")
_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")
_EBCDIC = b"\x4c\x6f\xa7\x94"  # "<?xm" in EBCDIC, which libxml2 would otherwise detect and decode


def _check_encoding(data: bytes) -> None:
    # UTF-8 XML never holds a NUL byte (not an XML Char): one in the first four bytes is how
    # UTF-16 and UCS-4 look without a BOM, in either byte order, and libxml2 would decode them.
    if data.startswith(_BOMS):
        raise refuse("XML_ENCODING_UNSUPPORTED", "Only UTF-8 is accepted (UTF-16/32 found).", 1)
    if b"\x00" in data[:4]:
        raise refuse("XML_ENCODING_UNSUPPORTED", "Only UTF-8 is accepted (NUL bytes: UTF-16/32?).", 1)
    if data.startswith(_EBCDIC):
        raise refuse("XML_ENCODING_UNSUPPORTED", "Only UTF-8 is accepted (EBCDIC found).", 1)
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


def _doctype_message(data: bytes) -> str:
    """Say what the refused DOCTYPE would have done; nothing of it is read or resolved."""
    start = data.find(b"<!DOCTYPE")
    head = data[start : start + 65_536]
    subset = head.find(b"[")
    declaration = head if subset < 0 else head[:subset]
    found = []
    if b"SYSTEM" in declaration or b"PUBLIC" in declaration:
        found.append("an external DTD")
    if b"<!ENTITY" in head:
        found.append("parameter entities" if re.search(rb"<!ENTITY\s+%", head) else "entity declarations")
    what = f" (found: {', '.join(found)})" if found else ""
    return f"DOCTYPE declarations (DTDs) are not accepted{what}; nothing in it was read or expanded."


def _syntax_code(message: str) -> str:
    lowered = message.lower()
    if "excessive depth" in lowered:
        return "XML_TOO_DEEP"
    if "name too long" in lowered:  # past libxml2's own limit (50,000), far past ours
        return "XML_NAME_TOO_LONG"
    if "entity" in lowered:
        return "XML_ENTITY_FORBIDDEN"
    if "encoding" in lowered or "input is not proper utf-8" in lowered:
        return "XML_ENCODING_UNSUPPORTED"
    return "XML_NOT_WELL_FORMED"


def _syntax_message(code: str, message: str) -> str:
    if "invalid bytes" in message.lower():  # UTF-8 declared or implied, other bytes sent
        return f"The bytes are not UTF-8 (a mislabelled encoding?): {message}"
    return message


def parse(data: bytes, limits: ParseLimits | None = None) -> etree._Element:
    """Parse untrusted bytes into an element tree, or raise ``RefusedInput``."""
    limits = limits or ParseLimits()
    _check_encoding(data)
    if _prolog_has_doctype(data):
        raise refuse("XML_DOCTYPE_FORBIDDEN", _doctype_message(data), 1)
    streamed = _needs_stream(data, limits)
    try:
        if streamed:
            _stream_check(data, limits)
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) else None
        message = str(exc.msg or exc)
        code = _syntax_code(message)
        raise refuse(code, _syntax_message(code, message), line) from None
    if root.getroottree().docinfo.doctype:  # belt and braces: the scan above should catch it
        raise refuse("XML_DOCTYPE_FORBIDDEN", "DOCTYPE declarations (DTDs) are not accepted.", 1)
    if not streamed:  # a streamed one was checked, exactly, while streamed
        _check_tree(root, limits, data)
    return root


def _check_tree(root: etree._Element, limits: ParseLimits, data: bytes) -> None:
    """Enforce the limits and refuse forbidden constructs anywhere in the document.

    An ordinary message is cleared by :func:`_clearly_within`, a quick pass that makes no
    call per node. Whatever it cannot clear goes through :func:`_walk`, the exact walk,
    which refuses the first problem in document order.
    """
    if not _clearly_within(root, limits, data):
        # no more ``xmlns`` in the bytes than the limit: no namespace count can pass it
        _walk(root, limits, count_namespaces=data.count(b"xmlns") > limits.max_namespaces)


@functools.lru_cache(maxsize=8)
def _depth_probe(max_depth: int) -> etree.XPath:
    """True when some element lies deeper than ``max_depth`` (the root is at depth 1)."""
    return etree.XPath("boolean(./" + "*/" * (max_depth - 1) + "*)")


def _clearly_within(root: etree._Element, limits: ParseLimits, data: bytes) -> bool:
    """True only if :func:`_walk` would find nothing; False means "look closer", not "refuse".

    Up to :data:`STREAM_ABOVE_BYTES` (every ordinary message) the bytes are read by a few
    C-speed scans and one XPath (:func:`_clearly_within_by_bytes`); a larger body, where a
    scan of every byte costs more than a look at every element, by :func:`_clearly_within_by_node`.
    """
    if limits.max_depth < 1:
        return False
    if len(data) <= STREAM_ABOVE_BYTES:
        return _clearly_within_by_bytes(root, limits, data)
    return _clearly_within_by_node(root, limits, data)


# Namespace URIs can only come from ``xmlns`` declarations in the bytes (no DTD is accepted,
# so no default attribute declares one), plus the ``xml`` prefix, bound without declaration.
_XML_NS_LENGTH = len("http://www.w3.org/XML/1998/namespace")
_XML_DECL_START = re.compile(rb"<\?xml[ \t\r\n]")
# A byte that may be in an element or attribute name: a real name ends at any other.
_NAME_CHAR = rb"[^\s<>=/?\"']"


@functools.lru_cache(maxsize=8)
def _declarations(max_length: int) -> re.Pattern[bytes]:
    """Each ``xmlns`` in the bytes, with the URI (group 2) when it is a declaration that can be
    read as is: no whitespace or reference in the value (so its bytes are the URI, no longer
    than ``max_length``), a short prefix, little space around ``=``. Bounded repeats: linear.

    A match holds no whitespace but around ``=``, where a quote must follow: the ``xmlns`` of
    a real declaration, after whitespace in its tag, is never inside another match."""
    return re.compile(
        rb"xmlns(?:(?::[^\s<>=/\"'&]{0,%d})?\s{0,8}=\s{0,8}([\"'])([^\s\"'<&]{0,%d})\1)?"
        % (max_length, max_length)
    )


@functools.lru_cache(maxsize=8)
def _unclear_tag(max_name: int, max_attributes: int) -> re.Pattern[bytes]:
    """A ``<`` that starts no end tag, comment or CDATA section (``</``, ``<!``) and no start tag
    whose names are all at most ``max_name`` bytes long and which has at most ``max_attributes``
    attributes (namespace declarations included): a PI, or a tag to look at closer.

    A tag holds no ``<`` (nor may an attribute value), and the quantifiers are possessive: each
    try stops at the next ``<``, so the scan is linear in the body."""
    name = rb"%s{1,%d}+" % (_NAME_CHAR, max_name)
    value = rb"(?:\"[^\"<]*+\"|'[^'<]*+')"
    tag = rb"%s(?:\s++%s\s*+=\s*+%s){0,%d}+\s*+/?>" % (name, name, value, max_attributes)
    return re.compile(rb"<(?![/!]|%s)" % tag)


def _clearly_within_by_bytes(root: etree._Element, limits: ParseLimits, data: bytes) -> bool:
    """The quick pass of :func:`_clearly_within` for a body of at most :data:`STREAM_ABOVE_BYTES`.

    Each check is a sufficient condition on the bytes, made in C (linear regular expressions,
    ``bytes`` methods, one XPath for the depth), with no Python object per node. It holds
    because the tree was parsed from these very bytes with no DTD: every element has a start
    tag, every attribute and namespace declaration is written, with its ``=``, in one; every
    PI starts with ``<?``. Text, comments or CDATA that look like markup can only make a check
    fail (False), never pass.
    """
    max_name = limits.max_name_length
    uris: list[bytes] = []
    for match in _declarations(max_name).finditer(data):
        uri = match.group(2)
        if uri is None or len(uris) == limits.max_namespaces:
            return False  # an ``xmlns`` not read as a declaration, or more than the limit
        uris.append(uri)
    if XINCLUDE_NS.encode() in uris:  # no element can be in a namespace never declared
        return False
    # A Clark name is ``{uri}local``: at most the longest URI + 2 + the name as written.
    longest_name = max_name - 2 - max([_XML_NS_LENGTH, *map(len, uris)])
    if longest_name < 1:
        return False
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    if _XML_DECL_START.match(data, start):  # the declaration, the one ``<?`` that is no PI
        start = data.find(b"?>", start) + 2
    if _unclear_tag(longest_name, limits.max_attributes).search(data, start):
        return False
    # ``<a/>`` and `` a=""``: no element or attribute takes fewer bytes
    if len(data) // 4 > limits.max_elements and data.count(b"<") > limits.max_elements:
        return False
    if len(data) // 5 > limits.max_attributes_total and data.count(b"=") > limits.max_attributes_total:
        return False
    if _depth_probe(limits.max_depth)(root):
        return False
    return XSI_NS.encode() not in uris or _hints_clear(root)


_HINT_PROBE = etree.XPath(
    "//@xsi:schemaLocation | //@xsi:noNamespaceSchemaLocation", namespaces={"xsi": XSI_NS}
)


def _hints_clear(root: etree._Element) -> bool:
    """Every schemaLocation hint in the document is local (see :func:`_local_hint`)."""
    hints = _HINT_PROBE(root)
    assert isinstance(hints, list)
    return all(_local_hint(str(hint.attrname), str(hint)) for hint in hints)


def _clearly_within_by_node(root: etree._Element, limits: ParseLimits, data: bytes) -> bool:
    """The quick pass of :func:`_clearly_within` for a large body: one Python loop over the
    elements, without a call per node for the usual ones.

    Namespaces in scope at any element are at most the declarations in the document, and
    each declaration writes ``xmlns`` in the bytes (no DTD can add one). The depth is found
    by libxml2 (one XPath).
    """
    if data.count(b"xmlns") > limits.max_namespaces:
        return False
    for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
        if sibling.tag is etree.PI:
            return False
    max_name, max_attributes, elements = limits.max_name_length, limits.max_attributes, 0
    attributes, max_total = 0, limits.max_attributes_total
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
        attributes += len(names)
        if attributes > max_total:
            return False
    return not _depth_probe(limits.max_depth)(root)


def _attributes_clear(node: etree._Element, names: list[str], max_name: int) -> bool:
    for name in names:
        if len(name) > max_name or (name in _HINTS and not _local_hint(name, str(node.get(name)))):
            return False
    return True


def _walk(root: etree._Element, limits: ParseLimits, count_namespaces: bool = True) -> None:
    """Walk the tree once, node by node, enforcing the limits and refusing forbidden constructs.

    ``count_namespaces=False`` skips the namespace count (an ``nsmap`` per element, the
    walk's dearest step) when the caller knows the document cannot pass that limit.
    """
    for sibling in root.itersiblings(preceding=True):
        _check_node(sibling, limits)
    count = 0
    depth = 0
    attributes = 0
    # Every namespace in the document, however declared: in scope at one element (a flood on
    # one element) or one per sibling (a flood spread out), past the limit it is refused.
    namespaces: set[str] = set()
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
            raise _too_many_elements(limits, node.sourceline)
        attributes += len(node.attrib)
        if attributes > limits.max_attributes_total:
            raise _too_many_attributes(limits, node.sourceline)
        if not count_namespaces:
            continue
        in_scope = node.nsmap
        namespaces.update(in_scope.values())
        if len(in_scope) > limits.max_namespaces or len(namespaces) > limits.max_namespaces:
            raise _too_many_namespaces(limits, node.sourceline)
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
    if isinstance(node.tag, str):  # not a comment (kept only by a tree built elsewhere)
        _check_element(node.tag, node.attrib, limits, line)


def _check_element(tag: str, attrib: Mapping[str, str], limits: ParseLimits, line: int | None) -> None:
    """The checks of one element, from its name and attributes: the walk's and the stream's."""
    if tag.startswith(_XINCLUDE):
        raise refuse("XML_XINCLUDE_FORBIDDEN", "XInclude is not accepted.", line)
    if len(tag) > limits.max_name_length:
        raise refuse("XML_NAME_TOO_LONG", f"A name is longer than {limits.max_name_length} characters.", line)
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


def _too_many_elements(limits: ParseLimits, line: int | None) -> RefusedInput:
    return refuse("XML_TOO_MANY_ELEMENTS", f"More than {limits.max_elements} elements.", line)


def _too_many_attributes(limits: ParseLimits, line: int | None) -> RefusedInput:
    message = f"More than {limits.max_attributes_total} attributes in the document."
    return refuse("XML_TOO_MANY_ATTRIBUTES", message, line)


def _too_many_namespaces(limits: ParseLimits, line: int | None) -> RefusedInput:
    return refuse("XML_TOO_MANY_NAMESPACES", f"More than {limits.max_namespaces} namespaces.", line)


def _needs_stream(data: bytes, limits: ParseLimits) -> bool:
    """Whether the tree could pass the limits (every element, comment or PI starts with ``<``,
    every attribute or namespace declaration has its ``=``): then it is not built unchecked."""
    return len(data) > STREAM_ABOVE_BYTES and (
        data.count(b"<") > limits.max_elements or data.count(b"=") > limits.max_attributes_total
    )


def _stream_check(data: bytes, limits: ParseLimits) -> None:
    """Read the document without building a tree, refusing as :func:`_walk` would (no line)."""
    parser = etree.XMLParser(
        target=_Stream(limits),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        collect_ids=False,
    )
    etree.fromstring(data, parser=parser)


class _Stream:
    """A parser target that keeps only counters: the exact walk's checks, in document order,
    in memory that does not grow with the document."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        self.depth = self.elements = self.attributes = 0
        self.declared: dict[str, str] = {}  # declarations of the element about to start
        self.scopes: list[dict[str, str]] = [{}]  # namespaces in scope, by prefix, per open element
        self.namespaces: set[str] = set()

    def start_ns(self, prefix: str | None, uri: str) -> None:
        self.declared[prefix or ""] = uri

    def start(self, tag: str, attrib: Mapping[str, str]) -> None:
        limits = self.limits
        _check_element(tag, attrib, limits, None)
        self.depth += 1
        self.elements += 1
        self.attributes += len(attrib)
        if self.depth > limits.max_depth:
            raise refuse("XML_TOO_DEEP", f"Nesting deeper than {limits.max_depth} levels.")
        if self.elements > limits.max_elements:
            raise _too_many_elements(limits, None)
        if self.attributes > limits.max_attributes_total:
            raise _too_many_attributes(limits, None)
        scope = self.scopes[-1]
        if self.declared:
            scope = {**scope, **self.declared}
            self.namespaces.update(self.declared.values())
            self.declared = {}
        self.scopes.append(scope)
        if len(scope) > limits.max_namespaces or len(self.namespaces) > limits.max_namespaces:
            raise _too_many_namespaces(limits, None)

    def end(self, tag: str) -> None:
        self.depth -= 1
        self.scopes.pop()

    def pi(self, target: str, data: str | None) -> None:
        raise refuse("XML_PROCESSING_INSTRUCTION_FORBIDDEN", "Processing instructions are not accepted.")

    def close(self) -> None:
        return None


def _local_hint(name: str, value: str) -> bool:
    """A hint naming a bare file (``procedure.xsd``) is tolerated, never followed.

    ``schemaLocation`` holds namespace/location pairs: an odd count is no such list (a lone URL
    would otherwise pass as a namespace), and is refused like a hint pointing elsewhere.
    """
    tokens = value.split()
    if name == _HINTS[0] and len(tokens) % 2:
        return False
    locations = tokens[1::2] if name == _HINTS[0] else tokens
    return all(re.fullmatch(r"[A-Za-z0-9._\-]+\.xsd", loc) for loc in locations)
