"""FHIR R4 read: the mappers on model objects, then the /fhir routes on a real database (SQLite and PostgreSQL).

Every resource is validated with fhir.resources' R4B models (R4B is R4 for Patient, Observation, Consent,
CodeSystem, Bundle and OperationOutcome; the library's default models are R5, whose Consent is another resource).
The library checks structure, cardinality, datatypes and choice types, but neither required-binding codes nor
invariants, so ``assert_valid_r4`` checks those of the elements we send, and a generated narrative on each.
HL7's own validator runs over them in tests/test_fhir_hl7_validator.py.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlmodel import col, select

from services.intake.api import ROUTERS
from services.intake.api.fhir import router as fhir_router
from services.intake.fhir import (
    CODE_SYSTEMS,
    KAPNET_ASSESSMENT_SYSTEM,
    consent_resource,
    observation_resource,
    patient_resource,
)
from services.intake.models import Assessment, Consent, ConsentDocument, Patient
from shared.audit import AuditEntry
from shared.auth.guard import declare_permissions
from shared.fhir import FHIR_JSON
from shared.instruments import LOINC, SPECS, Instrument, Severity, score
from tests.fhir_validation import assert_valid_r4, codings
from tests.harness import auth_headers
from tests.intake.conftest import ADA, Intake

LOINC_SYSTEM = "http://loinc.org"
# kapnet's code systems: CodeSystems that intake serves, whose canonical URLs are the systems of their codes.
ASSESSMENT_SYSTEM = "https://kapnet.example/fhir/CodeSystem/assessment"
SEVERITY_SYSTEM = "https://kapnet.example/fhir/CodeSystem/severity"
# Written out here rather than read from shared/instruments/loinc.py, so the test checks the codes themselves.
PHQ9_TOTAL = "44261-6"
PHQ9_ITEMS = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]
GAD7_TOTAL = "70274-6"
GAD7_ITEMS = ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"]
PCL5_UNVERIFIED_TOTAL = "101698-9"

PHQ9_ANSWERS = [2, 2, 1, 1, 2, 1, 1, 1, 0]  # 11, moderate
GAD7_ANSWERS = [3, 3, 3, 3, 3, 0, 0]  # 15, severe
PCL5_ANSWERS = [2, 0, 0, 0, 0, 2, 0, 2, 2, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0]  # 12; B 2, C 2, D 4, E 4

FULL = {
    **ADA,
    "preferred_name": "Addie",
    "contact": {"phone": "+44 20 7946 0000", "email": "ada@example.org"},
    "address": {"line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
    "emergency_contact": {"name": "Mary Somerville", "relationship": "friend", "phone": "+44 20 7946 0001"},
    "preferred_language": "en-GB",
}
DOCUMENT = {
    "version": "2026.1",
    "title": "Informed consent for ketamine-assisted psychotherapy",
    "text": "Ketamine is not approved by the FDA for depression, anxiety or PTSD; its use here is off-label. " * 3,
    "effective_date": "2026-01-01",
}
SIGNATURE = {
    "witnessed_by": "Nurse Jane Doe",
    "informed_off_label_use": True,
    "informed_adverse_reactions": True,
    "informed_no_long_term_data": True,
    "informed_expected_cost": True,
    "expected_cost_note": "USD 450 per dosing session, self-pay",
}

# --- R4 checks the model library does not make ----------------------------------------------------------------

# Required bindings (R4 4.0.1) of the coded elements we send: path -> allowed codes.
# --- the mappers on model objects -------------------------------------------------------------------------------

PATIENT_ID = uuid.UUID("6f1c0d1e-6a4e-4a53-9a53-2b1f1d2c3e4f")
AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def a_patient(**changes: Any) -> Patient:
    fields: dict[str, Any] = {
        "id": PATIENT_ID,
        "mrn": "NORTH-6F1C0D1E6A",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "birth_date": date(1985, 12, 10),
        "sex": "female",
        "contact": {},
        "registered_at": AT,
        "version": 1,
    }
    return Patient(**{**fields, **changes})


def an_assessment(instrument: Instrument, answers: list[int]) -> Assessment:
    result = score(instrument, answers)
    return Assessment(
        patient_id=PATIENT_ID,
        instrument=result.instrument.value,
        instrument_version=result.version,
        answers=list(result.answers),
        total=result.total,
        severity=result.severity.value if result.severity else None,
        clusters=result.clusters,
        provisional_ptsd=result.provisional_ptsd,
        cutoff=result.cutoff,
        at_or_above_cutoff=result.at_or_above_cutoff,
        context="baseline",
        administered_at=AT,
        recorded_by="clinician-1",
    )


def a_consent(**changes: Any) -> Consent:
    fields: dict[str, Any] = {
        "patient_id": PATIENT_ID,
        "document_id": 1,
        "document_version": "2026.1",
        "signed_at": AT,
        "recorded_by": "desk-1",
        **SIGNATURE,
    }
    return Consent(**{**fields, **changes})


A_DOCUMENT = ConsentDocument(
    id=1,
    version="2026.1",
    title=DOCUMENT["title"],
    text=DOCUMENT["text"],
    effective_date=date(2026, 1, 1),
    created_at=datetime(2025, 12, 20, tzinfo=UTC),
    created_by="admin-1",
)


def component_codes(observation: dict[str, Any], system: str) -> list[str]:
    return [
        c["code"]["coding"][0]["code"] for c in observation["component"] if c["code"]["coding"][0]["system"] == system
    ]


def test_a_patient_with_only_the_required_fields_is_a_valid_patient() -> None:
    resource = patient_resource(a_patient(), "north")
    assert_valid_r4(resource)
    assert resource["identifier"] == [
        {
            "use": "usual",
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                        "code": "MR",
                        "display": "Medical record number",
                    }
                ],
                "text": "Medical record number",
            },
            "system": "urn:kapnet:north:mrn",
            "value": "NORTH-6F1C0D1E6A",
        }
    ]
    assert resource["name"] == [{"use": "official", "text": "Ada Lovelace", "family": "Lovelace", "given": ["Ada"]}]
    assert (resource["gender"], resource["birthDate"], resource["active"]) == ("female", "1985-12-10", True)
    assert resource["communication"][0]["language"]["coding"] == [{"system": "urn:ietf:bcp:47", "code": "en"}]
    assert not {"telecom", "address", "contact"} & resource.keys()
    assert resource["meta"] == {"versionId": "1"}


def test_a_deactivated_patient_is_inactive_and_every_sex_value_is_a_fhir_gender() -> None:
    for sex in ("female", "male", "other", "unknown"):
        resource = patient_resource(a_patient(sex=sex, active=False, version=4), "south")
        assert_valid_r4(resource)
        assert (resource["gender"], resource["active"], resource["meta"]["versionId"]) == (sex, False, "4")
        assert resource["identifier"][0]["system"] == "urn:kapnet:south:mrn"


@pytest.mark.parametrize(
    ("instrument", "answers", "total_code", "item_codes", "total", "severity"),
    [
        (Instrument.phq9, PHQ9_ANSWERS, PHQ9_TOTAL, PHQ9_ITEMS, 11, "moderate"),
        (Instrument.gad7, GAD7_ANSWERS, GAD7_TOTAL, GAD7_ITEMS, 15, "severe"),
    ],
)
def test_phq9_and_gad7_observations_carry_their_loinc_total_and_item_codes(
    instrument: Instrument, answers: list[int], total_code: str, item_codes: list[str], total: int, severity: str
) -> None:
    resource = observation_resource(an_assessment(instrument, answers))
    assert_valid_r4(resource)
    assert resource["code"]["coding"][0]["system"] == LOINC_SYSTEM
    assert resource["code"]["coding"][0]["code"] == total_code
    assert (resource["status"], resource["valueInteger"]) == ("final", total)
    assert resource["category"] == [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "survey",
                    "display": "Survey",
                }
            ]
        }
    ]
    assert resource["subject"] == {"reference": f"Patient/{PATIENT_ID}"}
    assert datetime.fromisoformat(resource["effectiveDateTime"]) == AT
    assert resource["interpretation"][0]["text"] == severity
    assert codings(resource["interpretation"][0]) == {(SEVERITY_SYSTEM, severity)}
    assert resource["performer"] == [
        {"type": "Practitioner", "identifier": {"system": "urn:kapnet:staff", "value": "clinician-1"}}
    ]
    div = resource["text"]["div"]
    name = {Instrument.phq9: "PHQ-9", Instrument.gad7: "GAD-7"}[instrument]
    assert f"<p>{name} total score {total} ({severity}), administered {AT.isoformat()} by clinician-1.</p>" in div
    assert all(f"<tr><td>{name} item {n}</td><td>{a}</td></tr>" in div for n, a in enumerate(answers, start=1))
    items = [c for c in resource["component"] if c["code"]["coding"][0]["system"] == LOINC_SYSTEM]
    assert [c["code"]["coding"][0]["code"] for c in items] == item_codes
    assert [c["valueInteger"] for c in items] == answers
    assert len(resource["component"]) == len(answers), "no component beyond the items"


def test_the_pcl5_has_kapnet_codes_while_its_loinc_codes_are_unverified() -> None:
    assert LOINC[Instrument.pcl5].verified is False, "loinc.py changed: revisit this test and the PCL-5 mapping"
    resource = observation_resource(an_assessment(Instrument.pcl5, PCL5_ANSWERS))
    assert_valid_r4(resource)
    assert resource["code"]["coding"] == [
        {"system": KAPNET_ASSESSMENT_SYSTEM, "code": "pcl5-total", "display": "PCL-5 total score"}
    ]
    assert resource["code"]["text"] == "PCL-5 total score" and resource["valueInteger"] == 12
    assert LOINC_SYSTEM not in str(resource) and PCL5_UNVERIFIED_TOTAL not in str(resource)
    assert component_codes(resource, KAPNET_ASSESSMENT_SYSTEM) == [
        *(f"pcl5-item-{n}" for n in range(1, 21)),
        "pcl5-cluster-B",
        "pcl5-cluster-C",
        "pcl5-cluster-D",
        "pcl5-cluster-E",
        "pcl5-provisional-ptsd",
        "pcl5-cutoff",
        "pcl5-at-or-above-cutoff",
    ]
    values = {c["code"]["coding"][0]["code"]: c for c in resource["component"]}
    assert [values[f"pcl5-cluster-{k}"]["valueInteger"] for k in "BCDE"] == [2, 2, 4, 4]
    assert values["pcl5-provisional-ptsd"]["valueBoolean"] is True
    assert values["pcl5-cutoff"]["valueInteger"] == 33
    assert values["pcl5-at-or-above-cutoff"]["valueBoolean"] is False
    assert [values[f"pcl5-item-{n}"]["valueInteger"] for n in range(1, 21)] == PCL5_ANSWERS
    assert "interpretation" not in resource, "the PCL-5 has no severity bands"
    assert KAPNET_ASSESSMENT_SYSTEM == ASSESSMENT_SYSTEM
    div = resource["text"]["div"]
    assert "PCL-5 total score 12," in div
    assert "<tr><td>PCL-5 provisional PTSD by the DSM-5 cluster rule</td><td>yes</td></tr>" in div


def test_the_pcl5_total_takes_its_loinc_code_once_loinc_py_marks_it_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LOINC, Instrument.pcl5, dataclasses.replace(LOINC[Instrument.pcl5], verified=True))
    resource = observation_resource(an_assessment(Instrument.pcl5, PCL5_ANSWERS))
    assert_valid_r4(resource)
    assert resource["code"]["coding"][0] == {
        "system": LOINC_SYSTEM,
        "code": PCL5_UNVERIFIED_TOTAL,
        "display": "PTSD PCL-5 score [PCL-5]",
    }
    # No item codes are known, so the items keep kapnet's codes.
    assert component_codes(resource, KAPNET_ASSESSMENT_SYSTEM)[:20] == [f"pcl5-item-{n}" for n in range(1, 21)]


def test_a_signed_consent_is_an_active_r4_treatment_consent() -> None:
    consent = a_consent()
    resource = consent_resource(consent, A_DOCUMENT, "north")
    assert_valid_r4(resource)
    assert resource["status"] == "active"
    assert resource["scope"] == {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                "code": "treatment",
                "display": "Treatment",
            }
        ]
    }
    assert codings(resource["category"][0]) == {(LOINC_SYSTEM, "59284-0")}
    assert resource["patient"] == {"reference": f"Patient/{PATIENT_ID}"}
    assert datetime.fromisoformat(resource["dateTime"]) == AT
    assert resource["sourceAttachment"]["title"] == f"{DOCUMENT['title']} (version 2026.1)"
    assert resource["provision"]["type"] == "permit"
    assert resource["provision"]["period"] == {"start": AT.isoformat()}
    assert resource["organization"][0]["identifier"] == {"system": "urn:kapnet:site", "value": "north"}
    assert "Nurse Jane Doe" in resource["text"]["div"] and "off-label" in resource["text"]["div"]


def test_a_withdrawn_consent_is_inactive_and_its_provision_ends_at_the_withdrawal() -> None:
    withdrawn_at = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
    consent = a_consent(withdrawn_at=withdrawn_at, withdrawal_reason="wants to stop", withdrawn_by="desk-1")
    resource = consent_resource(consent, A_DOCUMENT)
    assert_valid_r4(resource)
    assert resource["status"] == "inactive"
    assert datetime.fromisoformat(resource["provision"]["period"]["end"]) == withdrawn_at
    assert "organization" not in resource, "no site given, no custodian"


def test_a_consent_without_its_document_still_names_the_version_and_escapes_its_narrative() -> None:
    consent = a_consent(witnessed_by="<b>Jane</b> & co", expected_cost_note=None)
    resource = consent_resource(consent, None)
    assert_valid_r4(resource)
    assert resource["sourceAttachment"] == {"contentType": "text/plain", "title": "Consent document version 2026.1"}
    assert "&lt;b&gt;Jane&lt;/b&gt; &amp; co" in resource["text"]["div"] and "<b>" not in resource["text"]["div"]


# --- the routes -------------------------------------------------------------------------------------------------


def test_the_fhir_router_is_wired_into_intake() -> None:
    assert fhir_router in ROUTERS, (
        "add the FHIR router to ROUTERS in services/intake/api/__init__.py "
        "(from services.intake.api.fhir import router as fhir_router)"
    )


@pytest.fixture
def fhir(intake: Intake) -> Intake:
    """The intake fixture's app with the FHIR routes: included here when ROUTERS lacks them, so the routes are
    tested either way (test_the_fhir_router_is_wired_into_intake fails until they are wired)."""
    if fhir_router not in ROUTERS:
        app = intake.client._transport.app  # type: ignore[attr-defined]
        app.include_router(declare_permissions(fhir_router))
    return intake


async def audit_actions(intake: Intake, prefix: str = "fhir.") -> list[tuple[str, str]]:
    async with intake.database.sessions() as session:
        rows = (await session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
    return [(r.action, r.resource) for r in rows if r.action.startswith(prefix)]


def fhir_json(reply: Any, status: int = 200) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = reply.json()
    assert_valid_r4(body)
    return body


async def test_a_patient_reads_as_a_fhir_r4_patient_with_its_etag(fhir: Intake) -> None:
    patient = await fhir.register(**FULL)
    reply = await fhir.client.get(f"/fhir/Patient/{patient['id']}", headers=fhir.as_("billing"))
    resource = fhir_json(reply)
    assert reply.headers["etag"] == 'W/"1"' and resource["meta"] == {"versionId": "1"}
    assert resource["id"] == patient["id"]
    assert resource["identifier"][0]["system"] == "urn:kapnet:north:mrn"
    assert resource["identifier"][0]["value"] == patient["mrn"]
    assert resource["name"] == [
        {"use": "official", "text": "Ada Lovelace", "family": "Lovelace", "given": ["Ada"]},
        {"use": "usual", "given": ["Addie"]},
    ]
    assert resource["telecom"] == [
        {"system": "phone", "value": "+44 20 7946 0000"},
        {"system": "email", "value": "ada@example.org"},
    ]
    assert resource["address"] == [
        {"line": ["12 St James's Square"], "city": "London", "postalCode": "SW1Y 4JH", "country": "GB"}
    ]
    [contact] = resource["contact"]
    assert contact["relationship"][0]["coding"][0]["code"] == "C"
    assert contact["relationship"][1] == {"text": "friend"}
    assert contact["name"] == {"text": "Mary Somerville"}
    assert contact["telecom"] == [{"system": "phone", "value": "+44 20 7946 0001"}]
    assert resource["communication"] == [
        {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-GB"}]}, "preferred": True}
    ]
    assert await audit_actions(fhir) == [("fhir.patient.read", f"fhir/Patient/{patient['id']}")]

    desk = {**fhir.as_("front_desk"), "If-Match": 'W/"1"'}
    assert (
        await fhir.client.patch(f"/patients/{patient['id']}", json={"given_name": "Augusta"}, headers=desk)
    ).is_success
    again = fhir_json(await fhir.client.get(f"/fhir/Patient/{patient['id']}", headers=fhir.as_("therapist")))
    assert again["meta"] == {"versionId": "2"} and again["name"][0]["given"] == ["Augusta"]


async def test_unknown_or_malformed_ids_are_404_operation_outcomes(fhir: Intake) -> None:
    clinician = fhir.as_("clinician")
    for path in (
        f"/fhir/Patient/{uuid.uuid4()}",
        "/fhir/Patient/not-one-of-ours",
        f"/fhir/Observation/{uuid.uuid4()}",
        f"/fhir/Consent/{uuid.uuid4()}",
        "/fhir/Consent/42",
    ):
        outcome = fhir_json(await fhir.client.get(path, headers=clinician), 404)
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "not-found", path
    assert await audit_actions(fhir) == [], "nothing was read"


async def test_measures_search_as_a_bundle_of_observations_with_loinc_codes(fhir: Intake) -> None:
    patient = await fhir.register()
    other = await fhir.register(given_name="Mary", family_name="Somerville")
    for who, instrument, answers in (
        (patient, "phq9", PHQ9_ANSWERS),
        (patient, "gad7", GAD7_ANSWERS),
        (patient, "pcl5", PCL5_ANSWERS),
        (other, "phq9", [0] * 9),
    ):
        reply = await fhir.client.post(
            f"/patients/{who['id']}/assessments",
            json={"instrument": instrument, "answers": answers},
            headers=fhir.as_("clinician"),
        )
        assert reply.status_code == 201, reply.text

    therapist = fhir.as_("therapist")
    reply = await fhir.client.get("/fhir/Observation", params={"patient": patient["id"]}, headers=therapist)
    bundle = fhir_json(reply)
    assert (bundle["type"], bundle["total"], len(bundle["entry"])) == ("searchset", 3, 3)
    assert bundle["link"] == [{"relation": "self", "url": str(reply.request.url)}]
    phq, gad, pcl = (entry["resource"] for entry in bundle["entry"])
    assert all(entry["search"] == {"mode": "match"} for entry in bundle["entry"])
    assert [e["fullUrl"] for e in bundle["entry"]] == [
        f"http://service/fhir/Observation/{r['id']}" for r in (phq, gad, pcl)
    ]
    assert {r["subject"]["reference"] for r in (phq, gad, pcl)} == {f"Patient/{patient['id']}"}
    assert (phq["code"]["coding"][0]["code"], phq["valueInteger"]) == (PHQ9_TOTAL, 11)
    assert component_codes(phq, LOINC_SYSTEM) == PHQ9_ITEMS
    assert (gad["code"]["coding"][0]["code"], gad["valueInteger"]) == (GAD7_TOTAL, 15)
    assert component_codes(gad, LOINC_SYSTEM) == GAD7_ITEMS
    assert pcl["code"]["coding"][0] == {
        "system": KAPNET_ASSESSMENT_SYSTEM,
        "code": "pcl5-total",
        "display": "PCL-5 total score",
    }

    as_reference = await fhir.client.get(
        "/fhir/Observation", params={"patient": f"Patient/{patient['id']}"}, headers=therapist
    )
    assert [e["resource"]["id"] for e in fhir_json(as_reference)["entry"]] == [phq["id"], gad["id"], pcl["id"]]
    read = fhir_json(await fhir.client.get(f"/fhir/Observation/{gad['id']}", headers=therapist))
    assert read == gad
    for unknown in (str(uuid.uuid4()), "nobody"):
        empty = await fhir.client.get("/fhir/Observation", params={"patient": unknown}, headers=therapist)
        assert fhir_json(empty)["total"] == 0 and "entry" not in fhir_json(empty)
    assert await audit_actions(fhir) == [
        ("fhir.observation.search", f"fhir/Observation?patient={patient['id']}"),
        ("fhir.observation.search", f"fhir/Observation?patient={patient['id']}"),
        ("fhir.observation.read", f"fhir/Observation/{gad['id']}"),
    ]


async def test_consents_search_and_read_as_r4_consents(fhir: Intake) -> None:
    patient = await fhir.register()
    document = await fhir.client.post("/consent-documents", json=DOCUMENT, headers=fhir.as_("site_admin"))
    assert document.status_code == 201, document.text
    desk, url = fhir.as_("front_desk"), f"/patients/{patient['id']}/consents"
    first = (await fhir.client.post(url, json={**SIGNATURE, "document_id": document.json()["id"]}, headers=desk)).json()
    withdrawn = await fhir.client.post(f"{url}/{first['id']}/withdraw", json={"reason": "wants a break"}, headers=desk)
    assert withdrawn.status_code == 200, withdrawn.text
    second = (
        await fhir.client.post(url, json={**SIGNATURE, "document_id": document.json()["id"]}, headers=desk)
    ).json()

    billing = fhir.as_("billing")
    bundle = fhir_json(await fhir.client.get("/fhir/Consent", params={"patient": patient["id"]}, headers=billing))
    assert bundle["total"] == 2
    newest, oldest = (entry["resource"] for entry in bundle["entry"])
    assert (newest["id"], newest["status"], oldest["id"], oldest["status"]) == (
        second["id"],
        "active",
        first["id"],
        "inactive",
    )
    assert "end" not in newest["provision"]["period"]
    ended = datetime.fromisoformat(oldest["provision"]["period"]["end"])
    assert ended == datetime.fromisoformat(withdrawn.json()["withdrawn_at"])
    assert datetime.fromisoformat(oldest["dateTime"]) == datetime.fromisoformat(first["signed_at"])
    assert oldest["sourceAttachment"]["title"] == f"{DOCUMENT['title']} (version 2026.1)"
    assert oldest["organization"][0]["identifier"]["value"] == "north"
    assert "wants a break" in oldest["text"]["div"]

    read = fhir_json(await fhir.client.get(f"/fhir/Consent/{first['id']}", headers=billing))
    assert read == oldest
    assert await audit_actions(fhir) == [
        ("fhir.consent.search", f"fhir/Consent?patient={patient['id']}"),
        ("fhir.consent.read", f"fhir/Consent/{first['id']}"),
    ]


async def test_the_fhir_routes_need_the_same_permissions_as_the_rest_of_intake(fhir: Intake) -> None:
    patient = await fhir.register()
    search = {"patient": patient["id"]}
    assert (await fhir.client.get(f"/fhir/Patient/{patient['id']}")).status_code == 401
    assert (
        await fhir.client.get("/fhir/Observation", params=search, headers=fhir.as_("front_desk"))
    ).status_code == 403
    assert (await fhir.client.get("/fhir/Observation", params=search, headers=fhir.as_("billing"))).status_code == 403
    assert (await fhir.client.get("/fhir/Observation", headers=fhir.as_("clinician"))).status_code == 422
    south = auth_headers(fhir.settings.dev_key_dir, "south", "clinician")
    assert (await fhir.client.get("/fhir/Consent", params=search, headers=south)).status_code == 403
    assert (await fhir.client.get("/fhir/Consent", params=search, headers=fhir.as_("billing"))).status_code == 200
    openapi = (await fhir.client.get("/openapi.json")).json()
    read = openapi["paths"]["/fhir/Patient/{patient_id}"]["get"]
    assert read["x-kapnet-permission"] == "patient.read"
    assert FHIR_JSON in read["responses"]["200"]["content"]


# --- kapnet's CodeSystems ----------------------------------------------------------------------------------------


def test_intake_serves_a_complete_codesystem_for_each_kapnet_code_system_it_uses() -> None:
    assert CODE_SYSTEMS.keys() == {"assessment", "severity"}
    for code_system in CODE_SYSTEMS.values():
        assert_valid_r4(code_system)
        assert code_system["url"] == f"https://kapnet.example/fhir/CodeSystem/{code_system['id']}"
        assert (code_system["status"], code_system["content"], code_system["caseSensitive"]) == (
            "active",
            "complete",
            True,
        )
    assessment = {c["code"] for c in CODE_SYSTEMS["assessment"]["concept"]}
    for instrument in Instrument:
        spec = SPECS[instrument]
        expected = {
            f"{instrument.value}-total",
            *(f"{instrument.value}-item-{n}" for n in range(1, spec.item_count + 1)),
        }
        assert expected <= assessment, instrument
    assert {c["code"] for c in CODE_SYSTEMS["severity"]["concept"]} == {s.value for s in Severity}
    [moderately_severe] = [c for c in CODE_SYSTEMS["severity"]["concept"] if c["code"] == "moderately_severe"]
    assert "PHQ-9 total 15-19" in moderately_severe["definition"] and "GAD-7" not in moderately_severe["definition"]


@pytest.mark.parametrize("instrument", list(Instrument))
def test_every_kapnet_code_an_observation_sends_is_defined_with_its_display(
    instrument: Instrument, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every instrument's LOINC codes taken as unverified, so that each sends kapnet's codes only."""
    monkeypatch.setitem(LOINC, instrument, dataclasses.replace(LOINC[instrument], verified=False))
    answers = {Instrument.phq9: PHQ9_ANSWERS, Instrument.gad7: GAD7_ANSWERS, Instrument.pcl5: PCL5_ANSWERS}[instrument]
    resource = observation_resource(an_assessment(instrument, answers))
    assert_valid_r4(resource)
    defined = {(cs["url"], c["code"]): c["display"] for cs in CODE_SYSTEMS.values() for c in cs["concept"]}
    sent = [resource["code"], *(c["code"] for c in resource["component"]), *resource.get("interpretation", [])]
    for coding in (coding for concept in sent for coding in concept["coding"]):
        assert coding["system"] != LOINC_SYSTEM
        assert defined[(coding["system"], coding["code"])] == coding["display"]


def test_a_patient_narrative_tells_what_the_record_holds_escaped() -> None:
    resource = patient_resource(
        a_patient(
            given_name="<Ada>",
            preferred_name="Addie",
            contact={"phone": "+44 20 7946 0000"},
            address={"line1": "12 St James's Square", "city": "London", "country": "GB"},
            emergency_contact={"name": "Mary Somerville", "relationship": "friend"},
            active=False,
        ),
        "north",
    )
    assert_valid_r4(resource)
    div = resource["text"]["div"]
    assert "<p>&lt;Ada&gt; Lovelace (prefers Addie), female, born 1985-12-10. Inactive record.</p>" in div
    assert "NORTH-6F1C0D1E6A at site north" in div and "Phone +44 20 7946 0000" in div
    assert "Address: 12 St James's Square, London, GB" in div
    assert "Emergency contact: Mary Somerville (friend)" in div and "Preferred language: en" in div


async def test_code_systems_read_and_search_with_the_permission_to_read_measures(fhir: Intake) -> None:
    therapist = fhir.as_("therapist")
    bundle = fhir_json(await fhir.client.get("/fhir/CodeSystem", headers=therapist))
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["assessment", "severity"]
    assert bundle["entry"][0]["fullUrl"] == "http://service/fhir/CodeSystem/assessment"
    for url in (ASSESSMENT_SYSTEM, f"{ASSESSMENT_SYSTEM}|1"):
        found = fhir_json(await fhir.client.get("/fhir/CodeSystem", params={"url": url}, headers=therapist))
        assert [e["resource"]["url"] for e in found["entry"]] == [ASSESSMENT_SYSTEM], url
    for url in (f"{ASSESSMENT_SYSTEM}|2", "http://loinc.org"):
        none = fhir_json(await fhir.client.get("/fhir/CodeSystem", params={"url": url}, headers=therapist))
        assert none["total"] == 0, url
    severity = fhir_json(await fhir.client.get("/fhir/CodeSystem/severity", headers=therapist))
    assert severity == CODE_SYSTEMS["severity"]
    missing = fhir_json(await fhir.client.get("/fhir/CodeSystem/loinc", headers=therapist), 404)
    assert missing["issue"][0]["code"] == "not-found"
    assert (await fhir.client.get("/fhir/CodeSystem")).status_code == 401
    assert (await fhir.client.get("/fhir/CodeSystem", headers=fhir.as_("front_desk"))).status_code == 403
    openapi = (await fhir.client.get("/openapi.json")).json()
    for path in ("/fhir/CodeSystem", "/fhir/CodeSystem/{code_system_id}"):
        assert openapi["paths"][path]["get"]["x-kapnet-permission"] == "assessment.read", path
    assert await audit_actions(fhir) == [], "no patient's record was read"
