"""The web console: static files shipped in the layer, served by the same API at /console/.

No build step and nothing from a CDN. Every response carries a strict Content-Security-Policy:
scripts and styles only from this origin, no inline script, no frames, and fetches only to
this API. The page keeps the key in sessionStorage and sends it as the API's own headers;
what a key may see is decided by the API, never by the page."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from ..errors import NotFound

router = Router()
FILES = Path(__file__).resolve().parent.parent / "console"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


@cache
def _shipped() -> dict[str, str]:
    """The console's files by name: only these are served (no path from the request reaches
    the file system)."""
    return {p.name: p.read_text(encoding="utf-8") for p in FILES.iterdir() if p.suffix in TYPES}


def _file(name: str) -> Response[str]:
    body = _shipped().get(name)
    if body is None:
        raise NotFound(f"No console file {name!r}")
    return Response(200, TYPES[Path(name).suffix], body, headers=HEADERS)


@router.get("/console", include_in_schema=False)
def console_page() -> Response[str]:
    # The page's assets are relative to it ("console/app.js"), so they resolve under an API
    # Gateway stage prefix too. Powertools routes /console/ here as well, where they would
    # not resolve: send it to /console (relative, for the same reason).
    if router.current_event.path.endswith("/"):
        return Response(301, "text/plain", "", headers={**HEADERS, "Location": "../console"})
    return _file("index.html")


@router.get("/console/<name>", include_in_schema=False)
def console_file(name: str) -> Response[str]:
    return _file(name)
