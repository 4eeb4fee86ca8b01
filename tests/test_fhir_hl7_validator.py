"""Every FHIR resource type intake, sessions and billing serve passes HL7's validator: HAPI FHIR's validation
library with the R4 definitions it bundles, offline (deploy/tools/fhir-validator, built by `make prerequisites`).

The services run in process on SQLite and are driven through their own APIs (billing through the events intake and
sessions send it, too) to every kind of resource they serve: intake's Patients, measures (PHQ-9, GAD-7, PCL-5
Observations) and Consents; sessions' Encounters in every status, MedicationAdministrations by every route,
vital-sign Observations and AdverseEvents, serious and not; billing's Coverages (insured and self-pay), Claims
(claims to payers in every status, and Good Faith Estimates as predeterminations) and ExplanationOfBenefits (paid,
partly paid, denied); each service's CodeSystems and a FHIR OperationOutcome. Each is read back over /fhir and
written to a file, and one JVM validates them all, with the CodeSystems the services serve as the definitions of
kapnet's codes. There must be no error, and every resource must carry a generated narrative. A deliberately broken
copy checks that the validator does report errors, kapnet codes included.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import tests.sessions.test_session_record_api as record_api
from services.intake.app import create_app as create_intake
from services.sessions.app import create_app as create_sessions
from shared.settings import ServiceSettings
from tests.billing.conftest import Billing, billing_settings
from tests.billing.test_billing_fhir import billing_app, billing_resources
from tests.harness import app_in_process
from tests.intake.conftest import ADA, Intake
from tests.sessions.conftest import Sessions, sessions_settings
from tests.sessions.test_session_record_api import a_session, at, iv_dose, pre_dose, ready_to_discharge, vitals

ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = ROOT / "deploy" / "tools" / "fhir-validator"
VALIDATOR_JAR = VALIDATOR / "target" / "fhir-validator.jar"
VALIDATOR_ARCHIVE = VALIDATOR / "target" / "fhir-validator.jsa"
KAPNET_CODE_SYSTEMS = "https://kapnet.example/fhir/CodeSystem/"
# A run takes about ten seconds: the JVM loads R4's definitions once, then validates every resource.
VALIDATOR_TIMEOUT_SECONDS = 240

PHQ9 = [2, 2, 1, 1, 2, 1, 1, 1, 0]
GAD7 = [3, 3, 3, 3, 3, 0, 0]
PCL5 = [2, 0, 0, 0, 0, 2, 0, 2, 2, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0]
CONSENT_DOCUMENT = {
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


@dataclass(frozen=True)
class Issue:
    file: str
    resource: str
    severity: str
    location: str
    message: str
    message_id: str | None


@dataclass(frozen=True)
class Validation:
    issues: list[Issue]
    summary: dict[str, Any]


def validator_command() -> list[str]:
    """The validator's command line, or a failure that says how to build it: never a skip."""
    java = shutil.which("java")
    if java is None:
        pytest.fail("no java on PATH: the HL7 validator needs Java 17; install it, then run `make prerequisites`")
    if not VALIDATOR_JAR.is_file():
        pytest.fail(f"{VALIDATOR_JAR.relative_to(ROOT)} is not built: run `make prerequisites`")
    # The class-data archive make prerequisites made for these flags and this jar (class-archive.sh): a JVM that
    # finds it foreign ignores it.
    sharing = [f"-XX:SharedArchiveFile={VALIDATOR_ARCHIVE}"] if VALIDATOR_ARCHIVE.is_file() else []
    return [java, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", *sharing, "-jar", str(VALIDATOR_JAR)]


def run_validator(resources: Path, conformance: Path, *more: Path) -> Validation:
    reply = subprocess.run(
        [*validator_command(), "--conformance", str(conformance), str(resources), *map(str, more)],
        capture_output=True,
        text=True,
        timeout=VALIDATOR_TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "JAVA_TOOL_OPTIONS": ""},
    )
    lines = [json.loads(line) for line in reply.stdout.splitlines() if line.startswith("{")]
    summaries = [line for line in lines if line.get("summary")]
    assert reply.returncode in (0, 1) and len(summaries) == 1, f"the validator failed:\n{reply.stderr[-4000:]}"
    issues = [
        Issue(i["file"], i["resource"], i["severity"], i["location"], i["message"], i["messageId"])
        for i in lines
        if not i.get("summary")
    ]
    assert (reply.returncode == 1) == any(i.severity in ("error", "fatal") for i in issues)
    return Validation(issues, summaries[0])


def write(directory: Path, resources: list[dict[str, Any]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for n, resource in enumerate(resources):
        name = f"{n:03d}-{resource['resourceType']}-{resource.get('id', 'none')}.json"
        (directory / name).write_text(json.dumps(resource, indent=1))


# --- driving the services ---------------------------------------------------------------------------------------


def settings(service: str, tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(
        service=service,
        site="north",
        database_url=f"sqlite:///{tmp_path / service}.db",
        var_dir=tmp_path / service,
        kafka_bootstrap_servers="127.0.0.1:1",
        kafka_timeout_seconds=1,
    )


@pytest.fixture
async def intake(tmp_path: Path) -> AsyncIterator[Intake]:
    service = settings("intake", tmp_path)
    async with app_in_process(create_intake(service)) as client:
        yield Intake(client, service)


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Sessions]:
    service = sessions_settings(f"sqlite:///{tmp_path / 'sessions'}.db", tmp_path / "sessions")
    async with app_in_process(create_sessions(service)) as client:
        yield Sessions(client, service)


@pytest.fixture
async def billing(tmp_path: Path) -> AsyncIterator[Billing]:
    # The site is REMS-certified, so an esketamine course is covered and claimed.
    service = billing_settings(f"sqlite:///{tmp_path / 'billing'}.db", tmp_path / "billing", rems_certified=True)
    async with app_in_process(billing_app(service)) as client:
        yield Billing(client, service)


async def fhir_read(service: Intake | Sessions, path: str, role: str, **params: str) -> list[dict[str, Any]]:
    """A FHIR read's resource, or a search's matches."""
    reply = await service.client.get(f"/fhir/{path}", params=params, headers=service.as_(role))
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    if body["resourceType"] == "Bundle":
        return [entry["resource"] for entry in body.get("entry", [])]
    return [body]


async def post(service: Intake | Sessions, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    reply = await service.client.post(path, json=body, headers=headers)
    assert reply.is_success, reply.text
    result: dict[str, Any] = reply.json()
    return result


async def intake_resources(intake: Intake) -> list[dict[str, Any]]:
    """Two patients (every field, and the required ones only), their PHQ-9, GAD-7 and PCL-5, a withdrawn and an
    active consent, intake's CodeSystems and a 404 OperationOutcome."""
    full = await intake.register(
        **{
            **ADA,
            "preferred_name": "Addie",
            "contact": {"phone": "+44 20 7946 0000", "email": "ada@example.org"},
            "address": {"line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
            "emergency_contact": {"name": "Mary Somerville", "relationship": "friend", "phone": "+44 20 7946 0001"},
            "preferred_language": "en-GB",
        }
    )
    minimal = await intake.register(given_name="Mary", family_name="Somerville", sex="unknown")
    clinician = intake.as_("clinician")
    for instrument, answers in (("phq9", PHQ9), ("gad7", GAD7), ("pcl5", PCL5), ("phq9", [0] * 9)):
        await post(
            intake, f"/patients/{full['id']}/assessments", {"instrument": instrument, "answers": answers}, clinician
        )
    document = await post(intake, "/consent-documents", CONSENT_DOCUMENT, intake.as_("site_admin"))
    desk, url = intake.as_("front_desk"), f"/patients/{full['id']}/consents"
    first = await post(intake, url, {**SIGNATURE, "document_id": document["id"]}, desk)
    await post(intake, f"{url}/{first['id']}/withdraw", {"reason": "wants a break"}, desk)
    await post(intake, url, {**SIGNATURE, "document_id": document["id"], "expected_cost_note": None}, desk)

    resources = [
        *await fhir_read(intake, f"Patient/{full['id']}", "clinician"),
        *await fhir_read(intake, f"Patient/{minimal['id']}", "clinician"),
        *await fhir_read(intake, "Observation", "clinician", patient=full["id"]),
        *await fhir_read(intake, "Consent", "clinician", patient=full["id"]),
        *await fhir_read(intake, "CodeSystem", "clinician"),
    ]
    missing = await intake.client.get(f"/fhir/Patient/{uuid.uuid4()}", headers=clinician)
    assert missing.status_code == 404
    return [*resources, missing.json()]


async def sessions_resources(sessions: Sessions) -> list[dict[str, Any]]:
    """A completed IV session with vital signs and adverse events (serious and not), sessions under way dosed IM,
    subcutaneously, sublingually (on an override) and with esketamine, a session booked ahead, a cancelled and a
    missed one, sessions' CodeSystems and a 404 OperationOutcome."""
    record_api.NOW = datetime.now(UTC)  # the helpers' times count back from now
    nurse, doctor = sessions.as_("therapist"), sessions.as_("clinician", sub="dr-k")
    patients: list[str] = []

    async def started(route: str) -> str:
        session_id = await a_session(sessions, route=route)
        booked = (await sessions.client.get(f"/sessions/{session_id}", headers=nurse)).json()
        patients.append(booked["patient_id"])
        await post(sessions, f"/sessions/{session_id}/pre-dose-checks", pre_dose(), doctor)
        return session_id

    # IV, from check-in to signature.
    iv = await started("iv_infusion")
    url = f"/sessions/{iv}"
    await post(sessions, f"{url}/adverse-events", an_event("other", "mild", 115, description="Anxious waiting"), nurse)
    await post(sessions, f"{url}/dose", iv_dose(), doctor)
    for body in (vitals(95), vitals(80, systolic_mmhg=185, heart_rate_bpm=130), vitals(65, spo2_percent=90)):
        await post(sessions, f"{url}/vitals", body, nurse)
    await post(sessions, f"{url}/adverse-events", an_event("nausea", "mild", 85), nurse)
    serious = an_event("respiratory_depression", "severe", 64, important_medical_event=True)
    await post(sessions, f"{url}/adverse-events", serious, nurse)
    await ready_to_discharge(sessions, iv)
    await post(sessions, f"{url}/discharge", {"escort_present": True}, doctor)
    await post(sessions, f"{url}/sign", {}, nurse)

    # Under way: IM and subcutaneous injections, a sublingual troche on an override, esketamine nasal spray.
    for route in ("intramuscular", "subcutaneous"):
        session_id = await started(route)
        body = {"mg_per_kg": 0.5, "lot_number": "KET-77", "administration_start": at(110)}
        await post(sessions, f"/sessions/{session_id}/dose", body, doctor)
        await post(sessions, f"/sessions/{session_id}/vitals", vitals(100), nurse)
    sublingual = await started("sublingual_oral")
    override = {"reason": "Sensitive to side effects at 50 mg; starting lower per protocol."}
    body = {"dose_mg": 40, "lot_number": "TRO-7", "administration_start": at(110), "override": override}
    await post(sessions, f"/sessions/{sublingual}/dose", body, doctor)
    esketamine = await started("intranasal_esketamine")
    body = {"dose_mg": 56, "lot_number": "SPR-1", "administration_start": at(100), "device_times": [at(100), at(95)]}
    await post(sessions, f"/sessions/{esketamine}/dose", body, doctor)

    # Booked ahead, then cancelled and missed.
    patient = await sessions.ready_patient()
    patients.append(str(patient))
    course = (await sessions.plan(patient)).json()
    desk = sessions.as_("front_desk")
    booked = []
    # The site keeps 44 hours between a patient's dosing sessions and this plan 2 a week: 1, 3 and 5 days ahead
    # fell in one ISO week when the test ran on a Sunday or Monday (409). Over 8 days no week can hold all three.
    for days in (1, 3, 8):
        booking = {
            "starts_at": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
            "duration_minutes": 120,
            "room": "Room 9",
            "clinician": "dr-k",
            "therapist": "t-9",
        }
        booked.append(await post(sessions, f"/courses/{course['id']}/sessions", booking, desk))
    await post(sessions, f"/sessions/{booked[0]['id']}/cancel", {"reason": "patient unwell"}, desk)
    await post(sessions, f"/sessions/{booked[1]['id']}/no-show", {"reason": "did not attend"}, desk)

    resources: list[dict[str, Any]] = []
    for patient_id in patients:
        for kind in ("Encounter", "MedicationAdministration", "Observation", "AdverseEvent"):
            resources.extend(await fhir_read(sessions, kind, "clinician", patient=patient_id))
    resources.extend(await fhir_read(sessions, "CodeSystem", "clinician"))
    missing = await sessions.client.get(f"/fhir/Encounter/{uuid.uuid4()}", headers=nurse)
    assert missing.status_code == 404
    return [*resources, missing.json()]


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


def kinds(resources: list[dict[str, Any]]) -> Counter[str]:
    return Counter(r["resourceType"] for r in resources)


def broken(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A copy of the PCL-5 Observation with an unknown kapnet code and a status R4 does not have."""
    [pcl5] = [r for r in resources if r["resourceType"] == "Observation" and "PCL-5" in r["code"].get("text", "")]
    copy = json.loads(json.dumps(pcl5))
    copy["id"] = "broken"
    copy["status"] = "finished"
    copy["code"]["coding"][0]["code"] = "pcl5-no-such-code"
    return copy


def broken_explanation(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A copy of an ExplanationOfBenefit whose outcome is a payment result, which R4's RemittanceOutcome is not."""
    explanation = next(r for r in resources if r["resourceType"] == "ExplanationOfBenefit")
    copy = json.loads(json.dumps(explanation))
    copy["id"] = "broken-eob"
    copy["outcome"] = "paid"
    return copy


# --- the test ---------------------------------------------------------------------------------------------------


async def test_every_fhir_resource_served_passes_the_hl7_validator(
    intake: Intake, sessions: Sessions, billing: Billing, tmp_path: Path
) -> None:
    validator_command()  # fail at once, not after driving the services, when the validator is not built
    from_intake = await intake_resources(intake)
    from_sessions = await sessions_resources(sessions)
    _, from_billing = await billing_resources(billing)
    served = [*from_intake, *from_sessions, *from_billing]

    # Every type served, in every variant the services make.
    assert kinds(from_intake).keys() == {"Patient", "Observation", "Consent", "CodeSystem", "OperationOutcome"}
    assert kinds(from_sessions).keys() == {
        "Encounter",
        "MedicationAdministration",
        "Observation",
        "AdverseEvent",
        "CodeSystem",
        "OperationOutcome",
    }
    encounters = [r for r in from_sessions if r["resourceType"] == "Encounter"]
    assert Counter(e["status"] for e in encounters) == {"finished": 1, "in-progress": 4, "planned": 1, "cancelled": 2}
    assert {e["contained"][0]["status"] for e in encounters if "contained" in e} == {"cancelled", "noshow"}
    administrations = [r for r in from_sessions if r["resourceType"] == "MedicationAdministration"]
    assert len(administrations) == 5, "IV, IM, subcutaneous, sublingual, esketamine"
    events = [r for r in from_sessions if r["resourceType"] == "AdverseEvent"]
    assert {e["seriousness"]["coding"][0]["code"] for e in events} == {"Serious", "Non-serious"}
    vital_codes = {c["code"] for r in from_sessions if r["resourceType"] == "Observation" for c in r["code"]["coding"]}
    assert {"29463-7", "85354-9", "8867-4", "2708-6", "9279-1"} <= vital_codes
    assert kinds(from_billing).keys() == {"Coverage", "Claim", "ExplanationOfBenefit", "OperationOutcome"}
    coverages = [r for r in from_billing if r["resourceType"] == "Coverage"]
    assert {c["type"]["coding"][0]["code"] for c in coverages} == {"HIP", "PUBLICPOL", "pay"}
    claims = [r for r in from_billing if r["resourceType"] == "Claim"]
    assert Counter((c["use"], c["status"]) for c in claims) == {
        ("claim", "active"): 4,
        ("claim", "draft"): 1,
        ("predetermination", "active"): 2,
    }
    assert any(c["insurance"][0]["coverage"]["reference"] == "#coverage" for c in claims), "a contained Coverage"
    explanations = [r for r in from_billing if r["resourceType"] == "ExplanationOfBenefit"]
    assert {e["disposition"].split(":")[0] for e in explanations} == {"Paid", "Partly paid", "Denied"}
    code_systems = [r for r in served if r["resourceType"] == "CodeSystem"]
    assert code_systems, "each service serves the CodeSystems of its kapnet codes"

    # Every kapnet code system a resource uses is one a service serves.
    urls = {c["url"] for c in code_systems}
    used = {s for r in served for s in _systems(r) if s.startswith((KAPNET_CODE_SYSTEMS, "urn:kapnet:"))}
    assert used <= urls, f"kapnet code systems used but not served: {sorted(used - urls)}"

    # Every resource has a generated XHTML narrative.
    for resource in served:
        text = resource.get("text", {})
        assert text.get("status") == "generated", f"{resource['resourceType']}/{resource.get('id')}: no narrative"
        assert text["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')

    served_dir, conformance_dir, canary_dir = tmp_path / "served", tmp_path / "conformance", tmp_path / "canary"
    write(served_dir, served)
    # The CodeSystems the services serve are the definitions of kapnet's codes: the validator checks codes with them.
    write(conformance_dir, list({c["url"]: c for c in code_systems}.values()))
    write(canary_dir, [broken(from_intake), broken_explanation(from_billing)])

    result = run_validator(served_dir, conformance_dir, canary_dir)
    assert result.summary["resources"] == len(served) + 2

    canary = [i for i in result.issues if i.file.startswith(str(canary_dir)) and i.severity in ("error", "fatal")]
    assert any("pcl5-no-such-code" in i.message for i in canary), "kapnet codes are checked against the CodeSystems"
    assert any("finished" in i.message for i in canary), "the validator reports a code outside a required binding"
    assert any("'paid'" in i.message and i.resource.startswith("ExplanationOfBenefit") for i in canary), "billing too"

    issues = [i for i in result.issues if i.file.startswith(str(served_dir))]
    errors = [i for i in issues if i.severity in ("error", "fatal")]
    report = "\n".join(f"{i.resource} {i.location}: {i.message}" for i in errors)
    assert not errors, f"{len(errors)} errors from the HL7 validator:\n{report}"

    # What is left, by kind (pytest -s shows it), is only what EXPECTED explains.
    left = Counter((i.severity, _kind(i)) for i in issues)
    print(f"\nHL7 validator: {len(served)} resources, 0 errors, {result.summary['seconds']} s for the run")
    for (severity, kind), count in sorted(left.items(), key=lambda item: (item[0][0], -item[1])):
        print(f"  {count:4d} {severity:11s} {kind}")
    unexplained = sorted({f"{i.severity}: {i.message}" for i in issues if not _expected(i)})
    assert not unexplained, "new kinds of warning: fix them, or explain them in EXPECTED:\n" + "\n".join(unexplained)


def _systems(node: Any) -> set[str]:
    """Every coding system used in a resource (in codings and contained resources)."""
    if isinstance(node, list):
        return {s for item in node for s in _systems(item)}
    if not isinstance(node, dict):
        return set()
    found = {node["system"]} if "system" in node and "code" in node else set()
    return found | {s for key, value in node.items() if key != "concept" for s in _systems(value)}


# The warnings and information left, each with why it stays: (severity, words of the message, element).
EXPECTED: list[tuple[str, str, str]] = [
    # Offline, LOINC and RxNorm cannot be looked up (they are not among R4's definitions); the codes are confirmed
    # ones (shared/instruments/loinc.py, services/sessions/fhir/resources.py).
    ("warning", "CodeSystem is unknown and can't be validated: http://loinc.org", ""),
    ("warning", "CodeSystem is unknown and can't be validated: http://www.nlm.nih.gov/research/umls/rxnorm", ""),
    # Nor can billing's US code sets (services/billing/fhir.py): ICD-10-CM, CPT (codes and modifiers), HCPCS Level II
    # and the CMS place-of-service codes, all under the canonical URLs HL7 Terminology gives them, and CARIN Blue
    # Button's adjudication codes (an HL7 US implementation guide, for the patient's share, which R4's adjudication
    # codes have no code for). Every binding they are used in is an example binding.
    ("warning", "CodeSystem is unknown and can't be validated: http://hl7.org/fhir/sid/icd-10-cm", ""),
    ("warning", "CodeSystem is unknown and can't be validated: http://www.ama-assn.org/go/cpt", ""),
    (
        "warning",
        "CodeSystem is unknown and can't be validated: http://www.cms.gov/Medicare/Coding/HCPCSReleaseCode",
        "",
    ),
    (
        "warning",
        "CodeSystem is unknown and can't be validated: https://www.cms.gov/Medicare/Coding/place-of-service-codes/",
        "",
    ),
    (
        "warning",
        "CodeSystem is unknown and can't be validated: http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication",
        "",
    ),
    # SpO2 carries 2708-6, which IS in R4's Vital Signs value set, and 59408-5 (pulse oximetry): with LOINC
    # unknown, the validator judges the pair as if neither were in it. It says nothing when 2708-6 is alone.
    (
        "warning",
        "value set 'Vital Signs' (http://hl7.org/fhir/ValueSet/observation-vitalsignresult",
        "Observation.code",
    ),
    # Extensible bindings whose value set has no suitable code: a PHQ-9/GAD-7 severity band is no v3 interpretation
    # code (kapnet's severity CodeSystem); a treatment consent is under none of R4's consent policies (OPTIN, as in
    # R4's own Consent examples); the contact's own word for the relationship ("friend") is kept as text.
    ("warning", "'Observation Interpretation Codes'", "Observation.interpretation"),
    ("warning", "'Consent PolicyRule Codes'", "Consent.policyRule"),
    ("warning", "'Patient Contact Relationship '", "Patient.contact"),
    # A preferred (not extensible) binding to SNOMED CT reasons: kapnet's indication CodeSystem, until a SNOMED CT
    # code is confirmed for each indication.
    ("information", "'Encounter Reason Codes'", "Encounter.reasonCode"),
]


def _expected(issue: Issue) -> bool:
    return any(
        issue.severity == severity and words in issue.message and issue.location.startswith(element)
        for severity, words, element in EXPECTED
    )


def _kind(issue: Issue) -> str:
    """An issue's kind: its message without what differs between resources (the codes sent)."""
    message = issue.message
    for detail in (" for '", " (codes = ", ", and a coding"):
        message = message.split(detail)[0]
    return message
