"""Police services: their message formats and how they reach the gateway (REST only)."""
