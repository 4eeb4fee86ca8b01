"""The console's dependencies: the signed-in user (the token in the session cookie, checked as the services check
it) and the site's APIs, as ``Annotated`` types for the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.templating import Jinja2Templates

from services.console.settings import ConsoleSettings
from services.console.site_apis import SiteApis
from shared.auth.permissions import Permission, decide
from shared.auth.tokens import Principal, TokenRejected, TokenVerifier

SESSION_COOKIE = "kapnet_console"


@dataclass(frozen=True)
class SignedIn:
    """Who is at the keyboard: their verified token (sent on to the services) and what it says of them."""

    token: str
    principal: Principal
    site: str | None  # None: the network's dashboard

    def may(self, permission: Permission) -> bool:
        """Whether to offer an action: the one permission table decides (the service decides again on the call)."""
        return decide(permission, self.principal.roles, self.principal.site, self.site).allowed

    @property
    def roles(self) -> str:
        return ", ".join(sorted(role.value.replace("_", " ") for role in self.principal.roles))


class SignInNeeded(Exception):
    """No session, or one whose token no longer verifies: the page sends the user to sign in."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _settings(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.settings
    return settings


def _apis(request: Request) -> SiteApis:
    apis: SiteApis = request.app.state.apis
    return apis


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


async def verify(request: Request, token: str) -> Principal:
    verifier: TokenVerifier = request.app.state.verifier
    return await verifier.verify(token)


async def _signed_in(request: Request, settings: Annotated[ConsoleSettings, Depends(_settings)]) -> SignedIn:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInNeeded("")
    try:
        principal = await verify(request, token)
    except TokenRejected as exc:
        raise SignInNeeded(str(exc)) from None
    if principal.site != settings.where:
        raise SignInNeeded(f"this console is {settings.where}'s; the token is for {principal.site}")
    return SignedIn(token, principal, None if settings.role == "network" else settings.site)


async def signed_in_or_none(request: Request) -> SignedIn | None:
    """Who is signed in, for a page that shows a refusal: its header keeps the user's navigation."""
    try:
        return await _signed_in(request, _settings(request))
    except SignInNeeded:
        return None


def needs(permission: Permission) -> Any:
    """A route that only a role with ``permission`` is offered (the service still decides each call)."""

    async def check(user: Annotated[SignedIn, Depends(_signed_in)]) -> SignedIn:
        if not user.may(permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"your role may not use this page ({permission.value})")
        return user

    return Depends(check)


Settings = Annotated[ConsoleSettings, Depends(_settings)]
Apis = Annotated[SiteApis, Depends(_apis)]
Templates = Annotated[Jinja2Templates, Depends(_templates)]
CurrentUser = Annotated[SignedIn, Depends(_signed_in)]
