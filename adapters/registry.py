"""Every sender format Saisine accepts: adding one is one line here."""

from __future__ import annotations

from adapters.gendarmerie import formats as gendarmerie
from gateway.formats import SenderFormat, SoapService

FORMATS: tuple[SenderFormat, ...] = (gendarmerie.V1,)

SOAP_SERVICES: tuple[SoapService, ...] = (gendarmerie.SOAP,)
