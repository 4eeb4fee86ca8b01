"""The console's clinical pages: the day's schedule, course planning and booking, the bedside session chart,
assessments entered item by item, safety-flag acknowledgement, the REMS forms due and the patient's outcome chart.

Every rule stays in the services: the chart shows what sessions' monitoring view says discharge still waits for,
the dose calculator asks sessions to work the dose out, and the score so far comes from shared/instruments."""

from __future__ import annotations

import asyncio
import math
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, StrictInt

from services.console.api.deps import Apis, CurrentUser, Settings, SignedIn, Templates, needs
from services.console.api.render import (
    Answered,
    FormRequest,
    page,
    patient_banner,
    read_if_known,
    refused_form,
    service_form,
    submit,
)
from services.console.forms import FieldKind, FormSection, wall_clock
from services.console.settings import ConsoleSettings
from services.console.site_apis import ServiceRefused, SiteApis, SiteService
from shared.auth.permissions import Permission
from shared.instants import PlausibleDate, local_date
from shared.instruments import AnswerError, Instrument
from shared.instruments.answer_sheet import SHEETS, ScoreSoFar, score_so_far

router = APIRouter()


def _now_values(sections: list[FormSection], settings: ConsoleSettings) -> dict[str, list[str]]:
    """A required time starts at now, on the site's clock: at the chair a reading is entered as it is taken."""
    now = wall_clock(datetime.now(settings.zone), settings.zone)
    return {f.name: [now] for s in sections for f in s.fields if f.kind is FieldKind.date_time and f.required}


# --- the day's schedule -----------------------------------------------------------------------------------------


async def patients_named(apis: SiteApis, user: SignedIn, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Intake's record of each patient on a list, read side by side (the schedule names no one itself)."""
    ordered = sorted(ids)
    found = await asyncio.gather(*(apis.read(SiteService.intake, f"/patients/{i}", user.token) for i in ordered))
    return dict(zip(ordered, found, strict=True))


async def day_schedule(apis: SiteApis, user: SignedIn, day: date) -> dict[str, Any]:
    slots = await apis.read(SiteService.sessions, "/schedule", user.token, day=day.isoformat())
    names = await patients_named(apis, user, {s["patient_id"] for s in slots})
    for slot in slots:
        slot["patient"] = names[slot["patient_id"]]
    return {"day": day, "slots": slots}


@router.get("/schedule", response_class=HTMLResponse, dependencies=[needs(Permission.session_read)])
async def schedule(
    request: Request,
    templates: Templates,
    apis: Apis,
    user: CurrentUser,
    settings: Settings,
    day: Annotated[PlausibleDate | None, Query()] = None,
) -> Response:
    chosen = day or local_date(datetime.now(settings.zone), settings.zone)
    return page(templates, request, "schedule.html", user, **await day_schedule(apis, user, chosen))


# --- courses and booking ------------------------------------------------------------------------------------------


@router.get(
    "/patients/{patient_id}/courses/new", response_class=HTMLResponse, dependencies=[needs(Permission.course_plan)]
)
async def course_form(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, patient_id: uuid.UUID
) -> Response:
    banner = await patient_banner(apis, user, patient_id)
    sections = await service_form(apis, SiteService.sessions, "post", "/courses", ("patient_id",))
    return page(templates, request, "form.html", user, title="Plan a course", sections=sections, values={}, **banner)


@router.post(
    "/patients/{patient_id}/courses/new", response_class=HTMLResponse, dependencies=[needs(Permission.course_plan)]
)
async def plan_course(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, settings: Settings, patient_id: uuid.UUID
) -> Response:
    target = FormRequest(SiteService.sessions, "/courses", "/courses", filled={"patient_id": str(patient_id)})
    answered = await submit(request, apis, user, settings, target)
    if answered.reply is None:
        banner = await patient_banner(apis, user, patient_id)
        return refused_form(templates, request, user, "Plan a course", answered, banner)
    return RedirectResponse(f"/patients/{patient_id}?done=planned", 303)


BOOKING_PATH = "/courses/{course_id}/sessions"


@router.get(
    "/courses/{course_id}/sessions/new", response_class=HTMLResponse, dependencies=[needs(Permission.session_schedule)]
)
async def booking_form(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, settings: Settings, course_id: uuid.UUID
) -> Response:
    course = await apis.read(SiteService.sessions, f"/courses/{course_id}", user.token)
    banner = await patient_banner(apis, user, uuid.UUID(course["patient_id"]))
    sections = await service_form(apis, SiteService.sessions, "post", BOOKING_PATH)
    title = f"Book a dosing session ({course['route'].replace('_', ' ')})"
    values = _now_values(sections, settings)
    return page(templates, request, "form.html", user, title=title, sections=sections, values=values, **banner)


@router.post(
    "/courses/{course_id}/sessions/new", response_class=HTMLResponse, dependencies=[needs(Permission.session_schedule)]
)
async def book_session(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, settings: Settings, course_id: uuid.UUID
) -> Response:
    course = await apis.read(SiteService.sessions, f"/courses/{course_id}", user.token)
    target = FormRequest(SiteService.sessions, BOOKING_PATH, BOOKING_PATH.format(course_id=course_id))
    answered = await submit(request, apis, user, settings, target)
    if answered.reply is None:
        banner = await patient_banner(apis, user, uuid.UUID(course["patient_id"]))
        return refused_form(templates, request, user, "Book a dosing session", answered, banner)
    return RedirectResponse(f"/patients/{course['patient_id']}?done=booked", 303)


# --- the bedside chart --------------------------------------------------------------------------------------------


class BedsideStep(StrEnum):
    """Each entry at the chair, by the last part of its path on sessions' API."""

    pre_dose = "pre-dose-checks"
    dose = "dose"
    infusion_end = "infusion-end"
    vitals = "vitals"
    recovery_check = "dissociation"
    adverse_event = "adverse-events"
    therapy = "therapy-record"
    discharge = "discharge"
    rems_form = "rems-form"  # esketamine: the REMS patient monitoring form, after discharge

    @property
    def heading(self) -> str:
        return STEP_TITLES[self]

    @property
    def method(self) -> str:
        return "PUT" if self in (BedsideStep.therapy, BedsideStep.rems_form) else "POST"

    @property
    def permission(self) -> Permission:
        """Who is offered the step: the prescriber doses and discharges; the rest is anyone at the chair."""
        return {
            BedsideStep.dose: Permission.dose_administer,
            BedsideStep.discharge: Permission.session_discharge,
            BedsideStep.rems_form: Permission.rems_form_manage,
        }.get(self, Permission.session_monitor)


STEP_TITLES = {
    BedsideStep.pre_dose: "Pre-dose checks",
    BedsideStep.dose: "Dose",
    BedsideStep.infusion_end: "Infusion end",
    BedsideStep.vitals: "Vitals",
    BedsideStep.recovery_check: "Sedation and dissociation check",
    BedsideStep.adverse_event: "Adverse event",
    BedsideStep.therapy: "Therapy record",
    BedsideStep.discharge: "Discharge",
    BedsideStep.rems_form: "REMS patient monitoring form",
}


def steps_open(session: dict[str, Any], monitoring: dict[str, Any]) -> list[BedsideStep]:
    """What the chart offers now, in the order of a session: what the record holds decides, not the console."""
    record, status = session["record"], session["status"]
    if status in ("cancelled", "no_show"):
        return []
    if status == "completed":
        rems = session["route"] == "intranasal_esketamine" and session["rems_submitted_at"] is None
        return [*([] if session["signed_at"] else [BedsideStep.therapy]), *([BedsideStep.rems_form] if rems else [])]
    if record["dose"] is None:
        return [BedsideStep.pre_dose, BedsideStep.dose] if record["pre_dose"] else [BedsideStep.pre_dose]
    steps = [BedsideStep.infusion_end] if monitoring["infusion_running"] else []
    return [
        *steps,
        BedsideStep.vitals,
        BedsideStep.recovery_check,
        BedsideStep.adverse_event,
        BedsideStep.therapy,
        BedsideStep.discharge,
    ]


@dataclass(frozen=True)
class DoseCalculator:
    mg_per_kg: float | None
    dose_mg: float | None
    check: dict[str, Any] | None
    refusal: ServiceRefused | None


class NotANumber(ValueError):
    pass


def _amount(typed: str, what: str) -> float | None:
    try:
        found = float(typed) if typed.strip() else None
    except ValueError:
        found = float("nan")
    if found is not None and not math.isfinite(found):
        raise NotANumber(f"{what}: type a number, such as {'0.5' if what == 'mg/kg' else '56'}")
    return found


async def _calculator(
    apis: SiteApis, user: SignedIn, session_id: uuid.UUID, mg_per_kg: float | None, dose_mg: float | None
) -> DoseCalculator:
    if mg_per_kg is None and dose_mg is None:
        return DoseCalculator(None, None, None, None)
    try:
        check = await apis.read(
            SiteService.sessions,
            f"/sessions/{session_id}/dose-calculation",
            user.token,
            mg_per_kg=mg_per_kg,
            dose_mg=dose_mg,
        )
    except ServiceRefused as refused:
        if refused.status not in (409, 422):
            raise
        return DoseCalculator(mg_per_kg, dose_mg, None, refused)
    return DoseCalculator(mg_per_kg, dose_mg, check, None)


async def _chart(
    request: Request,
    templates: Templates,
    apis: SiteApis,
    user: SignedIn,
    settings: ConsoleSettings,
    session_id: uuid.UUID,
    *,
    answered_step: BedsideStep | None = None,
    answered: Answered | None = None,
    calculator: DoseCalculator | None = None,
    alerted: bool = False,
    done: str = "",
) -> HTMLResponse:
    session = await apis.read(SiteService.sessions, f"/sessions/{session_id}", user.token)
    monitoring: dict[str, Any] = {"infusion_running": False, "gaps": [], "last_alerts": [], "discharge_unmet": []}
    if session["status"] == "in_progress":
        monitoring = await apis.read(SiteService.sessions, f"/sessions/{session_id}/monitoring", user.token)
    banner = await patient_banner(apis, user, uuid.UUID(session["patient_id"]))
    forms: list[dict[str, Any]] = []
    for step in steps_open(session, monitoring):
        if not user.may(step.permission):
            continue
        path = f"/sessions/{{session_id}}/{step.value}"
        sections = await service_form(apis, SiteService.sessions, step.method.lower(), path)
        shown: dict[str, Any] = {"values": _now_values(sections, settings), "problems": {}, "unplaced": []}
        if step is answered_step and answered is not None:
            sections, shown = answered.sections, answered.shown
        elif step is BedsideStep.dose and calculator and calculator.check:
            # The dose form starts from what the calculator worked out.
            filled = {"mg_per_kg": calculator.mg_per_kg, "dose_mg": calculator.dose_mg}
            shown["values"].update({k: [str(v)] for k, v in filled.items() if v is not None})
        forms.append({"step": step, "sections": sections, **shown})
    rems: dict[str, Any] | None = None
    if any(f["step"] is BedsideStep.rems_form for f in forms):
        rems = session["rems_form"] or await apis.read(
            SiteService.sessions, f"/sessions/{session_id}/rems-form", user.token
        )
    status = answered.refusal.status if answered and answered.refusal else 200
    return page(
        templates,
        request,
        "chart.html",
        user,
        rems=rems,
        status_code=status,
        title="Session chart",
        session=session,
        monitoring=monitoring,
        forms=forms,
        calculator=calculator or DoseCalculator(None, None, None, None),
        alerted=alerted,
        done=done,
        **banner,
    )


@router.get("/sessions/{session_id}", response_class=HTMLResponse, dependencies=[needs(Permission.session_record_read)])
async def bedside_chart(
    request: Request,
    templates: Templates,
    apis: Apis,
    user: CurrentUser,
    settings: Settings,
    session_id: uuid.UUID,
    mg_per_kg: Annotated[str, Query(max_length=20)] = "",
    dose_mg: Annotated[str, Query(max_length=20)] = "",
    alerted: bool = False,
    done: str = "",
) -> Response:
    # The calculator's two boxes: the one left empty is not asked for; sessions checks the one given.
    try:
        calculator = await _calculator(apis, user, session_id, _amount(mg_per_kg, "mg/kg"), _amount(dose_mg, "mg"))
    except NotANumber as wrong:
        refused = ServiceRefused(SiteService.sessions, 422, "Unprocessable Content", str(wrong))
        calculator = DoseCalculator(None, None, None, refused)
    return await _chart(
        request, templates, apis, user, settings, session_id, calculator=calculator, alerted=alerted, done=done
    )


@router.post(
    "/sessions/{session_id}/sign", response_class=HTMLResponse, dependencies=[needs(Permission.session_monitor)]
)
async def sign_record(apis: Apis, user: CurrentUser, session_id: uuid.UUID) -> Response:
    await apis.call(SiteService.sessions, "POST", f"/sessions/{session_id}/sign", user.token)
    return RedirectResponse(f"/sessions/{session_id}?done=signed", 303)


@router.post(
    "/sessions/{session_id}/rems-submitted",
    response_class=HTMLResponse,
    dependencies=[needs(Permission.rems_form_manage)],
)
async def rems_submitted(apis: Apis, user: CurrentUser, session_id: uuid.UUID) -> Response:
    await apis.call(SiteService.sessions, "POST", f"/sessions/{session_id}/rems-form/submit", user.token)
    return RedirectResponse(f"/sessions/{session_id}?done=rems-submitted", 303)


@router.post(
    "/sessions/{session_id}/{step}", response_class=HTMLResponse, dependencies=[needs(Permission.session_monitor)]
)
async def record_step(
    request: Request,
    templates: Templates,
    apis: Apis,
    user: CurrentUser,
    settings: Settings,
    session_id: uuid.UUID,
    step: BedsideStep,
) -> Response:
    path = f"/sessions/{session_id}/{step.value}"
    target = FormRequest(SiteService.sessions, f"/sessions/{{session_id}}/{step.value}", path, method=step.method)
    answered = await submit(request, apis, user, settings, target)
    if answered.reply is None:
        return await _chart(request, templates, apis, user, settings, session_id, answered_step=step, answered=answered)
    alerted = step is BedsideStep.vitals and bool(answered.reply.json().get("alerts"))
    # After a save the chart is read again (post, redirect, get): a reload never enters a reading twice.
    return RedirectResponse(f"/sessions/{session_id}?done={step.value}{'&alerted=true' if alerted else ''}", 303)


# --- assessments --------------------------------------------------------------------------------------------------


class MeasureTime(StrEnum):
    """When in care a measure is taken, and so which service keeps it: intake the baseline, sessions the rest."""

    baseline = "baseline"
    pre_session = "pre_session"
    in_course = "in_course"
    follow_up = "follow_up"

    @property
    def service(self) -> SiteService:
        return SiteService.intake if self is MeasureTime.baseline else SiteService.sessions


def score_words(found: ScoreSoFar) -> str:
    band = found.severity.value.replace("_", " ") if found.severity else None
    if found.complete:
        words = f"Total {found.total}"
        if band:
            words += f": {band}"
    else:
        words = f"{found.answered} of {found.item_count} answered: {found.total} so far"
        if band:
            words += f", at least {band}"
    if found.at_or_above_cutoff:
        words += " (at or above the PCL-5 cutoff)"
    return words


def _answers_of(form: dict[str, list[str]], instrument: Instrument) -> list[int | None]:
    answers: list[int | None] = []
    for number in range(1, len(SHEETS[instrument].items) + 1):
        given = (form.get(f"item-{number}") or [""])[0]
        answers.append(int(given) if given.isdigit() else None)
    return answers


async def _assessment_page(
    request: Request,
    templates: Templates,
    apis: SiteApis,
    user: SignedIn,
    settings: ConsoleSettings,
    patient_id: uuid.UUID,
    instrument: Instrument,
    when: MeasureTime,
    answers: list[int | None],
    refusal: ServiceRefused | None = None,
    unanswered: list[int] | None = None,
) -> HTMLResponse:
    banner = await patient_banner(apis, user, patient_id)
    return page(
        templates,
        request,
        "assessment.html",
        user,
        status_code=refusal.status if refusal else 200,
        title=SHEETS[instrument].title,
        sheet=SHEETS[instrument],
        when=when,
        times=list(MeasureTime),
        instruments=list(Instrument),
        answers=answers,
        unanswered=unanswered or [],
        so_far=score_words(score_so_far(instrument, answers, pcl5_cutoff=settings.pcl5_cutoff)),
        refusal=refusal,
        **banner,
    )


@router.get(
    "/patients/{patient_id}/assessments/new",
    response_class=HTMLResponse,
    dependencies=[needs(Permission.assessment_record)],
)
async def assessment_form(
    request: Request,
    templates: Templates,
    apis: Apis,
    user: CurrentUser,
    settings: Settings,
    patient_id: uuid.UUID,
    instrument: Instrument = Instrument.phq9,
    when: MeasureTime = MeasureTime.baseline,
) -> Response:
    answers: list[int | None] = [None] * len(SHEETS[instrument].items)
    return await _assessment_page(request, templates, apis, user, settings, patient_id, instrument, when, answers)


@router.post(
    "/patients/{patient_id}/assessments/new",
    response_class=HTMLResponse,
    dependencies=[needs(Permission.assessment_record)],
)
async def record_assessment(
    request: Request,
    templates: Templates,
    apis: Apis,
    user: CurrentUser,
    settings: Settings,
    patient_id: uuid.UUID,
    instrument: Annotated[Instrument, Form()],
    when: Annotated[MeasureTime, Form()],
) -> Response:
    form = await request.form()
    answers = _answers_of({k: [str(v) for v in form.getlist(k)] for k in form}, instrument)
    unanswered = [n for n, a in enumerate(answers, start=1) if a is None]
    refusal: ServiceRefused | None = None
    if unanswered:
        message = f"every item needs an answer: item {', '.join(map(str, unanswered))} not answered"
        refusal = ServiceRefused(when.service, 422, "Unprocessable Content", message)
    else:
        body = {"instrument": instrument.value, "answers": answers, "context": when.value}
        try:
            await apis.call(when.service, "POST", f"/patients/{patient_id}/assessments", user.token, json=body)
        except ServiceRefused as refused:
            if refused.status not in (409, 422):
                raise
            refusal = refused
    if refusal is None:
        return RedirectResponse(f"/patients/{patient_id}?done=assessed", 303)
    return await _assessment_page(
        request, templates, apis, user, settings, patient_id, instrument, when, answers, refusal, unanswered
    )


class AnswersSoFar(BaseModel):
    answers: list[Annotated[StrictInt, Field(ge=0, le=4)] | None] = Field(max_length=40)


@router.post("/score/{instrument}", dependencies=[needs(Permission.assessment_record)])
async def score_as_typed(
    instrument: Instrument, body: Annotated[AnswersSoFar, Body()], settings: Settings
) -> JSONResponse:
    """The score and band so far, for the form to show as each item is answered (shared/instruments scores it)."""
    try:
        found = score_so_far(instrument, body.answers, pcl5_cutoff=settings.pcl5_cutoff)
    except AnswerError as wrong:
        return JSONResponse({"detail": str(wrong)}, 422)
    return JSONResponse({**asdict(found), "words": score_words(found)})


# --- safety flags ---------------------------------------------------------------------------------------------------


@router.post(
    "/patients/{patient_id}/safety-flags/{service}/{flag_id}",
    response_class=HTMLResponse,
    dependencies=[needs(Permission.safety_flag_acknowledge)],
)
async def acknowledge_flag(
    apis: Apis,
    user: CurrentUser,
    patient_id: uuid.UUID,
    service: SiteService,
    flag_id: uuid.UUID,
    note: Annotated[str, Form(max_length=4000)],
) -> Response:
    if service not in (SiteService.intake, SiteService.sessions):
        raise ServiceRefused(service, 404, "Not Found", "no such safety flag")
    path = f"/patients/{patient_id}/safety-flags/{flag_id}/acknowledge"
    await apis.call(service, "POST", path, user.token, json={"note": note})
    return RedirectResponse(f"/patients/{patient_id}?done=acknowledged", 303)


# --- follow-up: REMS forms and the outcome chart --------------------------------------------------------------------


@router.get("/rems-forms", response_class=HTMLResponse, dependencies=[needs(Permission.rems_form_manage)])
async def rems_forms(request: Request, templates: Templates, apis: Apis, user: CurrentUser) -> Response:
    due = await apis.read(SiteService.sessions, "/rems-forms", user.token)
    names = await patients_named(apis, user, {f["patient_id"] for f in due})
    for form in due:
        form["patient"] = names[form["patient_id"]]
    return page(templates, request, "rems_forms.html", user, title="REMS forms due", due=due)


@router.get(
    "/patients/{patient_id}/outcomes", response_class=HTMLResponse, dependencies=[needs(Permission.outcomes_read)]
)
async def outcome_chart(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, patient_id: uuid.UUID
) -> Response:
    banner = await patient_banner(apis, user, patient_id)
    path = f"/patients/{patient_id}/outcomes"
    outcomes = await read_if_known(apis, SiteService.outcomes, path, user.token) or {"courses": []}
    charts = [
        {
            "id": f"c{n}",
            "title": f"{result['instrument'].upper()} · {course['indication'].replace('_', ' ')} · "
            f"{course['route'].replace('_', ' ')}",
            "course": course,
            "result": result,
            "points": [
                {"x": p["administered_at"][:10], "y": p["total"], "phase": p["phase"]} for p in result["points"]
            ],
            "response": result.get("response_at_or_below"),
            "remission": result.get("remission_below"),
        }
        for n, (course, result) in enumerate(
            (c, r) for c in outcomes["courses"] for r in c["results"].values() if r["points"]
        )
    ]
    return page(
        templates, request, "outcomes.html", user, title="Outcome chart", outcomes=outcomes, charts=charts, **banner
    )
