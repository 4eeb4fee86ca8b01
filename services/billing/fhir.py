"""Billing's records as FHIR R4 (4.0.1) financial resources: pure functions from our models to plain JSON dicts.

As intake's and sessions' FHIR: no FHIR library at run time, the tests validate with one (and with HL7's
validator); FHIR forbids empty elements, so an element without a value is left out.

What billing serves:
- Coverage (id: the patient's id): the coverage on file. Insured: the patient is the subscriber (relationship
  self) and the beneficiary, the member id is subscriberId, the plan a class of type plan, and the payer a
  contained Organization named by the payer (kapnet knows payers by name only, no payer id). Self-pay: type
  coverage-selfpay#pay, and the payor is the patient, as R4 says of self-pay ("may provide multiple paying persons
  and/or organizations"); no subscriber, member id or plan.
- Claim, use claim (id: the claim's id): the CMS-1500 / 837P data of a claim to a payer.
- Claim, use predetermination (id: the Good Faith Estimate's id): an issued estimate of expected charges. R4's
  Claim.insurance is 1..*; an estimate is for a self-pay individual, so it names self-pay coverage: the patient's
  Coverage when the coverage on file is self-pay, else a contained self-pay Coverage (the estimate stays self-pay
  even if insurance was put on file after it was issued).
- ExplanationOfBenefit (id: the claim's id), once the payer adjudicated the claim.
A claim whose payer, plan or member id no longer matches the coverage on file carries that coverage contained, so
it always names the coverage it was made under.

Money is integer cents; a FHIR Money.value is ``cents / 100``: Python's true division of two ints is correctly
rounded, so it is the double nearest the exact amount, and JSON writes the shortest decimal that reads back as that
double, which for amounts of at most 12 significant digits (MAX_CENTS is 10^9) is the amount's own digits: 588.0,
10.5, 1234567.89. No binary rounding error reaches the wire (tests/billing/test_billing_fhir.py checks every
magnitude).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from services.billing.domain.claims import AdjudicationOutcome, Claim, ClaimStatus, ServiceLine
from services.billing.domain.codes import CODE_PATTERNS, CODE_TABLE, CodeSystem
from services.billing.domain.coverage import CoverageOnFile, PayerType, PlanBenefits
from services.billing.domain.estimates import GoodFaithEstimate
from services.billing.domain.money import Money, total
from shared.fhir import ACT_CODE_SYSTEM, coding, concept, drop_empty, fhir_date, fhir_datetime, narrative, reference

# --- code systems and identifier systems ---------------------------------------------------------------------
# Code systems of US billing (HL7 Terminology, THO, names each one's canonical URL).
CPT_SYSTEM = "http://www.ama-assn.org/go/cpt"  # AMA CPT (HCPCS Level I), and its modifiers
# HCPCS Level II (CMS): THO's hcpcs-Level-II, OID 2.16.840.1.113883.6.285. Not
# http://terminology.hl7.org/CodeSystem/HCPCS-all-codes, which THO retired in 2021 (its OID was wrong).
HCPCS_SYSTEM = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
PLACE_OF_SERVICE_SYSTEM = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
# HL7 terminology published with R4 4.0.1.
CLAIM_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/claim-type"
PRIORITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/processpriority"
ADJUDICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/adjudication"
PAYMENT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/ex-paymenttype"
SELF_PAY_SYSTEM = "http://terminology.hl7.org/CodeSystem/coverage-selfpay"
COVERAGE_CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/coverage-class"
RELATIONSHIP_SYSTEM = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
ORGANIZATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/organization-type"
# R4's adjudication codes split what the patient owes (copay, deductible) but give no code for the whole of it;
# a payer's decision as kapnet records it has only the whole (copay, coinsurance and deductible together), so it
# is CARIN Blue Button's "memberliability", which its code system defines to complement R4's.
CARIN_ADJUDICATION_SYSTEM = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication"

PROFESSIONAL = coding(CLAIM_TYPE_SYSTEM, "professional", "Professional")
NORMAL_PRIORITY = coding(PRIORITY_SYSTEM, "normal", "Normal")
SUBMITTED = coding(ADJUDICATION_SYSTEM, "submitted", "Submitted Amount")
BENEFIT = coding(ADJUDICATION_SYSTEM, "benefit", "Benefit Amount")
MEMBER_LIABILITY = coding(CARIN_ADJUDICATION_SYSTEM, "memberliability", "Member liability")
SELF_PAY = coding(SELF_PAY_SYSTEM, "pay", "Pay")
PAYER_ORGANIZATION = coding(ORGANIZATION_TYPE_SYSTEM, "pay", "Payer")
PLAN_CLASS = coding(COVERAGE_CLASS_SYSTEM, "plan", "Plan")
SUBSCRIBER_RELATIONSHIPS = {
    "child": "Child",
    "parent": "Parent",
    "spouse": "Spouse",
    "common": "Common Law Spouse",
    "other": "Other",
    "self": "Self",
    "injured": "Injured Party",
}
# Coverage.type (preferred binding: coverage-selfpay and v3 ActCoverageTypeCode) of an insured patient, by the
# payer type of the plan's benefits: Medicare and Medicaid are health plans funded by a public programme
# (PUBLICPOL, "public healthcare"); a commercial plan is a health insurance plan policy (HIP). An "other" payer or
# a plan the site has not entered gets no type rather than a guess.
COVERAGE_TYPE: dict[PayerType, tuple[str, str]] = {
    PayerType.commercial: ("HIP", "health insurance plan policy"),
    PayerType.medicare: ("PUBLICPOL", "public healthcare"),
    PayerType.medicaid: ("PUBLICPOL", "public healthcare"),
}
CODE_SYSTEM_URLS: dict[CodeSystem, str] = {
    CodeSystem.CPT: CPT_SYSTEM,
    CodeSystem.HCPCS: HCPCS_SYSTEM,
    CodeSystem.ICD10CM: ICD10CM_SYSTEM,
}
PLACES_OF_SERVICE = {"11": "Office"}  # [POS] in claims.py; the only place kapnet bills
# A modifier: CPT's are two digits (25); HCPCS Level II's are two characters with a letter (GT, JZ).
_CPT_MODIFIER = re.compile(r"^[0-9]{2}$")
_HCPCS_MODIFIER = re.compile(r"^(?=.*[A-Z])[A-Z0-9]{2}$")

SELF_PAY_ON_FILE = CoverageOnFile(self_pay=True)
# The ids of contained resources, referred to as "#payer", "#coverage".
PAYER_ID = "payer"
COVERAGE_ID = "coverage"

OUTCOME_WORDS: dict[AdjudicationOutcome, str] = {
    AdjudicationOutcome.paid: "paid",
    AdjudicationOutcome.partly_paid: "partly paid",
    AdjudicationOutcome.denied: "denied",
}


# --- shared pieces -------------------------------------------------------------------------------------------


def money(amount: Money) -> dict[str, Any]:
    """A FHIR Money with the exact amount (see the module's docstring) and its currency."""
    return {"value": amount.cents / 100, "currency": amount.currency}


def npi_reference(npi: str, name: str | None = None) -> dict[str, Any]:
    """A provider or facility by its NPI: an identifier-only reference (billing serves no Organization)."""
    return drop_empty({"identifier": {"system": NPI_SYSTEM, "value": npi}, "display": name})


def payer_organization(payer: str) -> dict[str, Any]:
    """The payer as a contained Organization: kapnet knows a payer by its name only (org-1: a name suffices)."""
    return {"resourceType": "Organization", "id": PAYER_ID, "type": [concept(PAYER_ORGANIZATION)], "name": payer}


def service_code(code: str) -> dict[str, Any]:
    """A CPT or HCPCS Level II code as a CodeableConcept, its description from kapnet's code table as the text (the
    codings carry no display: CPT's descriptors are the AMA's, and ours are summaries)."""
    row = CODE_TABLE.find(code)
    if row is not None:
        return concept(coding(CODE_SYSTEM_URLS[row.system], row.code), text=row.description)
    for system in (CodeSystem.CPT, CodeSystem.HCPCS):
        if re.match(CODE_PATTERNS[system], code):
            return concept(coding(CODE_SYSTEM_URLS[system], code))
    return concept(text=code)  # an estimate's "other expected service code": kept, uncoded


def diagnosis_code(code: str) -> dict[str, Any]:
    row = CODE_TABLE.find(code)
    text = row.description if row is not None and row.system is CodeSystem.ICD10CM else None
    return concept(coding(ICD10CM_SYSTEM, code), text=text)


def modifier_code(modifier: str) -> dict[str, Any]:
    if _CPT_MODIFIER.match(modifier):
        return concept(coding(CPT_SYSTEM, modifier))
    if _HCPCS_MODIFIER.match(modifier):
        return concept(coding(HCPCS_SYSTEM, modifier))
    return concept(text=modifier)


def _unit_price(net: Money, quantity: int) -> dict[str, Any] | None:
    """The price of one unit when the line's charge divides evenly into its units (net = quantity x unitPrice);
    otherwise none is given rather than a rounded one."""
    cents, remainder = divmod(net.cents, quantity)
    return money(Money(cents=cents, currency=net.currency)) if remainder == 0 else None


def _diagnoses(codes: Iterable[str]) -> list[dict[str, Any]]:
    return [{"sequence": n, "diagnosisCodeableConcept": diagnosis_code(code)} for n, code in enumerate(codes, start=1)]


def _period(days: Sequence[date]) -> dict[str, str] | None:
    return {"start": fhir_date(min(days)), "end": fhir_date(max(days))} if days else None


# --- Coverage ------------------------------------------------------------------------------------------------


def coverage_resource(
    patient_id: uuid.UUID,
    on_file: CoverageOnFile,
    benefits: PlanBenefits | None = None,
    updated_at: datetime | None = None,
) -> dict[str, Any]:
    """The patient's coverage on file as a FHIR R4 Coverage whose id is the patient's id. ``benefits`` are the
    plan's, when the site has entered them (they give Coverage.type)."""
    body = _coverage_body(patient_id, on_file, benefits)
    if on_file.self_pay:
        lines = ["Self-pay: the patient pays for their own care; no insurance is billed."]
    else:
        lines = [
            f"Health insurance with {on_file.payer}, plan {on_file.plan}; member ID {on_file.member_id}. "
            "The patient is the subscriber and the beneficiary."
        ]
    resource: dict[str, Any] = {
        "resourceType": "Coverage",
        "id": str(patient_id),
        "meta": {"lastUpdated": fhir_datetime(updated_at)} if updated_at is not None else None,
        "text": narrative(lines),
        "contained": [payer_organization(on_file.payer)] if not on_file.self_pay and on_file.payer else None,
        **body,
    }
    return drop_empty(resource)


def _coverage_body(
    patient_id: uuid.UUID,
    on_file: CoverageOnFile,
    benefits: PlanBenefits | None,
    relationship: str = "self",
) -> dict[str, Any]:
    """The elements of a Coverage after its id, narrative and contained resources; an insured one's payer is the
    contained ``#payer``."""
    patient = reference("Patient", patient_id)
    if on_file.self_pay:
        return {
            "status": "active",
            "type": concept(SELF_PAY, text="Self-pay"),
            "beneficiary": patient,
            "payor": [reference("Patient", patient_id)],
        }
    kind = COVERAGE_TYPE.get(benefits.payer_type) if benefits is not None else None
    display = SUBSCRIBER_RELATIONSHIPS.get(relationship)
    return drop_empty(
        {
            "status": "active",
            "type": concept(coding(ACT_CODE_SYSTEM, *kind)) if kind else None,
            "subscriber": patient,
            "subscriberId": on_file.member_id,
            "beneficiary": reference("Patient", patient_id),
            "relationship": (
                concept(coding(RELATIONSHIP_SYSTEM, relationship, display)) if display else concept(text=relationship)
            ),
            "payor": [{"reference": f"#{PAYER_ID}", "display": on_file.payer}],
            "class": [{"type": concept(PLAN_CLASS), "value": on_file.plan, "name": on_file.plan}],
        }
    )


def _contained_coverage(patient_id: uuid.UUID, on_file: CoverageOnFile, relationship: str = "self") -> dict[str, Any]:
    """A Coverage contained in a Claim or an ExplanationOfBenefit, as ``#coverage``: its payer is the container's
    contained ``#payer``. Contained resources carry no narrative: the container's tells of them."""
    body = _coverage_body(patient_id, on_file, None, relationship)
    return {"resourceType": "Coverage", "id": COVERAGE_ID, **body}


def claim_coverage(claim: Claim) -> CoverageOnFile:
    """The coverage a claim was made under, from the claim itself."""
    return CoverageOnFile(self_pay=False, payer=claim.payer, plan=claim.plan, member_id=claim.subscriber.member_id)


def _insurance_coverage(
    patient_id: uuid.UUID, under: CoverageOnFile, on_file: CoverageOnFile | None, relationship: str = "self"
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The reference to the coverage a claim or an estimate is under: the patient's Coverage when that is the
    coverage on file, else a contained copy (returned to be contained)."""
    if on_file is not None and _same_coverage(under, on_file):
        return reference("Coverage", patient_id), []
    return {"reference": f"#{COVERAGE_ID}"}, [_contained_coverage(patient_id, under, relationship)]


def _same_coverage(a: CoverageOnFile, b: CoverageOnFile) -> bool:
    if a.self_pay or b.self_pay:
        return a.self_pay and b.self_pay
    return (a.payer, a.plan, a.member_id) == (b.payer, b.plan, b.member_id)


# --- Claim (use claim) -------------------------------------------------------------------------------------------

# R4's Claim.status (required: active | cancelled | draft | entered-in-error). A kapnet draft has not been sent to
# the payer and can still change: "draft". Once submitted it is the claim in force: "active", adjudicated too (the
# payer's decision is the ExplanationOfBenefit, not a status of the claim).
CLAIM_STATUS: dict[ClaimStatus, str] = {
    ClaimStatus.draft: "draft",
    ClaimStatus.submitted: "active",
    ClaimStatus.adjudicated: "active",
}


def claim_resource(claim: Claim, on_file: CoverageOnFile | None, version: int | None = None) -> dict[str, Any]:
    """A claim to a payer as a FHIR R4 Claim (use claim, type professional), with the data of the CMS-1500: the
    billing provider by NPI (item 33a), the insurance with the prior authorisation number (item 23), the
    diagnoses (item 21, A-L as sequence 1-12) and the service lines (item 24: date, place of service, code,
    modifiers, diagnosis pointers, units, charge, rendering NPI as the care team). ``on_file`` is the patient's
    coverage on file now, to refer to it when the claim is still under it."""
    coverage, contained = _insurance_coverage(
        claim.patient_id, claim_coverage(claim), on_file, claim.relationship_to_subscriber
    )
    care_team, team_sequence = _care_team(claim.lines, claim.billing_provider.npi, claim.billing_provider.name)
    resource: dict[str, Any] = {
        "resourceType": "Claim",
        "id": str(claim.id),
        "meta": {"versionId": str(version)} if version is not None else None,
        "text": narrative(_claim_lines(claim), header=_LINE_HEADER, table=_line_rows(claim)),
        "contained": [payer_organization(claim.payer), *contained],
        "status": CLAIM_STATUS[claim.status],
        "type": concept(PROFESSIONAL),
        "use": "claim",
        "patient": reference("Patient", claim.patient_id),
        "billablePeriod": _period([line.service_on for line in claim.lines]),
        "created": fhir_datetime(claim.created_at),
        "insurer": {"reference": f"#{PAYER_ID}", "display": claim.payer},
        "provider": npi_reference(claim.billing_provider.npi, claim.billing_provider.name),
        "priority": concept(NORMAL_PRIORITY),
        "careTeam": care_team,
        "diagnosis": _diagnoses(claim.diagnoses),
        "insurance": [
            drop_empty(
                {
                    "sequence": 1,
                    "focal": True,
                    "coverage": coverage,
                    "preAuthRef": [claim.prior_authorisation_number] if claim.prior_authorisation_number else None,
                }
            )
        ],
        "item": [_claim_item(n, line, team_sequence) for n, line in enumerate(claim.lines, start=1)],
        "total": money(claim.total_charge),
    }
    return drop_empty(resource)


def _care_team(
    lines: Sequence[ServiceLine], billing_npi: str, billing_name: str
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The rendering providers of the lines ([CMS-1500] item 24J), each once, and the sequence of each NPI."""
    sequence: dict[str, int] = {}
    for line in lines:
        sequence.setdefault(line.rendering_npi, len(sequence) + 1)
    team = [
        {"sequence": n, "provider": npi_reference(npi, billing_name if npi == billing_npi else None)}
        for npi, n in sequence.items()
    ]
    return team, sequence


def _claim_item(n: int, line: ServiceLine, team_sequence: dict[str, int]) -> dict[str, Any]:
    place = PLACES_OF_SERVICE.get(line.place_of_service)
    return drop_empty(
        {
            "sequence": n,
            "careTeamSequence": [team_sequence[line.rendering_npi]],
            # [CMS-1500] item 24E: pointers A-L to the diagnoses, which are sequence 1-12 here.
            "diagnosisSequence": [ord(pointer) - ord("A") + 1 for pointer in line.diagnosis_pointers],
            "productOrService": service_code(line.code),
            "modifier": [modifier_code(m) for m in line.modifiers],
            "servicedDate": fhir_date(line.service_on),
            "locationCodeableConcept": concept(coding(PLACE_OF_SERVICE_SYSTEM, line.place_of_service, place)),
            "quantity": {"value": line.units},
            "unitPrice": _unit_price(line.charge, line.units),
            "net": money(line.charge),
        }
    )


_LINE_HEADER = ("Line", "Date", "Place", "Code", "Modifiers", "Diagnoses", "Units", "Charge")


def _line_rows(claim: Claim) -> list[tuple[str, ...]]:
    return [
        (
            str(n),
            fhir_date(line.service_on),
            line.place_of_service,
            line.code,
            " ".join(line.modifiers),
            line.diagnosis_pointers,
            str(line.units),
            str(line.charge),
        )
        for n, line in enumerate(claim.lines, start=1)
    ]


def _claim_lines(claim: Claim) -> list[str]:
    diagnoses = "; ".join(
        f"{pointer} {code}" + (f" ({row.description})" if (row := CODE_TABLE.find(code)) else "")
        for pointer, code in zip("ABCDEFGHIJKL", claim.diagnoses, strict=False)
    )
    provider = claim.billing_provider
    return [
        f"Professional claim (CMS-1500) to {claim.payer}, plan {claim.plan}, member ID "
        f"{claim.subscriber.member_id}; {claim.status.value}, created {fhir_datetime(claim.created_at)}.",
        f"Billing provider: {provider.name}, NPI {provider.npi}.",
        f"Prior authorisation number: {claim.prior_authorisation_number}." if claim.prior_authorisation_number else "",
        f"Diagnoses: {diagnoses}.",
        f"Total charge: {claim.total_charge}.",
    ]


# --- Claim (use predetermination): a Good Faith Estimate ---------------------------------------------------------


def predetermination_resource(
    estimate_id: uuid.UUID,
    patient_id: uuid.UUID,
    estimate: GoodFaithEstimate,
    issued_at: datetime,
    on_file: CoverageOnFile | None,
) -> dict[str, Any]:
    """An issued Good Faith Estimate (45 CFR 149.610) as a FHIR R4 Claim of use predetermination: the convening
    provider as the provider, every provider or facility of the estimate in the care team, each expected item
    with its code, diagnoses, quantity and expected charge, and the total. Self-pay coverage (see the module's
    docstring); no insurer. The disclaimers are in the narrative."""
    coverage, contained = _insurance_coverage(patient_id, SELF_PAY_ON_FILE, on_file)
    team = {provider.npi: n for n, provider in enumerate(estimate.providers, start=1)}
    diagnoses: list[str] = []
    for item in estimate.items:
        diagnoses.extend(code for code in item.diagnosis_codes if code not in diagnoses)
    convening = estimate.providers[0]
    served = fhir_date(estimate.scheduled_for) if estimate.scheduled_for else None
    resource: dict[str, Any] = {
        "resourceType": "Claim",
        "id": str(estimate_id),
        "text": narrative(
            _estimate_lines(estimate, issued_at),
            header=("Item", "Code", "Description", "Provider NPI", "Quantity", "Expected charge"),
            table=[
                (
                    str(n),
                    item.service_code,
                    item.description,
                    item.provider_npi,
                    str(item.quantity),
                    str(item.expected_charge),
                )
                for n, item in enumerate(estimate.items, start=1)
            ],
        ),
        "contained": contained,
        "status": "active",
        "type": concept(PROFESSIONAL),
        "use": "predetermination",
        "patient": reference("Patient", patient_id),
        "billablePeriod": {"start": served, "end": served} if served else None,
        "created": fhir_datetime(issued_at),
        "provider": npi_reference(convening.npi, convening.name),
        "priority": concept(NORMAL_PRIORITY),
        "careTeam": [{"sequence": team[p.npi], "provider": npi_reference(p.npi, p.name)} for p in estimate.providers],
        "diagnosis": _diagnoses(diagnoses),
        "insurance": [{"sequence": 1, "focal": True, "coverage": coverage}],
        "item": [
            drop_empty(
                {
                    "sequence": n,
                    "careTeamSequence": [team[item.provider_npi]],
                    "diagnosisSequence": [diagnoses.index(code) + 1 for code in item.diagnosis_codes],
                    "productOrService": {**service_code(item.service_code), "text": item.description},
                    "servicedDate": served,
                    "quantity": {"value": item.quantity},
                    "unitPrice": _unit_price(item.expected_charge, item.quantity),
                    "net": money(item.expected_charge),
                }
            )
            for n, item in enumerate(estimate.items, start=1)
        ],
        "total": money(estimate.total),
    }
    return drop_empty(resource)


def _estimate_lines(estimate: GoodFaithEstimate, issued_at: datetime) -> list[str]:
    when = f"scheduled for {fhir_date(estimate.scheduled_for)}" if estimate.scheduled_for else "not yet scheduled"
    providers = "; ".join(f"{p.name} (NPI {p.npi})" for p in estimate.providers)
    return [
        f"Good Faith Estimate of expected charges (45 CFR 149.610) for {estimate.primary_service}, {when}; "
        f"issued {fhir_datetime(issued_at)}. Self-pay: no insurance is billed.",
        f"Providers and facilities: {providers}.",
        f"Total expected charges: {estimate.total}.",
        (
            "Expected to be scheduled and billed separately: "
            + "; ".join(s.description + (f" ({s.service_code})" if s.service_code else "") for s in separate)
            + "."
            if (separate := estimate.separately_billed)
            else ""
        ),
        *(text for _, text in estimate.disclaimers),
    ]


# --- ExplanationOfBenefit ----------------------------------------------------------------------------------------

# R4's RemittanceOutcome (required) says how far the payer's *processing* got, not what it paid: complete ("the
# processing has completed without errors"), partial ("some of the adjudication has been performed"), error
# ("errors have been detected in the Claim"), queued. Every adjudication kapnet records is a finished decision, a
# denial included, so each is "complete"; paid, partly paid or denied is said by the amounts, the disposition and,
# for a denial, the reason (header adjudication) and a process note.
OUTCOME = "complete"


def explanation_of_benefit_resource(claim: Claim, on_file: CoverageOnFile | None) -> dict[str, Any]:
    """An adjudicated claim as a FHIR R4 ExplanationOfBenefit: the claim's lines and diagnoses, what was submitted
    per line, and the payer's decision for the claim as a whole (kapnet records no per-line amounts): the benefit
    paid and the patient's share in the header adjudication and the totals, the payment, the payer's claim number,
    and a denial's reason."""
    decision, decided_at = claim.adjudication, claim.adjudicated_at
    if decision is None or decided_at is None:
        raise ValueError(f"claim {claim.id} is not adjudicated: it has no explanation of benefit")
    coverage, contained = _insurance_coverage(
        claim.patient_id, claim_coverage(claim), on_file, claim.relationship_to_subscriber
    )
    care_team, team_sequence = _care_team(claim.lines, claim.billing_provider.npi, claim.billing_provider.name)
    denied = decision.outcome is AdjudicationOutcome.denied
    benefit: dict[str, Any] = {"category": concept(BENEFIT), "amount": money(decision.paid)}
    if denied and decision.denial_reason:
        benefit["reason"] = concept(text=decision.denial_reason)
    shares = [benefit, {"category": concept(MEMBER_LIABILITY), "amount": money(decision.patient_responsibility)}]
    items = []
    for n, line in enumerate(claim.lines, start=1):
        item = _claim_item(n, line, team_sequence)
        item["adjudication"] = [{"category": concept(SUBMITTED), "amount": money(line.charge)}]
        items.append(item)
    resource: dict[str, Any] = {
        "resourceType": "ExplanationOfBenefit",
        "id": str(claim.id),
        "text": narrative(_eob_lines(claim), header=_LINE_HEADER, table=_line_rows(claim)),
        "contained": [payer_organization(claim.payer), *contained],
        "identifier": (
            [{"value": decision.payer_claim_number, "assigner": {"display": claim.payer}}]
            if decision.payer_claim_number
            else None
        ),
        "status": "active",
        "type": concept(PROFESSIONAL),
        "use": "claim",
        "patient": reference("Patient", claim.patient_id),
        "billablePeriod": _period([line.service_on for line in claim.lines]),
        "created": fhir_datetime(decided_at),
        "insurer": {"reference": f"#{PAYER_ID}", "display": claim.payer},
        "provider": npi_reference(claim.billing_provider.npi, claim.billing_provider.name),
        "claim": reference("Claim", claim.id),
        "outcome": OUTCOME,
        "disposition": _disposition(claim),
        "careTeam": care_team,
        "diagnosis": _diagnoses(claim.diagnoses),
        "insurance": [
            drop_empty(
                {
                    "focal": True,
                    "coverage": coverage,
                    "preAuthRef": [claim.prior_authorisation_number] if claim.prior_authorisation_number else None,
                }
            )
        ],
        "item": items,
        "adjudication": shares,
        "total": [
            {"category": concept(SUBMITTED), "amount": money(claim.total_charge)},
            *({"category": s["category"], "amount": s["amount"]} for s in shares),
        ],
        "payment": drop_empty(
            {
                # ex-paymenttype "complete": the final payment of the benefit, as every recorded decision is
                # ("partial" is an interim payment, more to follow). A denial pays nothing and has no type.
                "type": None if denied else concept(coding(PAYMENT_TYPE_SYSTEM, "complete", "Complete")),
                "amount": money(decision.paid),
            }
        ),
        "processNote": (
            [{"number": 1, "type": "display", "text": f"Denied: {decision.denial_reason}"}] if denied else None
        ),
    }
    return drop_empty(resource)


def _disposition(claim: Claim) -> str:
    decision = claim.adjudication
    assert decision is not None
    if decision.outcome is AdjudicationOutcome.denied:
        return f"Denied: {decision.denial_reason}"
    if decision.outcome is AdjudicationOutcome.partly_paid:
        return f"Partly paid: {decision.paid} of {claim.total_charge} billed"
    return f"Paid: {decision.paid} of {claim.total_charge} billed"


def _eob_lines(claim: Claim) -> list[str]:
    decision, decided_at = claim.adjudication, claim.adjudicated_at
    assert decision is not None and decided_at is not None
    written_off = claim.total_charge - total([decision.paid, decision.patient_responsibility])
    return [
        f"Explanation of benefit from {claim.payer} (plan {claim.plan}, member ID {claim.subscriber.member_id}) "
        f"for claim {claim.id}: {OUTCOME_WORDS[decision.outcome]}, decided {fhir_datetime(decided_at)}.",
        f"Billed {claim.total_charge}; paid by the payer {decision.paid}; the patient's "
        f"responsibility {decision.patient_responsibility}; adjusted off, owed by neither: "
        f"{written_off}.",
        f"Denial reason: {decision.denial_reason}" if decision.denial_reason else "",
        f"Payer claim number: {decision.payer_claim_number}." if decision.payer_claim_number else "",
        f"Prior authorisation number: {claim.prior_authorisation_number}." if claim.prior_authorisation_number else "",
    ]
