"""Gendarmerie procedure messages, v2 (``schemas/gendarmerie/v2/procedure.xsd``), for property tests.

v2 is v1 with three changes (``docs/mappings/gendarmerie-v2.md``), and so is this writer: the
``Identification/Service`` and ``Officer/Nigend`` names, the new required ``AvisParquet`` block
(not carried by the court case: drawn here, dated between the saisine and the sending), and the
role ``CIVILEMENT_RESPONSABLE``. Every lexical variation of v1's writer applies.
"""

from __future__ import annotations

from hypothesis import strategies as st
from lxml import etree

from gateway.model import CourtRole
from tests.strategies import FormatStrategy
from tests.strategies.gendarmerie_v1 import Writer as V1Writer
from tests.strategies.procedure import SOURCE_ROLES, procedures
from tests.strategies.spec import ProcedureSpec
from tests.strategies.values import LATEST, moment, texts
from tests.strategies.xmlwriting import BOOL

NAMESPACE = "urn:saisine:gendarmerie:procedure:v2"
ROLES = (*SOURCE_ROLES, CourtRole.CIVILEMENT_RESPONSABLE)

_MODES = st.sampled_from(("TELEPHONE", "MAIL", "PLATEFORME"))
_MAGISTRATES = st.sampled_from(
    ("Mme Fabre, substitute du procureur", "M. N'Diaye, procureur adjoint")
) | texts(120)


class Writer(V1Writer):
    namespace = NAMESPACE
    versions = ("2.0", "2.1")

    def identification(self, root: etree._Element, spec: ProcedureSpec) -> None:
        ident = self.sub(root, "Identification")
        self.sub(ident, "ProcedureNumber", self.token(spec.procedure_number))
        service = self.sub(ident, "Service")
        self.sub(service, "Code", self.token(spec.unit_code))
        self.sub(service, "Name", spec.unit_name)
        officer = self.sub(ident, "Officer")
        self.sub(officer, "Quality", self.token(spec.officer.quality))
        self.opt(officer, "Rank", spec.officer.rank)
        self.sub(officer, "Name", spec.officer.name)
        self.sub(officer, "Nigend", self.token(spec.officer.matricule))

    def after_cadre(self, root: etree._Element, spec: ProcedureSpec) -> None:
        avis = self.sub(root, "AvisParquet")
        tz = spec.saisine_at.tzinfo
        assert tz is not None
        # between the saisine and the sending, never in the future (a corruption may move either)
        informed = moment(self.draw, spec.saisine_at, min(spec.sent_at, LATEST), tz)
        self.sub(avis, "InformedAt", self.datetime(informed))
        self.sub(avis, "Mode", self.token(self.draw(_MODES)))
        self.sub(avis, "Magistrate", self.draw(_MAGISTRATES))
        if self.draw(BOOL):
            self.sub(avis, "InformedBy", self.draw(texts(120)))


@st.composite
def render(draw: st.DrawFn, spec: ProcedureSpec) -> bytes:
    """One gendarmerie v2 message carrying ``spec``, in one of the lexical forms the schema allows."""
    writer = Writer(draw)
    return writer.serialise(writer.procedure(spec))


STRATEGY = FormatStrategy(
    name="gendarmerie/v2",
    agency="gendarmerie",
    procedures=lambda: procedures(roles=ROLES),
    render=render,
)
