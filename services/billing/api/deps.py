"""What billing's routes depend on, as Annotated types: a unit of work, the site's billing settings, and the
caller bound to the permission the route needs (shared/auth/permissions.py holds the one table)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Request

from services.billing.domain.settings import BillingSettings
from shared.app import runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission


def _settings(request: Request) -> BillingSettings:
    settings: BillingSettings = request.app.state.billing_settings
    return settings


def _site_zone(request: Request) -> ZoneInfo:
    return runtime_of(request).settings.zone


SettingsDep = Annotated[BillingSettings, Depends(_settings)]
# The site's zone: the day a deadline, a due date or a date of service falls on is the site's, not UTC's.
SiteZone = Annotated[ZoneInfo, Depends(_site_zone)]

Setup = Annotated[Actor, Depends(require(Permission.billing_setup))]
Reader = Annotated[Actor, Depends(require(Permission.billing_read))]
CoverageClerk = Annotated[Actor, Depends(require(Permission.coverage_manage))]
EstimateClerk = Annotated[Actor, Depends(require(Permission.estimate_issue))]
Cashier = Annotated[Actor, Depends(require(Permission.payment_record))]
Refunder = Annotated[Actor, Depends(require(Permission.refund_record))]
BarrierRecorder = Annotated[Actor, Depends(require(Permission.access_barrier_record))]
