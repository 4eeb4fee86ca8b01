"""What outcomes' routes depend on, as Annotated types: a unit of work, the site's calendar and outcome
definition, and the caller, bound to the permission the route needs (shared/auth/permissions.py)."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Request

from services.outcomes.domain.definitions import OutcomeDefinition, site_definition
from shared.app import runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission
from shared.bus.tables import utcnow
from shared.instants import local_date


def _zone(request: Request) -> ZoneInfo:
    return runtime_of(request).settings.zone


def _definition(request: Request) -> OutcomeDefinition:
    return site_definition(runtime_of(request).settings.pcl5_cutoff)


def _today(zone: Annotated[ZoneInfo, Depends(_zone)]) -> date:
    return local_date(utcnow(), zone)


SiteZone = Annotated[ZoneInfo, Depends(_zone)]
DefinitionDep = Annotated[OutcomeDefinition, Depends(_definition)]
SiteToday = Annotated[date, Depends(_today)]

OutcomesReader = Annotated[Actor, Depends(require(Permission.outcomes_read))]
# Network role: aggregates only, for the network administrator.
NetworkReader = Annotated[Actor, Depends(require(Permission.network_aggregates_read))]
