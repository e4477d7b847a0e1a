"""The police's own code lists (schemas/police/v1/procedure.xsd) and the court's codes
(gateway/model.py) each maps to: the vocabularies table of docs/mappings/police-v1.md."""

from __future__ import annotations

from gateway.model import Cadre, CourtRole, MeasureKind, MessageKind, Nature, Participation

KINDS = {"INITIAL": MessageKind.INITIALE, "COMPLEMENT": MessageKind.COMPLEMENT}
CADRES = {"PREL": Cadre.ENQUETE_PRELIMINAIRE, "FLAG": Cadre.FLAGRANCE, "CR": Cadre.COMMISSION_ROGATOIRE}
ROLES = {
    "MEC": CourtRole.MIS_EN_CAUSE,
    "VIC": CourtRole.VICTIME,
    "TEM": CourtRole.TEMOIN,
    "PLA": CourtRole.PLAIGNANT,
    "CIV": CourtRole.CIVILEMENT_RESPONSABLE,
}
NATURES = {
    "CRI": Nature.CRIME,
    "DEL": Nature.DELIT,
    "C1": Nature.CONTRAVENTION_1,
    "C2": Nature.CONTRAVENTION_2,
    "C3": Nature.CONTRAVENTION_3,
    "C4": Nature.CONTRAVENTION_4,
    "C5": Nature.CONTRAVENTION_5,
}
PARTICIPATIONS = (
    ("auteurs", Participation.AUTEUR),
    ("coauteurs", Participation.COAUTEUR),
    ("complices", Participation.COMPLICE),
)
MEASURES = {
    "CJ": MeasureKind.CONTROLE_JUDICIAIRE,
    "COPJ": MeasureKind.CONVOCATION_OPJ,
    "DEF": MeasureKind.DEFEREMENT,
}
OUTCOMES = {"REMISE_EN_LIBERTE": "libere", "DEFEREMENT": "defere"}
NO_MIS_EN_CAUSE = {
    "AUTEUR_NON_IDENTIFIE": "auteur_inconnu",
    "AUTEUR_RECHERCHE": "recherches_en_cours",
    "AUTEUR_DECEDE": "deces",
}
SEXES = {"1": "M", "2": "F"}
DOCUMENTS = {
    "CNI": "carte_identite",
    "PASSEPORT": "passeport",
    "TITRE_SEJOUR": "titre_sejour",
    "PERMIS": "permis_conduire",
    "AUTRE": "autre",
}
SUMMER = {"ETE": True, "HIVER": False}
