"""Writing a message with lxml in any of the lexical forms a schema allows for the same values.

Every format's writer derives from :class:`XmlWriter`. The same value may be written padded with
whitespace (xs:token, integers, booleans, date-times and attributes collapse it), integers with
leading zeros or a ``+``, booleans as ``1``/``0``, UUIDs in capitals, base64 wrapped, a date with
a time zone, under a namespace prefix, with comments here and there, pretty printed or not, with
or without an XML declaration and a BOM.

Which variations a message uses is drawn once per message (each shrinks to "off"), and where they
apply is chosen by a seeded generator: one choice per message rather than one per element keeps
examples small and their shrinking fast, while every variation still turns up on every run. A
failing example shrinks to the variations it needs, and prints the message.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable, Sequence
from datetime import date
from typing import TypeVar

from hypothesis import strategies as st
from lxml import etree

T = TypeVar("T")

BOOL = st.booleans()
_SEEDS = st.integers(0, 2**32 - 1)
_PADS = (" ", "\t", "\n    ", "  ")


class XmlWriter:
    """Builds one message in ``namespace``; subclasses add their own ``variations``."""

    namespace: str
    prefixes: tuple[str | None, ...] = (None,)
    variations: tuple[str, ...] = ("padding", "numbers", "booleans", "capitals", "dates", "base64", "layout")

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.varied = {kind: draw(BOOL) for kind in self.variations}
        self.rng = random.Random(draw(_SEEDS))

    def vary(self, kind: str, chance: float = 0.3) -> bool:
        """Whether to use variation ``kind`` here (never when the message does not use it)."""
        return self.varied[kind] and self.rng.random() < chance

    def pick(self, options: Sequence[T]) -> T:
        return self.rng.choice(options)

    # ------------------------------------------------------------ lexical forms

    def token(self, value: str) -> str:
        """The same xs:token value, sometimes surrounded by whitespace the schema collapses."""
        if not self.vary("padding"):
            return value
        return self.pick(_PADS) + value + self.pick(_PADS)

    def integer(self, value: int) -> str:
        text = str(value)
        if self.vary("numbers"):
            text = self.pick((f"{value:0{len(text) + 2}d}", f"+{value}"))
        return self.token(text)

    def natinf(self, code: str) -> str:
        if self.vary("numbers"):
            code = code.zfill(min(5, len(code) + self.rng.randint(1, 3)))  # [0-9]{1,5}
        return self.token(code)

    def boolean(self, value: bool) -> str:
        forms = ("true", "1") if value else ("false", "0")
        return self.token(forms[self.vary("booleans", 0.5)])

    def uuid(self, value: str) -> str:
        return value.upper() if self.vary("capitals") else value  # xs:string pattern: no padding

    def date(self, value: date) -> str:
        zone = self.pick(("Z", "+01:00", "-04:00")) if self.vary("dates") else ""  # xs:date may have one
        return value.isoformat() + zone  # libxml2 refuses a padded xs:date (though the type collapses)

    def base64(self, content: bytes) -> str:
        text = base64.b64encode(content).decode("ascii")
        if self.vary("base64", 0.5):
            text = "\n" + "\n".join(text[i : i + 76] for i in range(0, len(text), 76)) + "\n"
        return text

    # ------------------------------------------------------------ elements

    def root(self, name: str) -> etree._Element:
        prefix = self.pick(self.prefixes) if self.varied["layout"] else None
        return etree.Element(f"{{{self.namespace}}}{name}", nsmap={prefix: self.namespace})

    def sub(self, parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
        if self.vary("layout", 0.05):
            parent.append(etree.Comment(" généré pour les tests "))
        el = etree.SubElement(parent, f"{{{self.namespace}}}{name}")
        if text is not None:
            el.text = text
        return el

    def opt(self, parent: etree._Element, name: str, text: str | None) -> None:
        if text is not None:
            self.sub(parent, name, text)

    def attr(self, el: etree._Element, name: str, value: str) -> None:
        el.set(name, self.token(value))

    def container(
        self,
        parent: etree._Element,
        name: str,
        items: Sequence[T],
        write: Callable[[etree._Element, T], None],
    ) -> None:
        if items:
            el = self.sub(parent, name)
            for item in items:
                write(el, item)

    def serialise(self, root: etree._Element) -> bytes:
        layout = self.varied["layout"]
        declaration, pretty = layout and self.rng.random() < 0.5, layout and self.rng.random() < 0.5
        data = etree.tostring(root, encoding="UTF-8", xml_declaration=declaration, pretty_print=pretty)
        if layout and self.rng.random() < 0.2:
            data = b"\xef\xbb\xbf" + data
        return data
