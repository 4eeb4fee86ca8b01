"""Who pays for a course: the patient's coverage on file, what their plan covers, and the determination per course
(covered, partly covered, or not covered and so self-pay), with its reason.

Sources:
- [Spravato PI] esketamine is approved for treatment-resistant depression and for depressive symptoms in MDD with
  acute suicidal ideation; [Spravato REMS] it may be dispensed and given only at a REMS-certified setting. Payers
  commonly cover it under those conditions with prior authorisation.
- Racemic ketamine for depression is off-label (no FDA approval for a psychiatric use, Ketalar PI); payers
  usually do not cover the infusion or the drug, while psychotherapy and E/M codes may be covered. (US payer
  policies vary; each plan's answers are the site's data, entered per plan.)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.treatment import Indication, Route


class CoverageKind(StrEnum):
    covered = "covered"
    partly_covered = "partly_covered"
    not_covered = "not_covered"


class CoverageReason(StrEnum):
    self_pay_by_choice = "self_pay_by_choice"
    no_insurance_on_file = "no_insurance_on_file"
    plan_unknown = "plan_unknown"
    esketamine_on_label = "esketamine_on_label"
    esketamine_not_on_label = "esketamine_not_on_label"
    site_not_rems_certified = "site_not_rems_certified"
    plan_excludes_esketamine = "plan_excludes_esketamine"
    off_label_ketamine_psychotherapy_only = "off_label_ketamine_psychotherapy_only"
    off_label_ketamine_covered_by_plan = "off_label_ketamine_covered_by_plan"
    off_label_ketamine_not_covered = "off_label_ketamine_not_covered"


class ServicePart(StrEnum):
    """The parts of a course's charges a plan may cover separately."""

    drug_and_administration = "drug_and_administration"
    evaluation_and_management = "evaluation_and_management"
    psychotherapy = "psychotherapy"


class PayerType(StrEnum):
    commercial = "commercial"
    medicare = "medicare"
    medicaid = "medicaid"
    other = "other"


class PlanBenefits(BaseModel):
    """What one payer's plan covers, as the site has learnt it (entered per plan)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    payer: str = Field(min_length=1, max_length=200)
    plan: str = Field(min_length=1, max_length=200)
    payer_type: PayerType
    covers_esketamine_with_prior_auth: bool
    covers_off_label_ketamine: bool
    covers_psychotherapy: bool


class CoverageOnFile(BaseModel):
    """The patient's coverage as intake records it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    self_pay: bool
    payer: str | None = None
    plan: str | None = None
    member_id: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if not self.self_pay and not (self.payer and self.plan and self.member_id):
            raise ValueError("insurance coverage needs payer, plan and member_id (or self_pay: true)")
        return self


class CoverageDetermination(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: CoverageKind
    reason: CoverageReason
    covered_parts: tuple[ServicePart, ...]
    prior_auth_needed: bool
    explanation: str


ALL_PARTS = tuple(ServicePart)
ESKETAMINE_LABEL_INDICATIONS = frozenset({Indication.treatment_resistant_depression})


def determine(
    route: Route,
    indication: Indication,
    coverage: CoverageOnFile | None,
    benefits: PlanBenefits | None,
    *,
    site_rems_certified: bool,
) -> CoverageDetermination:
    """The determination for a course, with the reason a billing clerk can explain to the patient."""

    def decided(
        kind: CoverageKind, reason: CoverageReason, parts: tuple[ServicePart, ...], why: str, pa: bool = False
    ) -> CoverageDetermination:
        return CoverageDetermination(
            kind=kind, reason=reason, covered_parts=parts, prior_auth_needed=pa, explanation=why
        )

    if coverage is None:
        return decided(
            CoverageKind.not_covered, CoverageReason.no_insurance_on_file, (), "no coverage on file: self-pay"
        )
    if coverage.self_pay:
        return decided(
            CoverageKind.not_covered, CoverageReason.self_pay_by_choice, (), "the patient chose to pay for themselves"
        )
    if benefits is None:
        return decided(
            CoverageKind.not_covered,
            CoverageReason.plan_unknown,
            (),
            f"the plan {coverage.payer} / {coverage.plan} is not in the site's list of plans: enter its benefits",
        )
    if route is Route.intranasal_esketamine:
        if indication not in ESKETAMINE_LABEL_INDICATIONS:
            return decided(
                CoverageKind.not_covered,
                CoverageReason.esketamine_not_on_label,
                (),
                f"esketamine for {indication.value} is outside its label",
            )
        if not site_rems_certified:
            return decided(
                CoverageKind.not_covered,
                CoverageReason.site_not_rems_certified,
                (),
                "esketamine is given only at a REMS-certified site; this site is not",
            )
        if not benefits.covers_esketamine_with_prior_auth:
            return decided(
                CoverageKind.not_covered,
                CoverageReason.plan_excludes_esketamine,
                (),
                f"{benefits.payer} / {benefits.plan} does not cover esketamine",
            )
        return decided(
            CoverageKind.covered,
            CoverageReason.esketamine_on_label,
            ALL_PARTS,
            "esketamine for treatment-resistant depression at a REMS-certified site, with prior authorisation",
            pa=True,
        )
    if benefits.covers_off_label_ketamine:
        return decided(
            CoverageKind.covered,
            CoverageReason.off_label_ketamine_covered_by_plan,
            ALL_PARTS,
            f"{benefits.payer} / {benefits.plan} covers off-label ketamine, with prior authorisation",
            pa=True,
        )
    if benefits.covers_psychotherapy:
        return decided(
            CoverageKind.partly_covered,
            CoverageReason.off_label_ketamine_psychotherapy_only,
            (ServicePart.evaluation_and_management, ServicePart.psychotherapy),
            "psychotherapy and the clinician's visit are covered; the off-label ketamine and its administration "
            "are self-pay",
        )
    return decided(
        CoverageKind.not_covered,
        CoverageReason.off_label_ketamine_not_covered,
        (),
        "off-label ketamine and the psychotherapy with it are not covered by the plan: self-pay",
    )
