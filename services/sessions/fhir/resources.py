"""A dosing session as FHIR R4 (4.0.1) resources: pure functions from our models to plain JSON dicts.

As intake's FHIR (services/intake/fhir.py, whose helpers are used here): no FHIR library at run time, the tests
validate with one; every element exists in R4 with the same shape in R4B (R5 reshaped MedicationAdministration,
AdverseEvent and Encounter); FHIR forbids empty elements, so an element without a value is left out.

One session gives:
- an Encounter (id: the session's id), for its schedule, status, people and room;
- a MedicationAdministration (id: the session's id, one dose per session) once the dose is recorded, naming a
  contained Medication that carries the lot number in batch.lotNumber (R4 has no lot on the administration);
- vital-sign Observations in the style of R4's vital signs profiles, one per measure of each vitals entry (a blood
  pressure panel, heart rate, SpO2, respiratory rate) and one for the pre-dose body weight;
- an AdverseEvent (id: the event's id, as in the AdverseEventReported event) per adverse event.

Patients are referred to as Patient/{id}: the same id as intake's FHIR Patient (sessions serves no Patient).
Staff are known here only by their token's subject (sub), so they are identifier-only references.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from services.sessions.domain.adverse_events import AdverseEventSeverity, AdverseEventType
from services.sessions.domain.course import TreatmentCourse
from services.sessions.domain.session_record import (
    AdverseEventRecord,
    DoseRecord,
    DosingSessionChart,
    PreDoseCheck,
    RecordedVitals,
    SessionStatus,
)
from services.sessions.domain.settings import ESKETAMINE_DEVICE_MG
from services.sessions.domain.vitals import VitalsAlert, VitalsAlertCode
from services.sessions.fhir.code_systems import (
    ADVERSE_EVENT_CODE_SYSTEM,
    ENCOUNTER_TYPE_CODE_SYSTEM,
    INDICATION_CODE_SYSTEM,
    ROUTE_CODE_SYSTEM,
)
from shared.fhir import (
    ACT_CODE_SYSTEM,
    OBSERVATION_CATEGORY_SYSTEM,
    coding,
    concept,
    drop_empty,
    fhir_datetime,
    kapnet_coding,
    narrative,
    reference,
    staff,
)
from shared.instruments import LOINC_SYSTEM, LoincCode
from shared.treatment import Route

UCUM_SYSTEM = "http://unitsofmeasure.org"
SNOMED_SYSTEM = "http://snomed.info/sct"
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
# HL7 terminology (terminology.hl7.org), as published with R4 4.0.1.
PARTICIPATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ADMIN_PERFORM_FUNCTION_SYSTEM = "http://terminology.hl7.org/CodeSystem/med-admin-perform-function"
AE_SERIOUSNESS_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
AE_SEVERITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
AE_OUTCOME_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"

# kapnet's own identifiers (a staff member's token subject: shared.fhir.STAFF_SYSTEM) and code systems, where
# no standard one fits or none could be confirmed. The code systems are CodeSystems sessions serves
# (code_systems.py); their canonical URLs are the systems of their codes.
COURSE_SYSTEM = "urn:kapnet:course"  # a treatment course's id
SITE_SYSTEM = "urn:kapnet:site"  # as intake's Consent.organization
KAPNET_ENCOUNTER_TYPE_SYSTEM = ENCOUNTER_TYPE_CODE_SYSTEM["url"]
KAPNET_INDICATION_SYSTEM = INDICATION_CODE_SYSTEM["url"]
KAPNET_ROUTE_SYSTEM = ROUTE_CODE_SYSTEM["url"]
KAPNET_ADVERSE_EVENT_SYSTEM = ADVERSE_EVENT_CODE_SYSTEM["url"]

# R4's vital signs profiles (http://hl7.org/fhir/R4/observation-vitalsigns.html).
VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
PROFILE = "http://hl7.org/fhir/StructureDefinition/"

# --- the medicine ---
# RxNorm: ketamine is the ingredient (IN) 6130: an ingredient, since racemic ketamine is given as injections of
# several strengths and as compounded troches or solutions, which RxNorm does not cover. Esketamine is the
# clinical drug form (SCDF) 2201623 "esketamine Nasal Spray", the only esketamine product (Spravato); its
# ingredient code could not be confirmed, and the SCDF says more (nasal spray) than an ingredient would.
KETAMINE = ("6130", "ketamine")
ESKETAMINE_NASAL_SPRAY = ("2201623", "esketamine Nasal Spray")

# SNOMED CT route of administration (qualifier values), as in R4's route-codes value set. sublingual_oral is
# recorded as one route (a troche held in the mouth, or an oral solution), so neither Sublingual route
# (37839007) nor Oral route (26643006) can be chosen for it: it goes with kapnet's code and its text only.
ROUTE_SNOMED: dict[Route, tuple[str, str]] = {
    Route.iv_infusion: ("47625008", "Intravenous route"),
    Route.intramuscular: ("78421000", "Intramuscular route"),
    Route.subcutaneous: ("34206005", "Subcutaneous route"),
    Route.intranasal_esketamine: ("46713006", "Nasal route"),
}
ROUTE_TEXT: dict[Route, str] = {
    Route.iv_infusion: "intravenous infusion",
    Route.intramuscular: "intramuscular injection",
    Route.subcutaneous: "subcutaneous injection",
    Route.sublingual_oral: "sublingual or oral",
    Route.intranasal_esketamine: "nasal spray",
}

# --- vital signs: LOINC codes and UCUM units of R4's vital signs profiles ---
BP_PANEL = LoincCode("85354-9", "Blood pressure panel with all children optional")
SYSTOLIC = LoincCode("8480-6", "Systolic blood pressure")
DIASTOLIC = LoincCode("8462-4", "Diastolic blood pressure")
HEART_RATE = LoincCode("8867-4", "Heart rate")
RESPIRATORY_RATE = LoincCode("9279-1", "Respiratory rate")
BODY_WEIGHT = LoincCode("29463-7", "Body weight")
# SpO2 carries both codes: 2708-6 is the code R4's oxygen saturation profile (oxygensat) requires, and 59408-5,
# "by pulse oximetry", is how it is measured at the chair (US Core's pulse oximetry profile asks for both).
OXYGEN_SATURATION = LoincCode("2708-6", "Oxygen saturation in Arterial blood")
PULSE_OXIMETRY = LoincCode("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")

# An alert is raised at the site's action thresholds (rules.vitals_alerts), which is what v3's "critical" codes
# mean: "a reference level at which immediate action should be considered for patient safety". Readings without
# an alert carry no interpretation: no reference range is kept, so "normal" would be a guess.
CRITICAL_HIGH = ("HH", "Critical high")
CRITICAL_LOW = ("LL", "Critical low")
ALERT_INTERPRETATION: dict[VitalsAlertCode, tuple[str, str]] = {
    VitalsAlertCode.systolic_high: CRITICAL_HIGH,
    VitalsAlertCode.diastolic_high: CRITICAL_HIGH,
    VitalsAlertCode.systolic_low: CRITICAL_LOW,
    VitalsAlertCode.heart_rate_high: CRITICAL_HIGH,
    VitalsAlertCode.heart_rate_low: CRITICAL_LOW,
    VitalsAlertCode.spo2_low: CRITICAL_LOW,
    VitalsAlertCode.respiratory_rate_high: CRITICAL_HIGH,
    VitalsAlertCode.respiratory_rate_low: CRITICAL_LOW,
}

# --- the encounter ---
# R4's EncounterStatus (required binding) has no "no show": a no-show is an encounter that ended before it
# began, i.e. cancelled, and the contained Appointment says which (Appointment.status has noshow).
ENCOUNTER_STATUS: dict[SessionStatus, str] = {
    SessionStatus.scheduled: "planned",
    SessionStatus.in_progress: "in-progress",
    SessionStatus.completed: "finished",
    SessionStatus.cancelled: "cancelled",
    SessionStatus.no_show: "cancelled",
}
APPOINTMENT_STATUS: dict[SessionStatus, str] = {SessionStatus.cancelled: "cancelled", SessionStatus.no_show: "noshow"}

# --- adverse events ---
AE_DISPLAY: dict[AdverseEventType, str] = {
    AdverseEventType(concept["code"]): concept["display"] for concept in ADVERSE_EVENT_CODE_SYSTEM["concept"]
}
# R4's AdverseEvent.severity is a required binding to mild | moderate | severe; our CTCAE grades 4 and 5 are
# "severe" there, and the grade itself goes in the text.
AE_SEVERITY: dict[AdverseEventSeverity, tuple[str, str, int]] = {
    AdverseEventSeverity.mild: ("mild", "Mild", 1),
    AdverseEventSeverity.moderate: ("moderate", "Moderate", 2),
    AdverseEventSeverity.severe: ("severe", "Severe", 3),
    AdverseEventSeverity.life_threatening: ("severe", "Severe", 4),
    AdverseEventSeverity.death: ("severe", "Severe", 5),
}
# The 21 CFR 312.32(a) criteria as recorded (rules.AdverseEvent), in the words of the narrative.
SERIOUSNESS_CRITERIA: dict[str, str] = {
    "resulted_in_death": "resulted in death",
    "life_threatening": "life-threatening",
    "hospitalisation": "required or prolonged inpatient hospitalisation",
    "persistent_disability": "persistent or significant incapacity",
    "congenital_anomaly": "congenital anomaly",
    "important_medical_event": "important medical event",
}


def _number(value: float) -> str:
    return f"{value:g}"


def medicine(route: Route) -> tuple[str, str]:
    """(RxNorm code, display) of what a route gives: esketamine by nasal spray, racemic ketamine otherwise."""
    return ESKETAMINE_NASAL_SPRAY if route is Route.intranasal_esketamine else KETAMINE


def medicine_name(route: Route) -> str:
    return "esketamine" if route is Route.intranasal_esketamine else "ketamine"


# --- Encounter --------------------------------------------------------------------------------------------------


def encounter_resource(session: DosingSessionChart, course: TreatmentCourse, site: str, version: int) -> dict[str, Any]:
    """A FHIR R4 Encounter for a dosing session: ambulatory, with the patient, the clinician and the therapist,
    the room, the course (as an identifier-only EpisodeOfCare) and its indication. meta.versionId is the
    session's version; a cancelled or missed session contains the Appointment it was, with the reason."""
    closed = session.status in APPOINTMENT_STATUS
    route = session.route
    participants = [
        _participant("ATND", "attender", "clinician", session.clinician),
        _participant("PPRF", "primary performer", "therapist", session.therapist),
    ]
    discharge = session.record.discharge
    if discharge is not None:
        participants.append(_participant("DIS", "discharger", "discharging clinician", discharge.by))
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(session.id),
        "meta": {"versionId": str(version)},
        "text": narrative(_encounter_lines(session, course, site)),
        "contained": [_appointment(session)] if closed else None,
        "status": ENCOUNTER_STATUS[session.status],
        "class": coding(ACT_CODE_SYSTEM, "AMB", "ambulatory"),
        "type": [
            concept(
                kapnet_coding(ENCOUNTER_TYPE_CODE_SYSTEM, "dosing-session"),
                text=f"Dosing session ({medicine_name(route)}, {ROUTE_TEXT[route]})",
            )
        ],
        "subject": reference("Patient", session.patient_id),
        "episodeOfCare": [
            {
                "type": "EpisodeOfCare",
                "identifier": {"system": COURSE_SYSTEM, "value": str(course.id)},
                "display": "treatment course",
            }
        ],
        "participant": participants,
        "appointment": [{"reference": "#appointment"}] if closed else None,
        "period": None if closed else _period(session),
        "reasonCode": [_indication(course)],
        "location": [{"location": {"display": session.room}}],
        "serviceProvider": {"identifier": {"system": SITE_SYSTEM, "value": site}, "display": f"kapnet site {site}"},
    }
    return drop_empty(resource)


ENCOUNTER_STATUS_TEXT: dict[SessionStatus, str] = {
    SessionStatus.scheduled: "Planned",
    SessionStatus.in_progress: "Under way",
    SessionStatus.completed: "Completed",
    SessionStatus.cancelled: "Cancelled",
    SessionStatus.no_show: "Missed (no-show)",
}


def _encounter_lines(session: DosingSessionChart, course: TreatmentCourse, site: str) -> list[str]:
    route = session.route
    indication = _indication(course)
    lines = [
        f"Dosing session ({medicine_name(route)}, {ROUTE_TEXT[route]}) at site {site}, {session.room}, "
        f"for {indication['text']}.",
        f"{ENCOUNTER_STATUS_TEXT[session.status]}; booked for {fhir_datetime(session.starts_at)} to "
        f"{fhir_datetime(session.ends_at)}.",
    ]
    if session.status in APPOINTMENT_STATUS and session.status_reason:
        lines.append(f"Reason: {session.status_reason}")
    elif session.status not in APPOINTMENT_STATUS and session.status is not SessionStatus.scheduled:
        period = _period(session)
        lines.append(f"From {period['start']}" + (f" to {period['end']}." if "end" in period else ", not yet ended."))
    lines.append(f"Clinician {session.clinician}, therapist {session.therapist}.")
    discharge = session.record.discharge
    if discharge is not None:
        lines.append(f"Discharged by {discharge.by} at {fhir_datetime(discharge.discharged_at)}.")
    return lines


def _participant(code: str, display: str, role: str, sub: str) -> dict[str, Any]:
    return {
        "type": [concept(coding(PARTICIPATION_TYPE_SYSTEM, code, display), text=role)],
        "individual": staff(sub),
    }


def _period(session: DosingSessionChart) -> dict[str, str]:
    """Planned: the booking. Under way or finished: from the booked start, or the first thing recorded if that
    was earlier (so every reading falls in the encounter), to the discharge."""
    record = session.record
    if session.status is SessionStatus.scheduled:
        return {"start": fhir_datetime(session.starts_at), "end": fhir_datetime(session.ends_at)}
    recorded = [r.taken_at for r in record.vitals]
    if record.dose is not None:
        recorded.append(record.dose.administration_start)
    period = {"start": fhir_datetime(min([session.starts_at, *recorded]))}
    if session.status is SessionStatus.completed:
        period["end"] = fhir_datetime(record.discharge.discharged_at if record.discharge else session.ends_at)
    return period


def _indication(course: TreatmentCourse) -> dict[str, Any]:
    words = course.indication.value.replace("_", " ")
    return concept(
        kapnet_coding(INDICATION_CODE_SYSTEM, course.indication.value),
        text=course.indication_other if course.indication_other else words,
    )


def _appointment(session: DosingSessionChart) -> dict[str, Any]:
    """The booking a cancelled or missed session was: R4's Appointment has the status Encounter lacks
    (noshow). A cancellation's reason is its cancelationReason; a no-show's goes in the comment, because R4's
    invariant app-4 allows cancelationReason only with the status "no-show", a code R4 does not have."""
    cancelled = session.status is SessionStatus.cancelled
    reason = session.status_reason
    return drop_empty(
        {
            "resourceType": "Appointment",
            "id": "appointment",
            "status": APPOINTMENT_STATUS[session.status],
            "cancelationReason": {"text": reason} if reason and cancelled else None,
            "comment": f"No-show: {reason}" if reason and not cancelled else None,
            "start": fhir_datetime(session.starts_at),
            "end": fhir_datetime(session.ends_at),
            "participant": [{"actor": reference("Patient", session.patient_id), "status": "accepted"}],
        }
    )


# --- MedicationAdministration -------------------------------------------------------------------------------------


def medication_administration_resource(session: DosingSessionChart) -> dict[str, Any] | None:
    """The session's dose as a FHIR R4 MedicationAdministration, or None before a dose is recorded.

    The medicine is a contained Medication (RxNorm code, batch.lotNumber); the dose is a UCUM Quantity in mg
    with the route in SNOMED CT; an override of the site's dose range is a note, with its reason."""
    dose = session.record.dose
    if dose is None:
        return None
    route = dose.route
    code, display = medicine(route)
    start, end = dose.administration_start, dose.administration_end
    # An infusion still running has a period without an end.
    effective: dict[str, Any] = (
        {"effectiveDateTime": fhir_datetime(start)}
        if end == start
        else {
            "effectivePeriod": drop_empty({"start": fhir_datetime(start), "end": fhir_datetime(end) if end else None})
        }
    )
    resource: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "id": str(session.id),
        "contained": [
            {
                "resourceType": "Medication",
                "id": "medication",
                "code": concept(coding(RXNORM_SYSTEM, code, display), text=display),
                "batch": {"lotNumber": dose.lot_number},
            }
        ],
        "status": "completed" if end is not None else "in-progress",
        "medicationReference": {"reference": "#medication", "display": display},
        "subject": reference("Patient", session.patient_id),
        "context": reference("Encounter", session.id),
        **effective,
        "performer": [
            {
                "function": concept(coding(ADMIN_PERFORM_FUNCTION_SYSTEM, "performer", "Performer")),
                "actor": staff(dose.recorded_by),
            }
        ],
        "note": _dose_notes(dose),
        "dosage": {
            "text": _dose_text(route, dose),
            "route": _route_concept(route),
            "dose": {"value": dose.dose_mg, "unit": "mg", "system": UCUM_SYSTEM, "code": "mg"},
        },
    }
    given = fhir_datetime(start) if end == start else f"from {fhir_datetime(start)}"
    if end != start:
        given += f" to {fhir_datetime(end)}" if end is not None else ", still running"
    resource["text"] = narrative(
        [
            f"{display}, {_dose_text(route, dose)}; {resource['status']}.",
            f"Given {given} by {dose.recorded_by}; lot {dose.lot_number}.",
            *(note["text"] for note in resource["note"]),
        ]
    )
    return drop_empty(resource)


def _route_concept(route: Route) -> dict[str, Any]:
    if route in ROUTE_SNOMED:
        code, display = ROUTE_SNOMED[route]
        return concept(coding(SNOMED_SYSTEM, code, display), text=ROUTE_TEXT[route])
    return concept(kapnet_coding(ROUTE_CODE_SYSTEM, route.value), text=ROUTE_TEXT[route])


def _dose_text(route: Route, dose: DoseRecord) -> str:
    mg = _number(dose.dose_mg)
    if route in (Route.iv_infusion, Route.intramuscular, Route.subcutaneous):
        text = f"{_number(dose.mg_per_kg)} mg/kg for {_number(dose.weight_kg)} kg: {mg} mg"
    else:
        text = f"{mg} mg ({_number(dose.mg_per_kg)} mg/kg for {_number(dose.weight_kg)} kg)"
    if dose.devices:
        text += f", {dose.devices} devices of {ESKETAMINE_DEVICE_MG} mg"
    return f"{text}, {ROUTE_TEXT[route]}"


def _dose_notes(dose: DoseRecord) -> list[dict[str, Any]]:
    notes = []
    if dose.override_reason:
        problems = "; ".join(dose.problems) or "outside the site's dose range"
        notes.append(
            {
                "authorReference": staff(dose.recorded_by),
                "text": f"Given on a clinician's override ({problems}): {dose.override_reason}",
            }
        )
    if dose.device_times:
        times = ", ".join(fhir_datetime(t) for t in dose.device_times)
        notes.append({"text": f"Nasal spray devices given at {times}"})
    return notes


# --- Observation (vital signs) ----------------------------------------------------------------------------------


def vitals_observations(session: DosingSessionChart) -> list[dict[str, Any]]:
    """The session's vital signs as FHIR R4 Observations in the style of R4's vital signs profiles: the
    pre-dose body weight, then for each entry of the vitals timeline one Observation per measure taken (a blood
    pressure panel, heart rate, SpO2, respiratory rate). An alert raised on a measure is its interpretation.

    Ids are stable: {session id}-{measure}-{epoch seconds of taken_at}, with ".n" for a second entry taken in
    the same second."""
    record = session.record
    observations = []
    if record.pre_dose is not None:
        observations.append(_body_weight(session, record.pre_dose))
    seen: Counter[int] = Counter()
    for reading in record.vitals:
        second = int(reading.taken_at.timestamp())
        suffix = f"{second}" + (f".{seen[second]}" if seen[second] else "")
        seen[second] += 1
        observations.extend(_reading(session, reading, suffix, reading.recorded_by))
    return observations


def _vital_sign(
    session: DosingSessionChart,
    observation_id: str,
    profile: str,
    code: dict[str, Any],
    effective: str,
    performer: str | None,
    **values: Any,
) -> dict[str, Any]:
    return drop_empty(
        {
            "resourceType": "Observation",
            "id": observation_id,
            "meta": {"profile": [VITAL_SIGNS_PROFILE, PROFILE + profile]},
            "text": narrative(_vital_sign_lines(code, effective, performer, values)),
            "status": "final",
            "category": [concept(coding(OBSERVATION_CATEGORY_SYSTEM, "vital-signs", "Vital Signs"))],
            "code": code,
            "subject": reference("Patient", session.patient_id),
            "encounter": reference("Encounter", session.id),
            "effectiveDateTime": effective,
            "performer": [staff(performer)] if performer else None,
            **values,
        }
    )


def _vital_sign_lines(code: dict[str, Any], effective: str, performer: str | None, values: dict[str, Any]) -> list[str]:
    """The reading as a line (Heart rate: 130 beats/minute (Critical high), at ..., by ...), then each alert."""

    def reading(element: dict[str, Any]) -> str:
        quantity = element["valueQuantity"]
        flags = [i["coding"][0]["display"] for i in element.get("interpretation") or []]
        return f"{_number(quantity['value'])} {quantity['unit']}" + (f" ({', '.join(flags)})" if flags else "")

    if "valueQuantity" in values:
        value = reading(values)
    else:
        # A panel's interpretation repeats that of the component it came from, which is told there.
        value = ", ".join(f"{c['code']['text']} {reading(c)}" for c in values["component"])
    by = f", by {performer}" if performer else ""
    return [f"{code['text']}: {value}, at {effective}{by}.", *(note["text"] for note in values.get("note") or [])]


def _loinc(*codes: LoincCode, text: str) -> dict[str, Any]:
    return concept(*(coding(LOINC_SYSTEM, c.code, c.display) for c in codes), text=text)


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM_SYSTEM, "code": code}


def _interpretation(alert: VitalsAlert | None) -> list[dict[str, Any]] | None:
    if alert is None:
        return None
    code, display = ALERT_INTERPRETATION[alert.code]
    return [concept(coding(INTERPRETATION_SYSTEM, code, display), text=alert.message)]


def _body_weight(session: DosingSessionChart, pre_dose: PreDoseCheck) -> dict[str, Any]:
    # Weighed at the pre-dose check: its time is when that check was recorded.
    return _vital_sign(
        session,
        f"{session.id}-weight",
        "bodyweight",
        _loinc(BODY_WEIGHT, text="Body weight"),
        fhir_datetime(pre_dose.recorded_at),
        pre_dose.recorded_by,
        valueQuantity=_quantity(pre_dose.weight_kg, "kg", "kg"),
    )


def _reading(
    session: DosingSessionChart, reading: RecordedVitals, suffix: str, performer: str | None
) -> list[dict[str, Any]]:
    effective = fhir_datetime(reading.taken_at)
    alerts = {alert.code: alert for alert in reading.alerts}
    observations = []

    def single(
        measure: str, profile: str, code: dict[str, Any], value: dict[str, Any], *watched: VitalsAlertCode
    ) -> None:
        raised = [alerts[a] for a in watched if a in alerts]
        observations.append(
            _vital_sign(
                session,
                f"{session.id}-{measure}-{suffix}",
                profile,
                code,
                effective,
                performer,
                valueQuantity=value,
                interpretation=_interpretation(raised[0] if raised else None),
                note=[{"text": a.message} for a in raised],
            )
        )

    if reading.systolic_mmhg is not None and reading.diastolic_mmhg is not None:
        systolic = alerts.get(VitalsAlertCode.systolic_high) or alerts.get(VitalsAlertCode.systolic_low)
        diastolic = alerts.get(VitalsAlertCode.diastolic_high)
        raised = [a for a in (systolic, diastolic) if a is not None]
        observations.append(
            _vital_sign(
                session,
                f"{session.id}-bp-{suffix}",
                "bp",
                _loinc(BP_PANEL, text="Blood pressure"),
                effective,
                performer,
                interpretation=_interpretation(raised[0] if raised else None),
                note=[{"text": a.message} for a in raised],
                component=[
                    drop_empty(
                        {
                            "code": _loinc(SYSTOLIC, text="Systolic blood pressure"),
                            "valueQuantity": _quantity(reading.systolic_mmhg, "mmHg", "mm[Hg]"),
                            "interpretation": _interpretation(systolic),
                        }
                    ),
                    drop_empty(
                        {
                            "code": _loinc(DIASTOLIC, text="Diastolic blood pressure"),
                            "valueQuantity": _quantity(reading.diastolic_mmhg, "mmHg", "mm[Hg]"),
                            "interpretation": _interpretation(diastolic),
                        }
                    ),
                ],
            )
        )
    if reading.heart_rate_bpm is not None:
        single(
            "hr",
            "heartrate",
            _loinc(HEART_RATE, text="Heart rate"),
            _quantity(reading.heart_rate_bpm, "beats/minute", "/min"),
            VitalsAlertCode.heart_rate_high,
            VitalsAlertCode.heart_rate_low,
        )
    if reading.spo2_percent is not None:
        single(
            "spo2",
            "oxygensat",
            _loinc(OXYGEN_SATURATION, PULSE_OXIMETRY, text="SpO2 by pulse oximetry"),
            _quantity(reading.spo2_percent, "%", "%"),
            VitalsAlertCode.spo2_low,
        )
    if reading.respiratory_rate_per_min is not None:
        single(
            "rr",
            "resprate",
            _loinc(RESPIRATORY_RATE, text="Respiratory rate"),
            _quantity(reading.respiratory_rate_per_min, "breaths/minute", "/min"),
            VitalsAlertCode.respiratory_rate_high,
            VitalsAlertCode.respiratory_rate_low,
        )
    return observations


# --- AdverseEvent -----------------------------------------------------------------------------------------------


def adverse_event_resources(session: DosingSessionChart) -> list[dict[str, Any]]:
    return [adverse_event_resource(session, entry) for entry in session.record.adverse_events]


def adverse_event_resource(session: DosingSessionChart, entry: AdverseEventRecord) -> dict[str, Any]:
    """One adverse event as a FHIR R4 AdverseEvent: the event by kapnet's code and its text, R4's seriousness
    and severity, fatal outcome when it resulted in death, and the session's dose as the suspect when the event
    came after it. R4's AdverseEvent has no note and no element for the action taken or the seriousness
    criteria, so these are in the narrative (and the criteria in seriousness.text)."""
    kind: AdverseEventType = entry.type
    severity: AdverseEventSeverity = entry.severity
    severity_code, severity_display, grade = AE_SEVERITY[severity]
    criteria = [words for key, words in SERIOUSNESS_CRITERIA.items() if getattr(entry, key)]
    serious = entry.serious
    # R4 (4.0.1) codes; later terminology releases spell them "serious" and "non-serious".
    seriousness = ("Serious", "Serious") if serious else ("Non-serious", "Non-serious")
    event_text = _event_text(kind, entry.description)
    severity_text = f"{severity.value.replace('_', '-')} (CTCAE grade {grade})"
    resource: dict[str, Any] = {
        "resourceType": "AdverseEvent",
        "id": str(entry.id),
        "text": narrative(_adverse_event_lines(entry, event_text, severity_text, criteria, serious)),
        "actuality": "actual",
        "event": concept(kapnet_coding(ADVERSE_EVENT_CODE_SYSTEM, kind.value), text=event_text),
        "subject": reference("Patient", session.patient_id),
        "encounter": reference("Encounter", session.id),
        "date": fhir_datetime(entry.occurred_at),
        "recordedDate": fhir_datetime(entry.reported_at) if entry.reported_at else None,
        "seriousness": concept(
            coding(AE_SERIOUSNESS_SYSTEM, *seriousness),
            text=("Serious: " + "; ".join(criteria)) if serious and criteria else seriousness[1],
        ),
        "severity": concept(coding(AE_SEVERITY_SYSTEM, severity_code, severity_display), text=severity_text),
        "outcome": concept(coding(AE_OUTCOME_SYSTEM, "fatal", "Fatal")) if entry.resulted_in_death else None,
        "recorder": staff(entry.reported_by),
        "suspectEntity": _suspect(session, entry),
    }
    return drop_empty(resource)


def _event_text(kind: AdverseEventType, description: str | None) -> str:
    if kind is AdverseEventType.other:
        return description or AE_DISPLAY[kind]
    return f"{AE_DISPLAY[kind]}: {description}" if description else AE_DISPLAY[kind]


def _adverse_event_lines(
    entry: AdverseEventRecord, event_text: str, severity_text: str, criteria: list[str], serious: bool
) -> list[str]:
    lines = [f"Adverse event: {event_text}, {severity_text}, at {fhir_datetime(entry.occurred_at)}."]
    if serious:
        lines.append(
            "Serious (21 CFR 312.32): "
            + ("; ".join(criteria) if criteria else "by its severity")
            + (". Flagged for reporting." if entry.flagged_for_reporting else ".")
        )
    else:
        lines.append("Not serious: no criterion of 21 CFR 312.32 met.")
    lines.append(f"Action taken: {entry.action_taken}")
    return lines


def _suspect(session: DosingSessionChart, entry: AdverseEventRecord) -> list[dict[str, Any]] | None:
    dose = session.record.dose
    if dose is None or entry.occurred_at < dose.administration_start:
        return None
    name = medicine_name(dose.route)
    return [
        {
            "instance": {
                "reference": f"MedicationAdministration/{session.id}",
                "display": f"{name} {_number(dose.dose_mg)} mg",
            }
        }
    ]


def session_resources(
    kind: str, session: DosingSessionChart, course: TreatmentCourse, site: str, version: int
) -> list[dict[str, Any]]:
    """Every resource of one type a session gives, in record order."""
    match kind:
        case "Encounter":
            return [encounter_resource(session, course, site, version)]
        case "MedicationAdministration":
            administration = medication_administration_resource(session)
            return [administration] if administration is not None else []
        case "Observation":
            return vitals_observations(session)
        case "AdverseEvent":
            return adverse_event_resources(session)
    raise ValueError(f"sessions serves no {kind}")
