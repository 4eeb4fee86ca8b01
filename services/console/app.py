"""The site console's FastAPI app: pages rendered on the server, assets served from this process only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.console.api import billing, care, dashboard, oidc, pages
from services.console.api.deps import SignInNeeded, signed_in_or_none
from services.console.api.render import amount, on_site_clock
from services.console.settings import ConsoleSettings
from services.console.site_apis import ServiceRefused, SiteApis
from shared.auth.guard import build_verifier
from shared.auth.permissions import Permission

HERE = Path(__file__).resolve().parent
# The chart library and the accessibility checker, from npm (services/console/assets/package.json), served here:
# no page loads anything from the internet.
VENDOR = {
    "chart.js": HERE / "assets" / "node_modules" / "chart.js" / "dist",
    "axe-core": HERE / "assets" / "node_modules" / "axe-core",
}

# Every page of the console: no script, style or font from anywhere but this process.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_app(settings: ConsoleSettings | None = None, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.apis.close()

    app = FastAPI(title=f"kapnet console ({settings.where})", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.apis = SiteApis(settings, transport)
    app.state.verifier = build_verifier(settings.token_settings())
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["site"] = settings.where
    templates.env.filters["amount"] = amount
    templates.env.filters["money"] = billing.money
    templates.env.filters["local"] = lambda moment: on_site_clock(moment, settings.zone)
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for name, directory in VENDOR.items():
        if directory.is_dir():
            app.mount(f"/vendor/{name}", StaticFiles(directory=directory), name=name)
    app.include_router(pages.account)
    app.include_router(oidc.router)
    if settings.role == "network":
        app.include_router(dashboard.router)
    else:
        app.include_router(pages.router)
        app.include_router(care.router)
        app.include_router(billing.router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        return response

    @app.exception_handler(SignInNeeded)
    async def sign_in(request: Request, exc: SignInNeeded) -> Response:
        target = f"/sign-in?{httpx.QueryParams({'why': exc.why})}" if exc.why else "/sign-in"
        return RedirectResponse(target, 303)

    @app.exception_handler(ServiceRefused)
    async def refused(request: Request, exc: ServiceRefused) -> Response:
        # A refusal is a message on a page, never a broken one.
        return templates.TemplateResponse(
            request,
            "refused.html",
            {"refusal": exc, "user": await signed_in_or_none(request), "Permission": Permission},
            status_code=exc.status if 400 <= exc.status < 600 else 502,
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        # A page asked for with a wrong address or value: a message on a page, never the validator's JSON.
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}" for e in exc.errors())
        user = await signed_in_or_none(request)
        context = {"status": 422, "detail": problems, "user": user, "Permission": Permission}
        return templates.TemplateResponse(request, "error.html", context, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        user = await signed_in_or_none(request)
        context = {"status": exc.status_code, "detail": exc.detail, "user": user, "Permission": Permission}
        return templates.TemplateResponse(request, "error.html", context, exc.status_code)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
