"""Who may send and who may see (issue 6): sender credentials (tokens, certificate identities
from a trusted proxy), operators with roles, console sessions, per-sender rate limits."""
