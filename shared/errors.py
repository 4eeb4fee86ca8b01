"""Errors a use case raises, and the one shape every service answers an error in: RFC 9457 problem details.

Every error body is ``application/problem+json``: ``type``, ``title``, ``status``, ``detail`` (what is wrong, in
words) and ``trace_id`` (no ``instance``: a path names a patient, and a refusal must not echo it), and for a
request that does not validate, ``errors``: each offending field as a JSON pointer into the request
(``/body/weight/unit``, ``/query/offset``) with its message. A reply never echoes what was sent, and an
unexpected error never shows a stack trace: its trace id finds it in the logs.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.telemetry import current_trace_id

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class RecordNotFound(Exception):
    """No such record at this site, or one the caller may not see: both get the same 404, so the reply never
    tells whether the record exists (access control, point 3)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Conflict(Exception):
    """The request clashes with the record's state."""


class RuleRefused(Exception):
    """The entry is well formed but a clinical rule refuses it (a dose out of range without an override): 422."""


class NotPermitted(Exception):
    """The caller's role may reach the route but not take this decision (an override only a clinician may give):
    403, as for a route the role may not reach at all."""


class StaleVersion(Exception):
    """The If-Match names an older version of the record than the one stored."""


class PreconditionRequired(Exception):
    """A change to a versioned record came without If-Match."""


class InvalidRequest(Exception):
    """A request the schema cannot express as wrong (an unknown query parameter, a control character): 422 with
    the offending fields."""

    def __init__(self, detail: str, fields: Sequence[tuple[str, str]]) -> None:
        super().__init__(detail)
        self.fields = list(fields)


class ProblemField(BaseModel):
    pointer: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error reply of every service."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    trace_id: str | None = None
    errors: list[ProblemField] = []


def problem(
    request: Request | Scope, code: int, detail: str, fields: Sequence[tuple[str, str]] = (), **extra: Any
) -> JSONResponse:
    scope = request.scope if isinstance(request, Request) else request
    body = Problem(
        title=HTTPStatus(code).phrase,
        status=code,
        detail=detail,
        trace_id=current_trace_id() or _trace_id_of(scope),
        errors=[ProblemField(pointer=p, message=m) for p, m in fields],
    )
    return JSONResponse(body.model_dump(mode="json"), code, media_type=PROBLEM_JSON, **extra)


def _trace_id_of(scope: Scope) -> str:
    # Outside a span (an error before the router): the caller's traceparent, else a fresh id to log by.
    for name, value in scope.get("headers", []):
        if name == b"traceparent":
            parts = value.decode("latin-1").split("-")
            if len(parts) == 4 and len(parts[1]) == 32:
                return parts[1]
    return uuid.uuid4().hex


def pointer(location: Sequence[Any]) -> str:
    """A validation error's location as a JSON pointer (RFC 6901): ("body", "weight", "unit") -> /body/weight/unit."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in location)


# The documented error replies of a route, for its OpenAPI operation.
PROBLEM_RESPONSE = {"model": Problem, "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def install_error_replies(app: FastAPI) -> None:
    def plain(code: int, message: str | None = None) -> Any:
        async def reply(request: Request, exc: Exception) -> JSONResponse:
            return problem(request, code, message or str(exc))

        return reply

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        kind = exc.kind if isinstance(exc, RecordNotFound) else "record"
        return problem(request, status.HTTP_404_NOT_FOUND, f"no such {kind} at this site")

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, RequestValidationError):
            fields = [(pointer(e["loc"]), str(e["msg"])) for e in exc.errors()]
            detail = "; ".join(f"{p}: {m}" for p, m in fields) or "the request is not valid"
            return problem(request, status.HTTP_422_UNPROCESSABLE_CONTENT, detail, fields)
        assert isinstance(exc, InvalidRequest)
        return problem(request, status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc), exc.fields)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem(request, exc.status_code, str(exc.detail), headers=exc.headers)

    app.add_exception_handler(RecordNotFound, not_found)
    app.add_exception_handler(Conflict, plain(status.HTTP_409_CONFLICT))
    app.add_exception_handler(NotPermitted, plain(status.HTTP_403_FORBIDDEN))
    app.add_exception_handler(
        StaleDataError,
        plain(status.HTTP_409_CONFLICT, "someone else changed this record at the same moment: read it again and retry"),
    )
    app.add_exception_handler(RuleRefused, plain(status.HTTP_422_UNPROCESSABLE_CONTENT))
    app.add_exception_handler(StaleVersion, plain(status.HTTP_412_PRECONDITION_FAILED))
    app.add_exception_handler(PreconditionRequired, plain(status.HTTP_428_PRECONDITION_REQUIRED))
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(InvalidRequest, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(ProblemOnUnexpectedError)


class ProblemOnUnexpectedError:
    """An error no handler expected: a 500 problem with the trace id, and a log line with the trace id and where
    it happened. Neither carries the exception's message, which may quote a patient's values."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started:
                raise
            reply = problem(
                scope,
                status.HTTP_500_INTERNAL_SERVER_ERROR,
                "an unexpected error; quote the trace id when you report it",
            )
            where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            log.error(
                "unexpected %s at %s:%s (trace %s)",
                type(exc).__name__,
                where.filename if where else "?",
                where.lineno if where else "?",
                Problem.model_validate_json(bytes(reply.body)).trace_id,
            )
            await reply(scope, receive, send)
