"""Property tests: Hypothesis builds messages of each sender format from its schema's rules.

A generated valid message must pass the schema and the business rules, map without error, and
every person, offence, charge, measure, scellé and pièce it declares must be found in the court
case, matched by identifier, number, NATINF code and names. One targeted corruption of a valid
message must yield exactly its rule's error code.

Adding a format or a version: a strategy module under ``tests/strategies/`` and one line in
``FORMATS``. A failure prints the drawn procedure and message, and a ``@reproduce_failure`` blob.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TypeVar

import pytest
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st
from lxml import etree
from pydantic import BaseModel

from gateway.codes import CODES, Layer
from gateway.composition import build_checker
from gateway.court_xml import affaire_xml_bytes
from gateway.intake import Checker, Evaluation
from gateway.model import (
    Address,
    Affaire,
    Arrest,
    Extension,
    Faits,
    IdentityDocument,
    Infraction,
    LegalPerson,
    MeasureKind,
    MessageKind,
    Mesure,
    NaturalPerson,
    Partie,
    Piece,
    Place,
    Prevention,
    Scelle,
    most_serious,
)
from gateway.paths import SCHEMAS_DIR
from gateway.rules import RuleContext, apply_rules
from gateway.settings import SAMPLE_NATINF, Settings
from gateway.xmlparse import parse
from tests.strategies import FormatStrategy, gendarmerie_v1, gendarmerie_v2, police_v1
from tests.strategies.corruptions import CORRUPTIONS
from tests.strategies.spec import (
    AddressSpec,
    FaitsSpec,
    GardeAVueSpec,
    InfractionSpec,
    LegalPersonSpec,
    MeasureSpec,
    NaturalPersonSpec,
    PersonSpec,
    PieceSpec,
    PlaceSpec,
    ProcedureSpec,
    ScelleSpec,
)

FORMATS: dict[str, FormatStrategy] = {
    "gendarmerie/v1": gendarmerie_v1.STRATEGY,
    "gendarmerie/v2": gendarmerie_v2.STRATEGY,
    "police/v1": police_v1.STRATEGY,
}
# Every (format, rule code) a corruption exists for: the rules on facts, for every format, and
# the rules only one format can break (its own corruptions).
CORRUPTIBLE = sorted(
    [(name, code) for name in FORMATS for code in CORRUPTIONS]
    + [(name, code) for name, fmt in FORMATS.items() for code in fmt.corruptions]
)

# Enough examples to cover the optional and repeated parts of a message on every run, few enough
# for CI (a few seconds per format). Exploration is random on purpose locally (CI replays a fixed
# one: see the "ci" profile in conftest.py); a failure
# prints the drawn procedure, the message and a @reproduce_failure blob. One bug is shrunk at a
# time: shrinking a whole message is what a failure costs (a minute or two), once per bug.
VALID = settings(max_examples=60, deadline=None, print_blob=True, report_multiple_bugs=False)
# A corruption test is not shrunk: its failure already names the expected and the actual codes,
# each with its line and path, and one bug of the reader (a crash on a lexical form, say) would
# otherwise cost minutes of shrinking in every one of the twenty-odd corruption tests.
CORRUPT = settings(VALID, max_examples=8, phases=(Phase.explicit, Phase.reuse, Phase.generate))


@pytest.fixture(scope="module")
def checker() -> Checker:
    return build_checker(Settings(natinf_csv=SAMPLE_NATINF))


@pytest.fixture(scope="module")
def court_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS_DIR / "court" / "v1" / "affaire.xsd")))


# ---------------------------------------------------------------- properties


@pytest.mark.parametrize("name", sorted(FORMATS))
@VALID
@given(data=st.data())
def test_generated_message_is_accepted_and_fully_mapped(
    name: str, data: st.DataObject, checker: Checker, court_schema: etree.XMLSchema
) -> None:
    """A valid message of any format is accepted and everything it declares is in the court case."""
    fmt = FORMATS[name]
    spec = data.draw(fmt.procedures(), label="procedure")
    message = data.draw(fmt.render(spec), label="message")
    result = checker.evaluate(message)
    _explain_internal_error(checker, message, result)
    assert result.errors == []
    assert result.http_status == 202 and result.case is not None
    assert_case_carries(spec, result.case, fmt)
    root = "Affaire" if spec.kind == MessageKind.INITIALE else "Complement"
    court_schema.assertValid(etree.fromstring(affaire_xml_bytes(result.case, root)))


@pytest.mark.parametrize(("name", "code"), CORRUPTIBLE)
@CORRUPT
@given(data=st.data())
def test_one_corruption_yields_exactly_its_code(
    name: str, code: str, data: st.DataObject, checker: Checker
) -> None:
    """A valid message broken in one targeted way is refused with that rule's code and no other."""
    fmt = FORMATS[name]
    spec = data.draw(fmt.procedures(), label="procedure")
    if code in fmt.corruptions:
        message = data.draw(fmt.corruptions[code](spec), label="message")
    else:
        corrupted = data.draw(CORRUPTIONS[code](spec), label="corrupted")
        message = data.draw(fmt.render(corrupted), label="message")
    result = checker.evaluate(message)
    _explain_internal_error(checker, message, result)
    assert result.codes == [code], result.errors
    assert result.http_status == 422 and result.case is None


def test_every_rule_code_has_a_corruption() -> None:
    """A new business rule gets its corruption here, so that the property covers it."""
    assert {code for _, code in CORRUPTIBLE} == {c.code for c in CODES.values() if c.layer == Layer.RULE}


def _explain_internal_error(checker: Checker, message: bytes, result: Evaluation) -> None:
    """The pipeline turns a crash into INTERNAL_ERROR (500): rerun its steps to show the exception."""
    if result.http_status != 500:
        return
    root = parse(message, checker.limits)
    fmt = checker.formats.detect(root)
    assert fmt is not None
    context = RuleContext(natinf=checker.natinf, now=checker.clock(), clock_skew=checker.clock_skew)
    reading = fmt.read(root)
    apply_rules(fmt.read_facts(reading), context)
    fmt.map_case(reading)


# ---------------------------------------------------------------- what the court case must carry

_XML_SPACE = re.compile(r"[ \t\r\n]+")
T = TypeVar("T")


def text(value: str) -> str:
    """Text as the court receives it: XML whitespace (space, tab, line breaks) collapsed, nothing else."""
    return _XML_SPACE.sub(" ", value).strip(" ")


def opt_text(value: str | None) -> str | None:
    return None if value is None else text(value)


def address(a: AddressSpec | None) -> Address | None:
    if a is None:
        return None
    return Address(
        lines=[text(line) for line in a.lines],
        postal_code=a.postal_code,
        commune_insee=a.commune_insee,
        commune_name=opt_text(a.commune_name),
        country=a.country,
    )


def place(p: PlaceSpec) -> Place:
    return Place(
        commune_insee=p.commune_insee, commune_name=opt_text(p.commune_name), address=address(p.address)
    )


def natural(p: NaturalPersonSpec) -> NaturalPerson:
    doc = p.identity_document
    return NaturalPerson(
        birth_name=text(p.birth_name),
        usage_name=opt_text(p.usage_name),
        given_names=[text(g) for g in p.given_names],
        aliases=[text(a) for a in p.aliases],
        sex=p.sex,
        birth_date=p.birth_date,
        birth_commune_insee=p.birth_commune_insee,
        birth_country=p.birth_country,
        nationality=p.nationality,
        address=address(p.address),
        profession=opt_text(p.profession),
        identity_document=None
        if doc is None
        else IdentityDocument(kind=doc.kind, number=text(doc.number), issuing_country=doc.issuing_country),
        arrest=None if p.arrest is None else Arrest(at=p.arrest.at, place=place(p.arrest.place)),
    )


def legal(p: LegalPersonSpec) -> LegalPerson:
    return LegalPerson(
        company_name=text(p.company_name),
        legal_form=opt_text(p.legal_form),
        siren=p.siren,
        siret=p.siret,
        head_office=address(p.head_office),
    )


def partie(p: PersonSpec) -> Partie:
    if isinstance(p, NaturalPersonSpec):
        return Partie(ref=p.id, role=p.role, natural=natural(p))
    return Partie(ref=p.id, role=p.role, legal=legal(p))


def infraction(i: InfractionSpec) -> Infraction:
    return Infraction(
        ref=i.id, natinf=i.natinf, qualification=text(i.qualification), nature=i.nature, counts=i.counts or 1
    )


def faits(f: FaitsSpec | None) -> Faits | None:
    if f is None:
        return None
    return Faits(start=f.start, end=f.end, place=place(f.place), summary=text(f.summary))


def preventions(spec: ProcedureSpec) -> list[Prevention]:
    """One line per charge, carrying its offence and the faits' dates and place."""
    the_faits = faits(spec.faits)
    return [
        Prevention(
            partie_ref=c.person_id,
            infraction_ref=i.id,
            natinf=i.natinf,
            qualification=text(i.qualification),
            nature=i.nature,
            participation=c.participation,
            counts=i.counts or 1,
            faits_start=the_faits.start if the_faits else None,
            faits_end=the_faits.end if the_faits else None,
            place=the_faits.place if the_faits else None,
        )
        for i in spec.infractions
        for c in i.charges
    ]


def garde_a_vue(g: GardeAVueSpec) -> Mesure:
    return Mesure(
        partie_ref=g.person_id,
        kind=MeasureKind.GARDE_A_VUE,
        decided_at=g.start,
        place=text(g.place),
        end=g.end,
        extensions=[Extension(at=x.at, authorised_by=text(x.authorised_by)) for x in g.extensions],
        minor=g.minor,
        outcome=g.outcome,
    )


def measure(m: MeasureSpec) -> Mesure:
    return Mesure(
        partie_ref=m.person_id,
        kind=m.kind,
        decided_at=m.decided_at,
        hearing_at=m.hearing_at,
        details=opt_text(m.details),
    )


def scelle(s: ScelleSpec) -> Scelle:
    return Scelle(
        number=s.number,
        nature=text(s.nature),
        vehicle_registration=s.vehicle_registration,
        seized_at=s.seized_at,
        seizure_place=place(s.seizure_place),
        custodian=text(s.custodian),
        infraction_ref=s.infraction_id,
    )


def piece(p: PieceSpec) -> Piece:
    return Piece(
        number=p.number,
        title=text(p.title),
        media_type=p.media_type,
        sha256=p.sha256,
        size=p.size,
        inline=p.content is not None,
        reference=p.reference,
    )


def differences(expected: object, found: object, path: str = "") -> list[str]:
    """Where two court-model values differ, field by field (what pytest's diff hides without -v)."""
    if isinstance(expected, BaseModel) and isinstance(found, BaseModel):
        return differences(expected.model_dump(), found.model_dump(), path)
    if isinstance(expected, dict) and isinstance(found, dict):
        return [
            d
            for key in expected.keys() | found.keys()
            for d in differences(expected.get(key), found.get(key), f"{path}.{key}")
        ]
    if isinstance(expected, list) and isinstance(found, list) and len(expected) == len(found):
        return [
            d
            for i, (e, f) in enumerate(zip(expected, found, strict=True))
            for d in differences(e, f, f"{path}[{i}]")
        ]
    return [] if expected == found else [f"{path or 'value'}: expected {expected!r}, found {found!r}"]


def assert_same_items(what: str, expected: Iterable[T], found: Sequence[T]) -> None:
    """Every expected item is in the case, as many times as declared, and nothing else is."""
    remaining = list(found)
    for item in expected:
        assert item in remaining, f"{what}: {item!r} is missing from the court case, which has {remaining!r}"
        remaining.remove(item)
    assert not remaining, f"{what}: the court case has more than the message declared: {remaining!r}"


def assert_keyed(what: str, expected: dict[object, T], found: dict[object, T], count: int) -> None:
    """Items matched by their key (identifier or number), then compared field by field."""
    assert count == len(expected), f"{what}: {count} in the court case, {len(expected)} declared"
    assert found.keys() == expected.keys(), (
        f"{what}: declared {sorted(map(repr, expected))}, found {sorted(map(repr, found))}"
    )
    for key, item in expected.items():
        assert found[key] == item, f"{what} {key!r}: " + "; ".join(differences(item, found[key]))


def assert_case_carries(spec: ProcedureSpec, case: Affaire, fmt: FormatStrategy) -> None:
    """The court case says what the message said: header, faits, and every listed item, matched."""
    assert case.kind == spec.kind
    assert (case.source.format, case.source.agency) == (fmt.name, fmt.agency)
    assert case.source.message_id == spec.message_id and case.source.sent_at == spec.sent_at
    assert case.procedure_numbers == [spec.procedure_number]
    assert (case.tribunal_code, case.tribunal_name) == (spec.tribunal_code, text(spec.tribunal_name))
    assert (case.cadre, case.saisine_at) == (spec.cadre, spec.saisine_at)
    assert case.originator.agency == fmt.agency and case.originator.unit_code == spec.unit_code
    assert case.originator.officer_name == text(spec.officer.name)
    assert case.faits == faits(spec.faits), "; ".join(differences(faits(spec.faits), case.faits, "faits"))
    assert case.nature == most_serious([i.nature for i in spec.infractions])
    assert case.has_scelles == bool(spec.scelles)
    assert case.no_mis_en_cause_reason == spec.no_mis_en_cause_reason
    assert case.numero_parquet is None

    assert_keyed(
        "partie", {p.id: partie(p) for p in spec.persons}, {p.ref: p for p in case.parties}, len(case.parties)
    )
    assert_keyed(
        "infraction",
        {i.id: infraction(i) for i in spec.infractions},
        {i.ref: i for i in case.infractions},
        len(case.infractions),
    )
    assert_keyed(
        "scellé",
        {s.number: scelle(s) for s in spec.scelles},
        {s.number: s for s in case.scelles},
        len(case.scelles),
    )
    assert_keyed(
        "pièce",
        {p.number: piece(p) for p in spec.pieces},
        {p.number: p for p in case.pieces},
        len(case.pieces),
    )
    assert_same_items("prévention", preventions(spec), case.preventions)
    expected_mesures = [garde_a_vue(g) for g in spec.gardes_a_vue] + [measure(m) for m in spec.measures]
    assert_same_items("mesure", expected_mesures, case.mesures)
    event(f"{spec.kind}: {len(spec.persons)} persons, {len(spec.infractions)} offences")
