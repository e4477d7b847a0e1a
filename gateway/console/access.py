"""Who is using the console: the login page, the session cookie, CSRF on every form, roles.

With operator authentication on (the default), every page but the login page needs a session
(or an operator token); a page that changes something also needs the integrator role, and
every POST carries the session's CSRF token. The cookie is ``HttpOnly``, ``SameSite=Strict``,
``Secure`` when the console is reached over HTTPS, and scoped to ``/console``; it holds a random
id whose hash alone the database keeps (gateway.auth.credentials). With operator
authentication off (local tests only), pages are open and forms ask for the operator's name.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gateway.auth.credentials import Operator, Role
from gateway.composition import Container
from gateway.console.render import Renderer, same_origin
from gateway.http.auth import SESSION_COOKIE, AuthFailure, gatekeeper

LOGIN = "/console/login"
_OPEN = (LOGIN, "/console/static/")
_MAX_LOGIN_FORM = 4096


@dataclass(frozen=True, slots=True)
class Visitor:
    """The operator behind a console request (None: authentication off) and the CSRF token
    its forms carry."""

    operator: Operator | None
    csrf: str | None

    @property
    def name(self) -> str | None:
        return self.operator.name if self.operator else None


class ConsoleRefused(Exception):
    """Shown as a console page (not the API's JSON): a redirect to log in, or an error page."""

    def __init__(self, status: int, title: str, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.status, self.title, self.message, self.location = status, title, message, location


def visitor(request: Request) -> Visitor:
    found: Visitor = getattr(request.state, "visitor", Visitor(None, None))
    return found


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: a console path only (no open redirect)."""
    if target and target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console"


def _authenticate(request: Request, needed: str) -> Visitor:
    keeper = gatekeeper(request)
    if not keeper.operators_checked:
        return Visitor(None, None)
    cookie = request.cookies.get(SESSION_COOKIE)
    session = keeper.credentials.session(cookie) if cookie else None
    if session is not None:
        if not session.operator.may(needed):
            raise ConsoleRefused(
                403, "Not allowed", f"This needs the {needed} role; you are {session.operator.role}."
            )
        return Visitor(session.operator, session.csrf)
    try:
        operator = keeper.operator(request, needed)  # an operator token, for tools
    except AuthFailure as failure:
        if failure.status == 401:
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise ConsoleRefused(303, "Log in", failure.message, f"{LOGIN}?next={quote(back)}") from None
        raise ConsoleRefused(failure.status, "Not allowed", failure.message) from None
    return Visitor(operator, None)


async def guard(request: Request) -> None:
    """The console router's dependency: who is this, may they see this page, and for a POST,
    does it come from a console form of their session."""
    path = request.url.path
    if path == LOGIN or path.startswith(_OPEN[1]):
        return
    found = await run_in_threadpool(_authenticate, request, Role.VIEWER)
    request.state.visitor = found
    if request.method == "POST":
        if not same_origin(request):
            raise ConsoleRefused(403, "Refused", "This form must be sent from the console.")
        if found.csrf is not None:
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
            if not hmac.compare_digest(form.get("csrf", ""), found.csrf):
                raise ConsoleRefused(
                    403,
                    "CSRF_INVALID",
                    "The form is out of date or did not come from the console: reload it.",
                )


def require(request: Request, needed: str) -> None:
    """Refuse the page unless the visitor has at least the role ``needed``."""
    operator = visitor(request).operator
    if operator is not None and not operator.may(needed):
        raise ConsoleRefused(403, "Not allowed", f"This needs the {needed} role; you are {operator.role}.")


def install(app: FastAPI, router: APIRouter, container: Container, renderer: Renderer) -> None:
    """The login and logout pages, and how refusals are shown."""
    credentials = container.credentials

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleRefused)
        if exc.location:
            return RedirectResponse(exc.location, status_code=303)
        return renderer.error(request, exc.status, exc.title, exc.message)

    app.add_exception_handler(ConsoleRefused, refused)

    @router.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request) -> HTMLResponse:
        target = _safe_next(request.query_params.get("next"))
        return renderer.html("login.html", nav="", next=target, problem=None, name="")

    @router.post("/login", response_model=None)
    async def login(request: Request) -> Response:
        if not same_origin(request):
            return renderer.error(request, 403, "Refused", "Log in from the console's own page.")
        body = await request.body()
        form = dict(parse_qsl(body[:_MAX_LOGIN_FORM].decode("utf-8", "replace")))
        name, password = form.get("name", "").strip(), form.get("password", "")
        target = _safe_next(form.get("next"))
        made = await run_in_threadpool(credentials.login, name, password) if name and password else None
        if made is None:
            return renderer.html(
                "login.html", 401, nav="", next=target, name=name, problem="Unknown name or wrong password."
            )
        cookie, _session = made
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=int(credentials.session_ttl.total_seconds()) * 48,  # the server decides expiry
            path="/console",
            secure=urlsplit(str(request.url)).scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    @router.post("/logout", response_model=None)
    async def logout(request: Request) -> Response:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            await run_in_threadpool(credentials.logout, cookie)
        response = RedirectResponse(LOGIN, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/console")
        return response
