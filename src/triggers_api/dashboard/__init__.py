"""The developer dashboard's server side: session cookies, ``/v1/auth/*`` and the built app.

The React app lives in ``dashboard/`` at the repository root; ``make run`` builds it into
``static/`` here. :func:`install` is an ``AppExtension``: it adds the routes and registers the
session resolver that ``runtime.authenticate_scope`` consults when a request has no API key.
"""

from __future__ import annotations

from fastapi import FastAPI

from triggers_api.runtime import Services

from .router import router as auth_router
from .session import SessionManager
from .static import build_router


def install(app: FastAPI, services: Services) -> None:
    if not services.settings.dashboard_enabled:
        return
    sessions = SessionManager(services.settings, services.storage)
    services.extras["sessions"] = sessions
    services.extras["session_resolver"] = sessions.resolve
    app.include_router(auth_router)
    app.include_router(build_router(services.settings))
