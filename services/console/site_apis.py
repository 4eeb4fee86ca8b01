"""Calls to the site's services with the signed-in user's token, and their refusals in words."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from services.console.settings import ConsoleSettings


class SiteService(StrEnum):
    intake = "intake"
    sessions = "sessions"
    billing = "billing"
    outcomes = "outcomes"
    network = "network"  # the network's outcomes service: aggregates only


@dataclass(frozen=True)
class FieldProblem:
    """One field a service refused, by its name in the form (``address.line1``), and why."""

    field: str
    message: str


@dataclass(frozen=True)
class ServiceRefused(Exception):
    """A service said no (a 4xx), or could not answer: its own words, for the page to show."""

    service: SiteService
    status: int
    title: str
    detail: str
    problems: tuple[FieldProblem, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return f"{self.service.value}: {self.status} {self.title}: {self.detail}"

    @property
    def message(self) -> str:
        if self.status == 403:
            return f"Your role may not do this ({self.detail or self.title})."
        if self.status == 401:
            return "Your sign-in has expired or was not accepted: sign in again."
        return self.detail or self.title


def _field_of(pointer: str) -> str:
    """``/body/address/line1`` -> ``address.line1`` (a JSON pointer of shared/errors.py into the request)."""
    parts = [p for p in pointer.split("/") if p]
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    return ".".join(parts)


def refusal(service: SiteService, reply: httpx.Response) -> ServiceRefused:
    try:
        problem = reply.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    problems = tuple(
        # Pydantic's "Value error, " says nothing to a person: the service's own words follow it.
        FieldProblem(
            _field_of(str(e.get("pointer", ""))),
            str(e.get("detail", e.get("message", ""))).removeprefix("Value error, "),
        )
        for e in problem.get("errors", [])
        if isinstance(e, dict)
    )
    return ServiceRefused(
        service,
        reply.status_code,
        str(problem.get("title", reply.reason_phrase)),
        str(problem.get("detail", "")),
        problems,
    )


class SiteApis:
    """One HTTP client per service of the site; every call carries the user's bearer token."""

    def __init__(self, settings: ConsoleSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        urls = {
            SiteService.intake: settings.intake_url,
            SiteService.sessions: settings.sessions_url,
            SiteService.billing: settings.billing_url,
            SiteService.outcomes: settings.outcomes_url,
            SiteService.network: settings.network_url,
        }
        self.clients = {
            service: httpx.AsyncClient(base_url=url, timeout=settings.service_timeout_seconds, transport=transport)
            for service, url in urls.items()
        }
        self._schemas: dict[SiteService, dict[str, Any]] = {}

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def call(
        self,
        service: SiteService,
        method: str,
        path: str,
        token: str,
        *,
        json: object = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The service's reply, or ServiceRefused for a 4xx or 5xx, or when it does not answer."""
        try:
            reply = await self.clients[service].request(
                method,
                path,
                json=json,
                # None, not {}: httpx replaces a URL's whole query with any params given (a Link's next page).
                params={k: v for k, v in (params or {}).items() if v not in (None, "")} or None,
                headers={"Authorization": f"Bearer {token}", **(headers or {})},
            )
        except httpx.HTTPError as exc:
            raise ServiceRefused(
                service, 503, "Service Unavailable", f"{service.value} did not answer ({type(exc).__name__})"
            ) from exc
        if reply.status_code >= 400:
            raise refusal(service, reply)
        return reply

    async def read(self, service: SiteService, path: str, token: str, **params: Any) -> Any:
        return (await self.call(service, "GET", path, token, params=params)).json()

    async def read_every_page(self, service: SiteService, path: str, token: str, **params: Any) -> list[Any]:
        """A list the service gives a page at a time, whole: each reply's Link header (RFC 8288) names the next."""
        reply = await self.call(service, "GET", path, token, params=params)
        items = list(reply.json())
        while (following := reply.links.get("next")) is not None:
            reply = await self.call(service, "GET", following["url"], token)
            items.extend(reply.json())
        return items

    async def openapi(self, service: SiteService) -> dict[str, Any]:
        """The service's OpenAPI document, read once: the console's forms are made from its request schemas."""
        if service not in self._schemas:
            reply = await self.clients[service].get("/openapi.json")
            if reply.status_code != 200:
                raise refusal(service, reply)
            self._schemas[service] = reply.json()
        return self._schemas[service]
