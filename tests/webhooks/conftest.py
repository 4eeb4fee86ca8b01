"""A site with real intake and webhooks services (in this process, on the suite's broker) and receivers on real
ports: what the delivery tests drive."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.intake.app import create_app as create_intake
from services.webhooks.app import create_app as create_webhooks
from shared.settings import ServiceSettings
from tests.harness import app_in_process, auth_headers, eventually
from tests.webhooks.receiver import Receiver

REGISTERED = "org.kapnet.intake.patient.registered.v1"
UPDATED = "org.kapnet.intake.patient.updated.v1"


@dataclass
class WebhookSite:
    site: str
    intake: httpx.AsyncClient
    webhooks: httpx.AsyncClient
    key_dir: Path

    def as_(self, *roles: str) -> dict[str, str]:
        return auth_headers(self.key_dir, self.site, *roles)

    async def subscribe(
        self, receiver: Receiver, event_types: list[str], role: str = "front_desk", **extra: Any
    ) -> dict[str, Any]:
        """Registered by a site admin who is also at the desk; the receiver learns the secret from the reply."""
        reply = await self.webhooks.post(
            "/webhooks/endpoints",
            json={"url": receiver.url, "role": role, "event_types": event_types, **extra},
            headers=self.as_("site_admin", role),
        )
        assert reply.status_code == 201, reply.text
        registered: dict[str, Any] = reply.json()
        receiver.secret = registered["secret"]
        return registered["endpoint"]

    async def register_patient(self, n: int) -> tuple[str, str]:
        """A new patient, and the ETag of the record for an update."""
        reply = await self.intake.post(
            "/patients",
            json={
                "given_name": f"Hook{n}",
                "family_name": "Receiver",
                "birth_date": "1980-02-0" + str(1 + n % 9),
                "sex": "female" if n % 2 else "male",
                "mrn": f"WH-{uuid.uuid4().hex[:8]}",
            },
            headers=self.as_("front_desk"),
        )
        assert reply.status_code == 201, reply.text
        return reply.json()["id"], reply.headers["ETag"]

    async def rename(self, patient_id: str, etag: str, given_name: str) -> str:
        reply = await self.intake.patch(
            f"/patients/{patient_id}",
            json={"given_name": given_name},
            headers={**self.as_("front_desk"), "If-Match": etag},
        )
        assert reply.status_code == 200, reply.text
        return str(reply.headers["ETag"])

    async def deliveries(self, endpoint_id: str, **query: str) -> list[dict[str, Any]]:
        reply = await self.webhooks.get(
            f"/webhooks/endpoints/{endpoint_id}/deliveries",
            params={"limit": "500", **query},
            headers=self.as_("site_admin"),
        )
        assert reply.status_code == 200, reply.text
        found: list[dict[str, Any]] = reply.json()
        return found

    async def endpoint(self, endpoint_id: str) -> dict[str, Any]:
        reply = await self.webhooks.get(f"/webhooks/endpoints/{endpoint_id}", headers=self.as_("site_admin"))
        assert reply.status_code == 200, reply.text
        found: dict[str, Any] = reply.json()
        return found

    async def wait_for(self, receiver: Receiver, count: int, within: float = 60.0) -> None:
        await eventually(lambda: len(receiver.unique()) >= count, within=within, what=f"{count} deliveries")


# Retries every 50 ms to 400 ms, so an outage of seconds is many attempts; the window is the test's to choose.
FAST_RETRIES: dict[str, Any] = {
    "webhook_retry_base_seconds": 0.05,
    "webhook_retry_cap_seconds": 0.4,
    "webhook_retry_window_seconds": 120.0,
    "webhook_poll_interval_seconds": 0.05,
    "webhook_timeout_seconds": 2.0,
}

SiteFactory = Callable[..., AbstractAsyncContextManager[WebhookSite]]


@pytest.fixture
def webhook_site(kafka: str, tmp_path: Path) -> SiteFactory:
    @asynccontextmanager
    async def start(**webhook_settings: Any) -> AsyncIterator[WebhookSite]:
        site = f"wh{uuid.uuid4().hex[:6]}"
        common: dict[str, Any] = {
            "site": site,
            "var_dir": tmp_path / "var",
            "kafka_bootstrap_servers": kafka,
            "outbox_poll_interval_seconds": 0.05,
        }
        intake = create_intake(ServiceSettings(service="intake", **common))
        webhooks = create_webhooks(
            ServiceSettings(service="webhooks", **common, **{**FAST_RETRIES, **webhook_settings})
        )
        async with app_in_process(intake) as intake_client, app_in_process(webhooks) as webhooks_client:
            yield WebhookSite(site, intake_client, webhooks_client, tmp_path / "var" / "auth")

    return start
