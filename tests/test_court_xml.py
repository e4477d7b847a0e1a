"""The court case serializer against schemas/court/v1/affaire.xsd, and the XSD against the model."""

from __future__ import annotations

import types
import typing
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from pydantic import BaseModel

from gateway import model as m
from gateway.court_xml import AFFAIRE_NS, affaire_to_xml, affaire_xml_bytes

XSD_PATH = Path(__file__).resolve().parents[1] / "schemas" / "court" / "v1" / "affaire.xsd"
XS = "http://www.w3.org/2001/XMLSchema"
PARIS = timezone(timedelta(hours=1))
NS = {"a": AFFAIRE_NS}


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_PATH)))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


def place(insee: str = "75111", name: str = "Paris 11e") -> m.Place:
    return m.Place(
        commune_insee=insee,
        commune_name=name,
        address=m.Address(lines=["12 rue Oberkampf"], postal_code="75011", commune_insee=insee, country="FR"),
    )


def originator() -> m.Originator:
    return m.Originator(
        agency="gendarmerie",
        unit_code="GEN-01234",
        unit_name="Brigade de recherches de Paris",
        officer_name="Martin Claire",
        officer_quality="OPJ",
        officer_rank="Adjudant-chef",
        officer_id="123456",
    )


def source() -> m.SourceInfo:
    return m.SourceInfo(
        agency="gendarmerie",
        format="gendarmerie/v1",
        schema_version="1.0",
        mapping_version="1.0.0",
        message_id="0b6f2a4e-3c1d-4e5f-9a7b-1c2d3e4f5a6b",
        sent_at=at(12, 18),
        software="LRPGN 5.2",
    )


def full_affaire() -> m.Affaire:
    """An initial procedure with every list non-empty and every optional field set."""
    suspect = m.NaturalPerson(
        birth_name="DURAND",
        usage_name="DURAND-LEROY",
        given_names=["Paul", "Henri"],
        aliases=["Polo"],
        sex="M",
        birth_date=date(1990, 5, 17),
        birth_commune_insee="2A004",
        birth_country="FR",
        nationality="FR",
        address=m.Address(lines=["3 place de la Gare", "Bât. B"], postal_code="20000", commune_insee="2A004"),
        profession="chauffeur",
        identity_document=m.IdentityDocument(kind="CNI", number="X4RTBPFW4", issuing_country="FR"),
        arrest=m.Arrest(at=at(10, 6, 15), place=place()),
    )
    company = m.LegalPerson(
        company_name="Transports Exemple SAS",
        legal_form="SAS",
        siren="732829320",
        siret="73282932000074",
        head_office=m.Address(lines=["1 avenue de France"], postal_code="75013", commune_insee="75113"),
    )
    return m.Affaire(
        kind=m.MessageKind.INITIALE,
        numero_parquet="TJ75056-2026-0000042",
        tribunal_code="TJ75056",
        tribunal_name="Tribunal judiciaire de Paris",
        procedure_numbers=["01234/2026", "01235/2026"],
        originator=originator(),
        cadre=m.Cadre.FLAGRANCE,
        saisine_at=at(10, 5),
        faits=m.Faits(start=at(9, 22), end=at(9, 23, 30), place=place(), summary="Vol avec violence."),
        nature=m.Nature.DELIT,
        has_scelles=True,
        no_mis_en_cause_reason=None,
        infractions=[
            m.Infraction(ref="I1", natinf="7875", qualification="Vol avec violence", nature=m.Nature.DELIT),
        ],
        parties=[
            m.Partie(ref="P1", role=m.CourtRole.MIS_EN_CAUSE, natural=suspect),
            m.Partie(ref="P2", role=m.CourtRole.VICTIME, legal=company),
        ],
        preventions=[
            m.Prevention(
                partie_ref="P1",
                infraction_ref="I1",
                natinf="7875",
                qualification="Vol avec violence",
                nature=m.Nature.DELIT,
                participation=m.Participation.AUTEUR,
                counts=2,
                faits_start=at(9, 22),
                faits_end=at(9, 23, 30),
                place=place(),
            )
        ],
        mesures=[
            m.Mesure(
                partie_ref="P1",
                kind=m.MeasureKind.GARDE_A_VUE,
                decided_at=at(10, 6, 20),
                place="Brigade de Paris",
                end=at(11, 20),
                extensions=[m.Extension(at=at(11, 6), authorised_by="Procureur de la République de Paris")],
                minor=False,
                outcome="defere",
                hearing_at=at(12, 9),
                details="Prolongation de 24 heures.",
            )
        ],
        scelles=[
            m.Scelle(
                number="S-001",
                nature="Téléphone portable",
                vehicle_registration="AB-123-CD",
                seized_at=at(10, 7),
                seizure_place=place(),
                custodian="Greffe du TJ de Paris",
                infraction_ref="I1",
            )
        ],
        pieces=[
            m.Piece(
                number=1,
                title="PV d'audition",
                media_type="application/pdf",
                sha256="ab" * 32,
                size=52_113,
            ),
            m.Piece(
                number=2,
                title="PV de saisie",
                media_type="application/pdf",
                sha256="cd" * 32,
                size=1_024,
                inline=True,
                reference="piece-2",
            ),
        ],
        source=source(),
    )


def minimal_affaire() -> m.Affaire:
    """Only the required fields."""
    return m.Affaire(
        kind=m.MessageKind.COMPLEMENT,
        tribunal_code="TJ75056",
        tribunal_name="Tribunal judiciaire de Paris",
        procedure_numbers=["01234/2026"],
        originator=m.Originator(
            agency="gendarmerie",
            unit_code="GEN-01234",
            unit_name="Brigade",
            officer_name="Martin Claire",
            officer_quality="OPJ",
        ),
        cadre=m.Cadre.ENQUETE_PRELIMINAIRE,
        saisine_at=at(10, 5),
        has_scelles=False,
        source=source(),
    )


def test_full_affaire_validates(schema: etree.XMLSchema) -> None:
    """A realistic affaire with every list and optional field set validates against affaire.xsd."""
    element = affaire_to_xml(full_affaire())
    schema.assertValid(element)
    assert element.findtext("a:parties/a:item/a:role", namespaces=NS) == "mis_en_cause"
    assert (
        element.findtext("a:mesures/a:item/a:extensions/a:item/a:at", namespaces=NS)
        == "2026-03-11T06:00:00+01:00"
    )
    assert element.findtext("a:parties/a:item/a:natural/a:birth_date", namespaces=NS) == "1990-05-17"
    assert element.findtext("a:pieces/a:item[2]/a:inline", namespaces=NS) == "true"
    assert [e.text for e in element.iterfind("a:procedure_numbers/a:item", NS)] == [
        "01234/2026",
        "01235/2026",
    ]


def test_minimal_affaire_validates(schema: etree.XMLSchema) -> None:
    """An affaire with only its required fields validates, its None fields omitted."""
    element = affaire_to_xml(minimal_affaire())
    schema.assertValid(element)
    assert element.find("a:numero_parquet", NS) is None
    assert element.find("a:faits", NS) is None
    assert element.find("a:pieces", NS) is not None and len(element.find("a:pieces", NS)) == 0


def test_complement_root_validates(schema: etree.XMLSchema) -> None:
    """The same affaire serialized as a Complement element validates too."""
    element = affaire_to_xml(minimal_affaire(), root="Complement")
    assert element.tag == f"{{{AFFAIRE_NS}}}Complement"
    schema.assertValid(element)


def test_fields_are_written_in_declaration_order() -> None:
    """Children follow the model's field order, the order the XSD sequence requires."""
    element = affaire_to_xml(full_affaire())
    names = [etree.QName(child).localname for child in element]
    expected = [n for n in m.Affaire.model_fields if getattr(full_affaire(), n) is not None]
    assert names == expected


def test_bytes_parse_back_to_the_same_document(schema: etree.XMLSchema) -> None:
    """affaire_xml_bytes is UTF-8 with a declaration and holds the same valid document."""
    data = affaire_xml_bytes(full_affaire())
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    schema.assertValid(etree.fromstring(data))
    assert "Téléphone portable".encode() in data


def test_naive_datetime_is_refused() -> None:
    """A datetime without offset cannot be serialized: the court needs unambiguous times."""
    naive = minimal_affaire().model_copy(update={"saisine_at": datetime(2026, 3, 10, 5)})
    with pytest.raises(ValueError, match="UTC offset"):
        affaire_to_xml(naive)


def test_unknown_root_is_refused() -> None:
    """Only Affaire and Complement are root elements of affaire.xsd."""
    with pytest.raises(ValueError, match="root"):
        affaire_to_xml(minimal_affaire(), root="Other")  # type: ignore[arg-type]


# ----- the XSD mirrors the model -------------------------------------------------------------

_SCALARS: dict[Any, str] = {
    str: "xs:string",
    int: "xs:integer",
    bool: "xs:boolean",
    date: "xs:date",
    datetime: "OffsetDateTimeType",
}


def _xsd_types() -> dict[str, etree._Element]:
    tree = etree.parse(str(XSD_PATH))
    return {t.get("name"): t for t in tree.getroot() if t.get("name") and "Type" in t.tag}


def _split_optional(annotation: Any) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        assert len(rest) == 1, annotation
        return rest[0], True
    return annotation, False


def _check_type(xsd_type: str, annotation: Any, xsd: dict[str, etree._Element]) -> None:
    if typing.get_origin(annotation) is list:
        (item_annotation,) = typing.get_args(annotation)
        (item,) = xsd[xsd_type].iterfind(f"{{{XS}}}sequence/{{{XS}}}element")
        assert (item.get("name"), item.get("minOccurs"), item.get("maxOccurs")) == (
            "item",
            "0",
            "unbounded",
        )
        _check_type(item.get("type") or "", item_annotation, xsd)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        assert xsd_type == f"{annotation.__name__}Type"
        _check_model(annotation, xsd)
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        assert xsd_type == f"{annotation.__name__}Type"
        values = [e.get("value") for e in xsd[xsd_type].iter(f"{{{XS}}}enumeration")]
        assert values == [member.value for member in annotation]
    else:
        assert xsd_type == _SCALARS[annotation], (xsd_type, annotation)


def _check_model(model: type[BaseModel], xsd: dict[str, etree._Element]) -> None:
    elements = list(xsd[f"{model.__name__}Type"].iterfind(f"{{{XS}}}sequence/{{{XS}}}element"))
    assert [e.get("name") for e in elements] == list(model.model_fields), model.__name__
    for element, (name, field) in zip(elements, model.model_fields.items(), strict=True):
        annotation, optional = _split_optional(field.annotation)
        assert (element.get("minOccurs") == "0") is optional, f"{model.__name__}.{name}"
        _check_type(element.get("type") or "", annotation, xsd)


def test_xsd_mirrors_the_model() -> None:
    """Every model field has its element, same name, order, optionality and type in affaire.xsd."""
    xsd = _xsd_types()
    root = etree.parse(str(XSD_PATH)).getroot()
    assert {e.get("name"): e.get("type") for e in root.iterfind(f"{{{XS}}}element")} == {
        "Affaire": "AffaireType",
        "Complement": "AffaireType",
    }
    _check_model(m.Affaire, xsd)
