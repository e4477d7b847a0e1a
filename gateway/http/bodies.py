"""Reading a request body with the size cap enforced while reading, before any parsing."""

from __future__ import annotations

from starlette.requests import Request

from gateway.errors import ErrorDetail, TooLarge

XML_TYPES = ("application/xml", "text/xml")


def too_large(limit: int, seen: int) -> TooLarge:
    return TooLarge(
        [ErrorDetail("BODY_TOO_LARGE", f"The body exceeds the limit of {limit} bytes (read {seen}).")]
    )


async def read_capped(request: Request, limit: int) -> bytes:
    """The whole body, or ``TooLarge`` as soon as more than ``limit`` bytes arrive."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit, 0)
    chunks: list[bytes] = []
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise too_large(limit, seen)
        chunks.append(chunk)
    return b"".join(chunks)


def is_xml(content_type: str | None) -> bool:
    """application/xml, text/xml or any application/...+xml, parameters allowed."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in XML_TYPES or (media.startswith("application/") and media.endswith("+xml"))
