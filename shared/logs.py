"""Logging for a running service: one line per message kind and interval from chatty libraries.

During a broker outage aiokafka logs every reconnection attempt: 3,000 to 8,000 lines a minute per service, which
bury everything else. `OncePerInterval` lets the first of each kind through, holds back the rest for the interval,
then says how many it held back.
"""

from __future__ import annotations

import logging
import time

# Loggers whose repeats are held back; kapnet's own loops already log once per backoff step.
CHATTY_LOGGERS = ("aiokafka",)
REPEAT_INTERVAL_SECONDS = 30.0


class OncePerInterval(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...] = CHATTY_LOGGERS, interval: float = REPEAT_INTERVAL_SECONDS) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.interval = interval
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        # The message's template, not its text: "Unable connect to %s" is one kind whatever the address.
        kind = (record.name, str(record.msg))
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return False
        self._last[kind] = now
        held = self._held.pop(kind, 0)
        if held:
            record.msg = f"{record.msg} [{held} more like this in the last {self.interval:.0f} s]"
        return True


def configure_logging(level: str, instance: str) -> None:
    logging.basicConfig(level=level.upper(), format=f"%(asctime)s %(levelname)s {instance} %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(OncePerInterval())
