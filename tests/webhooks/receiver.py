"""A webhook receiver as another system would write one: a real HTTP server on a port of this machine that checks
each delivery with Standard Webhooks' own library (standardwebhooks), refuses a bad signature with 400, and keeps
what it accepted. It can be down (nothing listening), slow, or holding the wrong secret."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.types import Receive, Scope, Send

from deploy.kafka.launcher import free_port


@dataclass(frozen=True)
class Received:
    webhook_id: str
    type: str
    data: dict[str, Any]


@dataclass
class Receiver:
    secret: str = ""
    port: int = field(default_factory=free_port)
    # Seconds to wait before answering the first request of each webhook-id (a slow receiver).
    first_answer_delay: float = 0.0
    # Seconds to wait before answering any request (a receiver that hangs, longer than the sender waits).
    answer_delay: float = 0.0
    accepted: list[Received] = field(default_factory=list)
    requests: int = 0
    refused: int = 0
    signatures_per_request: list[int] = field(default_factory=list)
    _seen: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def unique(self) -> list[Received]:
        """What it accepted, each webhook-id once (as a receiver de-duplicates), in arrival order."""
        kept: dict[str, Received] = {}
        for item in self.accepted:
            kept.setdefault(item.webhook_id, item)
        return list(kept.values())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests += 1
        self.signatures_per_request.append(len(headers.get("webhook-signature", "").split()))
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            self.refused += 1
            await _answer(send, 400)
            return
        webhook_id = headers["webhook-id"]
        self._seen[webhook_id] += 1
        if self.first_answer_delay and self._seen[webhook_id] == 1:
            await asyncio.sleep(self.first_answer_delay)
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        self.accepted.append(Received(webhook_id, payload["type"], payload["data"]))
        await _answer(send, 200)

    async def start(self) -> None:
        config = uvicorn.Config(self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None


async def _answer(send: Send, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": json.dumps({"status": status}).encode()})
