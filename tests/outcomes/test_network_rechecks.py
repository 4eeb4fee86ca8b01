"""The network re-checks what it receives, with the real broker: a forged aggregate on the network topic (a count
of 3 shown, a mean over a hidden count, a step of 2 from the version held, a time finer than the release
period's boundary, an aggregate in another site's name) breaks the event's model, the release rules or its
origin, goes to the network's dead-letter topic and is
never served, while a valid one published after it is taken in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

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


def refused_releases(dead: list[ConsumerRecord[bytes, bytes]], site: str) -> set[tuple[bytes, bytes, bytes]]:
    """The site's records on the dead-letter topic, by where each came from (topic, partition, offset). Dead
    lettering is at least once: a record read again after a restart or a rebalance, before its offset was
    committed, is dead-lettered again (CI saw 8 copies of 5), and the headers tell the copies apart."""
    found = set()
    for record in dead:
        if site.encode() in (record.value or b""):
            headers = dict(record.headers)
            found.add((headers["kapnet_dlq_topic"], headers["kapnet_dlq_partition"], headers["kapnet_dlq_offset"]))
    return found


async def test_a_forged_aggregate_is_dead_lettered_and_never_served(
    kafka: str, database_url: str, tmp_path: Path
) -> None:
    site = f"fg{uuid.uuid4().hex[:6]}"
    small = cohort(site, "2026-01").model_dump(mode="json")
    small["courses"] = {"count": 3, "suppressed": False}  # a count 1-10 shown
    hidden_mean = cohort(site, "2026-02").model_dump(mode="json")
    hidden_mean["instruments"][0]["with_result"] = {"count": None, "suppressed": True}
    hidden_mean["instruments"][0]["mean_change"] = -7.5  # a mean over a hidden count
    held = cohort(site, "2026-03", responded=12)
    # Differencing: a new version whose responded moved by 2 would show two courses.
    small_step = cohort(site, "2026-03", responded=14, generated_at=held.generated_at + timedelta(days=1))
    # Timing: stamped 14:03, it would date what changed to the minute.
    to_the_minute = cohort(site, "2026-04", generated_at=datetime(2026, 2, 3, 14, 3, tzinfo=UTC))
    # In another site's name, on this site's topic (the only network topic the broker lets this site write).
    headers, value, _ = as_record(cohort(f"{site}x", "2026-05"))
    in_anothers_name = (headers, value, f"{site}|2026-05".encode())
    settings = network_settings(kafka, database_url, tmp_path, [site])
    async with app_in_process(create_app(settings)) as client:
        network = ServiceUnderTest(client, settings)
        # The network service made its topic on start; the forger writes to it like any client could without ACLs.
        await publish(
            kafka,
            forged(small),
            forged(hidden_mean),
            as_record(held),
            as_record(small_step),
            as_record(to_the_minute),
            in_anothers_name,
        )

        async def served() -> list[dict[str, Any]]:
            reply = await client.get("/cohort-outcomes", params={"site": site}, headers=network.as_("network_admin"))
            assert reply.status_code == 200, reply.text
            result: list[dict[str, Any]] = reply.json()
            return result

        async def valid_one_taken_in() -> bool:
            return len(await served()) == 1

        await eventually(valid_one_taken_in, within=60, what="the valid aggregate after the forged ones")

        async def all_dead_lettered() -> bool:
            return len(refused_releases(await read_topic(kafka, DEAD_LETTERS, 2), site)) == 5

        await eventually(all_dead_lettered, within=60, what="the five refused releases on the dead-letter topic")
        [march] = await served()
        assert march["period"] == "2026-03" and march["instruments"][0]["responded"]["count"] == 12

    dead = [r for r in await read_topic(kafka, DEAD_LETTERS, 2) if site.encode() in (r.value or b"")]
    assert len(refused_releases(dead, site)) == 5, "every aggregate that breaks the rules is on the dead-letter topic"
    assert {dict(r.headers).get("ce_type") for r in dead} == {CohortOutcomesPublished.ce_type().encode()}
