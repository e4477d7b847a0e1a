"""Rendering console pages: one Jinja2 environment (autoescape on), the layout's context, the
error pages, and the two static files (served from the package: no build step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from gateway.console.views import environment

STATIC = Path(__file__).parent / "static"
_MEDIA = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_HEADERS = {
    # the console never needs another origin, nor framing
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages carry personal data
}


class Renderer:
    def __init__(self) -> None:
        self.env = environment()
        self.static = {
            p.name: (p.read_bytes(), _MEDIA[p.suffix]) for p in STATIC.iterdir() if p.suffix in _MEDIA
        }

    def html(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        body = self.env.get_template(template).render(**context)
        return HTMLResponse(body, status_code=status_code, headers=_HEADERS)

    def page(
        self, request: Request, template: str, nav: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """A page of the layout, which names who is signed in and carries their CSRF token."""
        who = getattr(request.state, "visitor", None)
        return self.html(template, status_code, nav=nav, who=who, **context)

    def error(self, request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
        return self.page(request, "error.html", "", status_code, title=title, message=message)

    def not_found(self, request: Request, message: str) -> HTMLResponse:
        return self.error(request, 404, "Not found", message)

    def static_file(self, name: str) -> Response:
        found = self.static.get(name)
        if found is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        body, media = found
        return Response(body, media_type=media, headers={"Cache-Control": "max-age=300"})


def same_origin(request: Request) -> bool:
    """A state-changing form must come from the console's own pages: a browser sends Origin
    (or at least Referer) with a POST; when it names another host the request is refused."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source is None  # no header: not a browser's cross-site form
    return urlsplit(source).netloc == request.headers.get("host", "")
