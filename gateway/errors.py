"""Errors of Saisine, as data, and what a caller should do about each.

::

    SaisineError
     ├── Rejected            the sender must fix the message; never retried
     │    ├── RefusedInput   not read as XML at all (size, encoding, hardened parser) -> 400/413
     │    └── InvalidMessage XML, but not a valid message (schema, business rules)   -> 422
     ├── Retriable           the registry or the network is unwell: try again later
     └── Fatal               the registry refused the case: goes to replay

Every error reaching a sender or an operator is a list of :class:`ErrorDetail`
(code, message, line, column, path): the same structure is the JSON body of
a REST answer, the detail of a SOAP Fault and the console's error list.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One problem found in a message, located where the sender can find it."""

    code: str
    message: str
    line: int | None = None
    column: int | None = None
    path: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorDetail:
        return cls(
            code=str(data["code"]),
            message=str(data["message"]),
            line=data.get("line"),
            column=data.get("column"),
            path=data.get("path"),
        )


class SaisineError(Exception):
    """Root of the errors Saisine raises on purpose."""


class Rejected(SaisineError):
    """The message cannot be used; the sender must fix it and send it again."""

    def __init__(self, errors: list[ErrorDetail]) -> None:
        super().__init__("; ".join(f"{e.code}: {e.message}" for e in errors[:5]))
        self.errors = errors


class RefusedInput(Rejected):
    """Refused before or while parsing: too large, bad encoding, forbidden XML construct."""


class TooLarge(RefusedInput):
    """The body is larger than the configured cap (HTTP 413)."""


class InvalidMessage(Rejected):
    """Well-formed XML that fails the schema or a business rule (HTTP 422)."""


class Retriable(SaisineError):
    """A transient failure: the same call may succeed later."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Fatal(SaisineError):
    """The registry refused the case: retrying the same call cannot help."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
