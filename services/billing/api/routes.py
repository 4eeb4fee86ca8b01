"""Billing's HTTP routes: thin; they validate, call the use cases, and shape the reply."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from services.billing.api.deps import (
    BarrierRecorder,
    Cashier,
    CoverageClerk,
    EstimateClerk,
    Reader,
    Refunder,
    SettingsDep,
    Setup,
    SiteZone,
)
from services.billing.api.fhir import router as fhir_router
from services.billing.api.schemas import (
    AccountRead,
    AssistanceEntry,
    CoverageRead,
    EstimateRead,
    EstimateRequest,
    PriorAuthStatusEntry,
)
from services.billing.api.superbill import router as superbills
from services.billing.domain.barriers import AccessBarrier, BarrierEntry
from services.billing.domain.claims import Adjudication, Claim
from services.billing.domain.coverage import PlanBenefits
from services.billing.domain.estimates import EstimateStatus
from services.billing.domain.ledger import Invoice, Payment, PaymentEntry, PaymentPlan, PlanEntry, Refund, RefundEntry
from services.billing.domain.pricing import FinancialAssistance, Price
from services.billing.domain.prior_auth import PriorAuthChange, PriorAuthorisation
from services.billing.service import accounts, claims, estimates, store
from shared.app import UnitOfWorkDep

setup = APIRouter(tags=["prices and plans"])
coverage = APIRouter(tags=["coverage and prior authorisation"])
estimating = APIRouter(tags=["Good Faith Estimates"])
ledger = APIRouter(prefix="/patients/{patient_id}", tags=["account"])
claiming = APIRouter(tags=["claims"])


@setup.put("/plans", response_model=PlanBenefits, summary="Add or change a payer plan's benefits")
async def save_plan(body: PlanBenefits, actor: Setup, uow: UnitOfWorkDep) -> PlanBenefits:
    return await accounts.save_plan(uow, actor, body)


@setup.get("/plans", response_model=list[PlanBenefits], summary="The payer plans the site knows")
async def plans(actor: Reader, uow: UnitOfWorkDep) -> list[PlanBenefits]:
    return await accounts.plans(uow)


@setup.post(
    "/prices", status_code=status.HTTP_201_CREATED, response_model=Price, summary="Add a self-pay price, with its dates"
)
async def add_price(body: Price, actor: Setup, uow: UnitOfWorkDep) -> Price:
    return await accounts.add_price(uow, actor, body)


@setup.get("/prices", response_model=list[Price], summary="The site's self-pay prices, with their dates")
async def prices(actor: Reader, uow: UnitOfWorkDep) -> list[Price]:
    return await store.prices(uow)


@coverage.post(
    "/patients/{patient_id}/assistance",
    response_model=FinancialAssistance,
    summary="Assess the patient's household income against the sliding scale",
)
async def assess_assistance(
    patient_id: uuid.UUID, body: AssistanceEntry, actor: CoverageClerk, uow: UnitOfWorkDep, settings: SettingsDep
) -> FinancialAssistance:
    return await accounts.assess_assistance(
        uow, actor, patient_id, body.household_income, body.household_size, settings.sliding_scale
    )


@coverage.get("/courses/{course_id}/coverage", response_model=CoverageRead, summary="A course's coverage")
async def read_coverage(course_id: uuid.UUID, actor: Reader, uow: UnitOfWorkDep) -> CoverageRead:
    return CoverageRead.of(await accounts.read_coverage(uow, actor, course_id))


@coverage.post(
    "/courses/{course_id}/coverage",
    response_model=CoverageRead,
    summary="Determine the course's coverage again (after a plan's benefits or the coverage on file changed)",
)
async def redetermine_coverage(
    course_id: uuid.UUID, actor: CoverageClerk, uow: UnitOfWorkDep, settings: SettingsDep
) -> CoverageRead:
    course = await store.course_or_404(uow, course_id)
    row = await accounts.determine_coverage(uow, course, site_rems_certified=settings.rems_certified, actor=actor)
    return CoverageRead.of(row)


@coverage.get(
    "/courses/{course_id}/prior-authorisation",
    response_model=PriorAuthorisation,
    summary="A course's prior authorisation",
)
async def read_prior_auth(course_id: uuid.UUID, actor: Reader, uow: UnitOfWorkDep) -> PriorAuthorisation:
    return await accounts.read_prior_auth(uow, actor, course_id)


@coverage.post(
    "/prior-authorisations/{prior_auth_id}/status",
    response_model=PriorAuthorisation,
    summary="Submit, approve (units and dates), deny (reason) or appeal a prior authorisation",
)
async def change_prior_auth(
    prior_auth_id: uuid.UUID, body: PriorAuthStatusEntry, actor: CoverageClerk, uow: UnitOfWorkDep
) -> PriorAuthorisation:
    change = PriorAuthChange.model_validate(body.model_dump(exclude={"evidence"}))
    return await accounts.change_prior_auth(uow, actor, prior_auth_id, change, body.evidence)


@estimating.post(
    "/patients/{patient_id}/estimates",
    status_code=status.HTTP_201_CREATED,
    response_model=EstimateRead,
    summary="The patient asks for a Good Faith Estimate: due within 3 business days",
)
async def request_estimate(
    patient_id: uuid.UUID, body: EstimateRequest, actor: EstimateClerk, uow: UnitOfWorkDep, zone: SiteZone
) -> EstimateRead:
    row = await estimates.request_estimate(uow, actor, patient_id, body.course_id, body.service_on, zone)
    return EstimateRead.of(await estimates.view(uow, row, zone))


@estimating.post(
    "/estimates/{estimate_id}/issue",
    response_model=EstimateRead,
    summary="Issue the estimate: the site's prices, codes and disclaimers (45 CFR 149.610)",
)
async def issue_estimate(
    estimate_id: uuid.UUID, actor: EstimateClerk, uow: UnitOfWorkDep, settings: SettingsDep, zone: SiteZone
) -> EstimateRead:
    row = await estimates.issue_estimate(uow, actor, estimate_id, settings.provider, zone)
    return EstimateRead.of(await estimates.view(uow, row, zone))


@estimating.get("/estimates/{estimate_id}", response_model=EstimateRead, summary="One estimate, with the $400 check")
async def read_estimate(estimate_id: uuid.UUID, actor: Reader, uow: UnitOfWorkDep, zone: SiteZone) -> EstimateRead:
    return EstimateRead.of(await estimates.read_estimate(uow, actor, estimate_id, zone))


@estimating.get("/estimates", response_model=list[EstimateRead], summary="Estimates owed: due and overdue")
async def estimates_owed(
    actor: Reader,
    uow: UnitOfWorkDep,
    zone: SiteZone,
    status_: Annotated[Literal["due", "overdue"] | None, Query(alias="status")] = None,
) -> list[EstimateRead]:
    wanted = {EstimateStatus(status_)} if status_ else {EstimateStatus.due, EstimateStatus.overdue}
    return [EstimateRead.of(v) for v in await estimates.estimates_owed(uow, actor, wanted, zone)]


@ledger.get("/account", response_model=AccountRead, summary="The patient's account: charges, payments, balance")
async def account(patient_id: uuid.UUID, actor: Reader, uow: UnitOfWorkDep) -> AccountRead:
    found = await accounts.account(uow, actor, patient_id)
    return AccountRead.of(found, await store.payment_plans_of(uow, patient_id))


@ledger.post(
    "/invoices",
    status_code=status.HTTP_201_CREATED,
    response_model=Invoice,
    summary="Invoice every charge the patient owes that is not invoiced yet",
)
async def issue_invoice(patient_id: uuid.UUID, actor: Cashier, uow: UnitOfWorkDep) -> Invoice:
    return await accounts.issue_invoice(uow, actor, patient_id)


@ledger.post(
    "/payments",
    status_code=status.HTTP_201_CREATED,
    response_model=Payment,
    summary="Record a payment (card reference, cash, instalment); above the balance only as an overpayment",
)
async def record_payment(patient_id: uuid.UUID, body: PaymentEntry, actor: Cashier, uow: UnitOfWorkDep) -> Payment:
    return await accounts.record_payment(uow, actor, patient_id, body)


@ledger.post(
    "/refunds",
    status_code=status.HTTP_201_CREATED,
    response_model=Refund,
    summary="Refund a credit (never more than was paid, never making a debt)",
)
async def record_refund(patient_id: uuid.UUID, body: RefundEntry, actor: Refunder, uow: UnitOfWorkDep) -> Refund:
    return await accounts.record_refund(uow, actor, patient_id, body)


@ledger.post(
    "/payment-plans",
    status_code=status.HTTP_201_CREATED,
    response_model=PaymentPlan,
    summary="Split the balance into instalments",
)
async def agree_payment_plan(
    patient_id: uuid.UUID, body: PlanEntry, actor: Cashier, uow: UnitOfWorkDep, zone: SiteZone
) -> PaymentPlan:
    return await accounts.agree_payment_plan(uow, actor, patient_id, body, zone)


@ledger.post(
    "/access-barriers",
    status_code=status.HTTP_201_CREATED,
    response_model=AccessBarrier,
    summary="Record care deferred or declined because of cost or coverage",
)
async def record_barrier(
    patient_id: uuid.UUID, body: BarrierEntry, actor: BarrierRecorder, uow: UnitOfWorkDep
) -> AccessBarrier:
    return await accounts.record_barrier(uow, actor, patient_id, body)


@ledger.get("/access-barriers", response_model=list[AccessBarrier], summary="The patient's access barriers")
async def barriers(patient_id: uuid.UUID, actor: Reader, uow: UnitOfWorkDep) -> list[AccessBarrier]:
    return await accounts.barriers(uow, actor, patient_id)


@claiming.post(
    "/courses/{course_id}/claims",
    status_code=status.HTTP_201_CREATED,
    response_model=Claim,
    summary="Draft a claim (CMS-1500 / 837P data) for the course's charges billed to the payer",
)
async def create_claim(course_id: uuid.UUID, actor: CoverageClerk, uow: UnitOfWorkDep, settings: SettingsDep) -> Claim:
    return await claims.create_claim(uow, actor, course_id, settings)


@claiming.post("/claims/{claim_id}/submit", response_model=Claim, summary="Submit a drafted claim to the payer")
async def submit_claim(claim_id: uuid.UUID, actor: CoverageClerk, uow: UnitOfWorkDep) -> Claim:
    return await claims.submit_claim(uow, actor, claim_id)


@claiming.post(
    "/claims/{claim_id}/adjudication",
    response_model=Claim,
    summary="Record the payer's decision: paid, partly paid, or denied with a reason",
)
async def adjudicate_claim(claim_id: uuid.UUID, body: Adjudication, actor: CoverageClerk, uow: UnitOfWorkDep) -> Claim:
    return await claims.adjudicate_claim(uow, actor, claim_id, body)


@claiming.get("/claims/{claim_id}", response_model=Claim, summary="One claim, as CMS-1500 / 837P data (JSON)")
async def read_claim(claim_id: uuid.UUID, actor: Reader, uow: UnitOfWorkDep) -> Claim:
    return await claims.read_claim(uow, actor, claim_id)


@claiming.get("/patients/{patient_id}/claims", response_model=list[Claim], summary="A patient's claims")
async def patient_claims(patient_id: uuid.UUID, actor: Reader, uow: UnitOfWorkDep) -> list[Claim]:
    return await claims.patient_claims(uow, actor, patient_id)


ROUTERS = [setup, coverage, estimating, ledger, claiming, superbills, fhir_router]
