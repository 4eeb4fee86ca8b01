"""docs/examples/subscriber.py against the real broker and a real intake process: it reads the site's records with
nothing but aiokafka and the JSON Schemas intake publishes, and refuses a record that is not one of them."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pytest
from aiokafka import AIOKafkaProducer

from deploy import local_http
from tests.harness import ROOT, auth_headers, read_topic, running, service_process

pytestmark = pytest.mark.broker


def the_example() -> ModuleType:
    path = ROOT / "docs" / "examples" / "subscriber.py"
    spec = importlib.util.spec_from_file_location("kapnet_subscriber_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


async def put_garbage(kafka: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"not json", key=b"x", headers=[("ce_specversion", b"1.0")])
    finally:
        await producer.stop()


def test_the_example_subscriber_reads_validated_events(
    kafka: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = f"sub{uuid.uuid4().hex[:6]}"
    intake = service_process(
        "intake",
        tmp_path,
        KAPNET_SITE=site,
        KAPNET_KAFKA_BOOTSTRAP_SERVERS=kafka,
        KAPNET_OUTBOX_POLL_INTERVAL_SECONDS="0.1",
    )
    desk = auth_headers(tmp_path / "var" / "auth", site, "front_desk")
    topic = f"kapnet.{site}.intake.v1"
    with running(intake):
        ids = []
        for n in range(2):
            patient = {
                "given_name": f"Sub{n}",
                "family_name": "Scriber",
                "birth_date": "1975-05-05",
                "sex": "female",
                "mrn": f"SUB-{uuid.uuid4().hex[:8]}",
            }
            reply = local_http.post(f"{intake.url}/patients", json=patient, headers=desk, timeout=10)
            assert reply.status_code == 201, reply.text
            ids.append(reply.json()["id"])
        asyncio.run(read_topic(kafka, topic, 2))
        asyncio.run(put_garbage(kafka, topic))
        example = the_example()
        exit_code = example.main(
            [
                "--bootstrap", kafka,
                "--site", site,
                "--service", "intake",
                "--schemas", f"{intake.url}/events/schemas",
                "--group", f"example@{site}",
                "--max", "2",
            ]
        )  # fmt: skip
        assert exit_code == 0
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert sorted(e["key"] for e in events) == sorted(ids)
    assert {e["type"] for e in events} == {"org.kapnet.intake.patient.registered.v1"}
    assert all(e["data"]["patient_id"] == e["key"] for e in events)
    assert "refused" in err and "no published schema" in err
