"""Billing's consumer on the synthetic cohort, against raw consumption of the same topics.

    python -m bench.billing_consumer [--patients 1000] [--database sqlite|postgresql] [--json PATH]

Billing was the busiest process of `make run` (45 s of CPU a site over its first four minutes, bench/RESULTS.md,
`make test`'s time): it charges each completed visit and owes estimates from intake's and sessions' events. Here,
with a broker of its own: the synthetic cohort of one site (deploy.synthetic) published to the site's intake and
sessions topics with the producer `kapnet seed` uses, the cohort's plans and the demo's prices saved as `make run`
saves them, then:

- Baseline: a plain AIOKafkaConsumer without a group reads every partition from its start to its end.
- Billing: its real consumer (the handlers the service runs, its inbox, its dead-letter topic) reads the same
  records from their start (EventConsumer.replay) into a fresh database.

Printed: both rates, the ratio, the consumer's CPU a record, the SQL statements it ran a record, and what it made
(charges, estimates owed). Figures only; a run that dead-letters anything fails instead.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import select

from bench.pipeline import Options, infrastructure
from bench.rebuild import read_everything
from bench.report import print_figures
from deploy.demo_data import DEMO_PRICES
from deploy.synthetic import PLANS, cohort, publish
from services.billing.app import definition
from services.billing.domain.money import Money
from services.billing.domain.pricing import BillableService, Price
from services.billing.models import ChargeRow
from services.billing.service import accounts
from shared.app import ServiceRuntime
from shared.auth.guard import Actor
from shared.auth.permissions import Permission, Role
from shared.auth.tokens import Principal
from shared.db.migrate import upgrade_to_head
from shared.settings import ServiceSettings

SITE = "north"
DEFAULT_PATIENTS = 1_000


async def save_plans_and_prices(runtime: ServiceRuntime) -> None:
    """What `make run`'s demo data saves through billing's API before the cohort arrives, by the same use cases."""
    principal = Principal(sub="bench", name="bench", site=SITE, roles=frozenset({Role.site_admin}))
    admin = Actor(principal=principal, role=Role.site_admin, permission=Permission.billing_setup)
    for plan in PLANS:
        async with runtime.unit_of_work() as uow:
            await accounts.save_plan(uow, admin, plan)
    for service, dollars in DEMO_PRICES.items():
        price = Price(service=BillableService(service), amount=Money(cents=dollars * 100), valid_from=date(2025, 1, 1))
        async with runtime.unit_of_work() as uow:
            await accounts.add_price(uow, admin, price)


async def consume(settings: ServiceSettings) -> dict[str, float | int]:
    service = definition(settings)
    await asyncio.to_thread(upgrade_to_head, settings.resolved_database_url(), service.migrations)
    runtime = ServiceRuntime(settings)
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    try:
        await save_plans_and_prices(runtime)
        (consumer,) = service.consumers(runtime)
        sa.event.listen(runtime.database.engine.sync_engine, "before_cursor_execute", count)
        began, cpu_began = time.perf_counter(), time.process_time()
        read = await consumer.replay()
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu_began
        sa.event.remove(runtime.database.engine.sync_engine, "before_cursor_execute", count)
        if consumer.dead_lettered_total:
            raise SystemExit(f"billing dead-lettered {consumer.dead_lettered_total} records: not a clean run")
        async with runtime.unit_of_work() as uow:
            charges = (await uow.session.exec(select(func.count()).select_from(ChargeRow))).one()
        return {
            "records": read,
            "taken_in": consumer.processed_total,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "statements": statements,
            "charges": charges,
        }
    finally:
        await runtime.database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.billing_consumer", description=__doc__)
    parser.add_argument("--patients", type=int, default=DEFAULT_PATIENTS)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    options = Options(events=0, database=args.database, bootstrap=None, rounds=1, transaction_size=0)
    with infrastructure(options) as place:
        events = [e for e in cohort(args.patients, [SITE], seed=1) if ".billing." not in e.topic]
        asyncio.run(publish(events, place.bootstrap))
        topics = sorted({e.topic for e in events})
        print(f"published {len(events):,} events of {args.patients:,} patients to {', '.join(topics)}")
        del events
        raw_records, raw_seconds = asyncio.run(read_everything(place.bootstrap, topics))
        print(f"baseline: {raw_records:,} records read in {raw_seconds:.2f} s = {raw_records / raw_seconds:,.0f}/s")
        settings = ServiceSettings(
            service="billing",
            site=SITE,
            kafka_bootstrap_servers=place.bootstrap,
            var_dir=place.workdir / "var",
            database_url=place.fresh_database("billing_bench"),
        )
        run = asyncio.run(consume(settings))
        rate = run["records"] / run["seconds"]
        print(
            f"billing: {run['records']:,} records in {run['seconds']:.1f} s = {rate:,.0f}/s "
            f"({run['taken_in']:,} taken in, {run['charges']:,} charges)"
        )
        figures = {
            "patients": args.patients,
            "database": args.database,
            "records": raw_records,
            "baseline_records_s": round(raw_records / raw_seconds),
            "billing_records_s": round(rate),
            "ratio": round(rate / (raw_records / raw_seconds), 4),
            "billing_seconds": round(run["seconds"], 1),
            "cpu_us_per_record": round(run["cpu_seconds"] / run["records"] * 1e6),
            "statements_per_record": round(run["statements"] / run["records"], 2),
            "taken_in": run["taken_in"],
            "charges": run["charges"],
        }
        print_figures(figures, args.json)


if __name__ == "__main__":
    main()
