"""Concurrent writers on SQLite: registrations through intake's real API while its relay publishes and the
consumers of sessions and outcomes take the events in, every process on its own SQLite file.

    python -m bench.sqlite_writers [--writers 8] [--each 200] [--rounds 3]

Baseline, measured in the same run: one writer doing the same registrations one after another (the latency of
a write when nothing competes). The load: W writers at once, E registrations each. Printed per round and as
medians: throughput, p50/p99/max latency, failed writes, the ratios load/baseline, and how long the consumers
took to catch up after the last write. Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from deploy import local_http
from deploy.kafka.launcher import KafkaNode, free_port
from shared.auth.tokens import mint_dev_token
from tests.harness import running, service_process, wait_until


def rows_in(database: Path, table: str) -> int:
    if not database.exists():
        return 0
    with sqlite3.connect(database) as connection:
        try:
            return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError:  # not migrated yet
            return 0


@dataclass
class Load:
    seconds: float
    latencies: list[float]
    failures: int

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0


def register_all(url: str, token: str, writers: int, each: int, tag: str) -> Load:
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def writer(w: int) -> None:
        nonlocal failures
        with local_http.client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            for n in range(each):
                body = {"given_name": f"W{w}", "family_name": f"{tag}{n}", "birth_date": "1980-01-01", "sex": "other"}
                began = time.perf_counter()
                try:
                    ok = client.post("/patients", json=body).status_code == 201
                except httpx.HTTPError:
                    ok = False
                spent = time.perf_counter() - began
                with lock:
                    latencies.append(spent)
                    failures += not ok

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Load(time.perf_counter() - began, latencies, failures)


@contextmanager
def network(workdir: Path, release_every: float | None = None) -> Iterator[dict[str, Path | str]]:
    """A site's intake, sessions and outcomes on a broker of their own; with ``release_every`` (seconds), the site's
    outcomes releases its aggregates on that beat and the network's outcomes takes them in."""
    with ExitStack() as stack:
        node = stack.enter_context(KafkaNode(workdir / "kafka", port=free_port()))
        site = f"w{uuid.uuid4().hex[:6]}"
        env = {
            "KAPNET_KAFKA_BOOTSTRAP_SERVERS": node.bootstrap_servers,
            "KAPNET_OUTBOX_POLL_INTERVAL_SECONDS": "0.3",
            "KAPNET_LOG_LEVEL": "warning",
        }
        # A release on every beat that changed a figure (development's period "beat"), not one a day.
        beat = (
            {}
            if release_every is None
            else {"KAPNET_AGGREGATE_PUBLISH_INTERVAL_SECONDS": str(release_every), "KAPNET_RELEASE_PERIOD": "beat"}
        )
        processes = [
            service_process("intake", workdir, KAPNET_SITE=site, **env),
            service_process("sessions", workdir, KAPNET_SITE=site, **env),
            service_process("outcomes", workdir, KAPNET_SITE=site, **env, **beat),
        ]
        if release_every is not None:
            processes.append(
                service_process("outcomes", workdir, KAPNET_ROLE="network", KAPNET_NETWORK_SITES=f'["{site}"]', **env)
            )
        stack.enter_context(running(*processes))
        var = workdir / "var" / site
        token = mint_dev_token(workdir / "var" / "auth", site=site, roles=["front_desk"])
        yield {
            "url": processes[0].url,
            "token": token,
            "intake": var / "intake.db",
            "sessions": var / "sessions.db",
            "outcomes": var / "outcomes.db",
            "network_outcomes": workdir / "var" / "network" / "outcomes.db",
        }


def one_round(writers: int, each: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, network(Path(tmp)) as net:
        url, token = str(net["url"]), str(net["token"])
        baseline = register_all(url, token, 1, each, "base")
        load = register_all(url, token, writers, each, "load")
        last_write = time.perf_counter()
        total = each + writers * each
        for name in ("sessions", "outcomes"):
            table = "patient_status" if name == "sessions" else "registration"
            path = net[name]
            assert isinstance(path, Path)
            wait_until(lambda p=path, t=table: rows_in(p, t) == total, timeout=300, what=f"{name} caught up")  # type: ignore[misc]
        caught_up = time.perf_counter() - last_write
    return {
        "baseline_writes_per_s": round(baseline.throughput, 1),
        "baseline_p50_ms": round(baseline.percentile(0.5) * 1000, 1),
        "baseline_p99_ms": round(baseline.percentile(0.99) * 1000, 1),
        "load_writes_per_s": round(load.throughput, 1),
        "load_p50_ms": round(load.percentile(0.5) * 1000, 1),
        "load_p99_ms": round(load.percentile(0.99) * 1000, 1),
        "load_max_ms": round(max(load.latencies) * 1000, 1),
        "failed_writes": baseline.failures + load.failures,
        "throughput_ratio_load_to_baseline": round(load.throughput / baseline.throughput, 2),
        "p99_ratio_load_to_baseline": round(load.percentile(0.99) / baseline.percentile(0.99), 2),
        "consumers_caught_up_s": round(caught_up, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sqlite_writers", description=__doc__)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--each", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = []
    for number in range(1, args.rounds + 1):
        figures = one_round(args.writers, args.each)
        rounds.append(figures)
        print(json.dumps({"round": number, **figures}), flush=True)
    medians = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    print(json.dumps({"writers": args.writers, "each": args.each, "median": medians}, indent=2))


if __name__ == "__main__":
    main()
