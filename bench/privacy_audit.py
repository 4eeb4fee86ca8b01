"""The privacy auditor on a synthetic load: every version a network reader would have kept, audited.

For each site, the synthetic cohort's events (deploy/synthetic.py) are taken in by the outcomes service's own
handlers, in the order they happened, in batches of one transaction each (no broker: this measures the release
rules, not the pipeline); at each release period's boundary the site's own beat runs (``review_site``) and
releases what the release rules allow into its outbox. At the end, every network message of every site's
outbox (every version released, exactly what the relay would put on the network topics, with its CloudEvent
time as the Kafka timestamp) goes through the auditor (shared/privacy/audit.py ``audit_records``), and the
differential-privacy mode's noise is measured on the final cohorts.

    .venv/bin/python -m bench.privacy_audit --patients 100000 --sites 5 --every 6 --jobs 2   # about 40 min
    .venv/bin/python -m bench.privacy_audit --quick                         # 2,000 patients, 2 sites

Prints the figures; writes them as JSON with --json PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import httpx
from sqlmodel import col, select

from deploy.synthetic import SyntheticEvent, cohort, site_names
from services.outcomes.app import create_app
from services.outcomes.domain.cohorts import COUNTS_PER_COHORT, CourseOutcome, cohorts_of, course_counts
from services.outcomes.domain.definitions import site_definition
from services.outcomes.handlers import SITE_HANDLERS
from services.outcomes.service import trajectories
from services.outcomes.service.beat import review_site
from services.outcomes.service.publication import LastRelease, safe_release
from shared.app import ServiceRuntime
from shared.bus.consumer import handle_one
from shared.bus.tables import OutboxMessage
from shared.events.envelope import kafka_timestamp_ms
from shared.privacy.audit import AuditReport, NetworkRecord, audit_records
from shared.privacy.noise import noise_error, release_with_noise
from shared.privacy.release import ReleasePeriod, release_boundary
from shared.settings import ServiceSettings

HANDLERS = {event: handle for by_type in SITE_HANDLERS.values() for event, handle in by_type.items()}
BATCH = 500
ZONE = "America/New_York"


@dataclass(frozen=True)
class SiteFigures:
    site: str
    events: int
    releases: int
    messages: int
    seconds: float


@dataclass(frozen=True)
class NoiseFigures:
    epsilon: str
    sensitivity: int
    cells: int
    mean_absolute_error: float | None
    p95_absolute_error: int | None
    mean_relative_error: float | None
    hidden_by_noise: int
    shown_by_noise: int


def _settings(site: str, database_url: str, var_dir: Path) -> ServiceSettings:
    return ServiceSettings(
        service="outcomes",
        site=site,
        database_url=database_url,
        var_dir=var_dir,
        kafka_bootstrap_servers="127.0.0.1:1",  # no broker: the outbox keeps what would be sent
        kafka_timeout_seconds=1,
        time_zone=ZONE,
        aggregate_publish_interval_seconds=3600 * 24,  # the bench runs the beat itself
    )


@contextlib.asynccontextmanager
async def _site_service(settings: ServiceSettings) -> AsyncIterator[ServiceRuntime]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://site"):
        runtime: ServiceRuntime = app.state.runtime
        yield runtime


async def _take_in(runtime: ServiceRuntime, batch: Sequence[SyntheticEvent]) -> None:
    async with runtime.unit_of_work() as uow:
        for item in batch:
            await handle_one(HANDLERS[type(item.event)], uow, item.event, item.envelope)
        await uow.commit()


async def run_site(
    site: str, events: Sequence[SyntheticEvent], period: ReleasePeriod, workdir: Path, every: int = 1
) -> tuple[SiteFigures, list[NetworkRecord], NoiseFigures]:
    started = time.perf_counter()
    settings = _settings(site, f"sqlite:///{workdir / site}.db", workdir / site)
    definition = site_definition(settings.pcl5_cutoff)
    mine = [e for e in events if type(e.event) in HANDLERS and e.topic.startswith(f"kapnet.{site}.")]
    releases = turns = 0
    async with _site_service(settings) as runtime:
        batch: list[SyntheticEvent] = []
        boundary: datetime | None = None
        for item in mine:
            at = item.envelope.time or datetime.now(UTC)
            period_from = release_boundary(at, period)
            if boundary is not None and period_from > boundary:
                turns += 1
            if boundary is not None and period_from > boundary and turns % every == 0:
                # The period turned: what happened before it is in; the site's beat releases at the boundary.
                await _take_in(runtime, batch)
                batch = []
                await review_site(runtime.unit_of_work, site, settings.zone, definition, period, now=period_from)
                releases += 1
            boundary = period_from
            batch.append(item)
            if len(batch) >= BATCH:
                await _take_in(runtime, batch)
                batch = []
        await _take_in(runtime, batch)
        if boundary is not None:
            await review_site(runtime.unit_of_work, site, settings.zone, definition, period, now=boundary)
            releases += 1
        async with runtime.unit_of_work() as uow:
            messages = (
                await uow.session.exec(
                    select(OutboxMessage)
                    .where(col(OutboxMessage.topic).startswith("kapnet.network."))
                    .order_by(col(OutboxMessage.id))
                )
            ).all()
            facts = await trajectories.load_site_facts(uow)
        judged = await trajectories.judge_site(facts, definition, settings.zone, (boundary or datetime.now(UTC)).date())
    records = [
        NetworkRecord(
            topic=m.topic,
            partition=0,
            offset=n,
            timestamp_ms=kafka_timestamp_ms([(name, value) for name, value in m.headers]),
            key=m.partition_key.encode(),
            value=m.payload,
            headers=tuple((name, value.encode()) for name, value in m.headers),
        )
        for n, m in enumerate(messages)
    ]
    noise = _noise_error([t.cohort_member() for t in judged], settings)
    figures = SiteFigures(site, len(mine), releases, len(records), round(time.perf_counter() - started, 1))
    return figures, records, noise


def _noise_error(courses: Sequence[CourseOutcome], settings: ServiceSettings) -> NoiseFigures:
    """The differential-privacy mode's noise on the site's whole cohorts at the end, against their raw counts."""
    epsilon = Fraction(str(settings.privacy_epsilon_per_release))
    raw = {
        (key, measure): n
        for key, of in cohorts_of(courses, settings.zone).items()
        if key.cut == "all"
        for measure, n in course_counts(of).items()
    }
    noisy = release_with_noise(raw, epsilon, COUNTS_PER_COHORT)
    report = noise_error(raw, noisy.cells)
    # The release path itself, once, so the mode's figures are the ones a site would send.
    safe_release(
        settings.where,
        courses,
        "bench",
        settings.zone,
        LastRelease(released_for=None, cohorts={}, registrations=None, published_before=frozenset()),
        datetime(2026, 1, 1, tzinfo=UTC),
        epsilon,
    )
    return NoiseFigures(
        epsilon=str(epsilon),
        sensitivity=COUNTS_PER_COHORT,
        cells=report.cells,
        mean_absolute_error=report.mean_absolute_error,
        p95_absolute_error=report.p95_absolute_error,
        mean_relative_error=report.mean_relative_error,
        hidden_by_noise=report.hidden_by_noise,
        shown_by_noise=report.shown_by_noise,
    )


def _site_in_process(
    site: str, patients: int, seed: int, period: ReleasePeriod, workdir: str, every: int
) -> tuple[SiteFigures, list[NetworkRecord], NoiseFigures]:
    """One site, with its own share of the patients from its own seed (each site's patients are independent, as
    they would be across a network; and one process never holds the whole network's events)."""
    started = time.perf_counter()
    events = cohort(patients, [site], seed)
    print(f"  {site}: generated {len(events):,} events in {time.perf_counter() - started:.1f} s", flush=True)
    return asyncio.run(run_site(site, events, period, Path(workdir), every))


async def main_async(
    patients: int, sites: int, seed: int, period: ReleasePeriod, workers: int, every: int = 1, jobs: int = 1
) -> dict[str, object]:
    names = site_names(sites)
    shares = [patients // sites + (1 if n < patients % sites else 0) for n in range(sites)]
    seeds = [seed + n for n in range(sites)]
    all_records: list[NetworkRecord] = []
    site_figures, noise_figures = [], []
    with tempfile.TemporaryDirectory(prefix="kapnet-privacy-") as tmp:
        arguments = [(site, share, s, period, tmp, every) for site, share, s in zip(names, shares, seeds, strict=True)]
        if jobs > 1:
            with ProcessPoolExecutor(jobs) as pool:
                done = list(pool.map(_site_in_process, *zip(*arguments, strict=True)))
        else:
            done = []
            for site, share, s, *_ in arguments:
                done.append(await run_site(site, cohort(share, [site], s), period, Path(tmp), every))
        for site, (figures, records, noise) in zip(names, done, strict=True):
            print(
                f"  {site}: {figures.events:,} events, {figures.releases} releases, {figures.messages:,} "
                f"network messages, {figures.seconds} s",
                flush=True,
            )
            site_figures.append(figures)
            noise_figures.append(noise)
            all_records.extend(records)
    report: AuditReport = audit_records(all_records, workers=workers)
    print(report.render(limit=40))
    print("differential-privacy mode, whole cohorts at the end (ε per release, sensitivity = counts per cohort):")
    for site, noise in zip(names, noise_figures, strict=True):
        print(f"  {site}: {json.dumps(asdict(noise))}")
    return {
        "patients": patients,
        "sites": [asdict(f) for f in site_figures],
        "audit": {
            "records": report.records,
            "versions": report.versions,
            "cells": report.cells,
            "suppressed": report.suppressed,
            "components": report.components,
            "lp_solves": report.lp_solves,
            "seconds": round(report.seconds, 1),
            "findings": [str(f) for f in report.findings],
        },
        "noise": [asdict(n) for n in noise_figures],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--period",
        choices=[p.value for p in ReleasePeriod if p is not ReleasePeriod.beat],
        default="month",
        help="the release period (default month: the history's releases)",
    )
    parser.add_argument("--workers", type=int, default=2, help="processes for the auditor's linear programs")
    parser.add_argument("--every", type=int, default=1, help="release at every Nth period boundary (default 1)")
    parser.add_argument("--jobs", type=int, default=1, help="sites run side by side in this many processes")
    parser.add_argument("--quick", action="store_true", help="2,000 patients at 2 sites")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    patients, sites = (2_000, 2) if args.quick else (args.patients, args.sites)
    result = asyncio.run(
        main_async(patients, sites, args.seed, ReleasePeriod(args.period), args.workers, args.every, args.jobs)
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    findings = result["audit"]
    assert isinstance(findings, dict)
    return 0 if not findings["findings"] else 1


if __name__ == "__main__":
    sys.exit(main())
