"""The shell every service shares: settings, migrations, outbox relay, consumers, health and event docs.

A service plugs in its routers, its migrations and its event handlers; the rest is the same everywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlmodel import SQLModel

from shared.audit import audit_router
from shared.auth.guard import PUBLIC_PATHS, build_verifier, declare_permissions
from shared.bus.consumer import ConsumerConfig, EventConsumer, Handler
from shared.bus.kafka import KafkaAccess, TopicSpec, broker_answers, ensure_topics, raise_if_cancelling
from shared.bus.outbox import OutboxRelay
from shared.db.database import Database
from shared.db.leadership import Leadership
from shared.db.migration_process import upgrade_in_child_process
from shared.db.unit_of_work import UnitOfWork
from shared.errors import install_error_replies
from shared.events import asyncapi_document, json_schemas, network_topic
from shared.events.registry import SITE_CHANNEL, DomainEvent
from shared.logs import configure_logging
from shared.openapi import honest_openapi
from shared.request_hygiene import refuse_unclean_requests
from shared.settings import ServiceSettings
from shared.supervision import Supervisor
from shared.telemetry import FASTAPI_TELEMETRY, configure_tracing

log = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 2.0
SHUTDOWN_TIMEOUT_SECONDS = 15.0


class ServiceRuntime:
    """What a running service holds: its settings, database, relay and consumers."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.database = Database(settings.resolved_database_url())
        # The one place the broker's address and this process's principal become client options.
        self.kafka = KafkaAccess.from_settings(settings)
        self.relay = OutboxRelay(
            self.database,
            self.kafka,
            timeout_seconds=settings.kafka_timeout_seconds,
            poll_interval_seconds=settings.outbox_poll_interval_seconds,
            batch_size=settings.outbox_batch_size,
        )
        self.consumers: list[EventConsumer] = []
        self.supervisor = Supervisor()
        # The relay and the background jobs run in one instance at a time (shared/db/leadership.py).
        self.leadership = Leadership(self.database)

    @property
    def site(self) -> str | None:
        return self.settings.site if self.settings.role == "site" else None

    @property
    def own_site(self) -> str:
        """The site of a site service; a network-role process has none."""
        if self.site is None:
            raise RuntimeError(f"{self.settings.instance} serves no site")
        return self.site

    @property
    def source(self) -> str:
        """The CloudEvents source of everything this process emits."""
        return f"/kapnet/{self.site or 'network'}/{self.settings.service}"

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.database, source=self.source, site=self.site)

    def reading(self) -> UnitOfWork:
        """A unit of work for a route that only reads and records nothing, not even an audit row: it never waits
        for a write in progress (shared.db.database)."""
        return UnitOfWork(self.database, source=self.source, site=self.site, read_only=True)

    def site_topic(self, service: str, site: str | None = None) -> TopicSpec:
        return TopicSpec(
            SITE_CHANNEL.format(site=site or self.site, service=service),
            partitions=self.settings.kafka_site_topic_partitions,
            replication_factor=self.settings.kafka_replication_factor,
        )

    def network_topic(self, site: str | None = None) -> TopicSpec:
        """A site's network topic (this site's, by default). Every release is kept, not compacted: the network
        rebuilds its view from it (the last version wins) and the privacy auditor reads every version that
        ever crossed, as a reader of the topic could have kept them."""
        return TopicSpec(
            network_topic(site or self.own_site),
            partitions=1,
            replication_factor=self.settings.kafka_replication_factor,
            config={"cleanup.policy": "delete", "retention.ms": "-1"},
        )

    def network_topics(self) -> list[TopicSpec]:
        """The network role's topics: one per member site."""
        return [self.network_topic(site) for site in self.settings.network_sites]

    def consumer(
        self,
        topics: list[TopicSpec],
        handlers: dict[type[DomainEvent], Handler],
        *,
        rebuild_forgotten_partitions: bool = False,
        refuse_origin: Callable[[str, DomainEvent], str | None] | None = None,
    ) -> EventConsumer:
        name = self.settings.instance
        dead_letter = f"kapnet.{self.site or 'network'}.{self.settings.service}.deadletter.v1"
        consumer = EventConsumer(
            self.database,
            ConsumerConfig(
                name=name,
                topics=topics,
                dead_letter_topic=dead_letter,
                source=self.source,
                site=self.site,
                bootstrap_servers=self.kafka,
                timeout_seconds=self.settings.kafka_timeout_seconds,
                replication_factor=self.settings.kafka_replication_factor,
                max_attempts=self.settings.consumer_max_attempts,
                retry_backoff_seconds=self.settings.consumer_retry_backoff_seconds,
                rebuild_forgotten_partitions=rebuild_forgotten_partitions,
                refuse_origin=refuse_origin,
            ),
            handlers,
        )
        self.consumers.append(consumer)
        return consumer


async def service_metrics(runtime: ServiceRuntime) -> str:
    """Counts only, never a patient's data, so the endpoint is public like /healthz."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])
        lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

    healths = [c.health for c in runtime.consumers]
    metric(
        "kapnet_consumer_running",
        "gauge",
        "1 while the consumer is connected and consuming.",
        [(f'{{consumer="{h.name}"}}', 1.0 if h.running else 0.0) for h in healths],
    )
    metric(
        "kapnet_consumer_lag",
        "gauge",
        "Records on the consumer's partitions not yet processed (-1: unknown).",
        [(f'{{consumer="{h.name}"}}', float(h.lag if h.lag is not None else -1)) for h in healths],
    )
    metric(
        "kapnet_consumer_seconds_since_progress",
        "gauge",
        "Seconds since the consumer last processed a record or had nothing left to process.",
        [(f'{{consumer="{h.name}"}}', h.seconds_since_progress or 0.0) for h in healths],
    )
    metric(
        "kapnet_consumer_restarts_total",
        "counter",
        "Times the consumer reconnected after losing the broker.",
        [(f'{{consumer="{h.name}"}}', float(h.restarts)) for h in healths],
    )
    metric(
        "kapnet_consumer_processed_total",
        "counter",
        "Events processed (duplicates and dead letters not counted).",
        [(f'{{consumer="{c.config.name}"}}', float(c.processed_total)) for c in runtime.consumers],
    )
    try:
        pending = float(await asyncio.wait_for(runtime.relay.pending_count(), READINESS_TIMEOUT_SECONDS))
    except Exception:
        pending = -1.0
    metric("kapnet_outbox_pending", "gauge", "Events written but not yet published (-1: unknown).", [("", pending)])
    metric(
        "kapnet_leading",
        "gauge",
        "1 while this instance runs the job; 0 while another instance does and this one stands by.",
        [
            (f'{{job="{role}"}}', 1.0 if leading else 0.0)
            for role, leading in sorted(runtime.leadership.leading.items())
        ],
    )
    metric(
        "kapnet_background_task_restarts_total",
        "counter",
        "Times a background task ended unexpectedly and was started again.",
        [(f'{{task="{name}"}}', float(n)) for name, n in sorted(runtime.supervisor.restarts.items())],
    )
    return "\n".join(lines) + "\n"


def runtime_of(request: Request) -> ServiceRuntime:
    """The running service behind a request (its database, settings and site)."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


async def _request_unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    async with runtime_of(request).unit_of_work() as uow:
        yield uow


# A route's transaction: what it does not commit is rolled back when the reply is sent.
UnitOfWorkDep = Annotated[UnitOfWork, Depends(_request_unit_of_work)]


async def _request_reading(request: Request) -> AsyncIterator[UnitOfWork]:
    async with runtime_of(request).reading() as uow:
        yield uow


# A route that only reads and records nothing (ServiceRuntime.reading): it cannot commit.
ReadingDep = Annotated[UnitOfWork, Depends(_request_reading)]


BackgroundJob = Callable[[ServiceRuntime], Coroutine[Any, Any, None]]


@dataclass
class ServiceDefinition:
    """What one service plugs into the shell."""

    title: str
    description: str
    migrations: Path
    routers: Sequence[APIRouter] = ()
    produces: Callable[[ServiceRuntime], list[TopicSpec]] = lambda runtime: []
    consumers: Callable[[ServiceRuntime], list[EventConsumer]] = lambda runtime: []
    background: Sequence[BackgroundJob] = field(default_factory=list)
    # Tables its consumer fills from events and nothing else writes: ``kapnet replay`` forgets and rebuilds them.
    projections: Sequence[type[SQLModel]] = ()


def create_service_app(settings: ServiceSettings, definition: ServiceDefinition) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_tracing(settings.instance)
        url = settings.resolved_database_url()
        if settings.migrate_in_child_process:
            await upgrade_in_child_process(url, definition.migrations)
        else:
            from shared.db.migrate import upgrade_to_head  # Alembic loads only in a process that migrates in itself

            await asyncio.to_thread(upgrade_to_head, url, definition.migrations)
        runtime = ServiceRuntime(settings)
        app.state.runtime = runtime
        supervisor = runtime.supervisor
        consumers = definition.consumers(runtime)
        jobs: list[Coroutine[Any, Any, None]] = [
            supervisor.keep_running(
                "create topics",
                lambda: _keep_trying("create topics", lambda: _create_topics(runtime, definition.produces(runtime))),
                restart_when_done=False,
            ),
            supervisor.keep_running(
                "outbox relay", partial(runtime.leadership.lead, "outbox relay", runtime.relay.run)
            ),
            *(supervisor.keep_running(f"consumer {c.config.name}", c.run) for c in consumers),
            *(
                supervisor.keep_running(
                    job.__name__, partial(runtime.leadership.lead, job.__name__, partial(job, runtime))
                )
                for job in definition.background
            ),
        ]
        tasks = [asyncio.create_task(job) for job in jobs]
        log.info("%s started", settings.instance)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            # Bounded: one job that does not let go (a driver that swallowed its cancellation) must not hold the
            # whole service's stop for ever.
            _, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT_SECONDS)
            if stuck:
                log.error("%d background task(s) did not stop within %.0f s", len(stuck), SHUTDOWN_TIMEOUT_SECONDS)
            await runtime.leadership.dispose()
            await runtime.database.dispose()

    app = FastAPI(
        title=f"kapnet {definition.title} ({settings.instance})",
        description=definition.description,
        version="0.1.0",
        lifespan=lifespan,
        telemetry=FASTAPI_TELEMETRY,  # type: ignore[arg-type]
        dependencies=[Depends(refuse_unclean_requests)],
    )
    install_error_replies(app)
    honest_openapi(app, PUBLIC_PATHS)
    app.state.settings = settings
    app.state.verifier = build_verifier(settings)
    app.include_router(_operations_router(settings))
    routers = [*definition.routers, audit_router] if settings.role == "site" else list(definition.routers)
    for router in routers:
        app.include_router(declare_permissions(router))
    return app


async def _create_topics(runtime: ServiceRuntime, topics: list[TopicSpec]) -> None:
    if topics:
        await ensure_topics(runtime.kafka, topics, runtime.settings.kafka_timeout_seconds)


async def _keep_trying(what: str, attempt: Callable[[], Coroutine[Any, Any, None]]) -> None:
    delay = 0.5
    while True:
        try:
            await attempt()
            return
        except Exception as exc:
            raise_if_cancelling()
            log.warning("%s failed (%s); retrying in %.1fs", what, type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def _operations_router(settings: ServiceSettings) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": settings.instance}

    @router.get(
        "/readyz",
        summary="The database and the broker answer, and every consumer is running and keeping up (else 503)",
    )
    async def readyz(request: Request) -> JSONResponse:
        runtime: ServiceRuntime = request.app.state.runtime
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(runtime.database.ping(), READINESS_TIMEOUT_SECONDS)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        reachable = await broker_answers(runtime.kafka, READINESS_TIMEOUT_SECONDS)
        checks["broker"] = "ok" if reachable else "unreachable"
        consumers = []
        for consumer in runtime.consumers:
            health = consumer.health
            checks[f"consumer {health.name}"] = health.problem() or "ok"
            consumers.append(
                {
                    "name": health.name,
                    "running": health.running,
                    "lag": health.lag,
                    "seconds_since_progress": health.seconds_since_progress,
                    "restarts": health.restarts,
                }
            )
        ready = all(v == "ok" for v in checks.values())
        body = {"ready": ready, "checks": checks, "consumers": consumers}
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get(
        "/metrics",
        summary="Prometheus text: consumer lag and progress, outbox backlog, background task restarts",
        response_class=PlainTextResponse,
    )
    async def metrics(request: Request) -> PlainTextResponse:
        runtime: ServiceRuntime = request.app.state.runtime
        return PlainTextResponse(await service_metrics(runtime), media_type="text/plain; version=0.0.4")

    @router.get("/asyncapi.json", summary="AsyncAPI 3 document of the events this service publishes")
    async def asyncapi() -> dict[str, Any]:
        return asyncapi_document(producer=settings.service)

    @router.get("/events/schemas", summary="JSON Schema of every event type this service publishes")
    async def schemas() -> dict[str, Any]:
        prefix = f"org.kapnet.{settings.service}."
        return {t: s for t, s in json_schemas().items() if t.startswith(prefix)}

    return router


def freeze_long_lived_objects() -> None:
    """Collect what is garbage already, then put every object that exists now out of the collector's reach
    (``gc.freeze``). For a process that has made what it keeps for its life (its modules, the app, its schemas):
    each full collection walked all of that, ~175,000 objects in a consumer, and paused the event loop ~90 ms, 3
    times per 20,000 events consumed; frozen, a full collection walks what the work made and takes ~5 ms
    (bench/RESULTS.md, "Full collections"). A frozen object that later becomes garbage is never freed: this is
    for what lives as long as the process."""
    gc.collect()
    gc.freeze()


def serve(service: str, create_app: Callable[[ServiceSettings], FastAPI]) -> None:
    """``python -m services.<name> [--site S] [--role R] [--port P]``: flags are a shorthand for the
    ``KAPNET_*`` environment variables, which stay the one source of configuration."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    parser.add_argument("--site", help="sets KAPNET_SITE")
    parser.add_argument("--port", type=int, help="sets KAPNET_PORT")
    if service == "outcomes":
        parser.add_argument("--role", choices=["site", "network"], help="sets KAPNET_ROLE")
    args = parser.parse_args()
    for name, value in vars(args).items():
        if value is not None:
            os.environ[f"KAPNET_{name.upper()}"] = str(value)
    os.environ["KAPNET_SERVICE"] = service
    try:
        settings = ServiceSettings(migrate_in_child_process=True)
    except ValueError as exc:
        parser.error(str(exc))
    configure_logging(settings.log_level, settings.instance)
    # No access log: paths and query strings (a search by name, a patient id) are patient data.
    app = create_app(settings)
    freeze_long_lived_objects()
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False)
