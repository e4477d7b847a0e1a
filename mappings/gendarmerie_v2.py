"""Gendarmerie procedure message v2 -> court case (affaire): the v1 mapping, read under v2's names.

v2 (``schemas/gendarmerie/v2/procedure.xsd``) changes three things, and this module holds
only what they change; every other field goes through :mod:`mappings.gendarmerie_v1`:

- ``Identification/Service`` and ``Officer/Nigend`` are v1's ``Unit`` and ``Matricule``
  renamed: :func:`read` files each renamed element's node under its v1 name as well, so the
  v1 reading finds it (the element itself is untouched: errors still show the v2 path);
- the person role ``CIVILEMENT_RESPONSABLE`` is a court role, which the v1 mapping looks up
  by name;
- the new required ``AvisParquet`` block has no place in the court case (listed as not
  carried in ``docs/mappings/gendarmerie-v2.md``); its date-time joins the dates checked
  by the "not in the future" rule.

Mapping version: ``MAPPING_VERSION``, recorded on every case with the message's schemaVersion.
"""

from __future__ import annotations

from lxml import etree

from gateway.facts import ProcedureFacts, Value
from gateway.formats import MessageHeader
from gateway.locations import ElementLoc
from gateway.model import Affaire
from mappings import gendarmerie_v1
from mappings.xmlread import Document, Reader, parse_datetime

NAMESPACE = "urn:saisine:gendarmerie:procedure:v2"
MAPPING_VERSION = "gendarmerie-v2.0"
FORMAT = "gendarmerie/v2"
R = Reader(NAMESPACE)

# Under each parent (a path from the root), v2's element name -> the v1 name it replaces.
RENAMED: dict[str, dict[str, str]] = {
    "Identification": {"Service": "Unit"},
    "Identification/Officer": {"Nigend": "Matricule"},
}

# Where v2 keeps the header's fields: v1's paths, the unit now under Service.
_HEADER = {**gendarmerie_v1.HEADER_PATHS, "unit_code": "Identification/Service/Code"}
_INFORMED_AT = "AvisParquet/InformedAt"


def read_header(root: etree._Element) -> MessageHeader:
    """Identifiers of the message, best effort: the document may be invalid."""
    return gendarmerie_v1.header_at(R, root, _HEADER)


def header_of(doc: Document) -> MessageHeader:
    """The header of a schema-valid message from its reading (:func:`read`)."""
    return gendarmerie_v1.header_in(R, doc, _HEADER)


def read(root: etree._Element) -> Document:
    """The schema-valid message read once, each renamed element also under its v1 name."""
    doc = R.read(root)
    for parent_path, names in RENAMED.items():
        for _, children in R.all(doc.root, parent_path):
            for new, old in names.items():
                if children and new in children:
                    children[old] = children[new]
    return doc


def _document(message: Document | etree._Element) -> Document:
    """What :func:`read` made of the message, or the element tree itself (read now)."""
    return message if isinstance(message, Document) else read(message)


def read_facts(message: Document | etree._Element) -> ProcedureFacts:
    """The facts the business rules check: v1's, and the date-time of the avis au parquet."""
    doc = _document(message)
    facts = gendarmerie_v1.read_facts(doc)
    informed = R.el(doc.root, _INFORMED_AT)
    if informed is None or not informed[0].text:
        raise ValueError(f"{_INFORMED_AT} missing: the schema should have refused it")
    facts.dates.append(Value(parse_datetime(informed[0].text), ElementLoc(informed[0])))
    return facts


def map_case(message: Document | etree._Element) -> Affaire:
    """The court case for a schema-valid, rule-valid gendarmerie v2 message."""
    case = gendarmerie_v1.map_case(_document(message))
    source = case.source.model_copy(update={"format": FORMAT, "mapping_version": MAPPING_VERSION})
    return case.model_copy(update={"source": source})
