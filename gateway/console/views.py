"""What the console's templates need: the Jinja2 environment (autoescape on everywhere), the
words operators read for the court model's vocabularies, times, and the list's filters read
from a query string."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import ChainableUndefined, Environment, FileSystemLoader

from gateway.ports import Status
from gateway.store.queries import MAX_LIMIT, MessageFilter

TEMPLATES = Path(__file__).parent / "templates"
STATUSES = (
    Status.ACCEPTED,
    Status.DELIVERING,
    Status.HELD,
    Status.REGISTERED,
    Status.DEAD_LETTER,
    Status.REJECTED,
    Status.FAILED,
)

# query parameter -> MessageFilter field (the names of GET /api/v1/messages)
FILTER_PARAMS = {
    "status": "status",
    "agency": "agency",
    "unit": "unit_code",
    "format": "format",
    "schema_version": "schema_version",
    "error_code": "error_code",
    "tribunal": "tribunal_code",
    "procedure_number": "procedure_number",
    "numero_parquet": "numero_parquet",
    "received_from": "received_from",
    "received_to": "received_to",
}
TIME_PARAMS = ("received_from", "received_to")

LABELS = {
    # court roles, frames, natures, participations, measures (gateway.model)
    "mis_en_cause": "mis en cause",
    "victime": "victime",
    "temoin": "témoin",
    "plaignant": "plaignant",
    "civilement_responsable": "civilement responsable",
    "enquete_preliminaire": "enquête préliminaire",
    "flagrance": "flagrance",
    "commission_rogatoire": "commission rogatoire",
    "crime": "crime",
    "delit": "délit",
    **{f"contravention_{n}": f"contravention de {n}{'re' if n == 1 else 'e'} classe" for n in range(1, 6)},
    "auteur": "auteur",
    "coauteur": "coauteur",
    "complice": "complice",
    "garde_a_vue": "garde à vue",
    "controle_judiciaire": "contrôle judiciaire",
    "convocation_opj": "convocation par OPJ",
    "deferement": "défèrement",
    "initiale": "procédure initiale",
    "complement": "complément",
    # message statuses
    "dead_letter": "dead letter",
}


def label(word: object) -> str:
    """The word an operator reads for a vocabulary value (the value itself when unknown)."""
    if word is None or word == "":
        return "—"
    return LABELS.get(str(word), str(word))


def when(value: object, seconds: bool = False) -> str:
    """A stored time (UTC) as read: 2026-11-29 15:40 UTC; a case time keeps its own offset."""
    if value is None or value == "":
        return "—"
    at = value if isinstance(value, datetime) else _parse_time(str(value))
    if at is None:
        return str(value)
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    if at.tzinfo is None or at.utcoffset() == UTC.utcoffset(None):
        return at.strftime(pattern) + " UTC"
    return at.strftime(pattern) + at.strftime(" (UTC%z)")


def iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else str(value)


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def place(value: Mapping[str, Any] | None) -> str:
    """A place or address of the court model in one line."""
    if not value:
        return "—"
    parts: list[str] = []
    address = value.get("address")
    if isinstance(address, Mapping):
        parts.append(place(address))
    parts.extend(str(line) for line in value.get("lines") or [])
    if value.get("postal_code"):
        parts.append(str(value["postal_code"]))
    commune = value.get("commune_name")
    insee = value.get("commune_insee")
    if commune or insee:
        parts.append(f"{commune or ''} ({insee})".strip() if insee else str(commune))
    if value.get("country"):
        parts.append(str(value["country"]))
    return ", ".join(p for p in parts if p and p != "—") or "—"


def partie_name(partie: Mapping[str, Any]) -> str:
    natural = partie.get("natural")
    if isinstance(natural, Mapping):
        names = " ".join(natural.get("given_names") or [])
        usage = natural.get("usage_name")
        birth = str(natural.get("birth_name") or "")
        return f"{birth.upper()}{f' (usage {usage})' if usage else ''} {names}".strip()
    legal = partie.get("legal")
    if isinstance(legal, Mapping):
        return str(legal.get("company_name") or "")
    return str(partie.get("ref") or "")


def identity(person: Mapping[str, Any]) -> str:
    """Sex, birth, nationality and aliases of a natural person, in one line."""
    parts = [f"sexe {person['sex']}" if person.get("sex") else ""]
    birth = f"né(e) le {person['birth_date']}" if person.get("birth_date") else ""
    where = person.get("birth_commune_insee") or person.get("birth_country")
    parts.append(f"{birth or 'né(e)'} à {where}" if where else birth)
    parts.append(f"nationalité {person['nationality']}" if person.get("nationality") else "")
    parts.append(f"alias {', '.join(person['aliases'])}" if person.get("aliases") else "")
    return "; ".join(p for p in parts if p) or "—"


def person_more(person: Mapping[str, Any]) -> str:
    """Profession, identity document and arrest of a natural person, in one line."""
    document, arrest = person.get("identity_document"), person.get("arrest")
    parts = [
        str(person.get("profession") or ""),
        f"{document['kind']} n° {document['number']}" if document else "",
        f"interpellé(e) le {when(arrest['at'])}, {place(arrest.get('place'))}" if arrest else "",
    ]
    return "; ".join(p for p in parts if p) or "—"


def mesure_details(mesure: Mapping[str, Any]) -> str:
    """Place, end, extensions, outcome, hearing and details of a measure, in one line."""
    parts = [str(mesure.get("place") or "")]
    parts.append(f"fin {when(mesure['end'])}" if mesure.get("end") else "")
    for extension in mesure.get("extensions") or []:
        parts.append(f"prolongée le {when(extension['at'])} par {extension['authorised_by']}")
    parts.append(f"issue : {mesure['outcome']}" if mesure.get("outcome") else "")
    parts.append(f"audience le {when(mesure['hearing_at'])}" if mesure.get("hearing_at") else "")
    parts.append(str(mesure.get("details") or ""))
    return "; ".join(p for p in parts if p) or "—"


def jsonish(value: object) -> str:
    """A changed value in a replay preview, short."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 300 else text[:297] + "…"


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=ChainableUndefined,  # a case stored by an older mapping may lack a field
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        label=label,
        when=when,
        iso=iso,
        place=place,
        partie_name=partie_name,
        jsonish=jsonish,
        identity=identity,
        person_more=person_more,
        mesure_details=mesure_details,
    )
    env.globals.update(STATUSES=STATUSES, urlencode=urlencode)
    return env


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The message list's query string, read: the filter, the console's own dead-letter reason
    filter, the page size and cursor, and what could not be read."""

    where: MessageFilter
    values: dict[str, str]  # as typed, to fill the form and the links again
    reason: str | None = None
    limit: int = 50
    cursor: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def chosen(self) -> bool:
        """Whether anything narrows the list (a bulk replay needs something)."""
        return any(self.values.get(k) for k in (*FILTER_PARAMS, "dead_letter_reason"))

    def params(self, **changes: str | None) -> str:
        """The query string of this list with ``changes`` (None removes a parameter)."""
        values: dict[str, str] = {k: v for k, v in self.values.items() if v}
        for key, value in changes.items():
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
        return urlencode(values)


def read_list_query(params: Mapping[str, str]) -> ListQuery:
    """The filters from a query string (or a posted form); a bad value is reported, not raised."""
    values = {k: params.get(k, "").strip() for k in (*FILTER_PARAMS, "dead_letter_reason", "limit")}
    chosen: dict[str, Any] = {}
    problems: list[str] = []
    for param, name in FILTER_PARAMS.items():
        text = values[param]
        if not text:
            continue
        if param in TIME_PARAMS:
            at = _parse_time(text)
            if at is None:
                problems.append(f"{param.replace('_', ' ')}: not a date and time ({text!r}).")
                continue
            chosen[name] = at if at.tzinfo else at.replace(tzinfo=UTC)
        else:
            chosen[name] = text
    limit = 50
    if values["limit"]:
        try:
            limit = max(1, min(int(values["limit"]), MAX_LIMIT))
        except ValueError:
            problems.append(f"page size: not a number ({values['limit']!r}).")
    where = MessageFilter(**chosen)
    cursor = params.get("cursor") or None
    return ListQuery(where, values, values["dead_letter_reason"] or None, limit, cursor, tuple(problems))
