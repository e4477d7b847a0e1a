"""One targeted corruption per business-rule code: a valid procedure made to break exactly one rule.

Each corruption takes a valid :class:`ProcedureSpec` and draws a copy that breaks one rule and no
other: it picks its target among what the procedure has (a charge, a garde à vue, a SIRET...) and
adds a minimal valid target when there is none, so that every generated procedure can be
corrupted in every way. Corruptions act on the facts, so they serve every sender format; the
values stay schema-valid (the schema layer would otherwise answer first).
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from tests.strategies.corruptions.codes import (
    insee_invalid,
    natinf_nature_mismatch,
    natinf_not_in_force,
    natinf_unknown,
    piece_digest_mismatch,
    piece_size_mismatch,
    siren_invalid,
    siret_invalid,
    siret_siren_mismatch,
)
from tests.strategies.corruptions.dates import (
    date_in_future,
    faits_after_saisine,
    faits_end_before_start,
    gav_end_before_start,
    gav_extension_outside,
    saisine_after_sent,
)
from tests.strategies.corruptions.references import (
    charge_not_mis_en_cause,
    duplicate_id,
    duplicate_number,
    gav_person_invalid,
    infraction_missing,
    infraction_unresolved,
    mis_en_cause_missing,
    person_unresolved,
)
from tests.strategies.spec import ProcedureSpec

Corruption = Callable[[ProcedureSpec], st.SearchStrategy[ProcedureSpec]]

CORRUPTIONS: dict[str, Corruption] = {
    "NATINF_UNKNOWN": natinf_unknown,
    "NATINF_NOT_IN_FORCE": natinf_not_in_force,
    "NATINF_NATURE_MISMATCH": natinf_nature_mismatch,
    "INSEE_COMMUNE_INVALID": insee_invalid,
    "DATE_FAITS_END_BEFORE_START": faits_end_before_start,
    "DATE_FAITS_AFTER_SAISINE": faits_after_saisine,
    "DATE_SAISINE_AFTER_SENT": saisine_after_sent,
    "DATE_IN_FUTURE": date_in_future,
    "DATE_GAV_END_BEFORE_START": gav_end_before_start,
    "DATE_GAV_EXTENSION_OUTSIDE": gav_extension_outside,
    "REF_PERSON_UNRESOLVED": person_unresolved,
    "REF_INFRACTION_UNRESOLVED": infraction_unresolved,
    "REF_DUPLICATE_ID": duplicate_id,
    "DUPLICATE_NUMBER": duplicate_number,
    "CHARGE_NOT_MIS_EN_CAUSE": charge_not_mis_en_cause,
    "GAV_PERSON_INVALID": gav_person_invalid,
    "INFRACTION_MISSING": infraction_missing,
    "MIS_EN_CAUSE_MISSING": mis_en_cause_missing,
    "SIREN_CHECKSUM_INVALID": siren_invalid,
    "SIRET_CHECKSUM_INVALID": siret_invalid,
    "SIRET_SIREN_MISMATCH": siret_siren_mismatch,
    "PIECE_DIGEST_MISMATCH": piece_digest_mismatch,
    "PIECE_SIZE_MISMATCH": piece_size_mismatch,
}
