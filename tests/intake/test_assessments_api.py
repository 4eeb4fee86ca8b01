"""Baseline measures through the API: scoring from the shared library, every item stored, safety flags."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.intake.models import Assessment, SafetyFlag
from tests.intake.conftest import Intake

PHQ9_MODERATE = [2, 2, 1, 1, 2, 1, 1, 1, 0]  # total 11: moderate, item 9 = 0
PHQ9_ITEM9 = [0, 0, 0, 0, 0, 0, 0, 0, 1]  # total 1: minimal, yet item 9 = 1


async def submit(intake: Intake, patient: dict[str, Any], instrument: str, answers: list[Any]) -> Any:
    return await intake.client.post(
        f"/patients/{patient['id']}/assessments",
        json={"instrument": instrument, "answers": answers},
        headers=intake.as_("clinician"),
    )


async def test_phq9_gad7_and_pcl5_are_scored_and_stored_item_by_item(intake: Intake) -> None:
    patient = await intake.register()
    phq = (await submit(intake, patient, "phq9", PHQ9_MODERATE)).json()
    assert (phq["total"], phq["severity"], phq["safety_flag"]) == (11, "moderate", None)
    assert phq["answers"] == PHQ9_MODERATE and phq["instrument_version"].startswith("PHQ-9")
    gad = (await submit(intake, patient, "gad7", [3, 3, 3, 3, 3, 0, 0])).json()
    assert (gad["total"], gad["severity"]) == (15, "severe")
    # PCL-5: B 1-5, C 6-7, D 8-14, E 15-20; an item counts when rated 2+; needs 1 B, 1 C, 2 D, 2 E.
    pcl_answers = [2, 0, 0, 0, 0, 2, 0, 2, 2, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0]
    pcl = (await submit(intake, patient, "pcl5", pcl_answers)).json()
    assert pcl["clusters"] == {"B": 2, "C": 2, "D": 4, "E": 4} and pcl["provisional_ptsd"] is True
    assert (pcl["total"], pcl["cutoff"], pcl["at_or_above_cutoff"]) == (12, 33, False)
    stored = (await intake.client.get(f"/patients/{patient['id']}/assessments", headers=intake.as_("therapist"))).json()
    assert [a["instrument"] for a in stored] == ["phq9", "gad7", "pcl5"]
    events = [json.loads(e.payload) for e in await intake.events("assessment.recorded.v2")]
    assert [(e["instrument"], e["total"]) for e in events] == [("phq9", 11), ("gad7", 15), ("pcl5", 12)]
    assert all("answers" not in e for e in events), "item answers stay in intake"


async def test_item_9_raises_a_flag_that_stays_open_until_a_clinician_acknowledges_it(intake: Intake) -> None:
    patient = await intake.register()
    raised = (await submit(intake, patient, "phq9", PHQ9_ITEM9)).json()
    assert raised["total"] == 1 and raised["severity"] == "minimal"
    flag = raised["safety_flag"]
    assert flag["status"] == "open" and flag["reason"] == "phq9_item9_above_zero"

    calm = (await submit(intake, patient, "phq9", [0] * 9)).json()
    assert calm["safety_flag"] is None, "a later item 9 of 0 raises nothing and clears nothing"
    flags_url = f"/patients/{patient['id']}/safety-flags"
    still_open = (await intake.client.get(flags_url, params={"status": "open"}, headers=intake.as_("therapist"))).json()
    assert [f["id"] for f in still_open] == [flag["id"]]

    ack = {"note": "Spoke with patient: passive ideation, no plan; safety plan agreed."}
    by_therapist = await intake.client.post(
        f"{flags_url}/{flag['id']}/acknowledge", json=ack, headers=intake.as_("therapist")
    )
    assert by_therapist.status_code == 403
    too_short = await intake.client.post(
        f"{flags_url}/{flag['id']}/acknowledge", json={"note": "ok"}, headers=intake.as_("clinician")
    )
    assert too_short.status_code == 422
    done = await intake.client.post(
        f"{flags_url}/{flag['id']}/acknowledge", json=ack, headers=intake.as_("clinician", sub="dr-9")
    )
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["acknowledged_by"]) == ("acknowledged", "dr-9")
    assert (await intake.client.get(flags_url, params={"status": "open"}, headers=intake.as_("clinician"))).json() == []
    assert len(await intake.events("safety_flag.raised.v1")) == 1
    assert len(await intake.events("safety_flag.acknowledged.v1")) == 1


@pytest.mark.parametrize(
    ("instrument", "answers", "where", "words"),
    [
        ("phq9", [0] * 8, ["body", "answers"], "expected 9 answers, got 8"),
        ("phq9", [0, 0, 4, 0, 0, 0, 0, 0, 0], ["body", "answers", 2], "item 3"),
        ("gad7", [0, 0, 0, 0, 0, 0, -1], ["body", "answers", 6], "item 7"),
        ("pcl5", [0] * 19 + [5], ["body", "answers", 19], "item 20"),
        ("phq9", [0, "1", 0, 0, 0, 0, 0, 0, 0], ["body", "answers", 1], ""),
        ("phq9", [0, 0, 0, True, 0, 0, 0, 0, 0], ["body", "answers", 3], ""),
        ("phq10", [0] * 9, ["body", "instrument"], ""),
    ],
)
async def test_a_wrong_answer_is_422_naming_the_item_and_nothing_is_written(
    intake: Intake, instrument: str, answers: list[Any], where: list[Any], words: str
) -> None:
    patient = await intake.register()
    reply = await submit(intake, patient, instrument, answers)
    assert reply.status_code == 422
    [error] = reply.json()["errors"]
    assert error["pointer"] == "".join(f"/{part}" for part in where) and words in error["message"]
    assert await intake.count(Assessment) == 0 and await intake.count(SafetyFlag) == 0
    assert await intake.events("assessment.recorded.v2") == []


async def test_an_assessment_of_an_unknown_patient_is_404(intake: Intake) -> None:
    reply = await submit(intake, {"id": "00000000-0000-0000-0000-000000000001"}, "phq9", [0] * 9)
    assert reply.status_code == 404
