"""What every console page does the same way: render with the signed-in user, make a form from a service's request
schema, send its answers (a refusal shown beside them), and the patient banner with its open safety flags."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import HTMLResponse

from services.console.api.deps import SignedIn, Templates
from services.console.forms import FormError, FormSection, SchemaReader, entered, read_answers, wall_clock, without
from services.console.settings import ConsoleSettings
from services.console.site_apis import FieldProblem, ServiceRefused, SiteApis, SiteService
from shared.auth.permissions import Permission


def amount(value: float | None) -> str:
    """A measured amount as a person writes it: 72 mg, 0.5 mg/kg (no trailing .0)."""
    return "" if value is None else f"{value:g}"


def on_site_clock(moment: str | None, zone: tzinfo) -> str:
    """A service's time (ISO 8601 with its offset) as the site's wall clock: ``2026-12-03 09:30``."""
    return "" if not moment else wall_clock(datetime.fromisoformat(moment), zone).replace("T", " ")


def page(
    templates: Templates, request: Request, template: str, user: SignedIn | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request, template, {"user": user, "Permission": Permission, **context}, status_code=status_code
    )


async def service_form(
    apis: SiteApis, service: SiteService, method: str, path: str, filled: tuple[str, ...] = ()
) -> list[FormSection]:
    """The form of a service's request: its fields, as the service's own request model states them, less those
    the page fills itself and those the service says it fills (``x-filled-by-service``: the REMS form's from the
    session record)."""
    reader = SchemaReader(await apis.openapi(service))
    schema = reader.request_schema(method, path)
    return without(reader.sections(schema), *filled, *schema.get("x-filled-by-service", []))


@dataclass(frozen=True)
class FormRequest:
    """Where a form's answers go: the service, the path its OpenAPI document names the operation by, the path to
    call, and what the page fills itself (the patient of the page, say)."""

    service: SiteService
    schema_path: str
    path: str
    method: str = "POST"
    filled: Mapping[str, object] | None = None


@dataclass(frozen=True)
class Answered:
    sections: list[FormSection]
    answers: dict[str, list[str]]
    reply: httpx.Response | None
    refusal: ServiceRefused | None

    def _field_of(self, problem: FieldProblem) -> str | None:
        """The field a problem belongs beside: its own, or for a refused part (an amount), the part's first field."""
        names = [f.name for s in self.sections for f in s.fields]
        if problem.field in names:
            return problem.field
        return next((n for n in names if problem.field and n.startswith(problem.field + ".")), None)

    @property
    def problems(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for problem in self.refusal.problems if self.refusal else ():
            name = self._field_of(problem)
            if name is not None:
                found.setdefault(name, []).append(problem.message)
        return found

    @property
    def unplaced(self) -> list[FieldProblem]:
        return [p for p in (self.refusal.problems if self.refusal else ()) if self._field_of(p) is None]

    @property
    def shown(self) -> dict[str, Any]:
        """What a page needs to show the answers again beside the refusal."""
        return {
            "values": entered(self.answers),
            "refusal": self.refusal,
            "problems": self.problems,
            "unplaced": self.unplaced,
        }


async def submit(
    request: Request, apis: SiteApis, user: SignedIn, settings: ConsoleSettings, target: FormRequest
) -> Answered:
    """Send a form's answers to the service. A refusal of what was entered (409, 422), or an answer the console
    cannot read as its field's kind, is returned to show beside the answers; any other refusal is raised, to show
    as a page."""
    filled = dict(target.filled or {})
    sections = await service_form(apis, target.service, target.method.lower(), target.schema_path, tuple(filled))
    form = await request.form()
    answers = {k: [str(v) for v in form.getlist(k)] for k in form}
    try:
        body = {**read_answers(sections, answers, settings.zone), **filled}
    except FormError as wrong:
        problem = FieldProblem(wrong.name, str(wrong))
        refused = ServiceRefused(target.service, 422, "Unprocessable Content", str(wrong), (problem,))
        return Answered(sections, answers, None, refused)
    try:
        reply = await apis.call(target.service, target.method, target.path, user.token, json=body)
    except ServiceRefused as refusal:
        if refusal.status not in (409, 422):
            raise
        return Answered(sections, answers, None, refusal)
    return Answered(sections, answers, reply, None)


def refused_form(
    templates: Templates,
    request: Request,
    user: SignedIn,
    title: str,
    answered: Answered,
    banner: dict[str, Any] | None = None,
) -> HTMLResponse:
    status = answered.refusal.status if answered.refusal else 422
    context = {"title": title, "sections": answered.sections, **answered.shown, **(banner or {})}
    return page(templates, request, "form.html", user, status_code=status, **context)


async def read_if_known(apis: SiteApis, service: SiteService, path: str, token: str) -> Any:
    """A read of a patient's records at a service that learns of the patient from intake's events: until it has
    (a patient registered a moment ago), its 404 means "nothing here yet", not a broken page."""
    try:
        return await apis.read(service, path, token)
    except ServiceRefused as refused:
        if refused.status != 404 or service is SiteService.intake:
            raise
        return None


async def patient_banner(apis: SiteApis, user: SignedIn, patient_id: uuid.UUID) -> dict[str, Any]:
    """What every page of a patient shows at the top: who it is, and every open safety flag until a clinician
    acknowledges it (intake's from intake measures, sessions' from in-course measures)."""
    patient = await apis.read(SiteService.intake, f"/patients/{patient_id}", user.token)
    flags: list[dict[str, Any]] = []
    if user.may(Permission.safety_flag_read):
        for service in (SiteService.intake, SiteService.sessions):
            for flag in await read_if_known(apis, service, f"/patients/{patient_id}/safety-flags", user.token) or []:
                if flag["status"] == "open":
                    flags.append({**flag, "service": service.value})
    return {"patient": patient, "open_flags": flags}
