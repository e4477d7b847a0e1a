"""The registry of sender formats: what the pipeline needs to know about each.

A format is an (agency, version) pair with its namespace, its XSD, a reader of
the message header, a reader of the facts the rules check, and a mapping to the
court case. Formats are declared in their own ``adapters/<agency>/`` folder and
listed once in ``adapters/registry.py``: the pipeline never names a format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.facts import ProcedureFacts
from gateway.model import Affaire
from gateway.validation import compile_schema


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """What identifies a message, read best-effort even from an invalid one."""

    message_id: str | None = None
    kind: str | None = None
    unit_code: str | None = None
    procedure_number: str | None = None
    tribunal_code: str | None = None
    sent_at: datetime | None = None


def whole_tree(root: etree._Element) -> etree._Element:
    """The default reading of a schema-valid message: the element tree as it is."""
    return root


@dataclass(frozen=True, slots=True)
class SenderFormat:
    """One format: ``read`` makes what ``read_facts`` and ``map_case`` take of a schema-valid
    tree (a format may read the tree once into its own shape; they alone look inside)."""

    agency: str
    version: str
    namespace: str
    root: str
    schema_path: Path
    mapping_version: str
    read_header: Callable[[etree._Element], MessageHeader]
    read_facts: Callable[[Any], ProcedureFacts]
    map_case: Callable[[Any], Affaire]
    transports: tuple[str, ...] = ("rest", "soap")
    deprecated_until: date | None = None
    read: Callable[[etree._Element], Any] = whole_tree
    # The header of a schema-valid message, from ``read``'s result: a few look-ups where
    # ``read_header`` searches a tree that may be invalid. None: ``read_header`` serves.
    header_of: Callable[[Any], MessageHeader] | None = None

    @property
    def name(self) -> str:
        return f"{self.agency}/v{self.version}"

    @property
    def status(self) -> str:
        return (
            f"deprecated, supported until {self.deprecated_until.isoformat()}"
            if self.deprecated_until
            else "supported"
        )

    def deprecation_notice(self) -> str | None:
        """The warning a receipt carries for a message in a deprecated format."""
        if self.deprecated_until is None:
            return None
        return (
            f"FORMAT_DEPRECATED: {self.name} is deprecated; support ends on "
            f"{self.deprecated_until.isoformat()}. Move to a newer version of the format."
        )


@dataclass(frozen=True, slots=True)
class SoapService:
    """An agency's SOAP intake contract: its WSDL and the namespace of its messages."""

    agency: str
    wsdl_path: Path
    namespace: str

    @property
    def action_prefix(self) -> str:
        return f"{self.namespace}#"


class FormatRegistry:
    """The formats Saisine accepts, their schemas compiled once at start-up."""

    def __init__(self, formats: Iterable[SenderFormat]) -> None:
        self._by_ns: dict[str, SenderFormat] = {}
        self._schemas: dict[str, etree.XMLSchema] = {}
        for fmt in formats:
            if fmt.namespace in self._by_ns:
                raise ValueError(f"two formats share the namespace {fmt.namespace}")
            self._by_ns[fmt.namespace] = fmt
            self._schemas[fmt.namespace] = compile_schema(fmt.schema_path)

    def all(self) -> list[SenderFormat]:
        return list(self._by_ns.values())

    def agencies(self) -> set[str]:
        return {f.agency for f in self._by_ns.values()}

    def detect(self, root: etree._Element) -> SenderFormat | None:
        """The format whose namespace and root element the document has."""
        qname = etree.QName(root)
        fmt = self._by_ns.get(qname.namespace or "")
        return fmt if fmt is not None and fmt.root == qname.localname else None

    def schema(self, fmt: SenderFormat) -> etree.XMLSchema:
        return self._schemas[fmt.namespace]
