from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse

from obhut import __version__
from obhut.access.endpoints import router as auth_router
from obhut.access.manage_endpoints import router as access_router
from obhut.access.passkey_endpoints import router as passkey_router
from obhut.access.sso_endpoints import router as sso_router
from obhut.audit.alert_endpoints import router as alerts_router
from obhut.audit.dependencies import record_refused_read
from obhut.audit.endpoints import router as audit_router
from obhut.consent.endpoints import router as consent_router
from obhut.consent.preference_endpoints import router as preferences_router
from obhut.consent.statistics_endpoints import router as consent_statistics_router
from obhut.console.app import install as install_console
from obhut.container import Container, build
from obhut.customers.endpoints import router as customers_router
from obhut.kit.settings import Settings
from obhut.kit.web import install_problem_handlers
from obhut.outbox.endpoints import router as outbox_router
from obhut.retention.endpoints import router as retention_router
from obhut.rights.endpoints import router as rights_router
from obhut.rights.privacy_endpoints import router as privacy_router
from obhut.vault.endpoints import router as keys_router
from obhut.workspaces.endpoints import router as workspaces_router

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    container = container or build(settings or Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        container.close()

    app = FastAPI(
        title="Obhut",
        version=__version__,
        description="Privacy-first customer identity and data platform",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.session_factory = container.sessions
    app.state.refused_read = record_refused_read  # reads the access policy refuses go to the access log
    install_problem_handlers(app)
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(workspaces_router)
    api.include_router(keys_router)
    api.include_router(customers_router)
    api.include_router(auth_router)
    api.include_router(access_router)
    api.include_router(sso_router)
    api.include_router(passkey_router)
    api.include_router(audit_router)
    api.include_router(alerts_router)
    api.include_router(consent_router)
    api.include_router(preferences_router)
    api.include_router(consent_statistics_router)
    api.include_router(outbox_router)
    api.include_router(rights_router)
    api.include_router(privacy_router)
    api.include_router(retention_router)

    @api.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(api)
    install_console(app, container.settings.console_workspace)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console")

    return app
