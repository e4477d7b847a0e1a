"""The XML intake endpoints answered straight from the ASGI call, in front of FastAPI's machinery.

FastAPI still declares these routes (OpenAPI, ``/docs``), and a request to them is handled by the
same endpoint function either way. Answered here, a POST skips what FastAPI adds around an
endpoint that takes the bare :class:`~starlette.requests.Request` and returns a response
itself: the match against every route in turn, the dependency solving, the exception and
exit-stack middlewares: 40 % of the HTTP layer's work in process (0.63 → 0.39 M instructions a
request, about 1.6 % of a typical message's whole cost).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


class DirectRoutes:
    """ASGI middleware: ``POST`` to one of ``routes`` goes to its endpoint; anything else to ``app``.

    It sits inside Starlette's ``ServerErrorMiddleware`` (an exception still becomes a 500)
    and matches the path exactly: a request with a ``root_path``, another method or another
    path takes the ordinary way (405, 404, redirects and all).
    """

    def __init__(self, app: ASGIApp, routes: Mapping[str, Endpoint]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            endpoint = self.routes.get(scope["path"])
            if endpoint is not None:
                response = await endpoint(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
