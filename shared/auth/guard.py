"""FastAPI side of access control: every route declares its permission through ``require``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import APIRouter, HTTPException, Request, Security, status
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.auth.permissions import Permission, Role, decide
from shared.auth.tokens import Principal, TokenRejected, TokenVerifier, ensure_dev_keypair
from shared.settings import ServiceSettings

# Routes anyone may call: probes and the published contracts.
PUBLIC_PATHS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/metrics",
        "/asyncapi.json",
        "/events/schemas",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
    }
)
PERMISSION_EXTENSION = "x-kapnet-permission"

bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="A JWT with the claims sub, name, site and roles. Development: `python -m shared.auth mint`.",
)


@dataclass(frozen=True)
class Actor:
    """The caller of a route, with the role that granted the route's permission (what the audit log records)."""

    principal: Principal
    role: Role
    permission: Permission

    @property
    def sub(self) -> str:
        return self.principal.sub


def build_verifier(settings: ServiceSettings) -> TokenVerifier:
    if settings.auth_mode == "oidc":
        return TokenVerifier(
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            algorithm=settings.auth_algorithm,
            jwks_url=settings.auth_jwks_url,
        )
    _, public = ensure_dev_keypair(settings.dev_key_dir)
    return TokenVerifier(
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        algorithm=settings.auth_algorithm,
        public_key=load_pem_public_key(public.read_bytes()),
    )


def _unauthorized(detail: str) -> HTTPException:
    # RFC 6750 section 3: a 401 names the scheme, and the error when a token was sent.
    challenge = 'Bearer realm="kapnet"' + (f', error="invalid_token", error_description="{detail}"' if detail else "")
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail or "a bearer token is required",
        headers={"WWW-Authenticate": challenge.replace("\n", " ")},
    )


def require(permission: Permission) -> Callable[..., Awaitable[Actor]]:
    async def actor(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
    ) -> Actor:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise _unauthorized("")
        verifier: TokenVerifier = request.app.state.verifier
        settings: ServiceSettings = request.app.state.settings
        try:
            principal = await verifier.verify(credentials.credentials)
        except TokenRejected as exc:
            raise _unauthorized(str(exc).replace('"', "'")) from None
        service_site = settings.site if settings.role == "site" else None
        decision = decide(permission, principal.roles, principal.site, service_site)
        if not decision.allowed or decision.role is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, decision.reason)
        return Actor(principal=principal, role=decision.role, permission=permission)

    actor.kapnet_permission = permission  # type: ignore[attr-defined]
    return actor


def route_permission(route: APIRoute) -> Permission | None:
    def search(dependant: Dependant) -> Permission | None:
        found = getattr(dependant.call, "kapnet_permission", None)
        if isinstance(found, Permission):
            return found
        for sub in dependant.dependencies:
            if (inner := search(sub)) is not None:
                return inner
        return None

    return search(route.dependant)


def declare_permissions(router: APIRouter) -> APIRouter:
    """Publish each route's permission in the OpenAPI document, and refuse a router with a route that declares
    none: a new route cannot be forgotten. Call it before the router is included in an app."""
    for route in router.routes:
        if not isinstance(route, APIRoute) or route.path in PUBLIC_PATHS:
            continue
        permission = route_permission(route)
        if permission is None:
            raise RuntimeError(f"route {sorted(route.methods or ())} {route.path} declares no permission")
        route.openapi_extra = {**(route.openapi_extra or {}), PERMISSION_EXTENSION: permission.value}
    return router
