"""Gendarmerie units: their message formats and how they reach the gateway (REST and SOAP)."""
