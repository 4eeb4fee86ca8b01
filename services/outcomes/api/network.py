"""Outcomes' HTTP routes. The network role serves aggregates only; it never holds a patient record."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status

from services.outcomes.models import NetworkAggregate
from services.outcomes.service import publication
from shared.app import runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission
from shared.events.outcomes import CohortAggregatePublished

network_router = APIRouter(prefix="/aggregates", tags=["network aggregates"])


def _shown(row: NetworkAggregate) -> dict[str, Any]:
    # Re-validated on the way out: only the published, suppressed shape can leave this route.
    return CohortAggregatePublished.model_validate(row.aggregate).model_dump(mode="json")


@network_router.get("", summary="The latest aggregate of every (site, cohort)")
async def list_aggregates(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.network_aggregates_read))],
    site: str | None = None,
    cohort: str | None = None,
) -> list[dict[str, Any]]:
    async with runtime_of(request).unit_of_work() as uow:
        rows = await publication.network_aggregates(uow)
    return [_shown(r) for r in rows if (site is None or r.site == site) and (cohort is None or r.cohort == cohort)]


@network_router.get("/{site}/{cohort}", summary="The latest aggregate of one site's cohort")
async def get_aggregate(
    site: str,
    cohort: str,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.network_aggregates_read))],
) -> dict[str, Any]:
    async with runtime_of(request).unit_of_work() as uow:
        row = await uow.session.get(NetworkAggregate, (site, cohort))
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no aggregate for site {site!r}, cohort {cohort!r}")
    return _shown(row)
