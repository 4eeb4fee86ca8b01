"""The one table of who may do what. Every route names one of these permissions; nothing else grants access.

Staff roles are bound to one site; ``network_admin`` belongs to the network and sees aggregates only, never a
patient. Only a clinician may prescribe, dose or decide a medical review (issue: access control, point 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    front_desk = "front_desk"
    clinician = "clinician"
    therapist = "therapist"
    billing = "billing"
    site_admin = "site_admin"
    network_admin = "network_admin"


SITE_ROLES = frozenset(Role) - {Role.network_admin}
NETWORK_ROLES = frozenset({Role.network_admin})


class Permission(StrEnum):
    patient_register = "patient.register"
    patient_read = "patient.read"
    patient_update = "patient.update"
    patient_deactivate = "patient.deactivate"
    consent_document_manage = "consent_document.manage"
    consent_document_read = "consent_document.read"
    consent_record = "consent.record"
    consent_read = "consent.read"
    consent_withdraw = "consent.withdraw"
    screening_record = "screening.record"
    screening_read = "screening.read"
    medical_review_decide = "medical_review.decide"
    prior_treatment_record = "prior_treatment.record"
    prior_treatment_read = "prior_treatment.read"
    assessment_record = "assessment.record"
    assessment_read = "assessment.read"
    safety_flag_read = "safety_flag.read"
    safety_flag_acknowledge = "safety_flag.acknowledge"
    course_plan = "course.plan"
    course_read = "course.read"
    course_status_change = "course.status_change"
    session_schedule = "session.schedule"
    session_read = "session.read"
    session_record_read = "session_record.read"
    session_cancel = "session.cancel"
    session_monitor = "session.monitor"
    dose_administer = "dose.administer"
    session_discharge = "session.discharge"
    integration_session_record = "integration_session.record"
    rems_form_manage = "rems_form.manage"
    billing_setup = "billing.setup"
    billing_read = "billing.read"
    coverage_manage = "coverage.manage"
    estimate_issue = "estimate.issue"
    payment_record = "payment.record"
    refund_record = "refund.record"
    access_barrier_record = "access_barrier.record"
    audit_read = "audit.read"
    outcomes_read = "outcomes.read"
    network_aggregates_read = "network.aggregates.read"
    webhook_manage = "webhook.manage"
    network_webhook_manage = "network.webhook.manage"


_STAFF = frozenset({Role.front_desk, Role.clinician, Role.therapist, Role.billing, Role.site_admin})

_CLINICAL = frozenset({Role.clinician, Role.therapist})
_DESK = frozenset({Role.front_desk, Role.clinician, Role.site_admin})

PERMISSION_TABLE: dict[Permission, frozenset[Role]] = {
    Permission.patient_register: _DESK,
    Permission.patient_read: _STAFF,
    Permission.patient_update: _DESK,
    Permission.patient_deactivate: frozenset({Role.front_desk, Role.site_admin}),
    Permission.consent_document_manage: frozenset({Role.site_admin}),
    Permission.consent_document_read: _STAFF,
    # Consent is witnessed at the desk or by the clinician; billing reads it for the expected-cost disclosure.
    Permission.consent_record: _DESK,
    Permission.consent_read: _STAFF,
    Permission.consent_withdraw: _DESK,
    # Screening answers and measures are clinical: not for the desk or billing.
    Permission.screening_record: _CLINICAL,
    Permission.screening_read: _CLINICAL | {Role.site_admin},
    Permission.medical_review_decide: frozenset({Role.clinician}),
    # The prior-treatment history is clinical, taken by a clinician or therapist; billing reads it because a payer
    # asks for it as the evidence of a prior authorisation (antidepressant trials, psychotherapy, ECT, TMS).
    Permission.prior_treatment_record: _CLINICAL,
    Permission.prior_treatment_read: _CLINICAL | {Role.billing},
    Permission.assessment_record: _CLINICAL,
    Permission.assessment_read: _CLINICAL,
    Permission.safety_flag_read: _CLINICAL | {Role.site_admin},
    Permission.safety_flag_acknowledge: frozenset({Role.clinician}),
    # Only a clinician prescribes: planning a course and changing its course are the prescriber's acts.
    Permission.course_plan: frozenset({Role.clinician}),
    Permission.course_read: _STAFF,
    Permission.course_status_change: frozenset({Role.clinician}),
    Permission.session_schedule: _DESK,
    # The slot (when, where, who) is for everyone who books; the clinical record is for clinicians and
    # therapists only, like screenings and measures (found in review: desk and billing could read notes).
    Permission.session_read: _STAFF,
    Permission.session_record_read: _CLINICAL,
    Permission.session_cancel: _DESK,
    # At the chair: checks, vitals, dissociation, adverse events, the therapist's record, signing, addenda.
    Permission.session_monitor: _CLINICAL,
    Permission.dose_administer: frozenset({Role.clinician}),
    Permission.session_discharge: frozenset({Role.clinician}),
    Permission.integration_session_record: _CLINICAL,
    # The esketamine REMS form is the prescriber's report; the site admin keeps track of what is due.
    Permission.rems_form_manage: frozenset({Role.clinician, Role.site_admin}),
    # Billing sees what billing needs (accounts, coverage, codes, estimates), never therapy notes or the clinical
    # record; the site admin sets the site's prices and plans with billing.
    Permission.billing_setup: frozenset({Role.billing, Role.site_admin}),
    Permission.billing_read: frozenset({Role.billing, Role.front_desk, Role.site_admin}),
    Permission.coverage_manage: frozenset({Role.billing}),
    Permission.estimate_issue: frozenset({Role.billing, Role.front_desk}),
    Permission.payment_record: frozenset({Role.billing, Role.front_desk}),
    Permission.refund_record: frozenset({Role.billing, Role.site_admin}),
    # Whoever hears a patient put care off for cost records it: the desk, billing, or the clinician.
    Permission.access_barrier_record: frozenset({Role.billing, Role.front_desk, Role.clinician}),
    Permission.audit_read: frozenset({Role.site_admin}),
    # A patient's trajectory and the follow-ups to ask for are clinical, like the measures they are made of.
    Permission.outcomes_read: _CLINICAL,
    Permission.network_aggregates_read: frozenset({Role.network_admin}),
    # Another system's endpoint is an integration the site admin sets up; it receives what the role it is
    # registered for may see (services/webhooks), and the network admin does the same for the aggregates.
    Permission.webhook_manage: frozenset({Role.site_admin}),
    Permission.network_webhook_manage: frozenset({Role.network_admin}),
}

# Permissions whose routes live on the network service (aggregates only); every other one is patient-level.
NETWORK_PERMISSIONS = frozenset({Permission.network_aggregates_read, Permission.network_webhook_manage})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    role: Role | None  # the role that grants it, recorded in the audit log
    reason: str


def decide(permission: Permission, roles: frozenset[Role], token_site: str, service_site: str | None) -> Decision:
    """May a holder of ``roles`` at ``token_site`` use ``permission`` on a service of ``service_site``
    (None: the network service)?"""
    granting = PERMISSION_TABLE[permission] & roles
    if service_site is not None:
        if token_site != service_site:
            return Decision(False, None, f"this is site {service_site!r}; the token is for {token_site!r}")
        granting &= SITE_ROLES
    elif permission not in NETWORK_PERMISSIONS:
        return Decision(False, None, "the network holds no patient records")
    else:
        granting &= NETWORK_ROLES
    if not granting:
        needed = ", ".join(sorted(PERMISSION_TABLE[permission]))
        return Decision(False, None, f"{permission.value} needs one of the roles: {needed}")
    return Decision(True, min(granting), "allowed")
