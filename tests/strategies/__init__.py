"""Hypothesis strategies for property tests: procedures, and each sender format's messages.

- ``spec``: a procedure's facts in the court's terms (``ProcedureSpec``), whatever the format;
- ``values`` and ``procedure``: ``procedures()``, which draws coherent ones (the rules of the
  schemas and of ``gateway/rules.py`` respected);
- ``corruptions``: one targeted corruption per business-rule code, on the facts;
- ``xmlwriting``: the lexical forms every format's writer may use for the same values;
- one module per sender format and version (``gendarmerie_v1``, ``gendarmerie_v2``,
  ``police_v1``) that renders a ``ProcedureSpec`` as that format's XML and exposes a
  :class:`FormatStrategy` (with the corruptions only that format can express).

Adding a format to the property tests is one module here and one line in
``tests/test_properties.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from tests.strategies.procedure import ProcedureSpec


@dataclass(frozen=True)
class FormatStrategy:
    """What the property tests need from one sender format and version."""

    name: str  # as the format registry names it, e.g. "gendarmerie/v1"
    agency: str  # originator.agency and source.agency of the mapped case
    procedures: Callable[[], SearchStrategy[ProcedureSpec]]  # the procedures this format can carry
    render: Callable[[ProcedureSpec], SearchStrategy[bytes]]  # one message of this format for them
    # rule code -> a message of this format breaking that rule only, for the rules on what only
    # this format can say wrong (a local time skipped by the clocks, say)
    corruptions: Mapping[str, Callable[[ProcedureSpec], SearchStrategy[bytes]]] = field(default_factory=dict)
