"""The billing pages: a patient's coverage, Good Faith Estimates, invoices, payments and access barriers. Billing
decides every amount; the console shows billing's figures and sends what the clerk enters."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console.api.deps import Apis, CurrentUser, Settings, SignedIn, Templates, needs
from services.console.api.render import (
    Answered,
    FormRequest,
    page,
    patient_banner,
    read_if_known,
    service_form,
    submit,
)
from services.console.forms import FormSection, chosen_from
from services.console.site_apis import ServiceRefused, SiteApis, SiteService
from shared.auth.permissions import Permission

router = APIRouter()
BILLING_READ = [needs(Permission.billing_read)]


class BillingEntry(StrEnum):
    """What a clerk enters on the billing page, by the last part of its path on billing's API."""

    estimate = "estimates"
    payment = "payments"
    barrier = "access-barriers"

    @property
    def heading(self) -> str:
        return {
            BillingEntry.estimate: "Request a Good Faith Estimate",
            BillingEntry.payment: "Record a payment",
            BillingEntry.barrier: "Record an access barrier",
        }[self]

    @property
    def permission(self) -> Permission:
        return {
            BillingEntry.estimate: Permission.estimate_issue,
            BillingEntry.payment: Permission.payment_record,
            BillingEntry.barrier: Permission.access_barrier_record,
        }[self]


def money(amount: dict[str, Any] | None) -> str:
    """Billing's Money (minor units) as a clerk reads it: $1,234.50."""
    if not amount:
        return ""
    cents = int(amount["cents"])
    sign = "-" if cents < 0 else ""
    symbol = "$" if amount.get("currency", "USD") == "USD" else f"{amount['currency']} "
    return f"{sign}{symbol}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def _course_choice(sections: list[FormSection], courses: list[dict[str, Any]]) -> list[FormSection]:
    """A course is chosen from the patient's courses, not typed as an id."""
    names = {str(c["id"]): f"{c['indication']} · {c['route']} ({c['status']})".replace("_", " ") for c in courses}
    return chosen_from(sections, "course_id", names)


async def _billing_page(
    request: Request,
    templates: Templates,
    apis: SiteApis,
    user: SignedIn,
    patient_id: uuid.UUID,
    answered_entry: BillingEntry | None = None,
    answered: Answered | None = None,
    done: str = "",
) -> HTMLResponse:
    banner = await patient_banner(apis, user, patient_id)
    account = await read_if_known(apis, SiteService.billing, f"/patients/{patient_id}/account", user.token)
    barriers = []
    if account is not None:
        barriers = await apis.read(SiteService.billing, f"/patients/{patient_id}/access-barriers", user.token)
    courses = await read_if_known(apis, SiteService.sessions, f"/patients/{patient_id}/courses", user.token) or []
    for course in courses:
        try:
            course["coverage"] = await apis.read(SiteService.billing, f"/courses/{course['id']}/coverage", user.token)
        except ServiceRefused as refused:
            if refused.status != 404:
                raise
            course["coverage"] = None  # billing has not heard of the course yet
    forms = []
    for entry in BillingEntry:
        if account is None or not user.may(entry.permission):
            continue
        path = f"/patients/{{patient_id}}/{entry.value}"
        sections = await service_form(apis, SiteService.billing, "post", path)
        shown: dict[str, Any] = {"values": {}, "problems": {}, "unplaced": []}
        if entry is answered_entry and answered is not None:
            sections, shown = answered.sections, answered.shown
        forms.append({"entry": entry, "sections": _course_choice(sections, courses), **shown})
    return page(
        templates,
        request,
        "billing.html",
        user,
        status_code=answered.refusal.status if answered and answered.refusal else 200,
        title="Billing",
        account=account,
        barriers=barriers,
        courses=courses,
        forms=forms,
        done=done,
        **banner,
    )


@router.get(
    "/patients/{patient_id}/billing", response_class=HTMLResponse, dependencies=[needs(Permission.billing_read)]
)
async def billing(
    request: Request, templates: Templates, apis: Apis, user: CurrentUser, patient_id: uuid.UUID, done: str = ""
) -> Response:
    return await _billing_page(request, templates, apis, user, patient_id, done=done)


@router.post(
    "/patients/{patient_id}/billing/invoice",
    response_class=HTMLResponse,
    dependencies=[needs(Permission.payment_record)],
)
async def invoice(apis: Apis, user: CurrentUser, patient_id: uuid.UUID) -> Response:
    await apis.call(SiteService.billing, "POST", f"/patients/{patient_id}/invoices", user.token)
    return RedirectResponse(f"/patients/{patient_id}/billing?done=invoiced", 303)


@router.post("/patients/{patient_id}/billing/{entry}", response_class=HTMLResponse)
async def record_entry(
    request: Request,
    templates: Templates,
    apis: Apis,
    user: CurrentUser,
    settings: Settings,
    patient_id: uuid.UUID,
    entry: BillingEntry,
) -> Response:
    if not user.may(entry.permission):
        raise ServiceRefused(SiteService.billing, 403, "Forbidden", entry.permission.value)
    target = FormRequest(
        SiteService.billing, f"/patients/{{patient_id}}/{entry.value}", f"/patients/{patient_id}/{entry.value}"
    )
    answered = await submit(request, apis, user, settings, target)
    if answered.reply is None:
        return await _billing_page(request, templates, apis, user, patient_id, entry, answered)
    if entry is BillingEntry.estimate:
        return RedirectResponse(f"/estimates/{answered.reply.json()['id']}?done=requested", 303)
    return RedirectResponse(f"/patients/{patient_id}/billing?done={entry.value}", 303)


@router.get("/estimates/{estimate_id}", response_class=HTMLResponse, dependencies=BILLING_READ)
async def estimate(
    request: Request,
    templates: Templates,
    apis: Apis,
    user: CurrentUser,
    estimate_id: uuid.UUID,
    done: str = "",
) -> Response:
    found = await apis.read(SiteService.billing, f"/estimates/{estimate_id}", user.token)
    banner = await patient_banner(apis, user, uuid.UUID(found["patient_id"]))
    return page(
        templates, request, "estimate.html", user, title="Good Faith Estimate", found=found, done=done, **banner
    )


@router.post(
    "/estimates/{estimate_id}/issue", response_class=HTMLResponse, dependencies=[needs(Permission.estimate_issue)]
)
async def issue(apis: Apis, user: CurrentUser, estimate_id: uuid.UUID) -> Response:
    await apis.call(SiteService.billing, "POST", f"/estimates/{estimate_id}/issue", user.token)
    return RedirectResponse(f"/estimates/{estimate_id}?done=issued", 303)
