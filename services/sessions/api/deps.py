"""What sessions' routes depend on, as Annotated types: a unit of work, the site's rules and calendar, and the
caller, each bound to the permission the route needs (shared/auth/permissions.py holds the one table)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Request

from services.sessions.domain.settings import SessionRuleSettings
from shared.app import runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission


def _rules(request: Request) -> SessionRuleSettings:
    rules: SessionRuleSettings = request.app.state.session_rules
    return rules


def _zone(request: Request) -> ZoneInfo:
    return runtime_of(request).settings.zone


RulesDep = Annotated[SessionRuleSettings, Depends(_rules)]
SiteZone = Annotated[ZoneInfo, Depends(_zone)]

CoursePlanner = Annotated[Actor, Depends(require(Permission.course_plan))]
CourseReader = Annotated[Actor, Depends(require(Permission.course_read))]
CourseManager = Annotated[Actor, Depends(require(Permission.course_status_change))]
Scheduler = Annotated[Actor, Depends(require(Permission.session_schedule))]
Canceller = Annotated[Actor, Depends(require(Permission.session_cancel))]
SlotReader = Annotated[Actor, Depends(require(Permission.session_read))]
RecordReader = Annotated[Actor, Depends(require(Permission.session_record_read))]
Monitor = Annotated[Actor, Depends(require(Permission.session_monitor))]
Prescriber = Annotated[Actor, Depends(require(Permission.dose_administer))]
Discharger = Annotated[Actor, Depends(require(Permission.session_discharge))]
IntegrationTherapist = Annotated[Actor, Depends(require(Permission.integration_session_record))]
RemsManager = Annotated[Actor, Depends(require(Permission.rems_form_manage))]
