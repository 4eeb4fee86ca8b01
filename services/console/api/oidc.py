"""Signing in at the OIDC issuer: the authorization code flow with PKCE (RFC 7636), the console a public client.

The issuer's access token (a JWT for the services' audience) becomes the session, as a pasted token does: the
console and every service check it the same way (shared/auth/tokens.py)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode, urlparse

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console.api.deps import Settings, Templates
from services.console.api.pages import start_session
from services.console.api.render import page
from services.console.settings import ConsoleSettings

router = APIRouter()

# The flow's state and PKCE verifier, for the callback only. Lax, not Strict: the callback is a navigation from the
# issuer's site, which a Strict cookie would not come back with.
FLOW_COOKIE = "kapnet_oidc_flow"
FLOW_SECONDS = 600


@dataclass(frozen=True)
class IssuerEndpoints:
    authorization: str
    token: str


async def issuer_endpoints(settings: ConsoleSettings) -> IssuerEndpoints:
    """From the issuer's discovery document (OpenID Connect Discovery 1.0)."""
    url = f"{settings.auth_issuer.rstrip('/')}/.well-known/openid-configuration"
    async with httpx.AsyncClient(timeout=settings.service_timeout_seconds) as client:
        found = (await client.get(url)).raise_for_status().json()
    return IssuerEndpoints(str(found["authorization_endpoint"]), str(found["token_endpoint"]))


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _redirect_uri(request: Request, settings: ConsoleSettings) -> str:
    return settings.oidc_redirect_url or str(request.url_for("oidc_callback"))


def _not_signed_in(templates: Templates, request: Request, why: str, status: int) -> HTMLResponse:
    response = page(templates, request, "sign_in.html", None, status, why=why, oidc=True)
    response.delete_cookie(FLOW_COOKIE, path="/sign-in")
    return response


@router.get("/sign-in/oidc")
async def oidc_start(request: Request, settings: Settings) -> Response:
    if not settings.oidc_configured:
        raise HTTPException(404, "signing in at an OIDC issuer is not configured here (KAPNET_OIDC_CLIENT_ID)")
    endpoints = await issuer_endpoints(settings)
    state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    query = {
        "response_type": "code",
        "client_id": settings.oidc_client_id,
        "redirect_uri": _redirect_uri(request, settings),
        "scope": "openid",
        "state": state,
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
    }
    if urlparse(settings.auth_audience).scheme:
        # RFC 8707: ask for a token for the services' audience, where that audience is a URI (else the issuer's
        # default resource is the services').
        query["resource"] = settings.auth_audience
    response = RedirectResponse(f"{endpoints.authorization}?{urlencode(query)}", 303)
    response.set_cookie(
        FLOW_COOKIE,
        f"{state}.{verifier}",
        max_age=FLOW_SECONDS,
        httponly=True,
        samesite="lax",
        secure=settings.environment == "production",
        path="/sign-in",
    )
    return response


@router.get("/sign-in/callback", response_class=HTMLResponse, name="oidc_callback")
async def oidc_callback(
    request: Request,
    templates: Templates,
    settings: Settings,
    code: str = "",
    state: str = "",
    error: str = "",
    error_description: str = "",
) -> Response:
    if not settings.oidc_configured:
        raise HTTPException(404, "signing in at an OIDC issuer is not configured here (KAPNET_OIDC_CLIENT_ID)")
    if error:
        return _not_signed_in(templates, request, f"The issuer did not sign you in: {error_description or error}", 401)
    expected, _, verifier = request.cookies.get(FLOW_COOKIE, "").partition(".")
    if not expected or not code or not secrets.compare_digest(state, expected):
        why = "This sign-in was not started here, or took longer than 10 minutes: sign in again."
        return _not_signed_in(templates, request, why, 400)
    endpoints = await issuer_endpoints(settings)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": _redirect_uri(request, settings),
        "client_id": settings.oidc_client_id,
        "code_verifier": verifier,
    }
    async with httpx.AsyncClient(timeout=settings.service_timeout_seconds) as client:
        reply = await client.post(endpoints.token, data=form)
    token = reply.json().get("access_token") if reply.status_code == 200 else None
    if not isinstance(token, str):
        return _not_signed_in(templates, request, f"The issuer refused the sign-in ({reply.status_code}).", 401)
    # A page that moves on to the console: the session cookie is Strict, and a redirect still inside the
    # navigation from the issuer would go without it.
    moved_on = page(templates, request, "signed_in.html", None)
    moved_on.delete_cookie(FLOW_COOKIE, path="/sign-in")
    return await start_session(request, templates, settings, token, moved_on)
