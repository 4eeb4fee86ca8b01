"""Concurrent writers on SQLite never fail: the load of bench/sqlite_writers.py, smaller, as a check that every
write succeeds and every event arrives downstream exactly once. Its timings are the benchmark's business."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.sqlite_writers import network, register_all, rows_in
from tests.harness import wait_until

pytestmark = pytest.mark.broker


def test_eight_concurrent_writers_on_sqlite_lose_no_write(tmp_path: Path) -> None:
    writers, each = 8, 25
    with network(tmp_path) as net:
        load = register_all(str(net["url"]), str(net["token"]), writers, each, "t")
        assert (load.failures, len(load.latencies)) == (0, writers * each)
        for name, table in (("intake", "patient"), ("sessions", "patient_status"), ("outcomes", "registration")):
            path = net[name]
            assert isinstance(path, Path)
            wait_until(lambda p=path, t=table: rows_in(p, t) == writers * each, timeout=120, what=name)  # type: ignore[misc]
