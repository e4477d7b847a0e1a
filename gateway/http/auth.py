"""Who is calling: the sender of a message (token or certificate identity from a trusted proxy)
and the operator behind an API call or a console page (token or session cookie).

Each refusal has its own code (docs/error-codes.md); a refused sender gets 401 (who are you?),
403 (you may not) or 429 (not so fast, with Retry-After).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.auth.credentials import Credentials, Operator, Role, Sender
from gateway.auth.limits import RateLimiter
from gateway.auth.proxy import TrustedProxies
from gateway.auth.secrets import token_hash
from gateway.settings import Settings

SESSION_COOKIE = "saisine_session"
log = structlog.get_logger("saisine.access")


@dataclass
class AuthFailure(Exception):
    """A request refused before its body is read."""

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class Gatekeeper:
    """The checks every entry point makes, configured once from the settings."""

    def __init__(self, settings: Settings, credentials: Credentials) -> None:
        self.credentials = credentials
        self.methods = set() if settings.sender_auth == "none" else set(settings.sender_auth.split(","))
        self.certificate_header = settings.certificate_header.lower()
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.limiter = RateLimiter(settings.sender_rate_per_second, settings.sender_burst)
        self.operators_checked = settings.operator_auth
        # A sender's credential, looked up once per few seconds rather than once per message: a
        # revocation takes effect within ``credential_cache_seconds`` on every instance.
        self._cache: dict[tuple[str, str], tuple[float, Sender | None]] = {}
        self._cache_seconds = settings.credential_cache_seconds
        self._cache_lock = threading.Lock()

    def _lookup(self, kind: str, value: str, find: Callable[[str], Sender | None]) -> Sender | None:
        key, now = (kind, token_hash(value)), time.monotonic()
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        found = find(value)
        with self._cache_lock:
            if len(self._cache) > 10_000:  # guessed tokens must not grow it without end
                self._cache.clear()
            self._cache[key] = (now, found)
        return found

    # ------------------------------------------------------------ senders

    def answers_at_once(self, request: Request) -> bool:
        """Whether :meth:`sender` can answer without the database (authentication off, or the
        credential fresh in the cache): the caller may then skip a thread hop."""
        if not self.methods:
            return True
        subject = request.headers.get(self.certificate_header)
        token = _bearer(request)
        if subject is not None and "certificate" in self.methods:
            key = ("certificate", token_hash(subject))
        elif token is not None and "token" in self.methods:
            key = ("token", token_hash(token))
        else:
            return True  # refused without a look-up
        with self._cache_lock:
            cached = self._cache.get(key)
        return cached is not None and time.monotonic() - cached[0] < self._cache_seconds

    async def sender_for(self, request: Request, agency: str | None) -> Sender | None:
        """:meth:`sender`, on the event loop when it needs no look-up, else on a worker thread."""
        if self.answers_at_once(request):
            return self.sender(request, agency)
        return await run_in_threadpool(self.sender, request, agency)

    def sender(self, request: Request, agency: str | None) -> Sender | None:
        """The sender calling for ``agency`` (any agency: None); None when sender
        authentication is off. A refusal is logged (code and client address, nothing else)."""
        try:
            return self._sender(request, agency)
        except AuthFailure as failure:
            _log_refusal("sender_refused", request, failure)
            raise

    def _sender(self, request: Request, agency: str | None) -> Sender | None:
        subject = request.headers.get(self.certificate_header)
        if subject is not None and not self.proxies.trusts(request.client.host if request.client else None):
            # the header is set by our TLS proxy only: from elsewhere it is a forgery attempt
            raise AuthFailure(
                403,
                "IDENTITY_HEADER_UNTRUSTED",
                f"The {self.certificate_header} header is accepted only from the gateway's TLS proxy.",
            )
        if not self.methods:
            return None
        found: Sender | None = None
        token = _bearer(request)
        if subject is not None and "certificate" in self.methods:
            found = self._lookup("certificate", subject, self.credentials.sender_by_certificate)
            if found is None:
                raise AuthFailure(401, "AUTH_INVALID", "No active sender has this client certificate.")
        elif token is not None and "token" in self.methods:
            found = self._lookup("token", token, self.credentials.sender_by_token)
            if found is None:
                raise AuthFailure(
                    401,
                    "AUTH_INVALID",
                    "The token is unknown, expired or revoked.",
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
        if found is None:
            raise AuthFailure(
                401,
                "AUTH_REQUIRED",
                "Send your sender token (Authorization: Bearer ...)"
                + (" or a client certificate" if "certificate" in self.methods else "")
                + ".",
                {"WWW-Authenticate": "Bearer"},
            )
        if agency is not None and found.agency != agency:
            raise AuthFailure(403, "AGENCY_NOT_ALLOWED", f"This credential sends for the {found.agency}.")
        wait = self.limiter.take(found.id)
        if wait is not None:
            raise AuthFailure(
                429,
                "RATE_LIMITED",
                f"Too many messages from this sender; try again in {RateLimiter.retry_after(wait)} s.",
                {"Retry-After": RateLimiter.retry_after(wait)},
            )
        return found

    # ------------------------------------------------------------ operators

    def operator(self, request: Request, needed: str = Role.VIEWER) -> Operator | None:
        """The operator calling, with at least the role ``needed`` (None when operator
        authentication is off). A refusal is logged (code and client address, nothing else)."""
        try:
            return self._operator(request, needed)
        except AuthFailure as failure:
            _log_refusal("operator_refused", request, failure)
            raise

    def _operator(self, request: Request, needed: str = Role.VIEWER) -> Operator | None:
        if not self.operators_checked:
            return None
        token = _bearer(request)
        operator: Operator | None = None
        if token is not None:
            operator = self.credentials.operator_by_token(token)
            if operator is None:
                raise AuthFailure(
                    401,
                    "AUTH_INVALID",
                    "The token is unknown, expired or revoked.",
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
        else:
            cookie = request.cookies.get(SESSION_COOKIE)
            session = self.credentials.session(cookie) if cookie else None
            operator = session.operator if session else None
        if operator is None:
            raise AuthFailure(
                401,
                "OPERATOR_AUTH_REQUIRED",
                "Operators sign in to the console, or send their API token (Authorization: Bearer ...).",
                {"WWW-Authenticate": "Bearer"},
            )
        if not operator.may(needed):
            raise AuthFailure(
                403, "ROLE_FORBIDDEN", f"This needs the {needed} role; {operator.name} is {operator.role}."
            )
        return operator


def _log_refusal(event: str, request: Request, failure: AuthFailure) -> None:
    client = request.client.host if request.client else None
    log.info(event, code=failure.code, http_status=failure.status, client=client, path=request.url.path)


def gatekeeper(request: Request) -> Gatekeeper:
    keeper: Gatekeeper = request.app.state.gatekeeper
    return keeper


def operator_with(needed: str) -> Callable[[Request], Operator | None]:
    """A FastAPI dependency: the operator calling, with at least the role ``needed``."""

    def dependency(request: Request) -> Operator | None:
        return gatekeeper(request).operator(request, needed)

    return dependency


def actor(request: Request, operator: Operator | None) -> str:
    """Who to name in a record: the operator, or (authentication off) where the call came from."""
    if operator is not None:
        return operator.name
    return f"unauthenticated:{request.client.host if request.client else 'unknown'}"


def failure_response(failure: AuthFailure) -> JSONResponse:
    """The API's error shape, with the failure's headers (WWW-Authenticate, Retry-After)."""
    error = {"code": failure.code, "message": failure.message, "line": None, "column": None, "path": None}
    return JSONResponse(
        {"status": "refused", "errors": [error]}, status_code=failure.status, headers=failure.headers
    )
