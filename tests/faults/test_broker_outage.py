"""Broker outage with real processes: intake keeps registering, and once the broker is back every event takes
effect exactly once downstream. Uses a broker of its own, since it stops it."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import local_http
from deploy.kafka.launcher import KafkaNode, free_port
from tests.harness import TEST_BROKER_JVM, auth_headers, running, service_process, wait_until

pytestmark = pytest.mark.broker


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[KafkaNode]:
    with KafkaNode(tmp_path / "kafka", port=free_port(), jvm_options=TEST_BROKER_JVM) as node:
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
    reply = local_http.post(f"{intake_url}/patients", json=body, headers=headers, timeout=10)
    assert reply.status_code == 201, reply.text


# The outage the hardening issue reproduced: 60 s, with writes going on throughout.
OUTAGE_SECONDS = 60


def test_every_projection_catches_up_after_a_60_second_broker_outage(own_broker: KafkaNode, tmp_path: Path) -> None:
    site = f"out{uuid.uuid4().hex[:6]}"
    env = {
        "KAPNET_SITE": site,
        "KAPNET_KAFKA_BOOTSTRAP_SERVERS": own_broker.bootstrap_servers,
        "KAPNET_KAFKA_TIMEOUT_SECONDS": "3",
        "KAPNET_OUTBOX_POLL_INTERVAL_SECONDS": "0.3",
        "KAPNET_AGGREGATE_PUBLISH_INTERVAL_SECONDS": "0.5",
    }
    intake = service_process("intake", tmp_path, **env)
    sessions = service_process("sessions", tmp_path, **env)
    outcomes = service_process("outcomes", tmp_path, **env)
    var = tmp_path / "var" / site
    intake_db, sessions_db, outcomes_db = var / "intake.db", var / "sessions.db", var / "outcomes.db"
    front_desk = auth_headers(tmp_path / "var" / "auth", site, "front_desk")
    with running(intake, sessions, outcomes):
        for n in range(5):
            register(intake.url, n, front_desk)
        wait_until(lambda: rows(outcomes_db, "SELECT count(*) FROM registration") == 5, what="5 before the outage")
        wait_until(lambda: rows(sessions_db, "SELECT count(*) FROM patient_status") == 5, what="5 at sessions")

        # Writes go on while the broker dies, stays dead for a minute and comes back.
        written = 5
        own_broker.kill()
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < outage_ends:
            register(intake.url, written, front_desk)  # intake keeps answering 201 with no broker at all
            written += 1
            time.sleep(1.0)
        assert local_http.get(f"{intake.url}/readyz", timeout=10).status_code == 503
        own_broker.start()
        for _ in range(5):
            register(intake.url, written, front_desk)
            written += 1

        # Nobody restarts anything: every consumer comes back by itself.
        for name, database, table in (
            ("outcomes", outcomes_db, "registration"),
            ("sessions", sessions_db, "patient_status"),
        ):
            wait_until(
                lambda db=database, t=table: rows(db, f"SELECT count(*) FROM {t}") == written,  # type: ignore[misc]
                timeout=180,
                what=f"all {written} registrations at {name}",
            )
        wait_until(
            lambda: rows(intake_db, "SELECT count(*) FROM outbox_message WHERE sent_at IS NULL") == 0,
            what="an empty outbox",
        )
        for service in (intake, sessions, outcomes):
            assert service.is_running(), f"{service.name} was not restarted by hand"
            wait_until(
                lambda s=service: local_http.get(f"{s.url}/readyz", timeout=10).status_code == 200,  # type: ignore[misc]
                timeout=60,
                what=f"{service.name} ready",
            )
        for service in (sessions, outcomes):
            # The lag reads -1 (unknown) for a moment after the consumer rejoins its group: aiokafka knows a newly
            # assigned partition's high watermark only from its first fetch there (seen once, 0.6 s after a poll).
            # Waited for, not read once; a lag that stayed unknown would still fail here.
            lag_zero = f'kapnet_consumer_lag{{consumer="{service.name}"}} 0'
            wait_until(
                lambda s=service, line=lag_zero: line in local_http.get(f"{s.url}/metrics", timeout=10).text,  # type: ignore[misc]
                timeout=30,
                what=f"{service.name}'s lag 0",
            )
            metrics = local_http.get(f"{service.url}/metrics", timeout=10).text
            assert f'kapnet_consumer_running{{consumer="{service.name}"}} 1' in metrics, metrics

    # Exactly once: one row and one processed inbox entry per event, none dead-lettered, at each projection.
    for database, table in ((outcomes_db, "registration"), (sessions_db, "patient_status")):
        assert rows(database, f"SELECT count(*) FROM {table}") == written
        assert rows(database, "SELECT count(*) FROM inbox_entry WHERE outcome != 'processed'") == 0
    assert rows(outcomes_db, "SELECT count(*) FROM inbox_entry WHERE outcome = 'processed'") == written
    assert rows(intake_db, "SELECT count(*) FROM outbox_message") == written
    # The outage is logged once per backoff step, not once per reconnection attempt.
    for service in (intake, sessions, outcomes):
        lines = service.log_path.read_text().count("\n")
        print(f"{service.name}: {lines} log lines over a {OUTAGE_SECONDS} s outage")
        assert lines < 400, f"{service.name} wrote {lines} log lines over a {OUTAGE_SECONDS} s outage"
