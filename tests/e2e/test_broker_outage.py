"""Broker outage with real processes: intake keeps registering, and once the broker is back every event takes
effect exactly once downstream. Uses a broker of its own, since it stops it."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.kafka.launcher import KafkaNode, free_port
from tests.harness import auth_headers, running, service_process, wait_until

pytestmark = pytest.mark.broker


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[KafkaNode]:
    with KafkaNode(tmp_path / "kafka", port=free_port()) as node:
        yield node


def rows(database: Path, sql: str) -> int:
    if not database.exists():
        return 0
    with sqlite3.connect(database) as connection:
        try:
            return int(connection.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:  # not migrated yet
            return 0


def register(intake_url: str, n: int, headers: dict[str, str]) -> None:
    body = {"given_name": f"Outage{n}", "family_name": "Test", "birth_date": "1970-01-01", "sex": "other"}
    reply = httpx.post(f"{intake_url}/patients", json=body, headers=headers, timeout=10)
    assert reply.status_code == 201, reply.text


def test_registrations_survive_a_broker_outage(own_broker: KafkaNode, tmp_path: Path) -> None:
    site = f"out{uuid.uuid4().hex[:6]}"
    env = {
        "KAPNET_SITE": site,
        "KAPNET_KAFKA_BOOTSTRAP_SERVERS": own_broker.bootstrap_servers,
        "KAPNET_KAFKA_TIMEOUT_SECONDS": "3",
        "KAPNET_OUTBOX_POLL_INTERVAL_SECONDS": "0.3",
        "KAPNET_AGGREGATE_PUBLISH_INTERVAL_SECONDS": "0.5",
    }
    intake = service_process("intake", tmp_path, **env)
    outcomes = service_process("outcomes", tmp_path, **env)
    intake_db = tmp_path / "var" / site / "intake.db"
    outcomes_db = tmp_path / "var" / site / "outcomes.db"
    front_desk = auth_headers(tmp_path / "var" / "auth", site, "front_desk")
    with running(intake, outcomes):
        for n in range(5):
            register(intake.url, n, front_desk)
        wait_until(lambda: rows(outcomes_db, "SELECT count(*) FROM registration") == 5, what="5 before the outage")

        own_broker.stop()
        for n in range(5, 25):
            register(intake.url, n, front_desk)  # intake keeps answering 201 with no broker at all
        assert httpx.get(f"{intake.url}/readyz", timeout=10).status_code == 503
        assert rows(intake_db, "SELECT count(*) FROM outbox_message WHERE sent_at IS NULL") == 20

        own_broker.start()
        wait_until(
            lambda: rows(outcomes_db, "SELECT count(*) FROM registration") == 25,
            timeout=120,
            what="all 25 registrations downstream",
        )
        wait_until(
            lambda: rows(intake_db, "SELECT count(*) FROM outbox_message WHERE sent_at IS NULL") == 0,
            what="an empty outbox",
        )
        assert httpx.get(f"{intake.url}/readyz", timeout=10).status_code == 200

    # Exactly once: one registration and one processed inbox entry per event, none dead-lettered.
    assert rows(outcomes_db, "SELECT count(*) FROM registration") == 25
    assert rows(outcomes_db, "SELECT count(*) FROM inbox_entry WHERE outcome = 'processed'") == 25
    assert rows(outcomes_db, "SELECT count(*) FROM inbox_entry WHERE outcome != 'processed'") == 0
    assert rows(intake_db, "SELECT count(*) FROM outbox_message") == 25
