"""FHIR R4 read of dosing sessions: the mappers on model objects, then the /fhir routes on a real database
(SQLite and PostgreSQL), with sessions driven through sessions' own API from booking to signature.

Every resource is validated as intake's are (``assert_valid_r4`` from tests/fhir_validation.py: fhir.resources'
R4B models, which are R4 for Encounter, MedicationAdministration, Medication, Observation, AdverseEvent,
Appointment and Bundle), plus ``assert_valid_session_r4``: the required bindings and invariants of the elements
sessions sends, which neither the model library nor intake's checks cover.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlmodel import col, select

from services.sessions.api import ROUTERS
from services.sessions.api.fhir import router as fhir_router
from services.sessions.domain.adverse_events import AdverseEventType
from services.sessions.domain.course import TreatmentCourse
from services.sessions.domain.session_record import AdverseEventRecord, DosingSessionChart, SessionRecord, SessionStatus
from services.sessions.fhir import (
    CODE_SYSTEMS,
    adverse_event_resource,
    encounter_resource,
    medication_administration_resource,
    vitals_observations,
)
from services.sessions.fhir.code_systems import ADVERSE_EVENT_DEFINITIONS, INDICATION_DEFINITIONS, ROUTE_DEFINITIONS
from shared.audit import AuditEntry
from shared.auth.guard import declare_permissions
from shared.treatment import CourseStatus, Indication, Route
from tests.fhir_validation import assert_valid_r4, values
from tests.harness import auth_headers
from tests.sessions.conftest import Sessions
from tests.sessions.test_session_record_api import a_session, at, pre_dose, ready_to_discharge, vitals

FHIR_JSON = "application/fhir+json"
# Written out here rather than read from services/sessions/fhir.py, so the test checks the codes themselves.
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
STAFF = "urn:kapnet:staff"
# kapnet's code systems: CodeSystems that sessions serves, whose canonical URLs are the systems of their codes.
KAPNET_ROUTE = "https://kapnet.example/fhir/CodeSystem/route"
KAPNET_ADVERSE_EVENT = "https://kapnet.example/fhir/CodeSystem/adverse-event"
KAPNET_CODE_SYSTEMS = {
    "encounter-type": "https://kapnet.example/fhir/CodeSystem/encounter-type",
    "indication": "https://kapnet.example/fhir/CodeSystem/indication",
    "route": KAPNET_ROUTE,
    "adverse-event": KAPNET_ADVERSE_EVENT,
}
VITAL_SIGNS = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
KETAMINE_RXNORM = "6130"
ESKETAMINE_NASAL_SPRAY_RXNORM = "2201623"
ROUTES = {
    "iv_infusion": "47625008",
    "intramuscular": "78421000",
    "subcutaneous": "34206005",
    "intranasal_esketamine": "46713006",
}
# (LOINC codes, UCUM code, R4 profile) per measure.
MEASURES: dict[str, tuple[set[str], str | None, str]] = {
    "bp": ({"85354-9"}, None, "bp"),
    "hr": ({"8867-4"}, "/min", "heartrate"),
    "spo2": ({"2708-6", "59408-5"}, "%", "oxygensat"),
    "rr": ({"9279-1"}, "/min", "resprate"),
    "weight": ({"29463-7"}, "kg", "bodyweight"),
}

# --- R4 checks of the elements sessions sends (beyond tests/intake/test_fhir.py) ---------------------------------

# Required bindings (R4 4.0.1): path -> allowed codes.
REQUIRED_CODES: dict[tuple[str, ...], frozenset[str]] = {
    ("Encounter", "status"): frozenset(
        {"planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled"}
        | {"entered-in-error", "unknown"}
    ),
    ("MedicationAdministration", "status"): frozenset(
        {"in-progress", "not-done", "on-hold", "completed", "entered-in-error", "stopped", "unknown"}
    ),
    ("AdverseEvent", "actuality"): frozenset({"actual", "potential"}),
    ("AdverseEvent", "severity", "coding", "code"): frozenset({"mild", "moderate", "severe"}),
    ("AdverseEvent", "outcome", "coding", "code"): frozenset(
        {"resolved", "recovering", "ongoing", "resolvedWithSequelae", "fatal", "unknown"}
    ),
    ("AdverseEvent", "text", "status"): frozenset({"generated", "extensions", "additional", "empty"}),
    ("Appointment", "status"): frozenset(
        {"proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow", "entered-in-error"}
        | {"checked-in", "waitlist"}
    ),
    ("Appointment", "participant", "status"): frozenset({"accepted", "declined", "tentative", "needs-action"}),
}
RESOURCE_TYPES = frozenset({"Practitioner", "Patient", "Encounter", "EpisodeOfCare", "MedicationAdministration"})


def _references(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [ref for item in node for ref in _references(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if "reference" in node or ("identifier" in node and "type" in node) else []
    return found + [ref for key, value in node.items() if key != "contained" for ref in _references(value)]


def _session_checks(resource: dict[str, Any], container: dict[str, Any] | None = None) -> None:
    kind = resource["resourceType"]
    for (resource_type, *path), allowed in REQUIRED_CODES.items():
        if resource_type == kind:
            for value in values(resource, tuple(path)):
                assert value in allowed, f"{kind}.{'.'.join(path)} = {value!r} is not in the required value set"
    for ref in _references(resource):
        assert ref.get("type", "Practitioner") in RESOURCE_TYPES, ref
        if ref.get("reference", "").startswith("#"):
            ids = {c["id"] for c in resource.get("contained", [])}
            assert ref["reference"][1:] in ids, f"ref-1: {ref} names no contained resource"
    for period in [*values(resource, ("period",)), *values(resource, ("effectivePeriod",))]:
        if "start" in period and "end" in period:
            assert datetime.fromisoformat(period["start"]) <= datetime.fromisoformat(period["end"]), "per-1"
    if "text" in resource:
        assert resource["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">'), "txt-1"
    if container is not None:
        assert "contained" not in resource, "dom-2"
        assert not {"versionId", "lastUpdated"} & resource.get("meta", {}).keys(), "dom-4"
        assert f"#{resource['id']}" in str(container), "dom-3: a contained resource is referenced"
    for contained in resource.get("contained", []):
        get_fhir_model_class(contained["resourceType"]).model_validate(contained)
        _session_checks(contained, resource)
    if kind == "MedicationAdministration" and "dosage" in resource:
        assert {"dose", "rateRatio", "rateQuantity"} & resource["dosage"].keys(), "mad-1"
    if kind == "Observation" and "vital-signs" in str(resource["category"]):
        assert {"valueQuantity", "component", "hasMember", "dataAbsentReason"} & resource.keys(), "vs-2"
        assert all("valueQuantity" in c or "dataAbsentReason" in c for c in resource.get("component", [])), "vs-3"
    if kind == "Appointment":
        assert ("start" in resource) == ("end" in resource), "app-2"
        assert "start" in resource or resource["status"] in {"proposed", "cancelled", "waitlist"}, "app-3"
        assert all({"actor", "type"} & p.keys() for p in resource["participant"]), "app-1"


def assert_valid_session_r4(resource: dict[str, Any]) -> None:
    assert_valid_r4(resource)
    if resource["resourceType"] == "Bundle":
        for entry in resource.get("entry", []):
            _session_checks(entry["resource"])
    else:
        _session_checks(resource)


def codes(concept: dict[str, Any], system: str) -> set[str]:
    return {c["code"] for c in concept.get("coding", []) if c["system"] == system}


def same_moment(fhir_value: str, ours: str | datetime) -> bool:
    expected = ours if isinstance(ours, datetime) else datetime.fromisoformat(ours)
    return datetime.fromisoformat(fhir_value) == expected


# --- the mappers on model objects -------------------------------------------------------------------------------

PATIENT_ID = uuid.UUID("6f1c0d1e-6a4e-4a53-9a53-2b1f1d2c3e4f")
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def a_course(route: str = "iv_infusion") -> TreatmentCourse:
    return TreatmentCourse(
        id=uuid.uuid4(),
        patient_id=PATIENT_ID,
        indication=Indication.treatment_resistant_depression,
        indication_other=None,
        route=Route(route),
        planned_dosing_sessions=6,
        dosing_sessions_per_week=2,
        planned_integration_sessions=3,
        prescriber="dr-k",
        prescriber_name="Dr K",
        status=CourseStatus.active,
        status_reason=None,
        planned_at=START - timedelta(days=7),
        status_changed_at=START - timedelta(days=7),
    )


def a_dosing_session(course: TreatmentCourse, **changes: Any) -> DosingSessionChart:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "course_id": course.id,
        "route": course.route,
        "indication": course.indication,
        "patient_id": PATIENT_ID,
        "starts_at": START,
        "ends_at": START + timedelta(hours=4),
        "room": "Room 2",
        "clinician": "dr-k",
        "therapist": "t-1",
        "status": SessionStatus.scheduled,
    }
    merged = {**fields, **changes}
    merged["record"] = SessionRecord.model_validate(merged.get("record", {}))
    return DosingSessionChart(**merged)


def a_dose(route: str, **changes: Any) -> dict[str, Any]:
    return {
        "route": route,
        "dose_mg": 40.0,
        "mg_per_kg": 0.5,
        "weight_kg": 80.0,
        "age_years": 45,
        "first_dose": False,
        "within_range": True,
        "problems": [],
        "devices": None,
        "override_reason": None,
        "lot_number": "L-1",
        "administration_start": (START + timedelta(minutes=20)).isoformat(),
        "administration_end": (START + timedelta(minutes=60)).isoformat(),
        "device_times": [],
        "recorded_by": "dr-k",
        "recorded_at": (START + timedelta(minutes=20)).isoformat(),
        **changes,
    }


def test_a_scheduled_session_is_a_planned_ambulatory_encounter_over_its_booking() -> None:
    course = a_course()
    session = a_dosing_session(course)
    resource = encounter_resource(session, course, "north", 1)
    assert_valid_session_r4(resource)
    assert (resource["id"], resource["status"]) == (str(session.id), "planned")
    assert resource["class"] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "AMB",
        "display": "ambulatory",
    }
    assert resource["period"] == {"start": START.isoformat(), "end": (START + timedelta(hours=4)).isoformat()}
    assert resource["subject"] == {"reference": f"Patient/{PATIENT_ID}"}
    assert [(p["type"][0]["coding"][0]["code"], p["individual"]["identifier"]) for p in resource["participant"]] == [
        ("ATND", {"system": STAFF, "value": "dr-k"}),
        ("PPRF", {"system": STAFF, "value": "t-1"}),
    ]
    assert resource["location"] == [{"location": {"display": "Room 2"}}]
    assert resource["type"][0]["text"] == "Dosing session (ketamine, intravenous infusion)"
    assert resource["episodeOfCare"][0]["identifier"] == {"system": "urn:kapnet:course", "value": str(course.id)}
    assert resource["reasonCode"][0]["text"] == "treatment resistant depression"
    assert resource["serviceProvider"]["identifier"] == {"system": "urn:kapnet:site", "value": "north"}
    assert resource["meta"] == {"versionId": "1"}
    assert not {"contained", "appointment"} & resource.keys()
    assert resource["type"][0]["coding"] == [
        {"system": KAPNET_CODE_SYSTEMS["encounter-type"], "code": "dosing-session", "display": "Dosing session"}
    ]
    assert resource["reasonCode"][0]["coding"] == [
        {
            "system": KAPNET_CODE_SYSTEMS["indication"],
            "code": "treatment_resistant_depression",
            "display": "Treatment-resistant depression",
        }
    ]
    div = resource["text"]["div"]
    assert "Dosing session (ketamine, intravenous infusion) at site north, Room 2" in div
    assert f"<p>Planned; booked for {START.isoformat()} to " in div and "Clinician dr-k, therapist t-1." in div


@pytest.mark.parametrize(("status", "appointment"), [("cancelled", "cancelled"), ("no_show", "noshow")])
def test_a_cancelled_or_missed_session_is_a_cancelled_encounter_with_its_appointment(
    status: str, appointment: str
) -> None:
    course = a_course()
    resource = encounter_resource(a_dosing_session(course, status=status, status_reason="<unwell>"), course, "north", 1)
    assert_valid_session_r4(resource)
    assert resource["status"] == "cancelled", "R4's EncounterStatus has no no-show"
    [contained] = resource["contained"]
    assert (contained["resourceType"], contained["status"]) == ("Appointment", appointment)
    if status == "cancelled":
        assert contained["cancelationReason"] == {"text": "<unwell>"}
    else:  # R4's app-4 allows cancelationReason only with a status R4 does not have ("no-show")
        assert "cancelationReason" not in contained and contained["comment"] == "No-show: <unwell>"
    assert resource["appointment"] == [{"reference": "#appointment"}]
    assert "period" not in resource, "it never began; the booking is the Appointment's start and end"
    assert "<p>Reason: &lt;unwell&gt;</p>" in resource["text"]["div"]
    assert "text" not in contained, "the Encounter's narrative tells its contained Appointment"


def test_an_encounter_under_way_has_no_end_and_starts_at_the_first_reading_if_earlier() -> None:
    course = a_course()
    early = START - timedelta(minutes=10)
    reading = {
        "taken_at": early.isoformat(),
        "heart_rate_bpm": 70,
        "phase": "pre_dose",
        "alerts": [],
        "recorded_by": "t",
    }
    record = {"vitals": [reading]}
    resource = encounter_resource(a_dosing_session(course, status="in_progress", record=record), course, "north", 1)
    assert_valid_session_r4(resource)
    assert (resource["status"], resource["period"]) == ("in-progress", {"start": early.isoformat()})


@pytest.mark.parametrize("route", ["iv_infusion", "intramuscular", "subcutaneous"])
def test_ketamine_by_injection_has_rxnorm_ketamine_and_the_snomed_route(route: str) -> None:
    course = a_course(route)
    resource = medication_administration_resource(a_dosing_session(course, record={"dose": a_dose(route)}))
    assert resource is not None
    assert_valid_session_r4(resource)
    [medication] = resource["contained"]
    assert codes(medication["code"], RXNORM) == {KETAMINE_RXNORM}
    assert medication["batch"] == {"lotNumber": "L-1"}
    assert codes(resource["dosage"]["route"], SNOMED) == {ROUTES[route]}
    assert resource["dosage"]["dose"] == {"value": 40.0, "unit": "mg", "system": UCUM, "code": "mg"}
    assert resource["dosage"]["text"].startswith("0.5 mg/kg for 80 kg: 40 mg")
    div = resource["text"]["div"]
    assert f"<p>ketamine, {resource['dosage']['text']}; completed.</p>" in div
    assert f"from {(START + timedelta(minutes=20)).isoformat()} to {(START + timedelta(minutes=60)).isoformat()}" in div
    assert "by dr-k; lot L-1." in div


def test_no_dose_no_medication_administration() -> None:
    assert medication_administration_resource(a_dosing_session(a_course())) is None


def test_sublingual_or_oral_ketamine_has_no_snomed_route_and_an_instant_effective_time() -> None:
    course = a_course("sublingual_oral")
    dose = a_dose("sublingual_oral", dose_mg=150.0, mg_per_kg=1.875)
    dose["administration_end"] = dose["administration_start"]
    resource = medication_administration_resource(a_dosing_session(course, record={"dose": dose}))
    assert resource is not None
    assert_valid_session_r4(resource)
    route = resource["dosage"]["route"]
    assert codes(route, SNOMED) == set() and route["text"] == "sublingual or oral"
    assert route["coding"] == [{"system": KAPNET_ROUTE, "code": "sublingual_oral", "display": "Sublingual or oral"}]
    assert same_moment(resource["effectiveDateTime"], dose["administration_start"])
    assert "effectivePeriod" not in resource


def test_vital_signs_with_an_alert_are_interpreted_critical() -> None:
    course = a_course()
    taken = START.isoformat()
    record = {
        "vitals": [
            {
                "taken_at": taken,
                "systolic_mmhg": 150,
                "diastolic_mmhg": 112,
                "heart_rate_bpm": 45,
                "phase": "monitoring",
                "recorded_by": "t-1",
                "alerts": [
                    {"code": "diastolic_high", "message": "diastolic high", "value": 112, "threshold": 110},
                    {"code": "heart_rate_low", "message": "heart rate low", "value": 45, "threshold": 50},
                ],
            },
            {"taken_at": taken, "spo2_percent": 97, "phase": "monitoring", "recorded_by": "t-1", "alerts": []},
        ]
    }
    session = a_dosing_session(course, status="in_progress", record=record)
    bp, hr, spo2 = vitals_observations(session)
    for observation in (bp, hr, spo2):
        assert_valid_session_r4(observation)
    systolic, diastolic = bp["component"]
    assert "interpretation" not in systolic
    assert codes(diastolic["interpretation"][0], INTERPRETATION) == {"HH"}
    assert codes(bp["interpretation"][0], INTERPRETATION) == {"HH"}
    assert codes(hr["interpretation"][0], INTERPRETATION) == {"LL"} and hr["note"] == [{"text": "heart rate low"}]
    assert f"<p>Heart rate: 45 beats/minute (Critical low), at {START.isoformat()}, by t-1.</p>" in hr["text"]["div"]
    assert (
        "<p>Blood pressure: Systolic blood pressure 150 mmHg, Diastolic blood pressure 112 mmHg (Critical high), at "
        in (bp["text"]["div"])
    )
    assert "interpretation" not in spo2
    second = int(START.timestamp())
    assert [bp["id"], hr["id"], spo2["id"]] == [
        f"{session.id}-bp-{second}",
        f"{session.id}-hr-{second}",
        f"{session.id}-spo2-{second}.1",
    ], "a second entry in the same second gets its own id"


def test_an_adverse_event_of_grade_4_is_severe_serious_and_named_in_its_text() -> None:
    course = a_course()
    entry = {
        "id": str(uuid.uuid4()),
        "type": "other",
        "description": "Laryngospasm",
        "severity": "life_threatening",
        "resulted_in_death": False,
        "life_threatening": True,
        "hospitalisation": True,
        "persistent_disability": False,
        "congenital_anomaly": False,
        "important_medical_event": False,
        "serious": True,
        "flagged_for_reporting": True,
        "action_taken": "airway support & transfer",
        "occurred_at": (START + timedelta(minutes=10)).isoformat(),
        "reported_by": "dr-k",
    }
    session = a_dosing_session(course, status="in_progress", record={"dose": a_dose("iv_infusion")})
    resource = adverse_event_resource(session, AdverseEventRecord.model_validate(entry))
    assert_valid_session_r4(resource)
    assert resource["event"]["text"] == "Laryngospasm"
    assert codes(resource["severity"], SEVERITY) == {"severe"} and "grade 4" in resource["severity"]["text"]
    assert codes(resource["seriousness"], SERIOUSNESS) == {"Serious"}
    assert (
        resource["seriousness"]["text"] == "Serious: life-threatening; required or prolonged inpatient hospitalisation"
    )
    assert "airway support &amp; transfer" in resource["text"]["div"]
    assert "suspectEntity" not in resource, "it came before the dose started"
    assert "outcome" not in resource
    death = {**entry, "severity": "death", "resulted_in_death": True}
    assert codes(
        adverse_event_resource(session, AdverseEventRecord.model_validate(death))["outcome"],
        "http://terminology.hl7.org/CodeSystem/adverse-event-outcome",
    ) == {"fatal"}


def test_sessions_serves_a_complete_codesystem_for_each_kapnet_code_system_it_uses() -> None:
    assert {cs["id"]: cs["url"] for cs in CODE_SYSTEMS.values()} == KAPNET_CODE_SYSTEMS
    for code_system in CODE_SYSTEMS.values():
        assert_valid_r4(code_system)
        assert (code_system["status"], code_system["content"]) == ("active", "complete")
    defined = {cs["id"]: {c["code"] for c in cs["concept"]} for cs in CODE_SYSTEMS.values()}
    assert defined["indication"] == {i.value for i in Indication}
    assert defined["route"] == {r.value for r in Route}
    assert defined["adverse-event"] == {t.value for t in AdverseEventType}
    assert defined["encounter-type"] == {"dosing-session"}
    # Each value has a definition of its own, not the placeholder a value added to the enum gets meanwhile.
    assert INDICATION_DEFINITIONS.keys() == set(Indication)
    assert ROUTE_DEFINITIONS.keys() == set(Route)
    assert ADVERSE_EVENT_DEFINITIONS.keys() == set(AdverseEventType)


# --- the routes -------------------------------------------------------------------------------------------------


def test_the_fhir_router_is_wired_into_sessions() -> None:
    assert fhir_router in ROUTERS, (
        "add the FHIR router to ROUTERS in services/sessions/api/__init__.py "
        "(from services.sessions.api.fhir import router as fhir_router)"
    )


@pytest.fixture
def fhir(sessions: Sessions) -> Sessions:
    """The sessions fixture's app with the FHIR routes: included here when ROUTERS lacks them, so the routes are
    tested either way (test_the_fhir_router_is_wired_into_sessions fails until they are wired)."""
    if fhir_router not in ROUTERS:
        app = sessions.client._transport.app  # type: ignore[attr-defined]
        app.include_router(declare_permissions(fhir_router))
    return sessions


def fhir_json(reply: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = reply.json()
    assert_valid_session_r4(body)
    return body


async def search(sessions: Sessions, kind: str, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    bundle = fhir_json(await sessions.client.get(f"/fhir/{kind}", params=params, headers=headers))
    assert bundle["type"] == "searchset" and bundle["total"] == len(bundle.get("entry", []))
    for entry in bundle.get("entry", []):
        assert entry["fullUrl"] == f"http://service/fhir/{kind}/{entry['resource']['id']}"
        assert entry["search"] == {"mode": "match"}
    return [entry["resource"] for entry in bundle.get("entry", [])]


async def audit_actions(sessions: Sessions) -> list[tuple[str, str]]:
    async with sessions.database.sessions() as session:
        rows = (await session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
    return [(r.action, r.resource) for r in rows if r.action.startswith("fhir.")]


def an_event(kind: str, severity: str, occurred_minutes_ago: float, **criteria: Any) -> dict[str, Any]:
    return {
        "event": {
            "type": kind,
            "severity": severity,
            "resulted_in_death": False,
            "life_threatening": False,
            "hospitalisation": False,
            "persistent_disability": False,
            "congenital_anomaly": False,
            "important_medical_event": False,
            **criteria,
        },
        "action_taken": f"action for {kind}",
        "occurred_at": at(occurred_minutes_ago),
    }


async def post(sessions: Sessions, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    reply = await sessions.client.post(path, json=body, headers=headers)
    assert reply.is_success, reply.text
    result: dict[str, Any] = reply.json()
    return result


async def test_an_iv_session_reads_as_encounter_dose_vital_signs_and_adverse_events(fhir: Sessions) -> None:
    session_id = await a_session(fhir)
    url, nurse, doctor = f"/sessions/{session_id}", fhir.as_("therapist"), fhir.as_("clinician", sub="dr-k")
    booked = (await fhir.client.get(url, headers=nurse)).json()
    billing = fhir.as_("therapist")  # the clinical record is for clinicians and therapists
    encounter = {"encounter": session_id}

    await post(fhir, f"{url}/pre-dose-checks", pre_dose(), nurse)
    await post(fhir, f"{url}/adverse-events", an_event("other", "mild", 115, description="Anxious waiting"), nurse)
    dose: dict[str, Any] = {
        "mg_per_kg": 0.5,
        "lot_number": "KET-2291",
        "administration_start": at(110),
        "administration_end": at(70),
    }
    await post(fhir, f"{url}/dose", dose, doctor)
    for body in (vitals(95), vitals(80, systolic_mmhg=185, heart_rate_bpm=130)):
        await post(fhir, f"{url}/vitals", body, nurse)

    under_way = fhir_json(await fhir.client.get(f"/fhir/Encounter/{session_id}", headers=billing))
    assert under_way["status"] == "in-progress" and "end" not in under_way["period"]
    before = await search(fhir, "Observation", nurse, **encounter)
    await post(fhir, f"{url}/vitals", vitals(88), nurse)  # entered late, taken between two earlier readings
    after = await search(fhir, "Observation", nurse, **encounter)
    assert all(observation in after for observation in before), "ids and contents stay as they were"
    assert len(after) == len(before) + 4

    await post(fhir, f"{url}/vitals", vitals(65, spo2_percent=90), nurse)
    await post(fhir, f"{url}/adverse-events", an_event("nausea", "mild", 85), nurse)
    serious = an_event("respiratory_depression", "severe", 64, important_medical_event=True)
    await post(fhir, f"{url}/adverse-events", serious, nurse)
    await ready_to_discharge(fhir, session_id)
    discharged = await post(fhir, f"{url}/discharge", {"escort_present": True}, doctor)
    await post(fhir, f"{url}/sign", {}, nurse)

    # Encounter
    reply = await fhir.client.get(f"/fhir/Encounter/{session_id}", headers=billing)
    resource = fhir_json(reply)
    assert reply.headers["etag"] == f'W/"{resource["meta"]["versionId"]}"'
    assert (resource["id"], resource["status"]) == (session_id, "finished")
    assert resource["subject"] == {"reference": f"Patient/{booked['patient_id']}"}
    assert same_moment(resource["period"]["start"], booked["starts_at"])
    assert same_moment(resource["period"]["end"], discharged["record"]["discharge"]["discharged_at"])
    assert [
        (codes(p["type"][0], PARTICIPATION), p["individual"]["identifier"]["value"]) for p in resource["participant"]
    ] == [
        ({"ATND"}, booked["clinician"]),
        ({"PPRF"}, booked["therapist"]),
        ({"DIS"}, "dr-k"),
    ]
    assert resource["location"] == [{"location": {"display": booked["room"]}}]
    assert resource["episodeOfCare"][0]["identifier"]["value"] == booked["course_id"]

    # MedicationAdministration: by encounter, by R4's context, by patient
    [administration] = await search(fhir, "MedicationAdministration", billing, **encounter)
    assert administration["id"] == session_id and administration["status"] == "completed"
    [medication] = administration["contained"]
    assert codes(medication["code"], RXNORM) == {KETAMINE_RXNORM}
    assert medication["batch"] == {"lotNumber": "KET-2291"}
    assert administration["medicationReference"]["reference"] == "#medication"
    assert administration["context"] == {"reference": f"Encounter/{session_id}"}
    assert administration["subject"] == {"reference": f"Patient/{booked['patient_id']}"}
    assert same_moment(administration["effectivePeriod"]["start"], dose["administration_start"])
    assert same_moment(administration["effectivePeriod"]["end"], dose["administration_end"])
    assert administration["performer"][0]["actor"]["identifier"] == {"system": STAFF, "value": "dr-k"}
    assert codes(administration["dosage"]["route"], SNOMED) == {"47625008"}
    assert administration["dosage"]["dose"] == {"value": 40.0, "unit": "mg", "system": UCUM, "code": "mg"}
    assert "note" not in administration
    as_context = await search(fhir, "MedicationAdministration", billing, context=f"Encounter/{session_id}")
    by_patient = await search(fhir, "MedicationAdministration", billing, patient=f"Patient/{booked['patient_id']}")
    assert as_context == by_patient == [administration]

    # Observation: the weight, then per entry a BP panel, heart rate, SpO2 and respiratory rate
    observations = await search(fhir, "Observation", billing, **encounter)
    assert len(observations) == 1 + 4 + 4 * 5
    assert len({o["id"] for o in observations}) == len(observations)
    for observation in observations:
        measure = observation["id"][37:].split("-")[0]
        loinc, unit, profile = MEASURES[measure]
        assert codes(observation["code"], LOINC) == loinc, observation["id"]
        assert codes(observation["category"][0], VITAL_SIGNS) == {"vital-signs"}
        assert observation["meta"]["profile"] == [
            "http://hl7.org/fhir/StructureDefinition/vitalsigns",
            f"http://hl7.org/fhir/StructureDefinition/{profile}",
        ]
        assert observation["encounter"] == {"reference": f"Encounter/{session_id}"}
        if unit is not None:
            assert (observation["valueQuantity"]["system"], observation["valueQuantity"]["code"]) == (UCUM, unit)
        else:
            assert [codes(c["code"], LOINC) for c in observation["component"]] == [{"8480-6"}, {"8462-4"}]
            assert {(c["valueQuantity"]["system"], c["valueQuantity"]["code"]) for c in observation["component"]} == {
                (UCUM, "mm[Hg]")
            }
    weight = observations[0]
    assert weight["valueQuantity"]["value"] == 80 and weight["id"] == f"{session_id}-weight"
    predose_bp = observations[1]
    assert same_moment(predose_bp["effectiveDateTime"], pre_dose()["vitals"]["taken_at"])
    assert [c["valueQuantity"]["value"] for c in predose_bp["component"]] == [128, 82]
    assert predose_bp["performer"][0]["identifier"]["value"] == "dev-therapist-north"
    flagged = {
        (o["id"][37:].split("-")[0], next(iter(codes(i, INTERPRETATION))))
        for o in observations
        for i in [
            *o.get("interpretation", []),
            *(c for comp in o.get("component", []) for c in comp.get("interpretation", [])),
        ]
    }
    assert flagged == {("bp", "HH"), ("hr", "HH"), ("spo2", "LL")}
    [high_bp] = [o for o in observations if "interpretation" in o and o["id"][37:].startswith("bp")]
    assert same_moment(high_bp["effectiveDateTime"], at(80))
    assert "185 mmHg" in high_bp["note"][0]["text"]

    # AdverseEvent
    anxious, nausea, breathing = await search(fhir, "AdverseEvent", billing, **encounter)
    assert anxious["event"]["text"] == "Anxious waiting" and "suspectEntity" not in anxious
    assert nausea["event"]["coding"] == [{"system": KAPNET_ADVERSE_EVENT, "code": "nausea", "display": "Nausea"}]
    assert (nausea["actuality"], codes(nausea["seriousness"], SERIOUSNESS), codes(nausea["severity"], SEVERITY)) == (
        "actual",
        {"Non-serious"},
        {"mild"},
    )
    assert nausea["suspectEntity"] == [
        {"instance": {"reference": f"MedicationAdministration/{session_id}", "display": "ketamine 40 mg"}}
    ]
    assert nausea["encounter"] == {"reference": f"Encounter/{session_id}"}
    assert same_moment(nausea["date"], at(85))
    assert nausea["recorder"]["identifier"]["value"] == "dev-therapist-north"
    assert "action for nausea" in nausea["text"]["div"]
    assert codes(breathing["seriousness"], SERIOUSNESS) == {"Serious"}
    assert codes(breathing["severity"], SEVERITY) == {"severe"}
    assert "important medical event" in breathing["seriousness"]["text"]

    assert await audit_actions(fhir) == [
        ("fhir.encounter.read", f"fhir/Encounter/{session_id}"),
        ("fhir.observation.search", f"fhir/Observation?encounter={session_id}"),
        ("fhir.observation.search", f"fhir/Observation?encounter={session_id}"),
        ("fhir.encounter.read", f"fhir/Encounter/{session_id}"),
        ("fhir.medication_administration.search", f"fhir/MedicationAdministration?encounter={session_id}"),
        ("fhir.medication_administration.search", f"fhir/MedicationAdministration?encounter={session_id}"),
        ("fhir.medication_administration.search", f"fhir/MedicationAdministration?patient={booked['patient_id']}"),
        ("fhir.observation.search", f"fhir/Observation?encounter={session_id}"),
        ("fhir.adverse_event.search", f"fhir/AdverseEvent?encounter={session_id}"),
    ]


async def test_an_esketamine_dose_is_the_nasal_spray_with_its_devices(fhir: Sessions) -> None:
    session_id = await a_session(fhir, route="intranasal_esketamine")
    url, doctor = f"/sessions/{session_id}", fhir.as_("clinician", sub="dr-e")
    await post(fhir, f"{url}/pre-dose-checks", pre_dose(), doctor)
    devices = [at(100), at(95)]
    body = {"dose_mg": 56, "lot_number": "SPR-1", "administration_start": at(100), "device_times": devices}
    await post(fhir, f"{url}/dose", body, doctor)
    [administration] = await search(fhir, "MedicationAdministration", doctor, encounter=f"Encounter/{session_id}")
    [medication] = administration["contained"]
    assert codes(medication["code"], RXNORM) == {ESKETAMINE_NASAL_SPRAY_RXNORM}
    assert medication["batch"] == {"lotNumber": "SPR-1"}
    assert codes(administration["dosage"]["route"], SNOMED) == {"46713006"}
    assert administration["dosage"]["dose"]["value"] == 56
    assert administration["dosage"]["text"] == "56 mg (0.7 mg/kg for 80 kg), 2 devices of 28 mg, nasal spray"
    assert same_moment(administration["effectivePeriod"]["end"], devices[-1]), "the last device ends it"
    assert administration["note"][0]["text"].startswith("Nasal spray devices given at")


async def test_a_dose_given_on_an_override_carries_the_reason(fhir: Sessions) -> None:
    session_id = await a_session(fhir, route="sublingual_oral")
    url, doctor = f"/sessions/{session_id}", fhir.as_("clinician", sub="dr-o")
    await post(fhir, f"{url}/pre-dose-checks", pre_dose(), doctor)
    reason = "Sensitive to side effects at 50 mg; starting lower per protocol."
    body = {"dose_mg": 40, "lot_number": "TRO-7", "administration_start": at(110), "override": {"reason": reason}}
    await post(fhir, f"{url}/dose", body, doctor)
    [administration] = await search(fhir, "MedicationAdministration", doctor, encounter=session_id)
    [note] = administration["note"]
    assert note["text"].endswith(reason) and "minimum of 50 mg" in note["text"]
    assert note["authorReference"]["identifier"] == {"system": STAFF, "value": "dr-o"}
    assert same_moment(administration["effectiveDateTime"], at(110))
    assert codes(administration["dosage"]["route"], SNOMED) == set()


async def test_cancelled_and_missed_sessions_are_cancelled_encounters_searchable_by_patient(fhir: Sessions) -> None:
    patient = await fhir.ready_patient()
    course = (await fhir.plan(patient)).json()
    desk = fhir.as_("front_desk")
    booked = []
    for days in (1, 3):  # the site keeps 44 hours between a patient's dosing sessions
        booking = {
            "starts_at": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
            "duration_minutes": 120,
            "room": "Room 9",
            "clinician": "dr-k",
            "therapist": "t-9",
        }
        booked.append(await post(fhir, f"/courses/{course['id']}/sessions", booking, desk))
    await post(fhir, f"/sessions/{booked[0]['id']}/cancel", {"reason": "patient unwell"}, desk)
    await post(fhir, f"/sessions/{booked[1]['id']}/no-show", {"reason": "did not attend"}, desk)

    therapist = fhir.as_("therapist")
    cancelled, missed = await search(fhir, "Encounter", therapist, patient=str(patient))
    assert [cancelled["id"], missed["id"]] == [booked[0]["id"], booked[1]["id"]]
    assert cancelled["status"] == missed["status"] == "cancelled"
    assert (cancelled["contained"][0]["status"], cancelled["contained"][0]["cancelationReason"]["text"]) == (
        "cancelled",
        "patient unwell",
    )
    assert (missed["contained"][0]["status"], missed["contained"][0]["comment"]) == (
        "noshow",
        "No-show: did not attend",
    )
    assert await search(fhir, "Encounter", therapist, subject=f"Patient/{patient}") == [cancelled, missed]
    for kind in ("MedicationAdministration", "Observation", "AdverseEvent"):
        assert await search(fhir, kind, therapist, patient=str(patient)) == []
    assert [action for action, _ in await audit_actions(fhir)] == [
        "fhir.encounter.search",
        "fhir.encounter.search",
        "fhir.medication_administration.search",
        "fhir.observation.search",
        "fhir.adverse_event.search",
    ], "a known patient's search is audited even when it finds nothing"


async def test_searches_that_name_nothing_are_empty_and_unaudited(fhir: Sessions) -> None:
    session_id = await a_session(fhir)
    other_patient = await fhir.ready_patient()
    clinician = fhir.as_("clinician")
    for kind in ("MedicationAdministration", "Observation", "AdverseEvent"):
        for params in (
            {"encounter": str(uuid.uuid4())},
            {"encounter": "not-one-of-ours"},
            {"encounter": session_id, "patient": str(other_patient)},
            {"encounter": session_id, "subject": "Patient/nobody"},
            {"patient": str(uuid.uuid4())},
        ):
            assert await search(fhir, kind, clinician, **params) == [], (kind, params)
        outcome = fhir_json(await fhir.client.get(f"/fhir/{kind}", headers=clinician), 400)
        assert outcome["issue"][0]["code"] == "invalid"
    assert (
        await search(fhir, "MedicationAdministration", clinician, encounter=session_id, context=str(uuid.uuid4())) == []
    )
    for path in (f"/fhir/Encounter/{uuid.uuid4()}", "/fhir/Encounter/42"):
        outcome = fhir_json(await fhir.client.get(path, headers=clinician), 404)
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "not-found"
    assert await audit_actions(fhir) == [], "nothing was read"
    assert await search(fhir, "Observation", clinician, encounter=session_id) == [], "booked, nothing recorded"
    assert await audit_actions(fhir) == [("fhir.observation.search", f"fhir/Observation?encounter={session_id}")]


async def test_the_fhir_routes_need_session_record_read_at_this_site(fhir: Sessions) -> None:
    session_id = await a_session(fhir)
    assert (await fhir.client.get(f"/fhir/Encounter/{session_id}")).status_code == 401
    south = auth_headers(fhir.settings.dev_key_dir, "south", "clinician")
    assert (await fhir.client.get(f"/fhir/Encounter/{session_id}", headers=south)).status_code == 403
    network = auth_headers(fhir.settings.dev_key_dir, "north", "network_admin")
    params = {"encounter": session_id}
    assert (await fhir.client.get("/fhir/Observation", params=params, headers=network)).status_code == 403
    for role in ("clinician", "therapist"):
        reply = await fhir.client.get("/fhir/AdverseEvent", params=params, headers=fhir.as_(role))
        assert reply.status_code == 200, role
    for role in ("front_desk", "billing", "site_admin"):
        reply = await fhir.client.get("/fhir/AdverseEvent", params=params, headers=fhir.as_(role))
        assert reply.status_code == 403, role
    openapi = (await fhir.client.get("/openapi.json")).json()
    for path in (
        "/fhir/Encounter/{session_id}",
        "/fhir/Encounter",
        "/fhir/MedicationAdministration",
        "/fhir/Observation",
        "/fhir/AdverseEvent",
        "/fhir/CodeSystem",
        "/fhir/CodeSystem/{code_system_id}",
    ):
        operation = openapi["paths"][path]["get"]
        assert operation["x-kapnet-permission"] == "session_record.read", path
        assert FHIR_JSON in operation["responses"]["200"]["content"], path


async def test_code_systems_read_and_search_with_the_permission_to_read_session_records(fhir: Sessions) -> None:
    therapist = fhir.as_("therapist")
    everything = await search(fhir, "CodeSystem", therapist)
    assert [cs["id"] for cs in everything] == ["encounter-type", "indication", "route", "adverse-event"]
    assert await search(fhir, "CodeSystem", therapist, url=KAPNET_ROUTE) == [CODE_SYSTEMS["route"]]
    assert await search(fhir, "CodeSystem", therapist, url=f"{KAPNET_ROUTE}|1") == [CODE_SYSTEMS["route"]]
    assert await search(fhir, "CodeSystem", therapist, url="urn:kapnet:codesystem:route") == []
    read = fhir_json(await fhir.client.get("/fhir/CodeSystem/adverse-event", headers=therapist))
    assert read == CODE_SYSTEMS["adverse-event"]
    assert "<tr><td>nausea</td><td>Nausea</td>" in read["text"]["div"]
    missing = fhir_json(await fhir.client.get("/fhir/CodeSystem/severity", headers=therapist), 404)
    assert missing["issue"][0]["code"] == "not-found"
    assert (await fhir.client.get("/fhir/CodeSystem", headers=fhir.as_("billing"))).status_code == 403
    assert await audit_actions(fhir) == [], "no patient's record was read"
