"""The privacy auditor's command line.

    python -m shared.privacy audit --bootstrap-servers HOST:PORT --sites north,south
                                   [--network-url http://HOST:PORT --token TOKEN] [--workers 2] [--timeout 60]
    python -m shared.privacy bench [--groups 1500] [--versions 1] [--workers 2] [--seed 1]

``audit`` reads every version on the sites' network topics (and the network API's replies, given a URL and a
token) and exits 1 on any finding, 0 when clean, 2 when it could not read. ``bench`` times the inference on
synthetic cohorts shaped like the published ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import get_args

import numpy as np

from shared.events.billing import AccessBarrierReason
from shared.privacy.audit import TopicMissing, audit_records, fetch_api_replies, read_network_records
from shared.privacy.cells import CellId
from shared.privacy.identifiers import DEFAULT_ALLOWED_URLS
from shared.privacy.inference import SMALLEST_SHOWN, Shown, infer_shown
from shared.treatment import AdverseEventType, Indication, Route

INSTRUMENTS = ("phq9", "gad7", "pcl5")
BARRIERS: tuple[str, ...] = get_args(AccessBarrierReason)
MEASURES: tuple[str, ...] = (
    "courses",
    "started",
    "completed",
    "dropped_out",
    *(f"{i}.{m}" for i in INSTRUMENTS for m in ("with_result", "responded", "remitted")),
    *(f"adverse.{t.value}.{m}" for t in AdverseEventType for m in ("courses", "serious")),
    *(f"barrier.{r}.courses" for r in BARRIERS),
)


def _shown(count: int) -> Shown:
    return None if 0 < count < SMALLEST_SHOWN else count


def synthetic_versions(
    groups: int, versions: int = 1, seed: int = 1, courses: tuple[int, int] = (400, 1600)
) -> list[dict[CellId, Shown]]:
    """Cohorts as a site publishes them (every cut of site x indication x route x month; counts 1-10 suppressed on
    their own raw value, nothing more), released ``versions`` times as courses are added and progress. Each group
    has between ``courses`` courses: the default gives about 800 cells a group, 27% of them suppressed."""
    # The bands a cohort is cut by, as the outcomes service names them (only this benchmark needs the service).
    from services.outcomes.domain.course_summary import AgeBand, DoseBand, Frequency, PayerGroup, PriorTrials

    dose_bands: dict[Route, tuple[DoseBand, ...]] = {
        Route.intranasal_esketamine: (DoseBand.esketamine_28_mg, DoseBand.esketamine_56_mg, DoseBand.esketamine_84_mg),
        Route.sublingual_oral: (DoseBand.below_200_mg, DoseBand.from_200_mg),
    }
    weight_bands = (DoseBand.below_0_5_mg_per_kg, DoseBand.from_0_5_mg_per_kg, DoseBand.from_0_75_mg_per_kg)
    rng = np.random.default_rng(seed)
    indications = list(Indication)[:5]
    routes = [Route.iv_infusion, Route.intranasal_esketamine, Route.sublingual_oral]
    out: list[dict[CellId, Shown]] = [{} for _ in range(versions)]
    for g in range(groups):
        site = f"site{g % 5}"
        indication = indications[(g // 5) % len(indications)]
        route = routes[(g // 25) % len(routes)]
        period = f"{2020 + (g // 75) // 12:04d}-{(g // 75) % 12 + 1:02d}"
        bands = dose_bands.get(route, weight_bands)
        total = int(rng.integers(*courses))
        # Attributes fixed per course; outcomes only switch on over the versions, as cells.is_monotone expects.
        age = rng.integers(0, len(AgeBand) + 1, total)  # the last: no birth date
        dose = rng.integers(0, len(bands), total)
        frequency = rng.integers(0, len(Frequency), total)
        payer = rng.integers(0, len(PayerGroup), total)
        prior = rng.integers(0, len(PriorTrials), total)
        arrive = rng.integers(0, versions, total)
        dosed_from = arrive + rng.integers(0, 2, total)
        outcome = rng.random((total, len(MEASURES) - 2))
        thresholds = np.array(
            [0.45, 0.15, *([0.85, 0.5, 0.3] * 3), *([0.25, 0.3] * len(AdverseEventType)), *([0.1] * len(BARRIERS))]
        )
        cuts: list[tuple[str, str, np.ndarray]] = [("all", "all", np.ones(total, dtype=bool))]
        cuts += [("age_band", b.value, age == i) for i, b in enumerate(AgeBand)]
        cuts += [("dose_band", b.value, dose == i) for i, b in enumerate(bands)]
        cuts += [("frequency", f.value, frequency == i) for i, f in enumerate(Frequency)]
        cuts += [("payer", p.value, payer == i) for i, p in enumerate(PayerGroup)]
        cuts += [("prior_trials", p.value, prior == i) for i, p in enumerate(PriorTrials)]
        for t in range(versions):
            present = arrive <= t
            dosed = present & (dosed_from <= t)
            progress = (t + 1) / versions
            hit = outcome < thresholds * progress
            values = np.zeros((total, len(MEASURES)), dtype=np.int64)
            values[:, 0] = present
            values[:, 1] = dosed
            # Completed and dropped out are exclusive and, once so, stay so.
            values[:, 2] = dosed & (outcome[:, 0] < thresholds[0] * progress)
            ends = outcome[:, 0] - thresholds[0]
            values[:, 3] = dosed & (ends >= 0) & (ends < thresholds[1] * progress)
            column = 4
            for _ in INSTRUMENTS:
                result = dosed & hit[:, column - 2]
                values[:, column] = result
                values[:, column + 1] = result & hit[:, column - 1]
                values[:, column + 2] = result & hit[:, column]
                column += 3
            for _ in AdverseEventType:
                had = dosed & hit[:, column - 2]
                values[:, column] = had
                values[:, column + 1] = had & hit[:, column - 1]
                column += 2
            for _ in BARRIERS:
                values[:, column] = present & hit[:, column - 2]
                column += 1
            for cut, value, member in cuts:
                # Cuts a course has no value of until its first dose (cells.CUT_SUMS).
                inside = member & present
                if cut in ("dose_band", "frequency"):
                    inside = inside & dosed
                if not inside.any():
                    continue
                counts = values[inside].sum(axis=0)
                for measure, count in zip(MEASURES, counts, strict=True):
                    cell = CellId(site, indication.value, route.value, period, cut, value, measure)
                    out[t][cell] = _shown(int(count))
    return out


def _bench(args: argparse.Namespace) -> int:
    versions = synthetic_versions(args.groups, args.versions, args.seed)
    shown = sum(len(v) for v in versions)
    hidden = sum(1 for v in versions for s in v.values() if s is None)
    print(
        f"synthetic: {args.groups} groups, {args.versions} version(s), {shown} cells, {hidden / shown:.0%} suppressed"
    )
    result = infer_shown(versions, workers=args.workers)
    stats = result.stats
    print(
        f"inference: {stats.cells} cell-versions, {stats.suppressed} suppressed, {stats.components} components "
        f"({stats.lp_components} solved by LP), {stats.lp_solves} LP solves, {len(result.leaks)} leaks, "
        f"{len(result.contradictions)} contradictions, {stats.seconds:.2f} s on {args.workers} worker(s)"
    )
    return 0


def _sites(text: str | None) -> list[str]:
    if text:
        return [s.strip() for s in text.split(",") if s.strip()]
    configured = os.environ.get("KAPNET_NETWORK_SITES")
    return [str(s) for s in json.loads(configured)] if configured else []


async def _audit(args: argparse.Namespace) -> int:
    sites = _sites(args.sites)
    if not sites:
        print("no sites: give --sites north,south (or KAPNET_NETWORK_SITES)", file=sys.stderr)
        return 2
    try:
        records = await read_network_records(args.bootstrap_servers, sites, timeout_seconds=args.timeout)
    except (TopicMissing, TimeoutError, OSError) as exc:
        print(f"could not read the network topics: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # aiokafka's connection errors
        print(f"could not read the network topics: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    replies = []
    allowed = list(DEFAULT_ALLOWED_URLS)
    if args.network_url:
        token = args.token or os.environ.get("KAPNET_NETWORK_TOKEN", "")
        fetched = await fetch_api_replies(args.network_url, token, timeout_seconds=args.timeout)
        replies = fetched.replies
        # The API's own links (a FHIR Bundle's fullUrl and self link) name the API, not a person.
        allowed.append(args.network_url.rstrip("/") + "/")
        for failure in fetched.failures:
            print(f"note: {failure}", file=sys.stderr)
    report = await asyncio.to_thread(audit_records, records, replies, allowed_urls=allowed, workers=args.workers)
    print(report.render())
    return 0 if report.clean else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.privacy", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    audit = commands.add_parser("audit", help="audit everything on the network topics (and the network API)")
    audit.add_argument(
        "--bootstrap-servers", default=os.environ.get("KAPNET_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    audit.add_argument("--sites", help="comma-separated site names (default: KAPNET_NETWORK_SITES)")
    audit.add_argument("--network-url", help="the network API's base URL, e.g. http://127.0.0.1:8080")
    audit.add_argument("--token", help="a bearer token for the network API (default: KAPNET_NETWORK_TOKEN)")
    audit.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    audit.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the broker and the API")
    bench = commands.add_parser("bench", help="time the inference on synthetic cohorts")
    bench.add_argument("--groups", type=int, default=1500, help="site x indication x route x month groups")
    bench.add_argument("--versions", type=int, default=1)
    bench.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    bench.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "bench":
        return _bench(args)
    return asyncio.run(_audit(args))


if __name__ == "__main__":
    sys.exit(main())
