"""Optional encryption of the stored raw payloads (``SAISINE_PAYLOAD_KEYS``).

Fernet (AES-128-CBC with HMAC-SHA256, from the ``cryptography`` package): authenticated, so a
payload altered in the database fails to open instead of reading as other bytes. Several keys
may be configured: the first seals, all open, which is how a key is rotated (add the new key
first, re-seal or let the purge retire the old payloads, then drop the old key). A payload
stored before encryption was turned on has no prefix and opens as it is.

Keys come from the environment (or a secrets manager that fills it), never from the database
they protect; generate one with ``saisine keys new``.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = b"saisine-fernet:"


class PayloadUnreadable(Exception):
    """A sealed payload that no configured key opens (wrong keys, or altered bytes)."""


class PayloadCipher:
    """Seals and opens raw payloads; with no key, both are the identity."""

    def __init__(self, keys: Sequence[str] = ()) -> None:
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys]) if keys else None

    @property
    def enabled(self) -> bool:
        return self._fernet is not None

    def seal(self, raw: bytes | None) -> bytes | None:
        if raw is None or self._fernet is None:
            return raw
        return PREFIX + self._fernet.encrypt(raw)

    def open(self, stored: bytes | None) -> bytes | None:
        if stored is None or not stored.startswith(PREFIX):
            return stored
        if self._fernet is None:
            raise PayloadUnreadable(
                "The payload is encrypted and no key is configured (SAISINE_PAYLOAD_KEYS)."
            )
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :])
        except InvalidToken as exc:
            raise PayloadUnreadable("No configured key opens this payload, or it was altered.") from exc


def new_key() -> str:
    return Fernet.generate_key().decode()
