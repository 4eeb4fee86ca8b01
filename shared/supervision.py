"""Background tasks that must not end quietly: the relay, every consumer, a service's own jobs.

Each runs under `Supervisor.keep_running`: an end nobody asked for (an error, a return, a stray cancellation
from inside a library) is logged and the job is started again after a backoff. Only a cancellation of the
supervising task itself (the service stopping) ends it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from shared.bus.kafka import raise_if_cancelling, reraise_unless_recoverable

log = logging.getLogger(__name__)

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# A job that ran this long before it ended starts again with the first backoff.
HEALTHY_RUN_SECONDS = 60.0

Job = Callable[[], Awaitable[None]]


class Supervisor:
    def __init__(self) -> None:
        self.restarts: Counter[str] = Counter()
        self.ended: dict[str, str] = {}

    async def keep_running(self, name: str, job: Job, *, restart_when_done: bool = True) -> None:
        """Run ``job`` until the service stops. ``restart_when_done=False`` is for a job that finishes by design
        (creating the topics): it is restarted only when it fails."""
        loop = asyncio.get_running_loop()
        backoff = FIRST_BACKOFF_SECONDS
        while True:
            raise_if_cancelling()  # a cancellation lost by 3.11's wait_for is still counted (EventConsumer)
            began = loop.time()
            try:
                await job()
                if not restart_when_done:
                    return
                why = "returned"
            except BaseException as exc:
                reraise_unless_recoverable(exc)
                why = f"{type(exc).__name__}: {exc}"[:300]
            if loop.time() - began > HEALTHY_RUN_SECONDS:
                backoff = FIRST_BACKOFF_SECONDS
            self.restarts[name] += 1
            self.ended[name] = why
            log.error("%s ended unexpectedly (%s); restarting it in %.0f s", name, why, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
