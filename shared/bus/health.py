"""Whether a consumer is keeping up: running or not, how far behind, and how long since it last made progress.
Read by /readyz and /metrics, so a consumer that stops or stalls is seen rather than silent."""

from __future__ import annotations

import time
from dataclasses import dataclass

# A consumer with records waiting and no progress for this long is falling behind.
STALL_SECONDS = 30.0


@dataclass
class ConsumerHealth:
    name: str
    running: bool = False
    lag: int | None = None
    last_error: str | None = None
    restarts: int = 0
    _last_progress: float = 0.0
    _ever_started: bool = False
    _working_since: float | None = None  # set while records are being handled

    def started(self) -> None:
        if self._ever_started:
            self.restarts += 1
        self._ever_started = True
        self.running, self.last_error = True, None
        self._last_progress = time.monotonic()

    def stopped(self, why: str) -> None:
        self.running, self.last_error, self.lag = False, why, None
        self._working_since = None

    def working(self) -> None:
        """Records taken in hand: a handler that never returns (a lock never granted, a hung connection) is then
        seen as a stall, though the lag last measured may have been 0."""
        self._working_since = time.monotonic()

    def progressed(self) -> None:
        """A batch of records handled and committed."""
        self._last_progress = time.monotonic()
        self._working_since = None

    def polled(self, lag: int | None, *, processed: bool) -> None:
        """After each poll: progress is a record processed, or nothing left to process."""
        self.lag = lag
        self._working_since = None
        if processed or lag == 0:
            self._last_progress = time.monotonic()

    @property
    def seconds_since_progress(self) -> float | None:
        return round(time.monotonic() - self._last_progress, 1) if self._ever_started else None

    def problem(self) -> str | None:
        """Why this consumer is not healthy, or None."""
        if not self.running:
            return f"stopped ({self.last_error or 'not started yet'})"
        if self._working_since is not None:
            busy = time.monotonic() - self._working_since
            if busy > STALL_SECONDS:
                return f"stalled: handling the same records for {busy:.0f} s"
        since = self.seconds_since_progress or 0.0
        if self.lag and since > STALL_SECONDS:
            return f"falling behind: {self.lag} records waiting, no progress for {since:.0f} s"
        return None
