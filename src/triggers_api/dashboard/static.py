"""Serving the built single-page app at ``/dashboard``, with deep links and strict headers.

Files under ``assets/`` carry a content hash in their names, so they are cached for a year;
``index.html`` is never cached, so a new build is picked up on the next load. Any path that is not
a file (``/dashboard/events/abc``) gets ``index.html`` and the client-side router takes over; a
missing *file* (a path with an extension) is a real 404, so a stale asset reference fails loudly
instead of being answered with HTML.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

from triggers_api.config import Settings

#: No inline script or style, no third-party origin, no framing: the app needs none of them.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}

#: Added over HTTPS only: a plain-HTTP localhost must not be pinned to HTTPS.
HSTS = "max-age=31536000; includeSubDomains"

NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dashboard not built</title>
</head><body><h1>The dashboard has not been built</h1><p>The API works; only the dashboard is missing.
From the repository, run <code>make run</code> (it builds it), or <code>cd dashboard &amp;&amp; npm ci
&amp;&amp; npm run build</code>, then reload. A wheel built without Node.js has no dashboard: build it again
with Node.js 20+ installed, or set <code>TRIGGERS_DASHBOARD_DIR</code> to a built dashboard.</p></body></html>"""

PACKAGED_DIR = Path(__file__).parent / "static"


def dashboard_dir(settings: Settings) -> Path:
    return settings.dashboard_dir or PACKAGED_DIR


def _secure(request: Request, response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    if request.url.scheme == "https":
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def build_router(settings: Settings) -> APIRouter:
    root = dashboard_dir(settings).resolve()
    router = APIRouter(include_in_schema=False)

    async def serve(request: Request, path: str = "") -> Response:
        index = root / "index.html"
        if not index.is_file():
            return _secure(request, HTMLResponse(NOT_BUILT, status_code=503))
        candidate = (root / path).resolve() if path else index
        if path and candidate.is_relative_to(root) and candidate.is_file():
            response: Response = FileResponse(
                candidate, media_type=mimetypes.guess_type(candidate.name)[0] or "application/octet-stream"
            )
            if candidate.parent.name == "assets":
                response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
            else:
                response.headers["Cache-Control"] = "no-cache"
            return _secure(request, response)
        if "." in path.rsplit("/", 1)[-1]:
            response = HTMLResponse(
                "<!doctype html><title>Not found</title><p>Not found</p>", status_code=404
            )
            return _secure(request, response)
        response = FileResponse(index, media_type="text/html; charset=utf-8")
        response.headers["Cache-Control"] = "no-cache"
        return _secure(request, response)

    router.add_api_route("/dashboard", serve, methods=["GET", "HEAD"])
    router.add_api_route("/dashboard/{path:path}", serve, methods=["GET", "HEAD"])
    return router
