"""The console's pages. Each is thin: read or send through the site's APIs with the user's token, render."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console.api.deps import SESSION_COOKIE, Apis, CurrentUser, Settings, SignedIn, Templates, needs, verify
from services.console.forms import FieldKind, FormSection, SchemaReader, entered, read_answers
from services.console.site_apis import FieldProblem, ServiceRefused, SiteApis, SiteService
from shared.auth.permissions import Permission
from shared.auth.tokens import TokenRejected

# Signing in and out, and the home page: every console. The rest: a site's console only.
account = APIRouter()
router = APIRouter()


def _page(templates: Templates, request: Request, template: str, user: SignedIn | None, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"user": user, "Permission": Permission, **context})


# --- signing in -------------------------------------------------------------------------------------------------


@account.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(
    request: Request, templates: Templates, settings: Settings, token: str = "", why: str = ""
) -> Response:
    if token:  # the ready links `make run` prints: development only
        return await sign_in(request, templates, settings, token)
    return _page(templates, request, "sign_in.html", None, why=why)


@account.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request, templates: Templates, settings: Settings, token: Annotated[str, Form(max_length=8000)]
) -> Response:
    try:
        principal = await verify(request, token.strip())
    except TokenRejected as exc:
        return templates.TemplateResponse(
            request, "sign_in.html", {"user": None, "why": f"The token was not accepted: {exc}"}, status_code=401
        )
    if principal.site != settings.where:
        why = f"This console is {settings.where}'s; the token is for {principal.site}."
        return templates.TemplateResponse(request, "sign_in.html", {"user": None, "why": why}, status_code=403)
    response = RedirectResponse("/", 303)
    response.set_cookie(
        SESSION_COOKIE,
        token.strip(),
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
async def home(request: Request, templates: Templates, settings: Settings, user: CurrentUser) -> Response:
    if settings.role == "network":
        return RedirectResponse("/dashboard", 303)
    return _page(templates, request, "home.html", user)


# --- patients ---------------------------------------------------------------------------------------------------


@router.get("/patients", response_class=HTMLResponse, dependencies=[needs(Permission.patient_read)])
async def search(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, name: str = "", mrn: str = ""
) -> Response:
    found = None
    if name or mrn:
        found = await apis.read(SiteService.intake, "/patients", user.token, name=name, mrn=mrn, limit=50)
    return _page(templates, request, "patients.html", user, found=found, name=name, mrn=mrn)


async def _form(apis: SiteApis, service: SiteService, method: str, path: str) -> list[FormSection]:
    """The form of a service's request: its fields, as the service's own request model states them."""
    reader = SchemaReader(await apis.openapi(service))
    return reader.sections(reader.request_schema(method, path))


async def _submit(
    request: Request, apis: Apis, user: SignedIn, service: SiteService, schema_path: str, path: str
) -> tuple[list[FormSection], dict[str, list[str]], httpx.Response | ServiceRefused]:
    """Send the answers of a form to the service; a refusal of what was entered (409, 422) is returned, to show
    beside the answers, and any other refusal raised, to show as a page."""
    sections = await _form(apis, service, "post", schema_path)
    form = await request.form()
    answers = {k: [str(v) for v in form.getlist(k)] for k in form}
    try:
        return (
            sections,
            answers,
            await apis.call(service, "POST", path, user.token, json=read_answers(sections, answers)),
        )
    except ServiceRefused as refusal:
        if refusal.status not in (409, 422):
            raise
        return sections, answers, refusal


@router.get("/patients/new", response_class=HTMLResponse, dependencies=[needs(Permission.patient_register)])
async def registration(request: Request, templates: Templates, apis: Apis, user: CurrentUser) -> Response:
    sections = await _form(apis, SiteService.intake, "post", "/patients")
    return _page(templates, request, "form.html", user, title="Register a patient", sections=sections, values={})


@router.post("/patients/new", response_class=HTMLResponse, dependencies=[needs(Permission.patient_register)])
async def register(request: Request, templates: Templates, apis: Apis, user: CurrentUser) -> Response:
    sections, answers, reply = await _submit(request, apis, user, SiteService.intake, "/patients", "/patients")
    if isinstance(reply, ServiceRefused):
        return _refused_form(templates, request, user, "Register a patient", sections, answers, reply)
    return RedirectResponse(f"/patients/{reply.json()['id']}?done=registered", 303)


def _refused_form(
    templates: Templates,
    request: Request,
    user: SignedIn,
    title: str,
    sections: list[FormSection],
    answers: dict[str, list[str]],
    refusal: ServiceRefused,
    banner: dict[str, Any] | None = None,
) -> HTMLResponse:
    problems: dict[str, list[str]] = {}
    for problem in refusal.problems:
        problems.setdefault(problem.field, []).append(problem.message)
    return templates.TemplateResponse(
        request,
        "form.html",
        {
            "user": user,
            "Permission": Permission,
            "title": title,
            "sections": sections,
            "values": entered(answers),
            "refusal": refusal,
            "problems": problems,
            "unplaced": _unplaced(refusal.problems, sections),
            **(banner or {}),
        },
        status_code=422 if refusal.status == 422 else refusal.status,
    )


def _unplaced(problems: tuple[FieldProblem, ...], sections: list[FormSection]) -> list[FieldProblem]:
    names = {f.name for s in sections for f in s.fields}
    return [p for p in problems if p.field not in names]


async def patient_banner(apis: SiteApis, user: SignedIn, patient_id: uuid.UUID) -> dict[str, Any]:
    """What every page of a patient shows at the top: who it is, and every open safety flag until a clinician
    acknowledges it (intake's from intake measures, sessions' from in-course measures)."""
    patient = await apis.read(SiteService.intake, f"/patients/{patient_id}", user.token)
    flags: list[dict[str, Any]] = []
    if user.may(Permission.safety_flag_read):
        for service in (SiteService.intake, SiteService.sessions):
            for flag in await apis.read(service, f"/patients/{patient_id}/safety-flags", user.token):
                if flag["status"] == "open":
                    flags.append({**flag, "service": service.value})
    return {"patient": patient, "open_flags": flags}


@router.get("/patients/{patient_id}", response_class=HTMLResponse, dependencies=[needs(Permission.patient_read)])
async def patient(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, patient_id: uuid.UUID, done: str = ""
) -> Response:
    banner = await patient_banner(apis, user, patient_id)
    screenings = consents = None
    if user.may(Permission.screening_read):
        screenings = await apis.read(SiteService.intake, f"/patients/{patient_id}/screenings", user.token)
    if user.may(Permission.consent_read):
        consents = await apis.read(SiteService.intake, f"/patients/{patient_id}/consents", user.token)
    return _page(
        templates, request, "patient.html", user, **banner, screenings=screenings, consents=consents, done=done
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
    sections = await _form(apis, SiteService.intake, "post", SCREENING_PATH)
    return _page(
        templates, request, "form.html", user, title="Eligibility screening", sections=sections, values={}, **banner
    )


@router.post(
    "/patients/{patient_id}/screening", response_class=HTMLResponse, dependencies=[needs(Permission.screening_record)]
)
async def screen(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, patient_id: uuid.UUID
) -> Response:
    path = SCREENING_PATH.format(patient_id=patient_id)
    sections, answers, reply = await _submit(request, apis, user, SiteService.intake, SCREENING_PATH, path)
    banner = await patient_banner(apis, user, patient_id)
    if isinstance(reply, ServiceRefused):
        return _refused_form(templates, request, user, "Eligibility screening", sections, answers, reply, banner)
    return _page(templates, request, "screening_result.html", user, screening=reply.json(), **banner)


@router.get(
    "/patients/{patient_id}/consent", response_class=HTMLResponse, dependencies=[needs(Permission.consent_record)]
)
async def consent_form(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, patient_id: uuid.UUID
) -> Response:
    banner = await patient_banner(apis, user, patient_id)
    documents = await apis.read(SiteService.intake, "/consent-documents", user.token)
    sections = await _form(apis, SiteService.intake, "post", CONSENT_PATH)
    # The document signed is chosen from the site's documents, not typed as a number.
    titles = {str(d["id"]): f"{d['title']} (version {d['version']}, from {d['effective_date']})" for d in documents}
    for section in sections:
        section.fields = [
            dataclasses.replace(f, kind=FieldKind.choice, options=tuple(titles), labels=titles)
            if f.name == "document_id"
            else f
            for f in section.fields
        ]
    return _page(
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
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, patient_id: uuid.UUID
) -> Response:
    path = f"/patients/{patient_id}/consents"
    sections, answers, reply = await _submit(request, apis, user, SiteService.intake, CONSENT_PATH, path)
    if isinstance(reply, ServiceRefused):
        banner = await patient_banner(apis, user, patient_id)
        return _refused_form(templates, request, user, "Informed consent", sections, answers, reply, banner)
    return RedirectResponse(f"/patients/{patient_id}?done=consented", 303)
