"""The network's Measures and MeasureReports pass HL7's validator (HAPI FHIR's, offline, as
tests/test_fhir_hl7_validator.py runs it): every Measure, and the MeasureReports of cohorts with every count shown,
with suppressed counts (no number: data-absent-reason 'masked'), of a cut, with a median and with none, read back
over the network's /fhir routes. kapnet's indication, route and adverse-event codes are checked against the
CodeSystems sessions serves, which define them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.outcomes.fhir.measures import MEASURES
from services.sessions.fhir import CODE_SYSTEMS as SESSIONS_CODE_SYSTEMS
from shared.events.billing import AccessBarrierReason
from shared.events.outcomes import BarrierFigures, CohortOutcomesPublished, InstrumentFigures, ReleasedCount
from tests.fhir_validation import assert_valid_r4
from tests.harness import ServiceUnderTest
from tests.outcomes.test_network_api import get, network_cohorts, network_service, take_in
from tests.outcomes.test_network_view_rules import cohort
from tests.test_fhir_hl7_validator import run_validator, validator_command, write

__all__ = ["network_service"]  # the fixture, imported for pytest


def every_figure() -> CohortOutcomesPublished:
    """A cohort reporting every instrument and a barrier, one of its instruments suppressed throughout."""
    full = cohort("east", "2026-03", median_days_to_first_dose=12.0, nausea=11)
    suppressed = ReleasedCount(suppressed=True)
    reason: AccessBarrierReason = "high_out_of_pocket"
    return full.model_copy(
        update={
            "instruments": [
                *full.instruments,
                InstrumentFigures(instrument="gad7", with_result=suppressed, responded=suppressed, remitted=suppressed),
                InstrumentFigures(
                    instrument="pcl5",
                    with_result=ReleasedCount(count=0),
                    responded=ReleasedCount(count=0),
                    remitted=ReleasedCount(count=0),
                ),
            ],
            "barriers": [BarrierFigures(reason=reason, courses=ReleasedCount(count=11))],
        }
    )


async def test_the_networks_measures_and_measure_reports_pass_the_hl7_validator(
    network_service: ServiceUnderTest, tmp_path: Path
) -> None:
    validator_command()  # fail at once when the validator is not built
    await take_in(network_service, *network_cohorts(), every_figure())
    measures = [e["resource"] for e in (await get(network_service, "/fhir/Measure"))["entry"]]
    reports = [e["resource"] for e in (await get(network_service, "/fhir/MeasureReport", _count="1000"))["entry"]]
    # A page from the middle of a search, as served: its total, and its first, previous and next links.
    middle = await get(network_service, "/fhir/MeasureReport", _count="2", _offset="2")
    assert {link["relation"] for link in middle["link"]} == {"self", "first", "previous", "next"}
    served = [*measures, *reports, middle]

    assert {m["id"] for m in measures} == set(MEASURES)
    assert {r["measure"].rsplit("/", 1)[1] for r in reports} == set(MEASURES), "a report of every measure"
    counts = [p for r in reports for g in r["group"] for p in g["population"]]
    suppressed = [p for p in counts if "count" not in p]
    assert suppressed and all(p["_count"]["extension"][0]["valueCode"] == "masked" for p in suppressed)
    assert any("extension" in g["measureScore"] for r in reports for g in r["group"]), "a score left out"
    for resource in served:
        assert_valid_r4(resource)

    served_dir, conformance_dir, canary_dir = tmp_path / "served", tmp_path / "conformance", tmp_path / "canary"
    write(served_dir, served)
    write(conformance_dir, list(SESSIONS_CODE_SYSTEMS.values()))
    write(canary_dir, [broken(reports)])
    result = run_validator(served_dir, conformance_dir, canary_dir)
    assert result.summary["resources"] == len(served) + 1
    canary = [i for i in result.issues if i.file.startswith(str(canary_dir)) and i.severity in ("error", "fatal")]
    assert any("finished" in i.message for i in canary), "the validator checks MeasureReports"
    assert any("no-such-route" in i.message for i in canary), "and kapnet's codes in them"

    issues = [i for i in result.issues if i.file.startswith(str(served_dir))]
    errors = [i for i in issues if i.severity in ("error", "fatal")]
    report = "\n".join(f"{i.resource} {i.location}: {i.message}" for i in errors)
    assert not errors, f"{len(errors)} errors from the HL7 validator:\n{report}"
    print(f"\nHL7 validator: {len(served)} network resources, 0 errors, {len(issues)} warnings")
    # The one warning left: the validator's --conformance takes CodeSystems, ValueSets and StructureDefinitions
    # only (deploy/tools/fhir-validator), so it cannot resolve a report's Measure to check the report against it.
    unexplained = sorted({i.message for i in issues if "could not be resolved" not in i.message})
    assert not unexplained, "new kinds of warning:\n" + "\n".join(unexplained)


def broken(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """A copy of a MeasureReport with a status R4 does not have and a route kapnet does not know."""
    copy: dict[str, Any] = json.loads(json.dumps(reports[0]))
    copy["id"], copy["status"] = "broken", "finished"
    copy["contained"][0]["characteristic"][1]["valueCodeableConcept"]["coding"][0]["code"] = "no-such-route"
    return copy
