"""One trace runs from an HTTP request through the outbox and Kafka to the consumer."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import func
from sqlmodel import select

from services.intake.app import create_app as create_intake
from services.outcomes.app import create_app as create_outcomes
from services.outcomes.models import Registration
from shared.bus.outbox import OutboxRelay, PendingEvent
from shared.db.database import Database
from shared.settings import ServiceSettings
from shared.telemetry import MAX_SPAN_LINKS, span_in_context
from tests.harness import app_in_process, auth_headers, eventually

pytestmark = pytest.mark.broker


@pytest.fixture
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


async def test_one_trace_from_http_request_to_consumer(spans: InMemorySpanExporter, kafka: str, tmp_path: Path) -> None:
    site = f"trace{uuid.uuid4().hex[:6]}"
    common: dict[str, Any] = {
        "site": site,
        "kafka_bootstrap_servers": kafka,
        "var_dir": tmp_path,
        "outbox_poll_interval_seconds": 0.2,
    }
    intake = create_intake(ServiceSettings(service="intake", **common))
    outcomes = create_outcomes(ServiceSettings(service="outcomes", aggregate_publish_interval_seconds=3600, **common))
    async with app_in_process(intake) as intake_client, app_in_process(outcomes):
        reply = await intake_client.post(
            "/patients",
            headers=auth_headers(tmp_path / "auth", site, "front_desk"),
            json={"given_name": "Trace", "family_name": "Test", "birth_date": "1990-05-05", "sex": "male"},
        )
        assert reply.status_code == 201

        async def registered() -> bool:
            async with outcomes.state.runtime.database.sessions() as session:
                return int((await session.exec(select(func.count()).select_from(Registration))).one()) == 1

        await eventually(registered, within=60, what="outcomes to take the registration in")

    finished: list[ReadableSpan] = list(spans.get_finished_spans())
    server = next(s for s in finished if s.kind == SpanKind.SERVER and s.name == "POST /patients")
    topic = f"kapnet.{site}.intake.v1"
    producer = next(s for s in finished if s.kind == SpanKind.PRODUCER and s.name == f"{topic} publish")
    consumer = next(s for s in finished if s.kind == SpanKind.CONSUMER and s.name == f"{topic} process")
    trace_id = server.context.trace_id
    assert consumer.context.trace_id == trace_id
    # The chain runs parent to child: request (-> its endpoint span) -> process, the event's creation context
    # carried by the outbox row and the Kafka headers. The relay's publish span, one per batch it sends, links
    # to that same context (OpenTelemetry's messaging conventions for a batch sent apart from its creation).
    assert server.context.span_id in ancestors(consumer, finished)
    assert consumer.parent is not None
    assert consumer.parent.span_id in [link.context.span_id for link in producer.links]
    assert (producer.attributes or {}).get("messaging.batch.message_count") == 1


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[int]:
    by_id = {s.context.span_id: s for s in spans}
    found: list[int] = []
    while span.parent is not None:
        found.append(span.parent.span_id)
        if span.parent.span_id not in by_id:
            break
        span = by_id[span.parent.span_id]
    return found


async def test_query_strings_never_reach_a_span(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    settings = ServiceSettings(service="intake", site="north", var_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1")
    async with app_in_process(create_intake(settings)) as client:
        # An unknown parameter is refused (422), and still no span carries what was sent.
        assert (await client.get("/healthz", params={"family_name": "Lovelace"})).status_code == 422
    server = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert (server.attributes or {}).get("url.query") == "REDACTED"


def test_an_error_inside_a_span_leaves_its_type_not_its_message(spans: InMemorySpanExporter) -> None:
    """A decoding error's message quotes the event (names, birth dates): only the type may reach the trace."""
    with pytest.raises(ValueError):
        with span_in_context("kapnet.test process", otel_context.Context(), SpanKind.CONSUMER):
            raise ValueError("given_name 'Ada' birth_date 1990-05-05 does not fit")
    [span] = [s for s in spans.get_finished_spans() if s.name == "kapnet.test process"]
    assert span.status.status_code is StatusCode.ERROR and span.status.description == "ValueError"
    assert not any(event.name == "exception" for event in span.events)


async def test_a_relay_batch_links_each_message_up_to_the_cap_and_counts_the_rest(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    # Rows without a trace context (written outside any span) take no link and no place under the cap: the traced
    # rows behind them are still linked, however far down the batch they are.
    database = Database(f"sqlite:///{tmp_path / 'outbox.db'}")  # never connected: the span needs no rows
    relay = OutboxRelay(database, "127.0.0.1:1")

    def row(number: int, traced: bool) -> PendingEvent:
        trace_id, span_id = f"{number + 1:032x}", f"{number + 1:016x}"
        headers = [["ce_id", str(number)]] + ([["traceparent", f"00-{trace_id}-{span_id}-01"]] if traced else [])
        return PendingEvent(number, str(number), "t", "k", json.dumps(headers), b"{}")

    untraced = [row(n, traced=False) for n in range(MAX_SPAN_LINKS)]
    traced = [row(n, traced=True) for n in range(MAX_SPAN_LINKS, 2 * MAX_SPAN_LINKS + 5)]
    with relay._publish_span(untraced + traced):
        pass
    await database.dispose()
    [published] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    assert [link.context.span_id for link in published.links] == [int(r.event_id) + 1 for r in traced[:MAX_SPAN_LINKS]]
    assert published.attributes is not None and published.attributes["kapnet.batch.unlinked_count"] == 5
