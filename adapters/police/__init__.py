"""Police services: format and transport arrive with issue "Police procedures, schema versions,
and tools for integrators". Nothing is registered for the police yet, so the gateway answers
their endpoint with 404 rather than pretending to accept their messages."""
