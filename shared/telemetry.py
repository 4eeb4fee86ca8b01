"""Tracing: one W3C trace from an HTTP request through the outbox, Kafka and every consumer."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode

TRACE_HEADERS = ("traceparent", "tracestate")
tracer = trace.get_tracer("kapnet")


# FastAPI's own telemetry gives the HTTP server span and continues an incoming traceparent; these are the
# settings that keep patient data out of it (validation-failure logs carry the submitted values).
FASTAPI_TELEMETRY: dict[str, Any] = {"tracing": True, "logs": False, "metrics": False}


class RedactQueryStrings(SpanProcessor):
    """A query string can hold a patient's name or date of birth (a search): spans never carry it."""

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:  # type: ignore[override]
        if span.is_recording() and "url.query" in getattr(span, "attributes", {}):
            span.set_attribute("url.query", "REDACTED")


def configure_tracing(instance: str, *, console: bool = False) -> None:
    """Install a tracer provider unless one is already there (a test may have put an in-memory one)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        if not getattr(provider, "_kapnet_redacting", False):
            provider.add_span_processor(RedactQueryStrings())
            provider._kapnet_redacting = True  # type: ignore[attr-defined]
        return
    provider = TracerProvider(resource=Resource.create({"service.name": instance}))
    provider.add_span_processor(RedactQueryStrings())
    provider._kapnet_redacting = True  # type: ignore[attr-defined]
    if console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)


def trace_headers() -> dict[str, str]:
    """The current context as W3C headers, to store with an outbox row or put on a Kafka record."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return {k: v for k, v in carrier.items() if k in TRACE_HEADERS}


def context_from_headers(headers: Iterable[tuple[str, bytes | str]]) -> otel_context.Context:
    carrier = {
        name: value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        for name, value in headers
        if name in TRACE_HEADERS
    }
    return extract(carrier)


# OpenTelemetry's default span link limit (OTEL_SPAN_LINK_COUNT_LIMIT): beyond it links are dropped silently.
MAX_SPAN_LINKS = 128


def links_to_senders(carriers: Iterable[Iterable[tuple[str, bytes | str]]]) -> tuple[list[Link], int]:
    """Links from a span over many messages to the context each carries (OpenTelemetry's messaging conventions
    for batches: no single message's context is the parent), and how many more were left unlinked. Only the
    first ``MAX_SPAN_LINKS`` are parsed: the SDK would drop the rest, after their cost was paid."""
    links: list[Link] = []
    unlinked = 0
    # The messages of one request carry the same context: each distinct one is parsed once, every message still
    # gets its link.
    senders: dict[tuple[tuple[str, bytes | str], ...], SpanContext] = {}
    for headers in carriers:
        if len(links) >= MAX_SPAN_LINKS:
            unlinked += 1
            continue
        carried = tuple((name, value) for name, value in headers if name in TRACE_HEADERS)
        sender = senders.get(carried)
        if sender is None:
            sender = senders[carried] = trace.get_current_span(context_from_headers(carried)).get_span_context()
        if sender.is_valid:
            links.append(Link(sender))
    return links, unlinked


@contextmanager
def span_in_context(
    name: str,
    parent: otel_context.Context,
    kind: SpanKind,
    attributes: dict[str, Any] | None = None,
    links: Sequence[Link] = (),
) -> Iterator[Span]:
    """Attach ``parent`` around the span ourselves: aiokafka's instrumentation detaches it (#3026). An exception
    is recorded by its type alone: messages can carry patient data (pydantic's errors quote the input)."""
    token = otel_context.attach(parent)
    try:
        with tracer.start_as_current_span(
            name,
            kind=kind,
            attributes=attributes or {},
            links=links,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
    finally:
        otel_context.detach(token)


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None
