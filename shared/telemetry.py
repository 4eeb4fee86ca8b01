"""Tracing: one W3C trace from an HTTP request through the outbox, Kafka and every consumer."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRACE_HEADERS = ("traceparent", "tracestate")
tracer = trace.get_tracer("kapnet")


def configure_tracing(instance: str, *, console: bool = False) -> None:
    """Install a tracer provider unless one is already there (a test may have put an in-memory one)."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": instance}))
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


@contextmanager
def span_in_context(
    name: str, parent: otel_context.Context, kind: SpanKind, attributes: dict[str, Any] | None = None
) -> Iterator[Span]:
    """Attach ``parent`` around the span ourselves: aiokafka's instrumentation detaches it (#3026)."""
    token = otel_context.attach(parent)
    try:
        with tracer.start_as_current_span(name, kind=kind, attributes=attributes or {}) as span:
            yield span
    finally:
        otel_context.detach(token)


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


class TraceMiddleware:
    """A server span per HTTP request, continuing the caller's traceparent when it sends one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k.decode("latin-1"), v) for k, v in scope.get("headers", [])]
        route = scope.get("path", "")
        name = f"{scope.get('method', 'GET')} {route}"
        with span_in_context(name, context_from_headers(headers), SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", scope.get("method", ""))
            span.set_attribute("url.path", route)

            async def send_with_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_with_status)
