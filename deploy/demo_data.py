"""Demo data for ``make run``: invented patients taken through intake, and a few courses at sessions.

Everything goes through the public APIs with development tokens, as a clinic's staff would enter it, so the
events flow to sessions and outcomes the ordinary way. Names are invented; no real person is described.
Months of history cannot go through the APIs (they stamp the current time): deploy/synthetic.py adds those.
"""

from __future__ import annotations

import time
from typing import Any

from deploy import local_http

GIVEN = ["Alex", "Sam", "Robin", "Jordan", "Casey", "Morgan", "Riley", "Quinn", "Avery", "Jamie"]
FAMILY = ["Rivera", "Okafor", "Nguyen", "Kowalski", "Haddad", "Silva", "Berg", "Tanaka"]
CONSENT_TEXT = (
    "Ketamine is approved by the FDA as an anaesthetic; esketamine nasal spray is approved for treatment-resistant "
    "depression with an oral antidepressant. Their use here for depression, anxiety or PTSD is off-label. Common "
    "effects during a session include nausea, vomiting, changes in perception and hallucinations, a rise in blood "
    "pressure, and dissociation. Long-term data are limited. The expected cost of each session was explained."
)
NO_FLAGS: dict[str, Any] = {
    "aneurysmal_vascular_disease_or_avm": False,
    "intracerebral_haemorrhage_history": False,
    "cardiovascular_event_in_last_6_weeks": False,
    "ketamine_hypersensitivity": False,
    "pregnant": False,
    "current_psychosis": False,
    "suicidal_intent_needs_higher_care": False,
    "breastfeeding": False,
    "psychosis_or_mania_history": False,
    "bipolar_disorder": False,
    "mood_stabiliser": None,
    "systolic_mmhg": 124,
    "diastolic_mmhg": 80,
    "substance_use_disorder": False,
    "significant_liver_disease": False,
    "raised_icp_or_glaucoma": False,
    "seizure_in_last_year": False,
    "cardiovascular_disease": False,
    "hypertensive_encephalopathy_history": False,
    "stroke_history": False,
    "cerebrovascular_disease": False,
    "untreated_hyperthyroidism": False,
    "copd_or_pulmonary_insufficiency": False,
    "sleep_apnoea": False,
    "bmi_kg_m2": 25.3,
    "cystitis_or_urinary_symptoms": False,
    "takes_benzodiazepines": False,
    "takes_opioids": False,
    "takes_other_sedatives": False,
    "drinks_alcohol": False,
    "takes_stimulants": False,
    "takes_maoi": False,
}
COURSES_PER_SITE = 3
# Self-pay prices in dollars (invented; US ketamine clinics advertise $400-$800 an infusion).
DEMO_PRICES = {
    "iv_infusion_session": 600,
    "intramuscular_session": 450,
    "subcutaneous_session": 450,
    "esketamine_session": 900,
    "sublingual_session": 300,
    "integration_therapy": 180,
    "intake_evaluation": 350,
}


class DemoClinic:
    def __init__(
        self,
        site: str,
        intake_url: str,
        sessions_url: str,
        tokens: dict[tuple[str, str], str],
        billing_url: str | None = None,
    ) -> None:
        self.site = site
        self.intake = intake_url
        self.sessions = sessions_url
        self.billing = billing_url
        self.tokens = tokens

    def _as(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[self.site, role]}"}

    def _post(self, url: str, role: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = local_http.post(url, json=body, headers=self._as(role), timeout=10)
        reply.raise_for_status()
        result: dict[str, Any] = reply.json()
        return result

    def load(self, patients: int) -> None:
        if self.billing:
            self._price_list()
        document = self._post(
            f"{self.intake}/consent-documents",
            "site_admin",
            {
                "version": "2026.1",
                "title": "Informed consent: ketamine-assisted psychotherapy",
                "text": CONSENT_TEXT,
                "effective_date": "2026-01-01",
            },
        )
        ready: list[str] = []
        for n in range(patients):
            patient = self._post(
                f"{self.intake}/patients",
                "front_desk",
                {
                    "given_name": GIVEN[n % len(GIVEN)],
                    "family_name": FAMILY[(n * 3) % len(FAMILY)],
                    "birth_date": f"{1960 + (n * 7) % 45}-{1 + n % 12:02d}-{1 + (n * 5) % 28:02d}",
                    "sex": ("female", "male", "other")[n % 3],
                    "coverage": {"self_pay": True}
                    if n % 2
                    else {"payer": "Demo Health", "plan": "Standard", "member_id": f"DH-{n:05d}"},
                },
            )
            base = f"{self.intake}/patients/{patient['id']}"
            answers = dict(NO_FLAGS)
            if n % 7 == 3:
                answers.update(systolic_mmhg=152, diastolic_mmhg=96)  # needs a medical review
            if n % 11 == 5:
                answers.update(pregnant=True)  # ineligible
            screening = self._post(f"{base}/screenings", "clinician", answers)
            if screening["outcome"] == "needs_medical_review":
                self._post(
                    f"{base}/screenings/{screening['id']}/medical-review",
                    "clinician",
                    {"decision": "approve", "rationale": "Repeat blood pressure 134/86 after rest; GP confirms."},
                )
            phq9 = self._post(
                f"{base}/assessments",
                "clinician",
                {"instrument": "phq9", "answers": [2, 2, 2, 1, 2, 1, 2, 1, 1 if n % 5 == 0 else 0]},
            )
            if phq9.get("safety_flag"):
                # An item-9 answer above 0 holds treatment until a clinician has assessed the risk.
                self._post(
                    f"{base}/safety-flags/{phq9['safety_flag']['id']}/acknowledge",
                    "clinician",
                    {"note": "Passive thoughts, no plan or intent; safety plan agreed with the patient."},
                )
            self._post(f"{base}/assessments", "clinician", {"instrument": "gad7", "answers": [2, 2, 1, 2, 1, 1, 2]})
            if screening["outcome"] != "ineligible":
                self._post(
                    f"{base}/consents",
                    "front_desk",
                    {
                        "document_id": document["id"],
                        "witnessed_by": "Demo Nurse",
                        "informed_off_label_use": True,
                        "informed_adverse_reactions": True,
                        "informed_no_long_term_data": True,
                        "informed_expected_cost": True,
                    },
                )
                ready.append(patient["id"])
        for patient_id in ready[:COURSES_PER_SITE]:
            self._plan_course(patient_id)

    def _price_list(self) -> None:
        """The site's self-pay prices (invented, in the range US clinics advertise) and the demo payer's plan."""
        assert self.billing is not None
        for service, dollars in DEMO_PRICES.items():
            body = {
                "service": service,
                "amount": {"cents": dollars * 100, "currency": "USD"},
                "valid_from": "2025-01-01",
            }
            self._post(f"{self.billing}/prices", "site_admin", body)
        # The synthetic cohort's plans too (Demo Health among them): billing determines each synthetic course's
        # coverage again from the plan on file, and agrees with the synthetic determination only if it knows it.
        from deploy.synthetic import PLANS

        for plan in PLANS:
            body = plan.model_dump(mode="json")
            reply = local_http.put(f"{self.billing}/plans", json=body, headers=self._as("site_admin"), timeout=10)
            reply.raise_for_status()

    def _plan_course(self, patient_id: str, within: float = 30.0) -> None:
        """Sessions learns eligibility and consent from intake's events: wait until it has."""
        body = {
            "patient_id": patient_id,
            "indication": "treatment_resistant_depression",
            "route": "iv_infusion",
            "planned_dosing_sessions": 6,
            "dosing_sessions_per_week": 2,
            "planned_integration_sessions": 3,
        }
        deadline = time.monotonic() + within
        while True:
            reply = local_http.post(f"{self.sessions}/courses", json=body, headers=self._as("clinician"), timeout=10)
            if reply.status_code == 201:
                return
            if reply.status_code != 409 or time.monotonic() > deadline:
                reply.raise_for_status()
                raise RuntimeError(f"demo course not planned: {reply.text}")
            time.sleep(0.5)
