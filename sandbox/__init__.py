"""Sandbox components that ship with Saisine: sample reference data, the reference court registry."""
