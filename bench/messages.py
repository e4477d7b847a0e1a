"""Benchmark messages: a typical gendarmerie v1 procedure (~12 KB) and a large one (pièces inline).

The typical message is ``tests/fixtures/gendarmerie/v1/valid/03-typical.xml`` when that fixture
exists; until then (and for the large message) it is generated here. Every generated message is
schema-valid and passes the business rules: NATINF codes of the sandbox list in force with their
nature, past and coherent dates, resolved references, Luhn-valid SIREN/SIRET, inline pièces whose
SHA-256 and size match their content.
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

PROJECT_ROOT = Path(__file__).resolve().parent.parent
GENERATED_UNIT = "6912345"  # the unit of the generated messages (large_template)
TYPICAL_FIXTURE = PROJECT_ROOT / "tests" / "fixtures" / "gendarmerie" / "v1" / "valid" / "03-typical.xml"
NAMESPACE = "urn:saisine:gendarmerie:procedure:v1"
MESSAGE_ID_PLACEHOLDER = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Template:
    """A message split around its MessageId, so a fresh id costs one concatenation."""

    head: bytes
    tail: bytes
    source: str

    def with_id(self, message_id: str | None = None) -> bytes:
        return self.head + (message_id or str(uuid.uuid4())).encode() + self.tail

    def __len__(self) -> int:
        return len(self.head) + len(MESSAGE_ID_PLACEHOLDER) + len(self.tail)


def split_at_message_id(data: bytes, source: str) -> Template:
    start = data.index(b"<MessageId>") + len(b"<MessageId>")
    end = data.index(b"</MessageId>")
    return Template(data[:start], data[end:], source)


def with_procedure_number(data: bytes, number: int) -> bytes:
    """The message under numéro de procédure ``number`` (1 to 99999; its year kept).

    Deliveries of one procedure go one after the other; a delivery benchmark gives every message
    a procedure of its own so that this order does not chain them together.
    """
    start = data.index(b"<ProcedureNumber>") + len(b"<ProcedureNumber>")
    return data[:start] + b"%05d" % (1 + (number - 1) % 99999) + data[start + 5 :]


def typical_template() -> Template:
    """The typical message: the fixture if another engineer has written it, else generated."""
    if TYPICAL_FIXTURE.is_file():
        source = str(TYPICAL_FIXTURE.relative_to(PROJECT_ROOT))
        return split_at_message_id(TYPICAL_FIXTURE.read_bytes(), source)
    return split_at_message_id(build_message(), "bench/messages.py (generated)")


def large_template(target_bytes: int, pieces: int = 5) -> Template:
    """A valid message of about ``target_bytes`` whose pièces carry their content inline."""
    overhead = len(build_message())
    per_piece_b64 = max(1024, (target_bytes - overhead) // pieces)
    # 76-character base64 lines (MIME style, allowed by xs:base64Binary): 77 bytes per 57 raw bytes
    raw_size = per_piece_b64 * 57 // 77
    rng = random.Random(20261128)
    contents = [rng.randbytes(raw_size) for _ in range(pieces)]
    return split_at_message_id(build_message(inline=contents), f"generated, {pieces} pièces inline")


# ------------------------------------------------------------------ identifiers


def luhn_complete(digits: str) -> str:
    """``digits`` followed by the check digit that makes the whole Luhn-valid (SIREN/SIRET)."""
    for check in "0123456789":
        candidate = digits + check
        total = 0
        for index, char in enumerate(reversed(candidate)):
            n = int(char) * (2 if index % 2 else 1)
            total += n - 9 if n > 9 else n
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable: one check digit always fits")


SIREN = luhn_complete("44306184")
SIRET = luhn_complete(SIREN + "0004")


# ------------------------------------------------------------------ sections


def _el(name: str, text: str) -> str:
    return f"<{name}>{escape(text)}</{name}>"


def _address(lines: list[str], postal: str, insee: str, commune: str) -> str:
    body = "".join(_el("Line", line) for line in lines)
    return f"{body}{_el('PostalCode', postal)}{_el('CommuneInsee', insee)}{_el('CommuneName', commune)}"


def _place(street: str, insee: str = "69123", commune: str = "Lyon", postal: str = "69003") -> str:
    address = _address([street], postal, insee, commune) + _el("Country", "FR")
    return f"<Address>{address}</Address>{_el('CommuneInsee', insee)}{_el('CommuneName', commune)}"


def _envelope(message_id: str) -> str:
    return (
        "<Envelope>"
        f"{_el('MessageId', message_id)}{_el('MessageType', 'PROCEDURE_INITIALE')}"
        "<Software><Name>LRPGN</Name><Version>4.12.3</Version></Software>"
        f"{_el('SentAt', '2026-03-12T18:00:00+01:00')}"
        "</Envelope>"
    )


def _identification() -> str:
    return (
        "<Identification><ProcedureNumber>01234/2026</ProcedureNumber>"
        f"<Unit><Code>{GENERATED_UNIT}</Code>"
        "<Name>Brigade territoriale autonome de Lyon-Confluence</Name></Unit>"
        "<Officer><Quality>OPJ</Quality><Rank>Adjudant-chef</Rank><Name>Martine Lefèvre</Name>"
        "<Matricule>GN-0457823</Matricule></Officer></Identification>"
        "<Cadre><Type>FLAGRANCE</Type><SaisineDate>2026-03-10T22:40:00+01:00</SaisineDate>"
        "<Tribunal><Code>TJ69123</Code><Name>Tribunal judiciaire de Lyon</Name></Tribunal></Cadre>"
    )


def _faits() -> str:
    summary = (
        "Contrôle routier quai Perrache : le conducteur d'un véhicule utilitaire circulant à vive allure "
        "fait usage d'un téléphone tenu en main ; la fouille du véhicule découvre de la résine de cannabis. "
        "Le passager présente des traces d'usage récent. Une société de location signale le véhicule."
    )
    return (
        "<Faits><Start>2026-03-10T21:15:00+01:00</Start><End>2026-03-10T22:30:00+01:00</End>"
        f"<Place>{_place('24 quai Perrache')}</Place>{_el('Summary', summary)}</Faits>"
    )


_INFRACTIONS = (
    ("i1", "180", "USAGE ILLICITE DE STUPEFIANTS", "DELIT", (("p1", "AUTEUR"), ("p2", "AUTEUR"))),
    (
        "i2",
        "23800",
        "USAGE D'UN TELEPHONE TENU EN MAIN PAR LE CONDUCTEUR D'UN VEHICULE EN CIRCULATION",
        "CONTRAVENTION_4",
        (("p1", "AUTEUR"),),
    ),
    ("i3", "213", "VITESSE EXCESSIVE EU EGARD AUX CIRCONSTANCES", "CONTRAVENTION_4", (("p1", "AUTEUR"),)),
    (
        "i4",
        "203",
        "NON RESPECT DE L'ARRET IMPOSE PAR UN PANNEAU STOP A UNE INTERSECTION",
        "CONTRAVENTION_4",
        (("p1", "AUTEUR"),),
    ),
)


def _infractions() -> str:
    items = []
    for ref, natinf, qualification, nature, charges in _INFRACTIONS:
        charge_xml = "".join(f'<Charge personRef="{p}" participation="{part}"/>' for p, part in charges)
        items.append(
            f'<Infraction id="{ref}">{_el("Natinf", natinf)}{_el("Qualification", qualification)}'
            f"{_el('Nature', nature)}<Counts>1</Counts><Charges>{charge_xml}</Charges></Infraction>"
        )
    return f"<Infractions>{''.join(items)}</Infractions>"


def _natural(ref: str, role: str, who: tuple[str, str, str, str, str], arrest: str | None) -> str:
    birth_name, given, sex, birth_date, doc = who
    arrest_xml = (
        f"<Arrest><DateTime>{arrest}</DateTime><Place>{_place('24 quai Perrache')}</Place></Arrest>"
        if arrest
        else ""
    )
    return (
        f'<NaturalPerson id="{ref}">{_el("Role", role)}{_el("BirthName", birth_name)}'
        f"<GivenNames>{''.join(_el('GivenName', g) for g in given.split())}</GivenNames>"
        f"{_el('Sex', sex)}{_el('BirthDate', birth_date)}"
        "<BirthPlace><CommuneInsee>69266</CommuneInsee></BirthPlace>"
        "<Nationality>FR</Nationality>"
        f"<Address>{_address(['12 rue de la République', 'Bâtiment B'], '69100', '69266', 'Villeurbanne')}"
        "<Country>FR</Country></Address><Profession>Chauffeur livreur</Profession>"
        f"<IdentityDocument><Type>CARTE_IDENTITE</Type>{_el('Number', doc)}"
        f"<IssuingCountry>FR</IssuingCountry></IdentityDocument>{arrest_xml}</NaturalPerson>"
    )


ARREST_1 = "2026-03-10T22:35:00+01:00"
ARREST_2 = "2026-03-10T22:36:00+01:00"


def _persons() -> str:
    people = [
        _natural("p1", "MIS_EN_CAUSE", ("DURAND", "Kevin Louis", "M", "1996-07-14", "X4RTBPFW4"), ARREST_1),
        _natural("p2", "MIS_EN_CAUSE", ("BENALI", "Yanis", "M", "1999-01-30", "Y7KQZ2M81"), ARREST_2),
        _natural("p3", "TEMOIN", ("MOREAU", "Claire Anne", "F", "1984-11-02", "Z1LMN8Q55"), None),
    ]
    legal = (
        '<LegalPerson id="p4"><Role>PLAIGNANT</Role><CompanyName>Rhône Location Utilitaires</CompanyName>'
        f"<LegalForm>SAS</LegalForm>{_el('Siren', SIREN)}{_el('Siret', SIRET)}"
        f"<HeadOffice>{_address(['8 avenue Berthelot'], '69007', '69387', 'Lyon 7e Arrondissement')}"
        "<Country>FR</Country></HeadOffice></LegalPerson>"
    )
    return f"<Persons>{''.join(people)}{legal}</Persons>"


def _custody() -> str:
    def gav(ref: str, start: str, end: str, outcome: str) -> str:
        return (
            f'<GardeAVue personRef="{ref}"><Place>Brigade de Lyon-Confluence</Place>{_el("Start", start)}'
            "<Extensions><Extension><At>2026-03-11T20:00:00+01:00</At>"
            "<AuthorisedBy>Procureur de la République de Lyon</AuthorisedBy></Extension></Extensions>"
            f"{_el('End', end)}<Minor>false</Minor>{_el('Outcome', outcome)}</GardeAVue>"
        )

    return (
        "<GardesAVue>"
        + gav("p1", "2026-03-10T22:35:00+01:00", "2026-03-12T10:00:00+01:00", "DEFERE")
        + gav("p2", "2026-03-10T22:36:00+01:00", "2026-03-12T09:00:00+01:00", "LIBERE")
        + "</GardesAVue>"
        "<Measures>"
        '<Measure personRef="p1"><Type>DEFEREMENT</Type><DecidedAt>2026-03-12T09:30:00+01:00</DecidedAt>'
        "<Details>Déféré devant le procureur de la République à l'issue de la garde à vue.</Details>"
        "</Measure>"
        '<Measure personRef="p2"><Type>CONVOCATION_OPJ</Type><DecidedAt>2026-03-12T08:45:00+01:00</DecidedAt>'
        "<HearingAt>2026-04-15T14:00:00+02:00</HearingAt>"
        "<Details>Convocation par officier de police judiciaire devant le tribunal correctionnel.</Details>"
        "</Measure></Measures>"
    )


def _scelles() -> str:
    items = [
        ("S-2026-001", "Résine de cannabis, 42 grammes, sous emballage plastique", None, "i1"),
        ("S-2026-002", "Téléphone portable de marque courante, écran fissuré", None, "i2"),
        ("S-2026-003", "Véhicule utilitaire blanc", "AB-123-CD", "i3"),
        ("S-2026-004", "Balance de précision et sachets de conditionnement", None, "i1"),
        ("S-2026-005", "Somme en numéraire, 350 euros en coupures diverses", None, "i1"),
    ]
    xml = []
    for number, nature, plate, inf in items:
        plate_xml = _el("VehicleRegistration", plate) if plate else ""
        xml.append(
            f'<Scelle number="{number}" infractionRef="{inf}">{_el("Nature", nature)}{plate_xml}'
            f"<SeizedAt>2026-03-10T23:05:00+01:00</SeizedAt><SeizurePlace>{_place('24 quai Perrache')}"
            "</SeizurePlace><Custodian>Greffe du tribunal judiciaire de Lyon</Custodian></Scelle>"
        )
    return f"<Scelles>{''.join(xml)}</Scelles>"


_PIECE_TITLES = (
    "Procès-verbal de saisine et de constatations",
    "Procès-verbal d'interpellation",
    "Procès-verbal de notification de placement en garde à vue",
    "Procès-verbal d'audition du mis en cause DURAND",
    "Procès-verbal d'audition du mis en cause BENALI",
    "Procès-verbal d'audition du témoin MOREAU",
    "Procès-verbal de fouille du véhicule",
    "Rapport de dépistage de stupéfiants",
)


def _b64_lines(content: bytes) -> str:
    text = base64.b64encode(content).decode("ascii")
    return "\n".join(text[i : i + 76] for i in range(0, len(text), 76))


def _pieces(inline: list[bytes]) -> str:
    xml = []
    for number, title in enumerate(_PIECE_TITLES, start=1):
        digest = hashlib.sha256(title.encode()).hexdigest()
        xml.append(
            f'<Piece number="{number}">{_el("Title", title)}<MediaType>application/pdf</MediaType>'
            f"<Sha256>{digest}</Sha256><Size>{48_000 + number * 1_317}</Size>"
            f"<Reference>https://pieces.lrpgn.interieur.gouv.fr/01234-2026/{number:03d}.pdf</Reference></Piece>"
        )
    for offset, content in enumerate(inline, start=len(_PIECE_TITLES) + 1):
        xml.append(
            f'<Piece number="{offset}">{_el("Title", f"Photographie de scellé {offset}")}'
            f"<MediaType>image/jpeg</MediaType><Sha256>{hashlib.sha256(content).hexdigest()}</Sha256>"
            f"<Size>{len(content)}</Size><Content>{_b64_lines(content)}</Content></Piece>"
        )
    return f"<Pieces>{''.join(xml)}</Pieces>"


def build_message(message_id: str = MESSAGE_ID_PLACEHOLDER, inline: list[bytes] | None = None) -> bytes:
    """A valid initial procedure: 4 offences, 4 persons, 2 gardes à vue, 5 scellés, pièces.

    Without ``inline`` it carries one small photograph inline (as typical messages do) and is
    about 12 KB; with it, those contents are the inline pièces.
    """
    contents = inline if inline is not None else [random.Random(7).randbytes(400)]
    body = (
        _envelope(message_id)
        + _identification()
        + _faits()
        + _infractions()
        + _persons()
        + _custody()
        + _scelles()
        + _pieces(contents)
    )
    root = f'<Procedure xmlns="{NAMESPACE}" schemaVersion="1.0">{body}</Procedure>'
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{root}\n'.encode()
