"""What webhooks' routes depend on, besides the shell's unit of work: where this process stands (a site or the
network). The admin guard is the router's (api/routes.py): a site's admin at a site, the network's at the network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request

from shared.app import runtime_of


@dataclass(frozen=True)
class Placement:
    """A site's webhooks offer the site's events; the network's, the aggregates. Plain-http endpoints are for
    development only."""

    scope: Literal["site", "network"]
    plain_http_allowed: bool


def _placement(request: Request) -> Placement:
    settings = runtime_of(request).settings
    return Placement(scope=settings.role, plain_http_allowed=settings.environment == "development")


PlacementDep = Annotated[Placement, Depends(_placement)]
