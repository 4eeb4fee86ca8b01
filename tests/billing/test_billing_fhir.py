"""Billing's FHIR R4 read: the mappers on model objects, then the /fhir routes on a real database (SQLite and
PostgreSQL), driven through billing's own API and the events intake and sessions send.

Coverage, Claim (use claim and use predetermination) and ExplanationOfBenefit are validated with fhir.resources'
R4B models (R4B is R4 for these three), plus the required bindings and invariants the models do not check, exact
money and a generated narrative on each. HL7's own validator runs over them in tests/test_fhir_hl7_validator.py,
which drives billing with this module's scenario (``billing_resources``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fhir.resources.R4B import get_fhir_model_class
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import col, select

from services.billing.api.fhir import router as fhir_router
from services.billing.api.routes import ROUTERS
from services.billing.app import create_app
from services.billing.domain.claims import Adjudication, AdjudicationOutcome, Claim, ClaimParty, ServiceLine
from services.billing.domain.coverage import CoverageOnFile as OnFile
from services.billing.domain.coverage import PayerType, PlanBenefits
from services.billing.domain.estimates import (
    EstimateItem,
    EstimateProvider,
    GoodFaithEstimate,
    Patient,
    SeparateItem,
)
from services.billing.domain.money import MAX_CENTS, Money
from services.billing.fhir import (
    claim_resource,
    coverage_resource,
    explanation_of_benefit_resource,
    money,
    predetermination_resource,
)
from shared.audit import AuditEntry
from shared.events.intake import CoverageOnFile, PatientUpdated
from shared.fhir import FHIR_JSON
from shared.settings import ServiceSettings
from shared.treatment import Route
from tests.billing.conftest import PROVIDER, Billing, billing_settings
from tests.billing.test_billing_api import NOON_2026, completed, course, priced, usd
from tests.billing.test_claims_api import INSURED, PLAN, approved
from tests.fhir_validation import assert_valid_r4, values
from tests.harness import app_in_process

# Written out here rather than read from services/billing/fhir.py, so the test checks the systems themselves.
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
NPI = "http://hl7.org/fhir/sid/us-npi"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
CARIN_ADJUDICATION = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication"
SELF_PAY = "http://terminology.hl7.org/CodeSystem/coverage-selfpay"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
MEDICARE_PLAN = {**PLAN, "payer": "Medicare", "plan": "Part B", "payer_type": "medicare"}

# --- R4 checks the model library does not make ------------------------------------------------------------------

REQUIRED_CODES: dict[tuple[str, ...], frozenset[str]] = {
    ("Coverage", "status"): frozenset({"active", "cancelled", "draft", "entered-in-error"}),
    ("Claim", "status"): frozenset({"active", "cancelled", "draft", "entered-in-error"}),
    ("Claim", "use"): frozenset({"claim", "preauthorization", "predetermination"}),
    ("ExplanationOfBenefit", "status"): frozenset({"active", "cancelled", "draft", "entered-in-error"}),
    ("ExplanationOfBenefit", "use"): frozenset({"claim", "preauthorization", "predetermination"}),
    ("ExplanationOfBenefit", "outcome"): frozenset({"queued", "complete", "error", "partial"}),
    ("ExplanationOfBenefit", "processNote", "type"): frozenset({"display", "print", "printoper"}),
}


def _money_values(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [m for item in node for m in _money_values(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if "currency" in node else []
    return found + [m for value in node.values() for m in _money_values(value)]


def _billing_checks(resource: dict[str, Any], container: dict[str, Any] | None = None) -> None:
    kind = resource["resourceType"]
    for (resource_type, *path), allowed in REQUIRED_CODES.items():
        if resource_type == kind:
            for value in values(resource, tuple(path)):
                assert value in allowed, f"{kind}.{'.'.join(path)} = {value!r} is not in the required value set"
    for amount in _money_values(resource):
        assert amount["currency"] == "USD"
        cents(amount)  # a whole number of cents
    if container is not None:
        assert "contained" not in resource and "text" not in resource, "dom-2; the container's narrative tells"
        assert f'"#{resource["id"]}"' in json.dumps(container), "dom-3: a contained resource is referenced"
    for contained in resource.get("contained", []):
        get_fhir_model_class(contained["resourceType"]).model_validate(contained)
        _billing_checks(contained, resource)
    if kind == "Organization":
        assert "name" in resource or "identifier" in resource, "org-1"
    if kind in ("Claim", "ExplanationOfBenefit"):
        diagnoses = [d["sequence"] for d in resource.get("diagnosis", [])]
        team = [c["sequence"] for c in resource.get("careTeam", [])]
        items = [i["sequence"] for i in resource["item"]]
        for sequences in (diagnoses, team, items):
            assert sequences == list(range(1, len(sequences) + 1)), "sequences count from 1"
        for item in resource["item"]:
            assert set(item.get("diagnosisSequence", [])) <= set(diagnoses)
            assert set(item.get("careTeamSequence", [])) <= set(team)
            if "unitPrice" in item:  # net = quantity x unitPrice
                assert cents(item["unitPrice"]) * item["quantity"]["value"] == cents(item["net"])
        assert len([i for i in resource["insurance"] if i["focal"]]) == 1
        for reference in values(resource, ("insurance", "coverage", "reference")):
            assert reference.startswith(("Coverage/", "#"))
    if kind == "Claim":
        assert cents(resource["total"]) == sum(cents(i["net"]) for i in resource["item"])


def assert_valid_billing_r4(resource: dict[str, Any]) -> None:
    assert_valid_r4(resource)
    if resource["resourceType"] == "Bundle":
        for entry in resource.get("entry", []):
            _billing_checks(entry["resource"])
    else:
        _billing_checks(resource)


def cents(amount: dict[str, Any]) -> int:
    """A FHIR Money's value in cents, read exactly from its JSON text."""
    exact = Decimal(json.dumps(amount["value"])).scaleb(2)
    assert exact == exact.to_integral_value(), f"{amount} is not a whole number of cents"
    return int(exact)


def totals(resource: dict[str, Any]) -> dict[str, int]:
    return {t["category"]["coding"][0]["code"]: cents(t["amount"]) for t in resource["total"]}


# --- the mappers on model objects -------------------------------------------------------------------------------

PATIENT_ID = uuid.UUID("3a0d8c52-5b0e-4c1f-9d7e-1f2a3b4c5d6e")
CLAIM_ID = uuid.UUID("b7c1e0f2-93a4-4d5e-8f60-718293a4b5c6")
CREATED = datetime(2026, 1, 5, 15, 30, tzinfo=UTC)
PROVIDER_MODEL = EstimateProvider.model_validate(PROVIDER)
OTHER_NPI = "1245319599"  # a valid NPI (Luhn with prefix 80840)


def a_claim(**changes: Any) -> Claim:
    party = ClaimParty(name="Ada Lovelace", birth_date=date(1980, 1, 1), member_id="DH-7")
    line = {"service_on": date(2026, 1, 2), "rendering_npi": PROVIDER_MODEL.npi, "charge_id": uuid.uuid4()}
    claim = Claim(
        id=CLAIM_ID,
        patient_id=PATIENT_ID,
        course_id=uuid.uuid4(),
        patient=party,
        subscriber=party,
        payer="Demo Health",
        plan="Standard",
        billing_provider=PROVIDER_MODEL,
        diagnoses=("F33.9", "F41.1"),
        prior_authorisation_number="PA-991",
        lines=(
            ServiceLine(code="G2082", diagnosis_pointers="A", charge=Money(cents=300_00), units=1, **line),
            ServiceLine(code="J0013", diagnosis_pointers="AB", charge=Money(cents=588_00), units=56, **line),
            ServiceLine(
                code="99214",
                modifiers=("25",),
                diagnosis_pointers="B",
                charge=Money(cents=100_01),
                units=3,
                **{**line, "service_on": date(2026, 1, 6), "rendering_npi": OTHER_NPI},
            ),
        ),
        created_at=CREATED,
    )
    return Claim.model_validate({**claim.model_dump(), **changes})


ON_FILE = OnFile(self_pay=False, payer="Demo Health", plan="Standard", member_id="DH-7")
BENEFITS = PlanBenefits.model_validate(PLAN)


@given(st.integers(min_value=-MAX_CENTS, max_value=MAX_CENTS))
def test_money_goes_out_exact_at_every_magnitude(amount: int) -> None:
    written = json.dumps(money(Money(cents=amount)))
    value = json.loads(written, parse_float=Decimal)["value"]
    assert value == Decimal(amount).scaleb(-2), written


def test_money_reads_back_to_the_cent() -> None:
    for amount, text in ((588_00, "588.0"), (10_50, "10.5"), (1, "0.01"), (-9_999_999_99, "-9999999.99")):
        assert json.dumps(money(Money(cents=amount))) == f'{{"value": {text}, "currency": "USD"}}'


def test_insured_coverage_names_the_member_the_plan_and_the_payer() -> None:
    resource = coverage_resource(PATIENT_ID, ON_FILE, BENEFITS, CREATED)
    assert_valid_billing_r4(resource)
    patient = {"reference": f"Patient/{PATIENT_ID}"}
    assert resource["id"] == str(PATIENT_ID) and resource["status"] == "active"
    assert resource["meta"] == {"lastUpdated": "2026-01-05T15:30:00+00:00"}
    assert (resource["beneficiary"], resource["subscriber"], resource["subscriberId"]) == (patient, patient, "DH-7")
    assert resource["relationship"]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": "self", "display": "Self"}
    ]
    assert resource["type"]["coding"] == [
        {"system": ACT_CODE, "code": "HIP", "display": "health insurance plan policy"}
    ]
    [plan] = resource["class"]
    assert plan["type"]["coding"][0]["code"] == "plan" and plan["value"] == plan["name"] == "Standard"
    assert resource["payor"] == [{"reference": "#payer", "display": "Demo Health"}]
    [payer] = resource["contained"]
    assert (payer["resourceType"], payer["name"]) == ("Organization", "Demo Health")
    assert "Demo Health" in resource["text"]["div"] and "DH-7" in resource["text"]["div"]


def test_coverage_type_follows_the_payer_type_and_is_left_out_when_unknown() -> None:
    medicare = PlanBenefits.model_validate({**PLAN, "payer_type": PayerType.medicare})
    assert coverage_resource(PATIENT_ID, ON_FILE, medicare)["type"]["coding"][0]["code"] == "PUBLICPOL"
    for benefits in (None, PlanBenefits.model_validate({**PLAN, "payer_type": PayerType.other})):
        resource = coverage_resource(PATIENT_ID, ON_FILE, benefits)
        assert_valid_billing_r4(resource)
        assert "type" not in resource and "meta" not in resource


def test_self_pay_coverage_is_paid_by_the_patient() -> None:
    resource = coverage_resource(PATIENT_ID, OnFile(self_pay=True))
    assert_valid_billing_r4(resource)
    assert resource["type"] == {"coding": [{"system": SELF_PAY, "code": "pay", "display": "Pay"}], "text": "Self-pay"}
    assert resource["payor"] == [{"reference": f"Patient/{PATIENT_ID}"}]
    assert not {"subscriber", "subscriberId", "class", "contained", "relationship"} & resource.keys()


def test_a_claim_carries_the_cms_1500_data() -> None:
    resource = claim_resource(a_claim(), ON_FILE, version=3)
    assert_valid_billing_r4(resource)
    assert (resource["resourceType"], resource["id"], resource["meta"]) == ("Claim", str(CLAIM_ID), {"versionId": "3"})
    assert (resource["status"], resource["use"]) == ("draft", "claim")
    assert resource["type"]["coding"] == [{"system": CLAIM_TYPE, "code": "professional", "display": "Professional"}]
    assert resource["priority"]["coding"][0]["code"] == "normal"
    assert resource["patient"] == {"reference": f"Patient/{PATIENT_ID}"}
    assert resource["created"] == "2026-01-05T15:30:00+00:00"
    assert resource["billablePeriod"] == {"start": "2026-01-02", "end": "2026-01-06"}
    assert resource["provider"] == {
        "identifier": {"system": NPI, "value": "1234567893"},
        "display": "Kapnet North Clinic",
    }
    assert resource["insurer"] == {"reference": "#payer", "display": "Demo Health"}
    assert resource["insurance"] == [
        {"sequence": 1, "focal": True, "coverage": {"reference": f"Coverage/{PATIENT_ID}"}, "preAuthRef": ["PA-991"]}
    ]
    assert [(d["sequence"], d["diagnosisCodeableConcept"]["coding"]) for d in resource["diagnosis"]] == [
        (1, [{"system": ICD10CM, "code": "F33.9"}]),
        (2, [{"system": ICD10CM, "code": "F41.1"}]),
    ]
    visit, drug, em = resource["item"]
    assert visit["productOrService"]["coding"] == [{"system": HCPCS, "code": "G2082"}]
    assert drug["productOrService"]["coding"] == [{"system": HCPCS, "code": "J0013"}]
    assert em["productOrService"]["coding"] == [{"system": CPT, "code": "99214"}]
    assert em["modifier"] == [{"coding": [{"system": CPT, "code": "25"}]}]
    assert [i["diagnosisSequence"] for i in resource["item"]] == [[1], [1, 2], [2]]
    assert [i["careTeamSequence"] for i in resource["item"]] == [[1], [1], [2]]
    assert [c["provider"]["identifier"]["value"] for c in resource["careTeam"]] == ["1234567893", OTHER_NPI]
    assert drug["servicedDate"] == "2026-01-02" and drug["quantity"] == {"value": 56}
    assert drug["locationCodeableConcept"]["coding"] == [{"system": POS, "code": "11", "display": "Office"}]
    assert (drug["unitPrice"], drug["net"]) == ({"value": 10.5, "currency": "USD"}, {"value": 588.0, "currency": "USD"})
    assert "unitPrice" not in em, "$100.01 for 3 units has no exact unit price: the net alone is given"
    assert cents(resource["total"]) == 300_00 + 588_00 + 100_01
    assert "PA-991" in resource["text"]["div"] and "$988.01" in resource["text"]["div"]


def test_a_claim_no_longer_under_the_coverage_on_file_contains_the_coverage_it_was_made_under() -> None:
    for on_file in (OnFile(self_pay=False, payer="Demo Health", plan="Standard", member_id="DH-8"), None):
        resource = claim_resource(a_claim(status="submitted", prior_authorisation_number=None), on_file)
        assert_valid_billing_r4(resource)
        assert resource["status"] == "active" and "preAuthRef" not in resource["insurance"][0]
        assert resource["insurance"][0]["coverage"] == {"reference": "#coverage"}
        payer, coverage = resource["contained"]
        assert (payer["id"], coverage["id"], coverage["subscriberId"]) == ("payer", "coverage", "DH-7")
        assert coverage["payor"] == [{"reference": "#payer", "display": "Demo Health"}]


def adjudicated(outcome: AdjudicationOutcome, paid: int, owed: int, reason: str | None = None) -> Claim:
    claim = a_claim(status="submitted")
    decision = Adjudication(
        outcome=outcome,
        paid=Money(cents=paid),
        patient_responsibility=Money(cents=owed),
        denial_reason=reason,
        payer_claim_number="DH-C-1",
    )
    claim.adjudicate(decision, CREATED + timedelta(days=9))
    return claim


def test_an_explanation_of_benefit_tells_the_payers_decision() -> None:
    claim = adjudicated(AdjudicationOutcome.partly_paid, 700_00, 50_00)
    resource = explanation_of_benefit_resource(claim, ON_FILE)
    assert_valid_billing_r4(resource)
    assert (resource["status"], resource["use"], resource["outcome"]) == ("active", "claim", "complete")
    assert resource["claim"] == {"reference": f"Claim/{CLAIM_ID}"}
    assert resource["created"] == "2026-01-14T15:30:00+00:00"
    assert resource["insurer"] == {"reference": "#payer", "display": "Demo Health"}
    assert resource["insurance"] == [
        {"focal": True, "coverage": {"reference": f"Coverage/{PATIENT_ID}"}, "preAuthRef": ["PA-991"]}
    ]
    assert resource["identifier"] == [{"value": "DH-C-1", "assigner": {"display": "Demo Health"}}]
    assert totals(resource) == {"submitted": 988_01, "benefit": 700_00, "memberliability": 50_00}
    assert [t["category"]["coding"][0]["system"] for t in resource["total"]] == [
        ADJUDICATION,
        ADJUDICATION,
        CARIN_ADJUDICATION,
    ]
    for item, net in zip(resource["item"], (300_00, 588_00, 100_01), strict=True):
        [submitted] = item["adjudication"]
        assert submitted["category"]["coding"][0]["code"] == "submitted" and cents(submitted["amount"]) == net
    assert resource["payment"]["type"]["coding"][0]["code"] == "complete"
    assert cents(resource["payment"]["amount"]) == 700_00
    assert resource["disposition"] == "Partly paid: $700.00 of $988.01 billed"
    assert "processNote" not in resource
    assert "$238.01" in resource["text"]["div"], "what neither the payer nor the patient pays"


def test_a_denial_is_a_complete_adjudication_with_its_reason() -> None:
    reason = "Service not covered <per policy> & plan terms"
    claim = adjudicated(AdjudicationOutcome.denied, 0, 988_01, reason)
    resource = explanation_of_benefit_resource(claim, ON_FILE)
    assert_valid_billing_r4(resource)
    assert resource["outcome"] == "complete"
    assert resource["disposition"] == f"Denied: {reason}"
    assert resource["processNote"] == [{"number": 1, "type": "display", "text": f"Denied: {reason}"}]
    benefit, liability = resource["adjudication"]
    assert benefit["reason"] == {"text": reason} and cents(benefit["amount"]) == 0
    assert cents(liability["amount"]) == 988_01
    assert resource["payment"] == {"amount": {"value": 0.0, "currency": "USD"}}
    assert "&lt;per policy&gt; &amp; plan" in resource["text"]["div"]


def test_an_unadjudicated_claim_has_no_explanation_of_benefit() -> None:
    with pytest.raises(ValueError, match="not adjudicated"):
        explanation_of_benefit_resource(a_claim(), ON_FILE)


def an_estimate(**changes: Any) -> GoodFaithEstimate:
    second = EstimateProvider.model_validate({**PROVIDER, "name": "Dr K", "npi": OTHER_NPI})
    return GoodFaithEstimate(
        patient=Patient(name="Ada Lovelace", date_of_birth=date(1980, 1, 1)),
        primary_service="ketamine infusion session with psychotherapy",
        scheduled_for=date(2026, 3, 2),
        providers=(PROVIDER_MODEL, second),
        items=(
            EstimateItem(
                service_code="96365",
                description="96365 IV infusion; 90837 psychotherapy",
                quantity=1,
                expected_charge=Money(cents=600_00),
                provider_npi=PROVIDER_MODEL.npi,
                diagnosis_codes=("F33.9",),
            ),
            EstimateItem(
                service_code="Z-OTHER",
                description="Follow-up call",
                quantity=3,
                expected_charge=Money(cents=100_00),
                provider_npi=OTHER_NPI,
            ),
        ),
        separately_billed=(SeparateItem(description="Integration therapy", service_code="90837"),),
    ).model_copy(update=changes)  # scheduled_for only: no validation needed


ESTIMATE_ID = uuid.UUID("0f9e8d7c-6b5a-4392-8170-6f5e4d3c2b1a")


def test_an_estimate_is_a_self_pay_predetermination() -> None:
    resource = predetermination_resource(ESTIMATE_ID, PATIENT_ID, an_estimate(), CREATED, OnFile(self_pay=True))
    assert_valid_billing_r4(resource)
    assert (resource["id"], resource["status"], resource["use"]) == (str(ESTIMATE_ID), "active", "predetermination")
    assert resource["type"]["coding"][0]["code"] == "professional"
    assert resource["insurance"] == [
        {"sequence": 1, "focal": True, "coverage": {"reference": f"Coverage/{PATIENT_ID}"}}
    ]
    assert not {"insurer", "contained", "meta"} & resource.keys()
    assert resource["provider"]["identifier"] == {"system": NPI, "value": "1234567893"}
    assert [c["provider"]["display"] for c in resource["careTeam"]] == ["Kapnet North Clinic", "Dr K"]
    infusion, call = resource["item"]
    assert infusion["productOrService"] == {
        "coding": [{"system": CPT, "code": "96365"}],
        "text": "96365 IV infusion; 90837 psychotherapy",
    }
    assert call["productOrService"] == {"text": "Follow-up call"}, "a code kapnet cannot name goes uncoded"
    assert (infusion["diagnosisSequence"], "diagnosisSequence" in call) == ([1], False)
    assert (infusion["careTeamSequence"], call["careTeamSequence"]) == ([1], [2])
    assert infusion["servicedDate"] == "2026-03-02" and resource["billablePeriod"]["start"] == "2026-03-02"
    assert "unitPrice" not in call, "$100.00 for 3 has no exact unit price"
    assert cents(resource["total"]) == 700_00
    assert "$400" in resource["text"]["div"] and "not a contract" in resource["text"]["div"]
    assert "billed separately: Integration therapy (90837)." in resource["text"]["div"]


def test_an_estimate_for_a_patient_now_insured_stays_self_pay() -> None:
    resource = predetermination_resource(ESTIMATE_ID, PATIENT_ID, an_estimate(scheduled_for=None), CREATED, ON_FILE)
    assert_valid_billing_r4(resource)
    assert resource["insurance"][0]["coverage"] == {"reference": "#coverage"}
    [coverage] = resource["contained"]
    assert coverage["type"]["coding"][0] == {"system": SELF_PAY, "code": "pay", "display": "Pay"}
    assert coverage["payor"] == [{"reference": f"Patient/{PATIENT_ID}"}]
    assert "billablePeriod" not in resource and all("servicedDate" not in i for i in resource["item"])


# --- the routes -------------------------------------------------------------------------------------------------


def test_the_fhir_router_is_wired_into_billing() -> None:
    assert fhir_router in ROUTERS


def billing_app(settings: ServiceSettings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
async def fhir(database_url: str, tmp_path: Path) -> AsyncIterator[Billing]:
    settings = billing_settings(database_url, tmp_path, rems_certified=True)
    async with app_in_process(billing_app(settings)) as client:
        yield Billing(client, settings)


@dataclass
class Scenario:
    """What billing_resources made: the patients, claims and estimates, by what each shows."""

    insured: uuid.UUID
    switched: uuid.UUID
    self_pay: uuid.UUID
    claims: dict[str, str]
    estimates: dict[str, str]


async def post(billing: Billing, path: str, body: dict[str, Any] | None = None, role: str = "billing") -> Any:
    reply = await billing.client.post(path, json=body, headers=billing.as_(role))
    assert reply.is_success, reply.text
    return reply.json()


async def a_claim_for(
    billing: Billing, course_id: uuid.UUID, decision: dict[str, Any] | None, submit: bool = True
) -> str:
    claim = await post(billing, f"/courses/{course_id}/claims")
    if submit:
        await post(billing, f"/claims/{claim['id']}/submit")
    if decision is not None:
        await post(billing, f"/claims/{claim['id']}/adjudication", decision)
    return str(claim["id"])


async def an_estimate_for(billing: Billing, patient: uuid.UUID, course_id: uuid.UUID) -> str:
    body = {"course_id": str(course_id), "service_on": "2026-03-02"}
    owed = await post(billing, f"/patients/{patient}/estimates", body, role="front_desk")
    await post(billing, f"/estimates/{owed['id']}/issue", role="front_desk")
    return str(owed["id"])


async def billing_scenario(billing: Billing) -> Scenario:
    """Every kind of billing resource: an insured patient (commercial plan) with an esketamine claim partly paid,
    one denied, an IV claim with a modifier paid in full, a draft claim, and an estimate they asked for; a patient
    whose claim was paid and who then moved to Medicare (the claim keeps the coverage it was made under); a
    self-pay patient with an estimate."""
    claims: dict[str, str] = {}
    estimates: dict[str, str] = {}
    await priced(billing)
    for plan in (PLAN, MEDICARE_PLAN):
        assert (await billing.client.put("/plans", json=plan, headers=billing.as_("site_admin"))).status_code == 200

    patient = await billing.registered(INSURED)
    esketamine = await course(billing, patient, Route.intranasal_esketamine)
    await completed(billing, patient, esketamine, Route.intranasal_esketamine, NOON_2026)
    await approved(billing.client, esketamine, billing.as_("billing"))
    partly = {
        "outcome": "partly_paid",
        "paid": usd(700_00),
        "patient_responsibility": usd(50_00),
        "payer_claim_number": "DH-C-1",
    }
    claims["partly_paid"] = await a_claim_for(billing, esketamine, partly)
    await completed(billing, patient, esketamine, Route.intranasal_esketamine, NOON_2026 + timedelta(days=4))
    denied = {
        "outcome": "denied",
        "paid": usd(0),
        "patient_responsibility": usd(888_00),
        "denial_reason": "Units beyond the authorised number",
    }
    claims["denied"] = await a_claim_for(billing, esketamine, denied)
    infusion = await course(billing, patient, Route.iv_infusion)
    minutes: dict[str, Any] = {"infusion_minutes": 40, "psychotherapy_minutes": 40}
    await completed(billing, patient, infusion, Route.iv_infusion, NOON_2026, **minutes)
    paid = {"outcome": "paid", "paid": usd(300_00), "patient_responsibility": usd(20_00)}
    claims["paid_with_modifier"] = await a_claim_for(billing, infusion, paid)
    await completed(billing, patient, infusion, Route.iv_infusion, NOON_2026 + timedelta(days=4), **minutes)
    claims["draft"] = await a_claim_for(billing, infusion, None, submit=False)
    estimates["insured_asked"] = await an_estimate_for(billing, patient, infusion)

    switched = await billing.registered(
        CoverageOnFile(self_pay=False, payer="Demo Health", plan="Standard", member_id="DH-9")
    )
    therapy = await course(billing, switched, Route.iv_infusion)
    await completed(billing, switched, therapy, Route.iv_infusion, NOON_2026, **minutes)
    claims["before_the_switch"] = await a_claim_for(billing, therapy, paid)
    medicare = CoverageOnFile(self_pay=False, payer="Medicare", plan="Part B", member_id="1EG4-TE5-MK73")
    await billing.deliver(
        PatientUpdated(
            patient_id=switched,
            record_version=2,
            changed=["coverage"],
            given_name="Ada",
            family_name="Lovelace",
            birth_date=date(1980, 1, 1),
            sex="female",
            coverage=medicare,
            updated_at=datetime.now(UTC),
        )
    )

    self_pay = await billing.registered()
    estimates["self_pay"] = await an_estimate_for(billing, self_pay, await course(billing, self_pay))
    return Scenario(patient, switched, self_pay, claims, estimates)


async def fhir_read(billing: Billing, path: str, **params: str) -> list[dict[str, Any]]:
    """A FHIR read's resource, or a search's matches, each validated."""
    body = fhir_json(await billing.client.get(f"/fhir/{path}", params=params, headers=billing.as_("billing")))
    if body["resourceType"] == "Bundle":
        return [entry["resource"] for entry in body.get("entry", [])]
    return [body]


async def billing_resources(billing: Billing) -> tuple[Scenario, list[dict[str, Any]]]:
    """The scenario's resources, read back over /fhir: every Coverage, Claim and ExplanationOfBenefit, and a 404."""
    found = await billing_scenario(billing)
    resources: list[dict[str, Any]] = []
    for patient in (found.insured, found.switched, found.self_pay):
        for kind in ("Coverage", "Claim", "ExplanationOfBenefit"):
            resources.extend(await fhir_read(billing, kind, patient=str(patient)))
    missing = await billing.client.get(f"/fhir/Claim/{uuid.uuid4()}", headers=billing.as_("billing"))
    return found, [*resources, fhir_json(missing, 404)]


def fhir_json(reply: Any, status: int = 200) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = reply.json()
    assert_valid_billing_r4(body)
    return body


async def audit_actions(billing: Billing) -> list[tuple[str, str]]:
    async with billing.database.sessions() as session:
        rows = (await session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
    return [(r.action, r.resource) for r in rows if r.action.startswith("fhir.")]


async def test_every_billing_record_reads_as_fhir(fhir: Billing) -> None:
    found, resources = await billing_resources(fhir)
    by_id: dict[tuple[str, str], dict[str, Any]] = {(r["resourceType"], r.get("id", "")): r for r in resources}
    claims = [r for r in resources if r["resourceType"] == "Claim"]
    assert sorted(c["use"] for c in claims) == ["claim"] * 5 + ["predetermination"] * 2
    assert len([r for r in resources if r["resourceType"] == "ExplanationOfBenefit"]) == 4

    coverage = by_id["Coverage", str(found.insured)]
    assert (coverage["subscriberId"], coverage["type"]["coding"][0]["code"]) == ("DH-7", "HIP")
    switched = by_id["Coverage", str(found.switched)]
    assert (switched["subscriberId"], switched["type"]["coding"][0]["code"]) == ("1EG4-TE5-MK73", "PUBLICPOL")
    assert by_id["Coverage", str(found.self_pay)]["type"]["coding"][0]["code"] == "pay"

    partly = by_id["Claim", found.claims["partly_paid"]]
    assert partly["status"] == "active" and partly["insurance"][0]["preAuthRef"] == ["PA-991"]
    assert [(i["productOrService"]["coding"][0]["code"], cents(i["net"])) for i in partly["item"]] == [
        ("G2082", 300_00),
        ("J0013", 588_00),
    ]
    assert partly["item"][1]["unitPrice"] == {"value": 10.5, "currency": "USD"}
    assert cents(partly["total"]) == 888_00
    assert by_id["Claim", found.claims["draft"]]["status"] == "draft"
    modifier = by_id["Claim", found.claims["paid_with_modifier"]]["item"][0]
    assert modifier["productOrService"]["coding"][0]["code"] == "99214"
    assert modifier["modifier"][0]["coding"] == [{"system": CPT, "code": "25"}]
    moved = by_id["Claim", found.claims["before_the_switch"]]
    assert moved["insurance"][0]["coverage"] == {"reference": "#coverage"}
    assert moved["contained"][1]["subscriberId"] == "DH-9", "the claim keeps the coverage it was made under"

    eob = by_id["ExplanationOfBenefit", found.claims["partly_paid"]]
    assert totals(eob) == {"submitted": 888_00, "benefit": 700_00, "memberliability": 50_00}
    assert eob["outcome"] == "complete" and eob["identifier"][0]["value"] == "DH-C-1"
    denied = by_id["ExplanationOfBenefit", found.claims["denied"]]
    assert denied["outcome"] == "complete" and denied["processNote"][0]["text"].startswith("Denied: Units beyond")
    assert ("ExplanationOfBenefit", found.claims["draft"]) not in by_id

    own = by_id["Claim", found.estimates["self_pay"]]
    assert own["insurance"][0]["coverage"] == {"reference": f"Coverage/{found.self_pay}"}
    assert cents(own["total"]) == 600_00 and own["item"][0]["servicedDate"] == "2026-03-02"
    asked = by_id["Claim", found.estimates["insured_asked"]]
    assert asked["insurance"][0]["coverage"] == {"reference": "#coverage"}
    assert asked["contained"][0]["type"]["coding"][0]["code"] == "pay"


async def test_reads_by_id_are_audited_and_a_claim_has_its_etag(fhir: Billing) -> None:
    found = await billing_scenario(fhir)
    reader = fhir.as_("front_desk")
    claim_id, estimate_id = found.claims["partly_paid"], found.estimates["self_pay"]
    reply = await fhir.client.get(f"/fhir/Claim/{claim_id}", headers=reader)
    claim = fhir_json(reply)
    assert reply.headers["etag"] == 'W/"3"' and claim["meta"] == {"versionId": "3"}, "drafted, submitted, decided"
    reply = await fhir.client.get(f"/fhir/Claim/{estimate_id}", headers=reader)
    assert fhir_json(reply)["use"] == "predetermination" and "etag" not in reply.headers
    eob = fhir_json(await fhir.client.get(f"/fhir/ExplanationOfBenefit/{claim_id}", headers=reader))
    assert eob["claim"] == {"reference": f"Claim/{claim_id}"}
    coverage = fhir_json(await fhir.client.get(f"/fhir/Coverage/{found.insured}", headers=reader))
    assert coverage["id"] == str(found.insured)
    both = await fhir_read(fhir, "Coverage", beneficiary=f"Patient/{found.self_pay}", patient=str(found.self_pay))
    assert [c["id"] for c in both] == [str(found.self_pay)]
    estimates = await fhir_read(fhir, "Claim", patient=f"Patient/{found.insured}", use="predetermination")
    assert [c["id"] for c in estimates] == [found.estimates["insured_asked"]]
    claims = await fhir_read(fhir, "Claim", patient=str(found.insured), use="claim")
    assert [c["id"] for c in claims] == [
        found.claims[k] for k in ("partly_paid", "denied", "paid_with_modifier", "draft")
    ]
    assert await audit_actions(fhir) == [
        ("fhir.claim.read", f"fhir/Claim/{claim_id}"),
        ("fhir.claim.read", f"fhir/Claim/{estimate_id}"),
        ("fhir.explanationofbenefit.read", f"fhir/ExplanationOfBenefit/{claim_id}"),
        ("fhir.coverage.read", f"fhir/Coverage/{found.insured}"),
        ("fhir.coverage.search", f"fhir/Coverage?patient={found.self_pay}"),
        ("fhir.claim.search", f"fhir/Claim?patient={found.insured}"),
        ("fhir.claim.search", f"fhir/Claim?patient={found.insured}"),
    ]
    async with fhir.database.sessions() as session:
        rows = (await session.exec(select(AuditEntry).where(col(AuditEntry.action).startswith("fhir.")))).all()
    assert {r.role for r in rows} == {"front_desk", "billing"} and {r.patient_id for r in rows} == {
        found.insured,
        found.self_pay,
    }


async def test_what_is_not_there_is_a_fhir_404_and_a_search_without_a_patient_a_400(fhir: Billing) -> None:
    found = await billing_scenario(fhir)
    reader = fhir.as_("billing")
    owed = await post(
        fhir, f"/patients/{found.self_pay}/estimates", {"course_id": str(await course(fhir, found.self_pay))}
    )
    for path in (
        f"Claim/{uuid.uuid4()}",
        "Claim/not-a-uuid",
        f"Claim/{owed['id']}",  # owed, not issued: nothing estimated yet
        f"ExplanationOfBenefit/{found.claims['draft']}",
        f"ExplanationOfBenefit/{found.estimates['self_pay']}",
        f"ExplanationOfBenefit/{uuid.uuid4()}",
        f"Coverage/{uuid.uuid4()}",
        "Coverage/x",
    ):
        outcome = fhir_json(await fhir.client.get(f"/fhir/{path}", headers=reader), 404)
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "not-found", path
    for kind in ("Coverage", "Claim", "ExplanationOfBenefit"):
        outcome = fhir_json(await fhir.client.get(f"/fhir/{kind}", headers=reader), 400)
        assert outcome["issue"][0]["code"] == "invalid"
        for patient in (str(uuid.uuid4()), "Patient/nope"):
            assert await fhir_read(fhir, kind, patient=patient) == []
    conflicting = await fhir_read(fhir, "Coverage", patient=str(found.insured), beneficiary=str(found.self_pay))
    assert conflicting == [], "two different patients: FHIR ANDs them"
    assert await fhir_read(fhir, "Claim", patient=str(found.insured), use="preauthorization") == []
    assert [action for action, _ in await audit_actions(fhir)] == ["fhir.claim.search"], "only the known patient"


async def test_only_billing_readers_read_billing_fhir(fhir: Billing) -> None:
    found = await billing_scenario(fhir)
    patient = f"patient={found.insured}"
    for role in ("therapist", "clinician"):
        for path in (
            f"Coverage/{found.insured}",
            f"Coverage?{patient}",
            f"Claim/{found.claims['paid_with_modifier']}",
            f"Claim?{patient}",
            f"ExplanationOfBenefit/{found.claims['denied']}",
            f"ExplanationOfBenefit?{patient}",
        ):
            reply = await fhir.client.get(f"/fhir/{path}", headers=fhir.as_(role))
            assert reply.status_code == 403, (role, path)
    assert (await fhir.client.get(f"/fhir/Coverage/{found.insured}")).status_code == 401
    assert await audit_actions(fhir) == []
