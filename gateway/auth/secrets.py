"""Tokens and passwords: made at random, stored only as hashes.

A token carries 256 random bits: one SHA-256 of it is enough to store it (no dictionary can
guess it, so a slow hash would only slow every request). A password is chosen by a person:
it is stored with scrypt (the standard library's), salted, at a cost that makes each guess
expensive.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def new_token(prefix: str) -> str:
    """A new secret token, e.g. ``ssn_snd_…``: the prefix tells a reader (and secret scanners)
    what it is."""
    return f"ssn_{prefix}_{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_hint(token: str) -> str:
    """What may be shown of a token afterwards: enough to tell two apart, nothing to use."""
    return token[:12] + "…"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    encode = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


def check_password(password: str, stored: str | None) -> bool:
    """Constant time in the password; False for a malformed or missing hash."""
    if not stored:
        hash_password(password)  # the same cost whether the account exists or not
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        found = hashlib.scrypt(
            password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, expected)
