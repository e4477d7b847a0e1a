"""Every sender format Saisine accepts: adding one is one line here."""

from __future__ import annotations

from adapters.gendarmerie import formats as gendarmerie
from adapters.police import formats as police
from gateway.formats import SenderFormat, SoapService

FORMATS: tuple[SenderFormat, ...] = (gendarmerie.V1, gendarmerie.V2, police.V1)

SOAP_SERVICES: tuple[SoapService, ...] = (gendarmerie.SOAP,)
