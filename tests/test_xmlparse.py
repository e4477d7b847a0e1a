"""The hardened parser refuses each dangerous construct with its own code, quickly,
without reading from disk or network."""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import RefusedInput
from gateway.xmlparse import ParseLimits, parse

NS = "urn:saisine:gendarmerie:procedure:v1"


def refusal(data: bytes, limits: ParseLimits | None = None) -> str:
    with pytest.raises(RefusedInput) as caught:
        parse(data, limits)
    assert len(caught.value.errors) == 1
    return caught.value.errors[0].code


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A named pipe: opening it for reading blocks, so any attempt to read it hangs the parse."""
    path = tmp_path / "secret"
    os.mkfifo(path)
    return path


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'<!ENTITY x "pwned">')

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def counting_server() -> Iterator[tuple[str, type[_CountingHandler]]]:
    handler = type("Handler", (_CountingHandler,), {"hits": 0})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler
    server.shutdown()
    server.server_close()


def _bounded(func: object, *args: object, seconds: float = 5.0) -> object:
    """Run in a thread and fail if it does not return in time (a read of the FIFO would block)."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(_catch(func, *args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the parser blocked: it tried to read an external resource"
    return result[0]


def _catch(func: object, *args: object) -> object:
    try:
        return func(*args)  # type: ignore[operator]
    except RefusedInput as exc:
        return exc.errors[0].code


def test_billion_laughs_is_refused_quickly() -> None:
    """A nested entity bomb never expands: refused as a DOCTYPE in milliseconds."""
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l0 "lol">{entities}]><r>&l9;</r>'.encode()
    started = time.perf_counter()
    assert refusal(bomb) == "XML_DOCTYPE_FORBIDDEN"
    assert time.perf_counter() - started < 0.5


def test_external_file_entity_reads_nothing(fifo: Path) -> None:
    """An entity naming a local file is refused without opening it."""
    doc = f'<!DOCTYPE r [<!ENTITY x SYSTEM "file://{fifo}">]><r>&x;</r>'.encode()
    assert _bounded(parse, doc) == "XML_DOCTYPE_FORBIDDEN"


def test_external_network_entity_and_dtd_make_no_request(
    counting_server: tuple[str, type[_CountingHandler]],
) -> None:
    """Entities and DTDs on the network are refused without a connection."""
    url, handler = counting_server
    assert (
        refusal(f'<!DOCTYPE r [<!ENTITY x SYSTEM "{url}/e">]><r>&x;</r>'.encode()) == "XML_DOCTYPE_FORBIDDEN"
    )
    assert refusal(f'<!DOCTYPE r SYSTEM "{url}/d.dtd"><r/>'.encode()) == "XML_DOCTYPE_FORBIDDEN"
    assert (
        refusal(f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{url}/p"> %p;]><r/>'.encode()) == "XML_DOCTYPE_FORBIDDEN"
    )
    assert handler.hits == 0


def test_doctype_after_comment_and_declaration_is_found() -> None:
    """The prolog scan skips the XML declaration and comments before a DOCTYPE."""
    doc = b'<?xml version="1.0"?>\n<!-- c -->\n<!DOCTYPE r [<!ENTITY a "b">]><r/>'
    assert refusal(doc) == "XML_DOCTYPE_FORBIDDEN"


def test_deep_nesting_is_refused() -> None:
    """30,000 nested elements are refused as too deep, by libxml2's own limit or ours."""
    doc = b"<a>" * 30_000 + b"</a>" * 30_000
    started = time.perf_counter()
    assert refusal(doc) == "XML_TOO_DEEP"
    assert time.perf_counter() - started < 1.0


def test_our_depth_limit_is_lower_than_libxml2s() -> None:
    """Depth past the configured limit (64 by default) is refused by our walk."""
    doc = b"<a>" * 100 + b"</a>" * 100
    assert refusal(doc) == "XML_TOO_DEEP"
    assert parse(b"<a>" * 60 + b"</a>" * 60) is not None


def test_undeclared_entity_is_refused() -> None:
    """A reference to an entity that is not one of the five predefined ones."""
    assert refusal(b"<r>&nbsp;</r>") == "XML_ENTITY_FORBIDDEN"


def test_predefined_entities_are_fine() -> None:
    """&amp; &lt; and character references are ordinary XML."""
    root = parse(b"<r>a &amp; b &lt; c &#233;</r>")
    assert root.text == "a & b < c \u00e9"


def test_processing_instruction_is_refused() -> None:
    """A stylesheet PI (or any PI) is refused, not silently dropped."""
    doc = b'<?xml version="1.0"?><?xml-stylesheet href="x.xsl"?><r/>'
    assert refusal(doc) == "XML_PROCESSING_INSTRUCTION_FORBIDDEN"
    assert refusal(b"<r><?php echo 1; ?></r>") == "XML_PROCESSING_INSTRUCTION_FORBIDDEN"


def test_xinclude_is_refused(fifo: Path) -> None:
    """An XInclude element is refused and never processed."""
    doc = f'<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file://{fifo}"/></r>'.encode()
    assert _bounded(parse, doc) == "XML_XINCLUDE_FORBIDDEN"


def test_schema_location_elsewhere_is_refused() -> None:
    """A schemaLocation hint naming a URL or a path is refused; a bare file name is tolerated."""
    xsi = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    far = f'<r {xsi} xsi:schemaLocation="{NS} http://127.0.0.1:9/evil.xsd"/>'.encode()
    assert refusal(far) == "XML_SCHEMA_LOCATION_FORBIDDEN"
    path = f'<r {xsi} xsi:noNamespaceSchemaLocation="/etc/evil.xsd"/>'.encode()
    assert refusal(path) == "XML_SCHEMA_LOCATION_FORBIDDEN"
    assert parse(f'<r {xsi} xsi:schemaLocation="{NS} procedure.xsd"/>'.encode()) is not None


def test_attribute_flood_is_refused() -> None:
    """An element with hundreds of attributes."""
    attrs = " ".join(f'a{i}="x"' for i in range(300))
    assert refusal(f"<r {attrs}/>".encode()) == "XML_TOO_MANY_ATTRIBUTES"


def test_namespace_flood_is_refused() -> None:
    """Thousands of namespace declarations parse 'fine' in libxml2: our limit stops them."""
    decls = " ".join(f'xmlns:n{i}="urn:x:{i}"' for i in range(20_000))
    assert refusal(f"<r {decls}/>".encode()) == "XML_TOO_MANY_NAMESPACES"


def test_overlong_names_are_refused() -> None:
    """Element and attribute names past the limit."""
    assert refusal(f"<{'a' * 2000}/>".encode()) == "XML_NAME_TOO_LONG"
    assert refusal(f"<r {'b' * 2000}='1'/>".encode()) == "XML_NAME_TOO_LONG"


def test_element_count_limit() -> None:
    """More elements than the configured limit."""
    doc = b"<r>" + b"<a/>" * 50 + b"</r>"
    assert refusal(doc, ParseLimits(max_elements=20)) == "XML_TOO_MANY_ELEMENTS"


@pytest.mark.parametrize(
    "data",
    [
        "<r>é</r>".encode("utf-16"),
        "<r>é</r>".encode("utf-16-be"),
        b'<?xml version="1.0" encoding="UTF-7"?><r>+ADw-script+AD4-</r>',
        '<?xml version="1.0" encoding="ISO-8859-1"?><r>\xe9</r>'.encode("latin-1"),
    ],
    ids=["utf16-bom", "utf16-no-bom", "utf7-declared", "latin1-declared"],
)
def test_non_utf8_encodings_are_refused(data: bytes) -> None:
    """Only UTF-8 is accepted, whatever the declaration says."""
    assert refusal(data) == "XML_ENCODING_UNSUPPORTED"


def test_mislabelled_utf8_is_refused() -> None:
    """Bytes that are not UTF-8 under a UTF-8 (or no) declaration."""
    assert refusal('<?xml version="1.0" encoding="UTF-8"?><r>\xe9</r>'.encode("latin-1")) in (
        "XML_ENCODING_UNSUPPORTED",
        "XML_NOT_WELL_FORMED",
    )


def test_not_well_formed_carries_its_line() -> None:
    """A syntax error says where it is."""
    with pytest.raises(RefusedInput) as caught:
        parse(b"<r>\n<a>\n</b></r>")
    error = caught.value.errors[0]
    assert error.code == "XML_NOT_WELL_FORMED"
    assert error.line == 3


def _nested(depth: int) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
_AT_THE_LIMITS = {
    "depth 64": _nested(64),
    "depth 65": _nested(65),
    "64 attributes": ("<r><x " + " ".join(f'a{i}="1"' for i in range(64)) + "/></r>").encode(),
    "65 attributes": ("<r><x " + " ".join(f'a{i}="1"' for i in range(65)) + "/></r>").encode(),
    "name of 256": f"<r><{'n' * 256}/></r>".encode(),
    "name of 257": f"<r><{'n' * 257}/></r>".encode(),
    "namespaced name of 257": f"<r xmlns='urn:{'u' * 200}'><{'n' * 52}/></r>".encode(),
    "32 namespaces": ("<r " + " ".join(f'xmlns:n{i}="urn:{i}"' for i in range(32)) + "><a/></r>").encode(),
    "33 namespaces": ("<r " + " ".join(f'xmlns:n{i}="urn:{i}"' for i in range(33)) + "><a/></r>").encode(),
    "xmlns in text only": b"<r>" + b"xmlns " * 40 + b"</r>",
    "local hint": f'<r {_XSI} xsi:schemaLocation="{NS} procedure.xsd"><a/></r>'.encode(),
    "remote hint deep down": f'<r {_XSI}><a><b xsi:noNamespaceSchemaLocation="/etc/x.xsd"/></a></r>'.encode(),
    "XInclude after a PI": b'<r xmlns:xi="http://www.w3.org/2001/XInclude"><?p x?><xi:include href="x"/></r>',
    "PI after the root": b"<r><!-- c --><a/></r><?after x?>",
    "deep, then a PI": b"<r>" + _nested(70) + b"<?p?></r>",
}


@pytest.mark.parametrize("data", list(_AT_THE_LIMITS.values()), ids=list(_AT_THE_LIMITS))
def test_quick_pass_agrees_with_the_exact_walk(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick pass clears only what the node-by-node walk clears; a refusal is the walk's."""
    import gateway.xmlparse as xmlparse

    def outcome() -> object:
        try:
            return parse(data).tag
        except RefusedInput as exc:
            return [(e.code, e.line) for e in exc.errors]

    quick = outcome()
    monkeypatch.setattr(xmlparse, "_clearly_within", lambda *args: False)
    assert quick == outcome()


_LONG_URI = "urn:" + "u" * 200
_PAST_THE_LIMITS = {
    "257 elements": ParseLimits(max_elements=256),
    "65 attributes on one element": ParseLimits(),
    "a long namespace URI": ParseLimits(),
    "a long attribute name": ParseLimits(),
    "a long namespaced attribute": ParseLimits(),
    "a remote schemaLocation": ParseLimits(),
    "a remote noNamespaceSchemaLocation": ParseLimits(),
    "an XInclude element": ParseLimits(),
    "a PI after the root": ParseLimits(),
    "a PI before the root": ParseLimits(),
    "a PI deep down": ParseLimits(),
    "33 namespaces": ParseLimits(),
    "depth 65": ParseLimits(),
    "too many attributes in all": ParseLimits(max_attributes_total=10),
}
_PAST = {
    "257 elements": b"<r>" + b"<a/>" * 256 + b"</r>",
    "65 attributes on one element": ("<r><x " + " ".join(f'a{i}="1"' for i in range(65)) + "/></r>").encode(),
    "a long namespace URI": f"<r xmlns='{_LONG_URI}'><{'n' * 52}/></r>".encode(),
    "a long attribute name": f"<r><a {'n' * 257}='1'/></r>".encode(),
    "a long namespaced attribute": f"<r xmlns:p='{_LONG_URI}'><a p:{'n' * 52}='1'/></r>".encode(),
    "a remote schemaLocation": f'<r {_XSI} xsi:schemaLocation="{NS} http://x/p.xsd"/>'.encode(),
    "a remote noNamespaceSchemaLocation": f'<r {_XSI}><a xsi:noNamespaceSchemaLocation="http://x/p.xsd"/></r>'.encode(),
    "an XInclude element": b'<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="x"/></r>',
    "a PI after the root": b'<?xml version="1.0"?><r/><?p x?>',
    "a PI before the root": b'<?xml version="1.0"?>\n<?xml-stylesheet href="x"?><r/>',
    "a PI deep down": b"<r><a><b><?p x?></b></a></r>",
    "33 namespaces": ("<r " + " ".join(f'xmlns:n{i}="urn:{i}"' for i in range(33)) + "/>").encode(),
    "depth 65": _nested(65),
    "too many attributes in all": b"<r>" + b'<a x="1" y="2"/>' * 6 + b"</r>",
}


@pytest.mark.parametrize("padding", [0, 300_000], ids=["small (bytes)", "large (nodes)"])
@pytest.mark.parametrize("case", list(_PAST), ids=list(_PAST))
def test_quick_pass_never_clears_past_a_limit(case: str, padding: int) -> None:
    """Just past each limit, the quick pass (either way: by bytes or by nodes) looks closer
    and the walk refuses."""
    from gateway import xmlparse

    data = _PAST[case] + b" " * padding  # whitespace after the root: a large body, same tree
    limits = _PAST_THE_LIMITS[case]
    root = etree.fromstring(data, parser=xmlparse._parser())
    assert (len(data) > xmlparse.STREAM_ABOVE_BYTES) == bool(padding)
    assert not xmlparse._clearly_within(root, limits, data)
    with pytest.raises(RefusedInput):
        xmlparse._walk(root, limits)


_LOOKALIKES = {
    "an XInclude URI in text": b"<r>http://www.w3.org/2001/XInclude</r>",
    "xmlns in a comment": b'<r><!-- xmlns:xi="http://www.w3.org/2001/XInclude" --><a/></r>',
    "a PI in CDATA": b"<r><![CDATA[<?p x?> <xi:include/>]]></r>",
    "a long name in a comment": f"<r><!-- <{'n' * 300} {'a' * 300}='1'/> --></r>".encode(),
    "a remote hint in text": f"<r>xsi:schemaLocation=&quot;{NS} http://x/p.xsd&quot;</r>".encode(),
    "a value with xmlns and >": b'<r a="xmlns=\'" b="x > y" c="\'"/>',
    "base64 with padding": b"<r><c>" + b"QUJD" * 500 + b"QQ==</c></r>",
    "a local hint": f'<r {_XSI} xsi:schemaLocation="{NS} procedure.xsd"><a/></r>'.encode(),
    "xml:lang": b'<r xml:lang="fr"><a xml:space="preserve"/></r>',
}


@pytest.mark.parametrize("data", list(_LOOKALIKES.values()), ids=list(_LOOKALIKES))
def test_lookalikes_are_accepted(data: bytes) -> None:
    """What merely looks like a refused construct may make the quick pass look closer; the
    document is accepted all the same."""
    assert parse(data) is not None


def test_a_value_hiding_a_declaration_is_looked_at() -> None:
    """An ``xmlns`` inside a value must not hide the XInclude declaration after it."""
    data = b'<r a="xmlns=\'" xmlns:xi="http://www.w3.org/2001/XInclude" c="\'"><xi:include/></r>'
    assert refusal(data) == "XML_XINCLUDE_FORBIDDEN"


@pytest.mark.parametrize(
    "path",
    sorted(Path(__file__).parent.glob("fixtures/*/v1/valid/*.xml")),
    ids=lambda path: f"{path.parts[-4]}/{path.name}",
)
def test_quick_pass_clears_ordinary_messages(path: Path) -> None:
    """Every valid fixture is cleared by the quick pass: the exact walk is the exception."""
    from gateway import xmlparse

    data = path.read_bytes()
    assert xmlparse._clearly_within(parse(data), ParseLimits(), data)
