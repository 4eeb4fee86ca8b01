"""The network re-checks what it receives, with the real broker: a forged aggregate on the network topic (a count
of 3 shown, a mean over a hidden count) fails the network's model, goes to the network's dead-letter topic and is
never served, while a valid one published after it is taken in."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from services.outcomes.app import create_app
from shared.events.envelope import CloudEvent, to_kafka
from shared.events.outcomes import CohortOutcomesPublished
from tests.harness import ServiceUnderTest, app_in_process, eventually, read_topic
from tests.outcomes.test_network_rebuild import network_settings, publish
from tests.outcomes.test_network_view_rules import cohort
from tests.shared.test_consumer import as_record

pytestmark = pytest.mark.broker

DEAD_LETTERS = "kapnet.network.outcomes.deadletter.v1"


def forged(data: dict[str, Any]) -> tuple[list[tuple[str, bytes]], bytes, bytes]:
    """A record built by hand, past the model a site would have used to make it."""
    envelope = CloudEvent(
        type=CohortOutcomesPublished.ce_type(), source="/kapnet/forger/outcomes", data=data, id=str(uuid.uuid4())
    )
    headers, value = to_kafka(envelope)
    return headers, value, f"{data['site']}|forged".encode()


async def test_a_forged_aggregate_is_dead_lettered_and_never_served(
    kafka: str, database_url: str, tmp_path: Path
) -> None:
    site = f"fg{uuid.uuid4().hex[:6]}"
    small = cohort(site, "2026-01").model_dump(mode="json")
    small["courses"] = {"count": 3, "suppressed": False}  # a count 1-10 shown
    hidden_mean = cohort(site, "2026-02").model_dump(mode="json")
    hidden_mean["instruments"][0]["with_result"] = {"count": None, "suppressed": True}
    hidden_mean["instruments"][0]["mean_change"] = -7.5  # a mean over a hidden count
    settings = network_settings(kafka, database_url, tmp_path, [site])
    async with app_in_process(create_app(settings)) as client:
        network = ServiceUnderTest(client, settings)
        # The network service made its topic on start; the forger writes to it like any client could today.
        await publish(kafka, forged(small), forged(hidden_mean), as_record(cohort(site, "2026-03")))

        async def served() -> list[dict[str, Any]]:
            reply = await client.get("/cohort-outcomes", params={"site": site}, headers=network.as_("network_admin"))
            assert reply.status_code == 200, reply.text
            result: list[dict[str, Any]] = reply.json()
            return result

        async def valid_one_taken_in() -> bool:
            return len(await served()) == 1

        await eventually(valid_one_taken_in, within=60, what="the valid aggregate after the forged ones")
        assert [c["period"] for c in await served()] == ["2026-03"]

    dead = [r for r in await read_topic(kafka, DEAD_LETTERS, 2) if site.encode() in (r.value or b"")]
    assert len(dead) == 2, "both forged aggregates are on the dead-letter topic"
    assert {dict(r.headers).get("ce_type") for r in dead} == {CohortOutcomesPublished.ce_type().encode()}
