"""Coverage determination (services/billing/domain/coverage.py): every branch of ``determine``, as a table.

Sources, as in the module: [Spravato PI] esketamine is on label for treatment-resistant depression; [Spravato REMS]
only a certified setting may give it; racemic ketamine for depression is off label (Ketalar PI). What each plan
covers is the site's data (PlanBenefits).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.billing.domain.coverage import (
    ALL_PARTS,
    CoverageDetermination,
    CoverageKind,
    CoverageOnFile,
    CoverageReason,
    PayerType,
    PlanBenefits,
    ServicePart,
    determine,
)
from shared.treatment import Indication, Route

INSURED = CoverageOnFile(self_pay=False, payer="Acme Health", plan="Gold PPO", member_id="M123")
SELF_PAY = CoverageOnFile(self_pay=True)


def plan(*, esketamine: bool = False, off_label: bool = False, psychotherapy: bool = False) -> PlanBenefits:
    return PlanBenefits(
        payer="Acme Health",
        plan="Gold PPO",
        payer_type=PayerType.commercial,
        covers_esketamine_with_prior_auth=esketamine,
        covers_off_label_ketamine=off_label,
        covers_psychotherapy=psychotherapy,
    )


GENEROUS = plan(esketamine=True, off_label=True, psychotherapy=True)
NOTHING = plan()
ESK = Route.intranasal_esketamine
IV = Route.iv_infusion
TRD = Indication.treatment_resistant_depression
DEP = Indication.depression
E_AND_M_AND_PSYCHOTHERAPY = (ServicePart.evaluation_and_management, ServicePart.psychotherapy)

K = CoverageKind
R = CoverageReason


@pytest.mark.parametrize(
    ("route", "indication", "coverage", "benefits", "certified", "kind", "reason", "parts", "prior_auth"),
    [
        # No coverage on file: self-pay, whatever the plan list says.
        (ESK, TRD, None, GENEROUS, True, K.not_covered, R.no_insurance_on_file, (), False),
        # The patient chose self-pay (even with a plan that would cover it).
        (ESK, TRD, SELF_PAY, GENEROUS, True, K.not_covered, R.self_pay_by_choice, (), False),
        # Insured, but the site has not entered the plan's benefits.
        (ESK, TRD, INSURED, None, True, K.not_covered, R.plan_unknown, (), False),
        (IV, DEP, INSURED, None, True, K.not_covered, R.plan_unknown, (), False),
        # [Spravato PI] + [Spravato REMS]: on label, certified site, plan covers it -> covered with prior auth.
        (ESK, TRD, INSURED, GENEROUS, True, K.covered, R.esketamine_on_label, ALL_PARTS, True),
        (ESK, TRD, INSURED, plan(esketamine=True), True, K.covered, R.esketamine_on_label, ALL_PARTS, True),
        # [Spravato REMS]: not at an uncertified site.
        (ESK, TRD, INSURED, GENEROUS, False, K.not_covered, R.site_not_rems_certified, (), False),
        # The plan excludes esketamine (even if it covers off-label ketamine and psychotherapy).
        (
            ESK,
            TRD,
            INSURED,
            plan(off_label=True, psychotherapy=True),
            True,
            K.not_covered,
            R.plan_excludes_esketamine,
            (),
            False,
        ),
        # Esketamine off label: the label check comes before the site and the plan.
        (ESK, DEP, INSURED, GENEROUS, True, K.not_covered, R.esketamine_not_on_label, (), False),
        (ESK, Indication.ptsd, INSURED, GENEROUS, False, K.not_covered, R.esketamine_not_on_label, (), False),
        # Racemic ketamine (off label) the plan covers: covered with prior auth, certification irrelevant.
        (
            IV,
            DEP,
            INSURED,
            plan(off_label=True),
            False,
            K.covered,
            R.off_label_ketamine_covered_by_plan,
            ALL_PARTS,
            True,
        ),
        (
            Route.intramuscular,
            TRD,
            INSURED,
            GENEROUS,
            True,
            K.covered,
            R.off_label_ketamine_covered_by_plan,
            ALL_PARTS,
            True,
        ),
        # Only psychotherapy (and the E/M) covered: partly covered, no prior auth.
        (
            IV,
            DEP,
            INSURED,
            plan(psychotherapy=True),
            True,
            K.partly_covered,
            R.off_label_ketamine_psychotherapy_only,
            E_AND_M_AND_PSYCHOTHERAPY,
            False,
        ),
        (
            Route.sublingual_oral,
            Indication.anxiety,
            INSURED,
            plan(esketamine=True, psychotherapy=True),
            True,
            K.partly_covered,
            R.off_label_ketamine_psychotherapy_only,
            E_AND_M_AND_PSYCHOTHERAPY,
            False,
        ),
        # Nothing covered (a plan covering only esketamine covers nothing of racemic ketamine).
        (IV, DEP, INSURED, NOTHING, True, K.not_covered, R.off_label_ketamine_not_covered, (), False),
        (IV, TRD, INSURED, plan(esketamine=True), True, K.not_covered, R.off_label_ketamine_not_covered, (), False),
    ],
    ids=[
        "no-coverage",
        "self-pay-by-choice",
        "plan-unknown-esketamine",
        "plan-unknown-ketamine",
        "esketamine-on-label",
        "esketamine-on-label-plan-covers-only-that",
        "esketamine-site-not-certified",
        "esketamine-plan-excludes",
        "esketamine-off-label",
        "esketamine-off-label-uncertified",
        "ketamine-covered-by-plan",
        "ketamine-im-covered-by-plan",
        "ketamine-psychotherapy-only",
        "sublingual-psychotherapy-only",
        "ketamine-nothing-covered",
        "ketamine-plan-covers-only-esketamine",
    ],
)
def test_determine(
    route: Route,
    indication: Indication,
    coverage: CoverageOnFile | None,
    benefits: PlanBenefits | None,
    certified: bool,
    kind: CoverageKind,
    reason: CoverageReason,
    parts: tuple[ServicePart, ...],
    prior_auth: bool,
) -> None:
    result = determine(route, indication, coverage, benefits, site_rems_certified=certified)
    assert (result.kind, result.reason, result.covered_parts, result.prior_auth_needed) == (
        kind,
        reason,
        parts,
        prior_auth,
    )
    assert result.explanation


def test_every_reason_is_reached_by_the_table() -> None:
    # Keeps the table above complete if a reason is added.
    reached = {
        determine(ESK, TRD, None, None, site_rems_certified=True).reason,
        determine(ESK, TRD, SELF_PAY, None, site_rems_certified=True).reason,
        determine(ESK, TRD, INSURED, None, site_rems_certified=True).reason,
        determine(ESK, TRD, INSURED, GENEROUS, site_rems_certified=True).reason,
        determine(ESK, DEP, INSURED, GENEROUS, site_rems_certified=True).reason,
        determine(ESK, TRD, INSURED, GENEROUS, site_rems_certified=False).reason,
        determine(ESK, TRD, INSURED, NOTHING, site_rems_certified=True).reason,
        determine(IV, DEP, INSURED, plan(psychotherapy=True), site_rems_certified=True).reason,
        determine(IV, DEP, INSURED, plan(off_label=True), site_rems_certified=True).reason,
        determine(IV, DEP, INSURED, NOTHING, site_rems_certified=True).reason,
    }
    assert reached == set(CoverageReason)


def test_all_parts_are_every_service_part() -> None:
    assert set(ALL_PARTS) == set(ServicePart)
    assert len(ALL_PARTS) == 3


def test_explanations_name_the_plan() -> None:
    unknown = determine(IV, DEP, INSURED, None, site_rems_certified=True)
    assert "Acme Health / Gold PPO" in unknown.explanation
    excluded = determine(ESK, TRD, INSURED, NOTHING, site_rems_certified=True)
    assert "Acme Health / Gold PPO" in excluded.explanation
    off_label = determine(ESK, Indication.ocd, INSURED, GENEROUS, site_rems_certified=True)
    assert "ocd" in off_label.explanation


def test_a_determination_is_frozen() -> None:
    result: CoverageDetermination = determine(IV, DEP, None, None, site_rems_certified=True)
    with pytest.raises(ValidationError):
        result.kind = CoverageKind.covered  # type: ignore[misc]


# --- coverage on file -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "missing",
    [
        {"payer": None},
        {"plan": None},
        {"member_id": None},
        {"payer": ""},
        {"plan": ""},
        {"member_id": ""},
        {"payer": None, "plan": None, "member_id": None},
    ],
    ids=["no-payer", "no-plan", "no-member-id", "empty-payer", "empty-plan", "empty-member-id", "none"],
)
def test_insured_coverage_needs_payer_plan_and_member_id(missing: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"self_pay": False, "payer": "Acme Health", "plan": "Gold PPO", "member_id": "M123"}
    with pytest.raises(ValidationError, match="payer, plan and member_id"):
        CoverageOnFile.model_validate(fields | missing)


def test_self_pay_needs_nothing_else() -> None:
    assert CoverageOnFile(self_pay=True).payer is None
    # A self-pay patient may still have a plan on file (they chose not to use it).
    assert CoverageOnFile(self_pay=True, payer="Acme Health").self_pay


def test_complete_insured_coverage_is_accepted() -> None:
    assert INSURED.member_id == "M123"


def test_coverage_on_file_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        CoverageOnFile.model_validate({"self_pay": True, "group": "G1"})


@pytest.mark.parametrize("field", ["payer", "plan"])
def test_plan_benefits_need_a_payer_and_plan_name(field: str) -> None:
    fields: dict[str, Any] = {
        "payer": "Acme Health",
        "plan": "Gold PPO",
        "payer_type": "commercial",
        "covers_esketamine_with_prior_auth": True,
        "covers_off_label_ketamine": False,
        "covers_psychotherapy": True,
    }
    with pytest.raises(ValidationError):
        PlanBenefits.model_validate(fields | {field: "   "})  # stripped to empty
