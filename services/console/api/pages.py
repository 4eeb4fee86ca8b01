"""The console's pages. Each is thin: read or send through the site's APIs with the user's token, render."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console.api.care import day_schedule
from services.console.api.deps import SESSION_COOKIE, Apis, CurrentUser, Settings, Templates, needs, verify
from services.console.api.render import (
    FormRequest,
    page,
    patient_banner,
    read_if_known,
    refused_form,
    service_form,
    submit,
)
from services.console.forms import chosen_from
from services.console.settings import ConsoleSettings
from services.console.site_apis import SiteService
from shared.auth.permissions import Permission
from shared.auth.tokens import TokenRejected
from shared.instants import local_date

# Signing in and out, and the home page: every console. The rest: a site's console only.
account = APIRouter()
router = APIRouter()


# --- signing in -------------------------------------------------------------------------------------------------


@account.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(
    request: Request, templates: Templates, settings: Settings, token: str = "", why: str = ""
) -> Response:
    if token and settings.environment == "development":  # the ready links `make run` prints; never a token in a URL
        return await sign_in(request, templates, settings, token)
    return page(templates, request, "sign_in.html", None, why=why, oidc=settings.oidc_configured)


@account.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request, templates: Templates, settings: Settings, token: Annotated[str, Form(max_length=8000)]
) -> Response:
    return await start_session(request, templates, settings, token.strip(), RedirectResponse("/", 303))


async def start_session(
    request: Request, templates: Templates, settings: ConsoleSettings, token: str, then: Response
) -> Response:
    """The session for a token, checked as the services check it (pasted, or from the OIDC issuer): ``then``
    with the session cookie, or the sign-in page saying why not."""
    try:
        principal = await verify(request, token)
    except TokenRejected as exc:
        why = f"The token was not accepted: {exc}"
        return page(templates, request, "sign_in.html", None, 401, why=why, oidc=settings.oidc_configured)
    if principal.site != settings.where:
        why = f"This console is {settings.where}'s; the token is for {principal.site}."
        return page(templates, request, "sign_in.html", None, 403, why=why, oidc=settings.oidc_configured)
    response = then
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings.environment == "production",
        path="/",
    )
    return response


@account.post("/sign-out")
async def sign_out() -> Response:
    response = RedirectResponse("/sign-in", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@account.get("/", response_class=HTMLResponse)
async def home(request: Request, templates: Templates, apis: Apis, settings: Settings, user: CurrentUser) -> Response:
    if settings.role == "network":
        return RedirectResponse("/dashboard", 303)
    today: dict[str, Any] = {}
    if user.may(Permission.session_read):
        today = await day_schedule(apis, user, local_date(datetime.now(settings.zone), settings.zone))
    return page(templates, request, "home.html", user, **today)


# --- patients ---------------------------------------------------------------------------------------------------


@router.get("/patients", response_class=HTMLResponse, dependencies=[needs(Permission.patient_read)])
async def search(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, name: str = "", mrn: str = ""
) -> Response:
    found = None
    if name or mrn:
        found = await apis.read(SiteService.intake, "/patients", user.token, name=name, mrn=mrn, limit=50)
    return page(templates, request, "patients.html", user, found=found, name=name, mrn=mrn)


@router.get("/patients/new", response_class=HTMLResponse, dependencies=[needs(Permission.patient_register)])
async def registration(request: Request, templates: Templates, apis: Apis, user: CurrentUser) -> Response:
    sections = await service_form(apis, SiteService.intake, "post", "/patients")
    return page(templates, request, "form.html", user, title="Register a patient", sections=sections, values={})


@router.post("/patients/new", response_class=HTMLResponse, dependencies=[needs(Permission.patient_register)])
async def register(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, settings: Settings
) -> Response:
    answered = await submit(request, apis, user, settings, FormRequest(SiteService.intake, "/patients", "/patients"))
    if answered.reply is None:
        return refused_form(templates, request, user, "Register a patient", answered)
    return RedirectResponse(f"/patients/{answered.reply.json()['id']}?done=registered", 303)


@router.get("/patients/{patient_id}", response_class=HTMLResponse, dependencies=[needs(Permission.patient_read)])
async def patient(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, patient_id: uuid.UUID, done: str = ""
) -> Response:
    banner = await patient_banner(apis, user, patient_id)
    screenings = consents = courses = assessments = None
    if user.may(Permission.screening_read):
        screenings = await apis.read(SiteService.intake, f"/patients/{patient_id}/screenings", user.token)
    if user.may(Permission.consent_read):
        consents = await apis.read(SiteService.intake, f"/patients/{patient_id}/consents", user.token)
    if user.may(Permission.course_read):
        courses = await read_if_known(apis, SiteService.sessions, f"/patients/{patient_id}/courses", user.token) or []
        if user.may(Permission.session_read):
            for course in courses:
                path = f"/courses/{course['id']}/sessions"
                course["sessions"] = await apis.read(SiteService.sessions, path, user.token)
    if user.may(Permission.assessment_read):
        # Baseline measures are intake's, measures in and after a course sessions'.
        taken = [
            *await apis.read(SiteService.intake, f"/patients/{patient_id}/assessments", user.token),
            *(await read_if_known(apis, SiteService.sessions, f"/patients/{patient_id}/assessments", user.token) or []),
        ]
        assessments = sorted(taken, key=lambda a: str(a["administered_at"]))
    return page(
        templates,
        request,
        "patient.html",
        user,
        **banner,
        screenings=screenings,
        consents=consents,
        courses=courses,
        assessments=assessments,
        done=done,
    )


# --- screening and consent ----------------------------------------------------------------------------------------


SCREENING_PATH = "/patients/{patient_id}/screenings"
CONSENT_PATH = "/patients/{patient_id}/consents"


@router.get(
    "/patients/{patient_id}/screening", response_class=HTMLResponse, dependencies=[needs(Permission.screening_record)]
)
async def screening_form(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, patient_id: uuid.UUID
) -> Response:
    banner = await patient_banner(apis, user, patient_id)
    sections = await service_form(apis, SiteService.intake, "post", SCREENING_PATH)
    return page(
        templates, request, "form.html", user, title="Eligibility screening", sections=sections, values={}, **banner
    )


@router.post(
    "/patients/{patient_id}/screening", response_class=HTMLResponse, dependencies=[needs(Permission.screening_record)]
)
async def screen(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, settings: Settings, patient_id: uuid.UUID
) -> Response:
    target = FormRequest(SiteService.intake, SCREENING_PATH, SCREENING_PATH.format(patient_id=patient_id))
    answered = await submit(request, apis, user, settings, target)
    banner = await patient_banner(apis, user, patient_id)
    if answered.reply is None:
        return refused_form(templates, request, user, "Eligibility screening", answered, banner)
    return page(templates, request, "screening_result.html", user, screening=answered.reply.json(), **banner)


@router.get(
    "/patients/{patient_id}/consent", response_class=HTMLResponse, dependencies=[needs(Permission.consent_record)]
)
async def consent_form(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, patient_id: uuid.UUID
) -> Response:
    banner = await patient_banner(apis, user, patient_id)
    documents = await apis.read(SiteService.intake, "/consent-documents", user.token)
    sections = await service_form(apis, SiteService.intake, "post", CONSENT_PATH)
    # The document signed is chosen from the site's documents, not typed as a number.
    titles = {str(d["id"]): f"{d['title']} (version {d['version']}, from {d['effective_date']})" for d in documents}
    sections = chosen_from(sections, "document_id", titles)
    return page(
        templates,
        request,
        "form.html",
        user,
        title="Informed consent",
        sections=sections,
        values={},
        documents=documents,
        **banner,
    )


@router.post(
    "/patients/{patient_id}/consent", response_class=HTMLResponse, dependencies=[needs(Permission.consent_record)]
)
async def record_consent(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, settings: Settings, patient_id: uuid.UUID
) -> Response:
    target = FormRequest(SiteService.intake, CONSENT_PATH, CONSENT_PATH.format(patient_id=patient_id))
    answered = await submit(request, apis, user, settings, target)
    if answered.reply is None:
        banner = await patient_banner(apis, user, patient_id)
        return refused_form(templates, request, user, "Informed consent", answered, banner)
    return RedirectResponse(f"/patients/{patient_id}?done=consented", 303)
