"""The clerk's page: the pre-filled cases received, read back from the stored affaire XML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from lxml import etree

from gateway.xmlparse import parse
from sandbox.registry.store import CaseRow

AFF = "{urn:saisine:court:affaire:v1}"
TEMPLATES = Path(__file__).parent / "templates"
NATURES = {
    "crime": "crime",
    "delit": "délit",
    **{f"contravention_{n}": f"contravention de {n}{'re' if n == 1 else 'e'} classe" for n in range(1, 6)},
}

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


@dataclass(frozen=True, slots=True)
class CaseView:
    """One line of the clerk's table, in the words a clerk reads."""

    numero_parquet: str
    tribunal: str
    received_at: str  # as read: 12/03/2026 17:04
    received_iso: str
    procedures: list[str]
    unit: str
    nature: str
    mis_en_cause: list[str]
    infractions: list[str]
    complements: int
    revision: int


def _texts(element: etree._Element, path: str) -> list[str]:
    return [(e.text or "").strip() for e in element.iterfind(path)]


def _person(partie: etree._Element) -> str:
    natural = partie.find(f"{AFF}natural")
    if natural is not None:
        given = " ".join(_texts(natural, f"{AFF}given_names/{AFF}item"))
        return f"{natural.findtext(f'{AFF}birth_name') or ''} {given}".strip()
    return partie.findtext(f"{AFF}legal/{AFF}company_name") or ""


def _when(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%d/%m/%Y %H:%M")


def case_view(row: CaseRow, tribunals: dict[str, str]) -> CaseView:
    """What the clerk sees of one stored affaire (stored after validation against affaire.xsd)."""
    affaire = parse(row.affaire_xml.encode())
    unit_code = affaire.findtext(f"{AFF}originator/{AFF}unit_code") or ""
    unit_name = affaire.findtext(f"{AFF}originator/{AFF}unit_name") or ""
    parties = affaire.iterfind(f"{AFF}parties/{AFF}item")
    return CaseView(
        numero_parquet=row.numero_parquet,
        tribunal=tribunals.get(row.tribunal_code, row.tribunal_code),
        received_at=_when(row.received_at),
        received_iso=row.received_at,
        procedures=_texts(affaire, f"{AFF}procedure_numbers/{AFF}item"),
        unit=f"{unit_name} ({unit_code})" if unit_code else unit_name,
        nature=NATURES.get(affaire.findtext(f"{AFF}nature") or "", "non précisée"),
        mis_en_cause=[_person(p) for p in parties if p.findtext(f"{AFF}role") == "mis_en_cause"],
        infractions=[
            f"{item.findtext(f'{AFF}natinf')} – {item.findtext(f'{AFF}qualification')}"
            for item in affaire.iterfind(f"{AFF}infractions/{AFF}item")
        ],
        complements=row.complements,
        revision=row.revision,
    )


def render_cases(rows: list[CaseRow], tribunals: dict[str, str], fault: dict[str, Any]) -> str:
    """The clerk's page (server-rendered HTML, no script)."""
    views = [case_view(row, tribunals) for row in rows]
    return _env.get_template("cases.html").render(cases=views, fault=fault)
