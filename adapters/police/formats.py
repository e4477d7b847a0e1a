"""The police's message formats, as the registry of formats sees them.

Police services send over plain HTTP only (``POST /api/v1/police/procedures``):
no SOAP service is declared for them.
"""

from __future__ import annotations

from gateway.formats import SenderFormat
from gateway.paths import SCHEMAS_DIR
from mappings import police_v1

V1 = SenderFormat(
    agency="police",
    version="1",
    namespace=police_v1.NAMESPACE,
    root="procedurePolice",
    schema_path=SCHEMAS_DIR / "police" / "v1" / "procedure.xsd",
    mapping_version=police_v1.MAPPING_VERSION,
    read_header=police_v1.read_header,
    read_facts=police_v1.read_facts,
    map_case=police_v1.map_case,
    transports=("rest",),
    read=police_v1.read,
)
