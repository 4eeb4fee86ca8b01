"""Measures during the course use the same scoring and raise the same safety flag as intake's."""

from __future__ import annotations

import json
import uuid

from sqlmodel import select

from shared.bus.tables import OutboxMessage
from tests.sessions.conftest import Sessions


async def test_an_in_course_phq9_is_scored_and_item_9_raises_the_flag(sessions: Sessions) -> None:
    patient = await sessions.ready_patient()
    url, nurse = f"/patients/{patient}/assessments", sessions.as_("therapist")
    reply = await sessions.client.post(
        url,
        json={"instrument": "phq9", "answers": [1, 1, 1, 1, 1, 1, 1, 1, 1], "context": "pre_session"},
        headers=nurse,
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert (body["total"], body["severity"], body["context"]) == (9, "mild", "pre_session")
    assert body["safety_flag"]["status"] == "open"
    assert (
        await sessions.client.post(
            url, json={"instrument": "gad7", "answers": [0] * 7, "context": "baseline"}, headers=nurse
        )
    ).status_code == 422, "baseline measures belong to intake"
    unknown = await sessions.client.post(
        f"/patients/{uuid.uuid4()}/assessments", json={"instrument": "gad7", "answers": [0] * 7}, headers=nurse
    )
    assert unknown.status_code == 404
    async with sessions.database.sessions() as s:
        types = [r.ce_type for r in (await s.exec(select(OutboxMessage))).all()]
    assert "org.kapnet.sessions.assessment.recorded.v2" in types
    assert "org.kapnet.sessions.safety_flag.raised.v1" in types
    flags = (await sessions.client.get(f"/patients/{patient}/safety-flags", headers=nurse)).json()
    assert [f["status"] for f in flags] == ["open"]
    assert json.loads(json.dumps(flags))[0]["reason"] == "phq9_item9_above_zero"
