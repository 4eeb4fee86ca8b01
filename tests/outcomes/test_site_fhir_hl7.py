"""A patient's trajectory as FHIR Observations passes HL7's validator (HAPI FHIR's, offline, as
tests/test_fhir_hl7_validator.py runs it), with outcomes' own CodeSystem as the definition of its codes; a
deliberately broken copy shows the validator checks those codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.outcomes.conftest import Outcomes
from tests.outcomes.test_site_outcomes_api import a_course
from tests.test_fhir_hl7_validator import run_validator, validator_command, write


async def test_the_trajectory_observations_pass_the_hl7_validator(outcomes: Outcomes, tmp_path: Path) -> None:
    validator_command()  # fail at once when the validator is not built
    patient_id, _ = await a_course(outcomes)
    clinician = outcomes.as_("clinician")
    bundle = (
        await outcomes.client.get("/fhir/Observation", params={"patient": str(patient_id)}, headers=clinician)
    ).json()
    observations = [e["resource"] for e in bundle["entry"]]
    code_systems = [
        e["resource"] for e in (await outcomes.client.get("/fhir/CodeSystem", headers=clinician)).json()["entry"]
    ]
    assert len(observations) == 7 and code_systems

    served_dir, conformance_dir, canary_dir = tmp_path / "served", tmp_path / "conformance", tmp_path / "canary"
    write(served_dir, [*observations, *code_systems])
    write(conformance_dir, code_systems)
    write(canary_dir, [broken(observations[1])])
    result = run_validator(served_dir, conformance_dir, canary_dir)
    canary = [i for i in result.issues if i.file.startswith(str(canary_dir)) and i.severity in ("error", "fatal")]
    assert any("no-such-phase" in i.message for i in canary), "the validator checks outcomes' codes"

    errors = [i for i in result.issues if i.file.startswith(str(served_dir)) and i.severity in ("error", "fatal")]
    report = "\n".join(f"{i.resource} {i.location}: {i.message}" for i in errors)
    assert not errors, f"{len(errors)} errors from the HL7 validator:\n{report}"


def broken(observation: dict[str, Any]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(observation))
    copy["id"] = "broken"
    phase = next(c for c in copy["component"] if c["code"]["coding"][0]["code"] == "phase")
    phase["valueCodeableConcept"]["coding"][0]["code"] = "no-such-phase"
    return copy
