"""The gendarmerie's message formats, as the registry of formats sees them."""

from __future__ import annotations

from gateway.formats import SenderFormat, SoapService
from gateway.paths import SCHEMAS_DIR
from mappings import gendarmerie_v1, gendarmerie_v2

V1 = SenderFormat(
    agency="gendarmerie",
    version="1",
    namespace=gendarmerie_v1.NAMESPACE,
    root="Procedure",
    schema_path=SCHEMAS_DIR / "gendarmerie" / "v1" / "procedure.xsd",
    mapping_version=gendarmerie_v1.MAPPING_VERSION,
    read_header=gendarmerie_v1.read_header,
    read_facts=gendarmerie_v1.read_facts,
    map_case=gendarmerie_v1.map_case,
    transports=("rest", "soap"),
    read=gendarmerie_v1.read,
    header_of=gendarmerie_v1.header_of,
)

# Accepted alongside V1 on the same REST and SOAP endpoints: the namespace chooses.
V2 = SenderFormat(
    agency="gendarmerie",
    version="2",
    namespace=gendarmerie_v2.NAMESPACE,
    root="Procedure",
    schema_path=SCHEMAS_DIR / "gendarmerie" / "v2" / "procedure.xsd",
    mapping_version=gendarmerie_v2.MAPPING_VERSION,
    read_header=gendarmerie_v2.read_header,
    read_facts=gendarmerie_v2.read_facts,
    map_case=gendarmerie_v2.map_case,
    transports=("rest", "soap"),
    read=gendarmerie_v2.read,
    header_of=gendarmerie_v2.header_of,
)

SOAP = SoapService(
    agency="gendarmerie",
    wsdl_path=SCHEMAS_DIR / "gendarmerie" / "v1" / "intake.wsdl",
    namespace="urn:saisine:gendarmerie:intake:v1",
)
