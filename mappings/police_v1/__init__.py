"""Police procedure message v1 -> court case (affaire). Pure functions.

The police format differs from the gendarmerie's in shape and habits (see
``docs/mappings/police-v1.md``): local date-times without offset, its own code
lists, offences listing the persons charged in attributes, names as written.
This package turns all of that into the one court model; nothing is dropped
silently. ``codes`` holds the vocabularies, ``reading`` the namespace, header
and local date-times, ``facts`` what the business rules check, ``case`` the
mapping. Mapping version: ``MAPPING_VERSION``, recorded on every case.
"""

from __future__ import annotations

from mappings.police_v1.case import MAPPING_VERSION, map_case
from mappings.police_v1.facts import read_facts
from mappings.police_v1.reading import NAMESPACE, read, read_header

__all__ = ["MAPPING_VERSION", "NAMESPACE", "map_case", "read", "read_facts", "read_header"]
