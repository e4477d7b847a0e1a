"""XSD validation with lxml, reporting every error with its code and location.

Schemas are compiled once, at start-up, from local files only; a schema that
imports anything is resolved by libxml2 relative to its own folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

from gateway.errors import ErrorDetail
from gateway.locations import path_of, resolve_positional

_ELEMENT_CONTENT = "SCHEMAV_ELEMENT_CONTENT"
_ATTR_MISSING = "SCHEMAV_CVC_COMPLEX_TYPE_4"
_ATTR_UNEXPECTED = ("SCHEMAV_CVC_COMPLEX_TYPE_3_2_1", "SCHEMAV_CVC_COMPLEX_TYPE_3_2_2")
# libxml2 reports a facet failure, then again that the value is not of the atomic
# type: the second message adds nothing for the sender.
_ECHO = "SCHEMAV_CVC_DATATYPE_VALID_1_2_1"
_NS_IN_MESSAGE = re.compile(r"\{[A-Za-z][A-Za-z0-9+.\-]*:[^{}]*\}")


def compile_schema(path: Path) -> etree.XMLSchema:
    """Compile a trusted local XSD (our own contract files)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(path), parser))


def _code_for(entry: etree._LogEntry) -> str:
    kind = entry.type_name
    if kind == _ELEMENT_CONTENT:
        return "SCHEMA_ELEMENT_MISSING" if "Missing child" in entry.message else "SCHEMA_ELEMENT_UNEXPECTED"
    if kind == _ATTR_MISSING:
        return "SCHEMA_ATTRIBUTE_MISSING"
    if kind in _ATTR_UNEXPECTED:
        return "SCHEMA_ATTRIBUTE_UNEXPECTED"
    if kind.startswith(("SCHEMAV_CVC_", "SCHEMAV_ELEMENT_CONTENT")) and "VALID" in kind:
        return "SCHEMA_VALUE_INVALID"
    if kind in ("SCHEMAV_CVC_TYPE_3_1_1", "SCHEMAV_CVC_TYPE_3_1_2", "SCHEMAV_CVC_ELT_4_2"):
        return "SCHEMA_VALUE_INVALID"
    return "SCHEMA_INVALID"


def _readable(message: str) -> str:
    """libxml2 writes names as {namespace}Local: the local name is what a sender reads."""
    return _NS_IN_MESSAGE.sub("", message).strip()


def _column(entry: etree._LogEntry) -> int | None:
    return entry.column if entry.column > 0 else None


def _path(entry: etree._LogEntry, root: etree._Element) -> str | None:
    if not entry.path:
        return None
    node = resolve_positional(root, entry.path)
    return path_of(node) if node is not None else entry.path


def validate(schema: etree.XMLSchema, root: etree._Element) -> list[ErrorDetail]:
    """Every XSD error of the tree under ``root``, in document order."""
    if schema.validate(root):
        return []
    errors: list[ErrorDetail] = []
    for entry in schema.error_log:
        last = errors[-1] if errors else None
        if entry.type_name == _ECHO and last and (last.line, last.path) == (entry.line, _path(entry, root)):
            continue
        errors.append(
            ErrorDetail(
                code=_code_for(entry),
                message=_readable(entry.message),
                line=entry.line or None,
                column=_column(entry),
                path=_path(entry, root),
            )
        )
    return errors
