"""A webhook endpoint: another system's URL, registered by a site's admin (or the network's) for chosen event types
and for one role, whose view of each event is all the endpoint receives (shared/events/audience.py)."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.auth.permissions import Role
from shared.errors import Conflict, NotPermitted, RuleRefused
from shared.events.audience import receivable_types


class EndpointStatus(StrEnum):
    """active: deliveries go out. paused (by its admin) and disabled (after repeated failures): deliveries are
    queued, not sent, until it is resumed. deleted: nothing more is queued, and what was waiting is cancelled."""

    active = "active"
    paused = "paused"
    disabled = "disabled"
    deleted = "deleted"


_TRANSITIONS: dict[EndpointStatus, frozenset[EndpointStatus]] = {
    EndpointStatus.active: frozenset({EndpointStatus.paused, EndpointStatus.disabled, EndpointStatus.deleted}),
    EndpointStatus.paused: frozenset({EndpointStatus.active, EndpointStatus.deleted}),
    EndpointStatus.disabled: frozenset({EndpointStatus.active, EndpointStatus.deleted}),
    EndpointStatus.deleted: frozenset(),
}


def check_endpoint_url(url: str, *, plain_http_allowed: bool) -> str:
    """An endpoint is an absolute https URL without credentials in it (a secret in a URL ends up in logs). Plain
    http is for development only, where receivers run on this machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise RuleRefused("url: an endpoint is an absolute https:// URL")
    if parts.scheme == "http" and not plain_http_allowed:
        raise RuleRefused(
            "url: deliveries carry patient data, so an endpoint is https:// (plain http in development only)"
        )
    if parts.username or parts.password:
        raise RuleRefused("url: no credentials in the URL; the endpoint checks the signature instead")
    if parts.fragment:
        raise RuleRefused("url: a fragment is never sent; leave it out")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return url
    if not plain_http_allowed and (address.is_private or address.is_loopback or address.is_link_local):
        raise RuleRefused("url: an endpoint outside development is not a private or loopback address")
    return url


class EndpointEntry(BaseModel):
    """What an admin registers."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    url: str = Field(min_length=1, max_length=2000)
    role: Role = Field(description="whose view of each event the endpoint receives; the registrant must hold it")
    event_types: list[str] = Field(min_length=1, max_length=100, description="CloudEvents types, e.g. org.kapnet.…")
    description: str | None = Field(default=None, max_length=500)

    @field_validator("event_types")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an event type is named twice")
        return sorted(value)


class Endpoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    url: str
    role: Role
    event_types: tuple[str, ...]
    description: str | None
    status: EndpointStatus
    # Deliveries in a row that ran out of retries; one that arrives sets it back to 0.
    consecutive_failures: int
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def register(
        cls,
        entry: EndpointEntry,
        *,
        registrant_roles: frozenset[Role],
        scope: Literal["site", "network"],
        plain_http_allowed: bool,
        by: str,
        now: datetime,
    ) -> Endpoint:
        # Clinic policy: an endpoint never sees more than the person who registered it may see.
        if entry.role not in registrant_roles:
            raise NotPermitted(
                f"role: an endpoint acts as one of your own roles, and you do not hold {entry.role.value!r}"
            )
        offered = set(receivable_types(entry.role, scope))
        refused = [t for t in entry.event_types if t not in offered]
        if refused:
            raise RuleRefused(
                f"event_types: not events the {entry.role.value} role may receive here: {', '.join(refused)}"
            )
        return cls(
            id=uuid.uuid4(),
            url=check_endpoint_url(entry.url, plain_http_allowed=plain_http_allowed),
            role=entry.role,
            event_types=tuple(entry.event_types),
            description=entry.description,
            status=EndpointStatus.active,
            consecutive_failures=0,
            created_by=by,
            created_at=now,
            updated_at=now,
        )

    def wants(self, event_type: str) -> bool:
        """Does an event of this type get queued for it (while paused or disabled too, so nothing is lost)?"""
        return self.status is not EndpointStatus.deleted and event_type in self.event_types

    @property
    def sends(self) -> bool:
        return self.status is EndpointStatus.active

    def _to(self, status: EndpointStatus, now: datetime, **changes: object) -> Self:
        if status not in _TRANSITIONS[self.status]:
            raise Conflict(f"the endpoint is {self.status.value}: it cannot become {status.value}")
        return self.model_copy(update={"status": status, "updated_at": now, **changes})

    def pause(self, now: datetime) -> Self:
        return self._to(EndpointStatus.paused, now)

    def resume(self, now: datetime) -> Self:
        """Active again, after a pause or after being disabled; what waited is sent, in order."""
        return self._to(EndpointStatus.active, now, consecutive_failures=0)

    def delete(self, now: datetime) -> Self:
        return self._to(EndpointStatus.deleted, now)

    def delivery_arrived(self) -> Self:
        return self.model_copy(update={"consecutive_failures": 0}) if self.consecutive_failures else self

    def delivery_failed(self, disable_after: int, now: datetime) -> Self:
        """A delivery ran out of retries. After ``disable_after`` in a row the endpoint is disabled (clinic policy):
        a receiver that is gone should not be tried for every event of the site, day after day."""
        failures = self.consecutive_failures + 1
        if failures >= disable_after and self.status is EndpointStatus.active:
            return self._to(EndpointStatus.disabled, now, consecutive_failures=failures)
        return self.model_copy(update={"consecutive_failures": failures, "updated_at": now})
