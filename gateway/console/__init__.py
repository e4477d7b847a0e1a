"""The operator console, served by the gateway under ``/console``: server-rendered pages
(Jinja2, autoescaped), a stylesheet and one small script, no build step.

Pages: the dashboard, the message list (the filters of ``GET /api/v1/messages``), the message
page (timeline, XML with its errors, the case as the court will see it), the replay preview
and confirm form, the replay history and each replay's progress. No authentication yet
(issue 6): the operator types their name on the forms that change something.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import Response

from gateway.composition import Container
from gateway.console import access, pages, replay_pages
from gateway.console.render import Renderer


def install(app: FastAPI, container: Container) -> None:
    """Add the console's pages and static files to ``app``."""
    renderer = Renderer()
    router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(access.guard)])

    @router.get("/static/{name}", response_model=None)
    async def static(name: str) -> Response:
        return renderer.static_file(name)

    access.install(app, router, container, renderer)
    pages.install(router, container, renderer)
    replay_pages.install(router, container, renderer)
    app.include_router(router)
