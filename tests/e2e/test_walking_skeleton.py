"""The walking skeleton with real service processes and the real broker:
intake@site -> site topic -> outcomes@site -> network topic -> outcomes@network -> GET."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from deploy import local_http
from shared.events import network_topic
from tests.harness import auth_headers, read_topic, running, service_process, wait_until

pytestmark = pytest.mark.broker


def patient(n: int) -> dict[str, Any]:
    return {
        "given_name": f"Skeleton{n}",
        "family_name": "Walker",
        "birth_date": "1979-04-0" + str(1 + n % 9),
        "sex": "female" if n % 2 else "male",
        "mrn": f"SK-{uuid.uuid4().hex[:8]}",
    }


def network_aggregate(network_url: str, site: str, headers: dict[str, str]) -> dict[str, Any] | None:
    reply = local_http.get(f"{network_url}/aggregates/{site}/registrations", headers=headers, timeout=5)
    return reply.json() if reply.status_code == 200 else None


def test_a_registration_reaches_the_network_as_a_suppressed_aggregate(kafka: str, tmp_path: Path) -> None:
    site = f"sk{uuid.uuid4().hex[:6]}"
    common = {
        "KAPNET_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "KAPNET_AGGREGATE_PUBLISH_INTERVAL_SECONDS": "0.5",
        "KAPNET_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        "KAPNET_RELEASE_PERIOD": "beat",  # every beat may release (development): the test cannot wait a day
    }
    intake = service_process("intake", tmp_path, KAPNET_SITE=site, **common)
    outcomes = service_process("outcomes", tmp_path, KAPNET_SITE=site, **common)
    network = service_process("outcomes", tmp_path, KAPNET_ROLE="network", KAPNET_NETWORK_SITES=f'["{site}"]', **common)
    front_desk = auth_headers(tmp_path / "var" / "auth", site, "front_desk")
    admin = auth_headers(tmp_path / "var" / "auth", "network", "network_admin")
    with running(intake, outcomes, network):
        # 1. POST a patient to intake.
        first = patient(0)
        reply = local_http.post(f"{intake.url}/patients", json=first, headers=front_desk, timeout=10)
        assert reply.status_code == 201, reply.text
        patient_id = reply.json()["id"]

        # 2. patient.registered appears on the site's topic, keyed by patient id, as a binary-mode CloudEvent.
        records = asyncio.run(read_topic(kafka, f"kapnet.{site}.intake.v1", 1))
        assert [r.key for r in records] == [patient_id.encode()]
        headers = dict(records[0].headers)
        assert headers["ce_type"] == b"org.kapnet.intake.patient.registered.v1"
        assert headers["ce_source"] == f"/kapnet/{site}/intake".encode()
        assert json.loads(records[0].value)["patient_id"] == patient_id

        # 3-4. Outcomes publishes the site's aggregate; the network serves it. One patient: suppressed.
        # (A release from before the registration, with no month yet, may come first.)
        wait_until(
            lambda: bool((network_aggregate(network.url, site, admin) or {}).get("cells")), what="the first aggregate"
        )
        aggregate = network_aggregate(network.url, site, admin)
        assert aggregate is not None
        assert aggregate["total"] == {"period": "all", "count": None, "suppressed": True}
        assert all(cell["suppressed"] and cell["count"] is None for cell in aggregate["cells"])

        # Past ten registrations the month's count is shown.
        for n in range(1, 12):
            assert (
                local_http.post(f"{intake.url}/patients", json=patient(n), headers=front_desk, timeout=10).status_code
                == 201
            )
        # A beat may release 11 while the twelfth is posted; the step rule then holds 11 (a change of 1 waits).
        wait_until(
            lambda: ((network_aggregate(network.url, site, admin) or {}).get("total", {}).get("count") or 0) >= 11,
            what="the aggregate of 11 or 12 registrations",
        )
        aggregate = network_aggregate(network.url, site, admin)
        assert aggregate is not None and [c["count"] for c in aggregate["cells"]] == [aggregate["total"]["count"]]
        listed = local_http.get(f"{network.url}/aggregates", params={"site": site}, headers=admin, timeout=5).json()
        assert listed == [aggregate]

    # Nothing patient-level crossed: read the whole network topic.
    # The topic is the whole network's: other tests' sites publish there too, so read this site's records.
    crossed = [
        r for r in asyncio.run(read_topic(kafka, network_topic(site), 2)) if r.key.decode().startswith(f"{site}|")
    ]
    assert crossed, "the site's aggregates are on the network topic"
    assert_no_patient_data(crossed, forbidden=[patient_id, first["mrn"], first["given_name"], "Walker", "1979-04"])


def assert_no_patient_data(records: list[Any], forbidden: list[str]) -> None:
    for record in records:
        key = record.key.decode()
        assert key.count("|") == 1, f"network key {key!r} is not site|cohort"
        raw = record.value.decode() + "".join(v.decode() for _, v in record.headers)
        for value in forbidden:
            assert value not in raw, f"{value!r} crossed the privacy boundary"
        data = json.loads(record.value)
        assert set(data) == {"site", "cohort", "measure", "cells", "total", "generated_at", "release"}
        for cell in [*data["cells"], data["total"]]:
            assert cell["suppressed"] or cell["count"] == 0 or cell["count"] > 10, f"small count shown: {cell}"
            assert len(cell["period"]) in (3, 7), "no date finer than a month"
        assert data["generated_at"].endswith("T00:00:00Z"), "no time finer than the release period's boundary"
