"""Sending: the queue's due deliveries go out, signed, a bounded number at a time, and each attempt's result is
saved with the delivery's next step (delivered, retried later, or failed) in one transaction.

A slow receiver holds at most ``per_endpoint`` of the slots; other endpoints go on. A crash between a receiver's
2xx and the save sends that delivery again with the same ``webhook-id``, which the receiver drops (at least once
on the wire, once by ``webhook-id``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from services.webhooks.domain.deliveries import AttemptResult, Delivery, DeliveryStatus, RetrySchedule
from services.webhooks.service import store
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.webhooks.signing import WebhookSecret, signed_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchSettings:
    schedule: RetrySchedule
    disable_after_failures: int
    timeout_seconds: float
    concurrency: int
    per_endpoint: int
    poll_interval_seconds: float


class Dispatcher:
    def __init__(self, unit_of_work: Callable[[], UnitOfWork], settings: DispatchSettings) -> None:
        self.unit_of_work = unit_of_work
        self.settings = settings
        self.in_flight: dict[int, tuple[uuid.UUID, asyncio.Task[None]]] = {}

    async def run(self) -> None:
        # No redirects: an endpoint is the URL its admin registered, and a 3xx is an answer that did not take it.
        async with httpx.AsyncClient(timeout=self.settings.timeout_seconds, follow_redirects=False) as client:
            try:
                while True:
                    await self._start_due(client)
                    tasks = [task for _, task in self.in_flight.values()]
                    if tasks:
                        await asyncio.wait(
                            tasks, timeout=self.settings.poll_interval_seconds, return_when=asyncio.FIRST_COMPLETED
                        )
                    else:
                        await asyncio.sleep(self.settings.poll_interval_seconds)
                    for sequence in [s for s, (_, task) in self.in_flight.items() if task.done()]:
                        _, task = self.in_flight.pop(sequence)
                        if not task.cancelled() and task.exception() is not None:
                            log.warning("webhook attempt not saved: %s", type(task.exception()).__name__)
            finally:
                for _, task in self.in_flight.values():
                    task.cancel()
                await asyncio.gather(*(task for _, task in self.in_flight.values()), return_exceptions=True)
                self.in_flight.clear()

    async def _start_due(self, client: httpx.AsyncClient) -> None:
        free = self.settings.concurrency - len(self.in_flight)
        if free <= 0:
            return
        async with self.unit_of_work() as uow:
            due = await store.due_deliveries(
                uow,
                utcnow(),
                limit=free,
                per_endpoint=self.settings.per_endpoint,
                in_flight={sequence: endpoint_id for sequence, (endpoint_id, _) in self.in_flight.items()},
            )
        for delivery in due:
            if delivery.sequence is None:
                continue
            task = asyncio.create_task(self.attempt(client, delivery.sequence))
            self.in_flight[delivery.sequence] = (delivery.endpoint_id, task)

    async def attempt(self, client: httpx.AsyncClient, sequence: int) -> None:
        async with self.unit_of_work() as uow:
            found = await store.delivery_with_body(uow, sequence)
            if found is None:
                return
            delivery, body = found
            endpoint = await store.endpoint_if_any(uow, delivery.endpoint_id)
            if endpoint is None or not endpoint.sends or delivery.status is not DeliveryStatus.pending:
                return
            secrets = await store.signing_secrets(uow, endpoint.id, utcnow())
        result = await send(client, endpoint.url, delivery, body, secrets)
        await self._save(sequence, result)

    async def _save(self, sequence: int, result: AttemptResult) -> None:
        async with self.unit_of_work() as uow:
            found = await store.delivery_with_body(uow, sequence)
            if found is None or found[0].status is not DeliveryStatus.pending:
                return  # cancelled meanwhile (its endpoint deleted): keep what it was
            delivery = found[0].attempted(result, self.settings.schedule)
            await store.save_delivery(uow, delivery)
            store.add_attempt(uow, sequence, result)
            endpoint = await store.endpoint_if_any(uow, delivery.endpoint_id)
            if endpoint is not None:
                if delivery.status is DeliveryStatus.delivered:
                    changed = endpoint.delivery_arrived()
                elif delivery.status is DeliveryStatus.failed:
                    changed = endpoint.delivery_failed(self.settings.disable_after_failures, result.attempted_at)
                else:
                    changed = endpoint
                if changed != endpoint:
                    await store.save_endpoint(uow, changed)
            await uow.commit()


async def send(
    client: httpx.AsyncClient, url: str, delivery: Delivery, body: bytes, secrets: list[WebhookSecret]
) -> AttemptResult:
    """One signed POST. The result never holds the receiver's body: it may echo patient data back."""
    attempted_at = utcnow()
    started = time.monotonic()
    headers = {
        **signed_headers(secrets, delivery.message_id, attempted_at, body),
        "content-type": "application/json",
        "user-agent": "kapnet-webhooks/1",
    }
    try:
        response = await client.post(url, content=body, headers=headers)
        status, error = response.status_code, None
    except httpx.TimeoutException:
        status, error = None, "the receiver did not answer in time"
    except httpx.HTTPError as exc:
        status, error = None, f"no answer: {type(exc).__name__}"
    return AttemptResult(
        attempted_at=attempted_at,
        response_status=status,
        error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
