"""The reference court registry: registry.wsdl over SOAP 1.1, for the demo, integrators and tests.

Start it with ``saisine sandbox registry``; in tests, use
:class:`sandbox.registry.testing.RegistryServer`.
"""

from __future__ import annotations

from sandbox.registry.app import RegistrySettings, create_registry_app
from sandbox.registry.faults import FaultMode, FaultPlan

__all__ = ["FaultMode", "FaultPlan", "RegistrySettings", "create_registry_app"]
