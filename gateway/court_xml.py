"""Serialize the court case model to the registry's XML (``schemas/court/v1/affaire.xsd``).

The schema mirrors :class:`gateway.model.Affaire` mechanically, so the
serializer is generic: it walks the pydantic fields in declaration order and
writes one element per field, named as the field. ``None`` is omitted, a list
is a wrapper element with one ``item`` child per entry, a nested model is an
element with children, an enum is written by value, a datetime in ISO 8601
with its offset. Adding a field to the model means adding it to the XSD;
``tests/test_court_xml.py`` fails until both agree.

The result is an lxml element, not a zeep value: the registry WSDL declares
the affaire slot as ``xs:any`` in the affaire namespace (processContents
strict), which zeep fills with an lxml element as is
(``RegisterAffaire(idempotencyKey=..., _value_1=affaire_to_xml(affaire))``).
One serializer, checked against the XSD, thus defines the wire format instead
of a second dict mapping for zeep's typed elements.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from functools import cache
from typing import Literal

from lxml import etree
from pydantic import BaseModel

from gateway.model import Affaire

AFFAIRE_NS = "urn:saisine:court:affaire:v1"
ROOTS = ("Affaire", "Complement")
ITEM = "item"

RootName = Literal["Affaire", "Complement"]


def affaire_to_xml(affaire: Affaire, root: RootName = "Affaire") -> etree._Element:
    """The affaire as an ``Affaire`` (initial) or ``Complement`` element of affaire.xsd."""
    if root not in ROOTS:
        raise ValueError(f"root must be one of {ROOTS}, not {root!r}")
    element = etree.Element(_qname(root), nsmap={"aff": AFFAIRE_NS})
    _write_model(element, affaire)
    return element


def affaire_xml_bytes(affaire: Affaire, root: RootName = "Affaire") -> bytes:
    """The same document as :func:`affaire_to_xml`, as UTF-8 bytes with a declaration."""
    element = affaire_to_xml(affaire, root)
    data: bytes = etree.tostring(element, encoding="UTF-8", xml_declaration=True)
    return data


def _qname(local: str) -> str:
    return f"{{{AFFAIRE_NS}}}{local}"


_ITEM_TAG = _qname(ITEM)


@cache
def _fields(model_class: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """(field, element tag) of a model class in declaration order, read once: pydantic's
    mapping is slow to walk, and every affaire sent walks it a hundred times."""
    return tuple((name, _qname(name)) for name in model_class.model_fields)


def _write_model(parent: etree._Element, model: BaseModel) -> None:
    """One child per field that has a value, in the order the model declares them."""
    for name, tag in _fields(type(model)):
        value = getattr(model, name)
        if value is not None:
            _write_value(etree.SubElement(parent, tag), value)


def _write_value(element: etree._Element, value: object) -> None:
    """The content of ``element``: text, a nested model, or one ``item`` child per list entry."""
    if type(value) is str:  # most values, and the cheapest test (a StrEnum goes to _text)
        element.text = value
    elif isinstance(value, list):
        for item in value:
            if item is not None:
                _write_value(etree.SubElement(element, _ITEM_TAG), item)
    elif isinstance(value, BaseModel):
        _write_model(element, value)
    else:
        element.text = _text(value)


def _text(value: object) -> str:
    """The XSD lexical form of a scalar (order matters: StrEnum is a str, bool an int)."""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            # The court cannot order events on a naive time; mappings must keep the offset.
            raise ValueError(f"naive datetime {value.isoformat()} has no UTC offset")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | str):
        return str(value)
    raise TypeError(f"no XML form for a value of type {type(value).__name__}")
