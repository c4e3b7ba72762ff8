"""The web console: static files shipped in the layer, served by the same API at /console/;
and Swagger UI at /api/v1/docs, on the same origin, under the same policy.

No build step and nothing from a CDN. Every response carries a strict Content-Security-Policy:
scripts and styles only from this origin, no inline script, no frames, and fetches only to
this API. The page keeps the key in sessionStorage and sends it as the API's own headers;
what a key may see is decided by the API, never by the page.

Swagger UI is Powertools' own copy of its files (``swagger-ui-bundle.min.js`` and
``swagger-ui.min.css``), served as files rather than inlined into the page as Powertools'
``enable_swagger`` does, and started by a small script of ours (``swagger-init.js``): no
inline script, so the console's policy holds there too. It reads the API's own document
(``openapi.json``, beside the page), whose ``servers`` say where the page was served from."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from ..errors import NotFound
from .context import API

router = Router()
FILES = Path(__file__).resolve().parent.parent / "console"
DOCS_PATH = f"{API}/docs"  # Swagger UI
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


# Powertools' Swagger UI files, found without importing the package: its __init__ loads the
# OpenAPI models (a fifth of ingest's cold start), which only the document's generation needs
_SWAGGER_SPEC = importlib.util.find_spec("aws_lambda_powertools.event_handler.openapi.swagger_ui")
if _SWAGGER_SPEC is None or _SWAGGER_SPEC.origin is None:
    raise ImportError("aws_lambda_powertools.event_handler.openapi.swagger_ui is missing")
SWAGGER_FILES = Path(_SWAGGER_SPEC.origin).resolve().parent
SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Webhook notification service: API reference</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/swagger-init.js"></script>
</body>
</html>
"""
# the page's URL is .../api/v1/docs: "openapi.json" is the API's document beside it
SWAGGER_INIT = """window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  docExpansion: "list",
  filter: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""


@cache
def _swagger_files() -> dict[str, tuple[str, str]]:
    """Swagger UI's files by the name the page asks for: (content type, body)."""
    return {
        "swagger-ui-bundle.js": (
            TYPES[".js"],
            (SWAGGER_FILES / "swagger-ui-bundle.min.js").read_text("utf-8"),
        ),
        "swagger-ui.css": (TYPES[".css"], (SWAGGER_FILES / "swagger-ui.min.css").read_text("utf-8")),
        "swagger-init.js": (TYPES[".js"], SWAGGER_INIT),
    }


@router.get(DOCS_PATH, include_in_schema=False)
def swagger_page() -> Response[str]:
    # assets relative to the page (as the console's), so under a stage prefix too; the
    # trailing-slash form, where they would not resolve, is sent to the page
    if router.current_event.path.endswith("/"):
        return Response(301, "text/plain", "", headers={**HEADERS, "Location": "../docs"})
    return Response(200, TYPES[".html"], SWAGGER_PAGE, headers=HEADERS)


@router.get(f"{DOCS_PATH}/<name>", include_in_schema=False)
def swagger_file(name: str) -> Response[str]:
    found = _swagger_files().get(name)
    if found is None:
        raise NotFound(f"No API reference file {name!r}")
    return Response(200, found[0], found[1], headers=HEADERS)


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
