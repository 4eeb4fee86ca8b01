"""Errors a use case raises, and the HTTP reply each gets, the same in every service."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm.exc import StaleDataError


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


def install_error_replies(app: FastAPI) -> None:
    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        kind = exc.kind if isinstance(exc, RecordNotFound) else "record"
        return JSONResponse({"detail": f"no such {kind} at this site"}, status.HTTP_404_NOT_FOUND)

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status.HTTP_409_CONFLICT)

    async def stale(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status.HTTP_412_PRECONDITION_FAILED)

    async def precondition(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status.HTTP_428_PRECONDITION_REQUIRED)

    app.add_exception_handler(RecordNotFound, not_found)

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status.HTTP_422_UNPROCESSABLE_CONTENT)

    async def collided(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "someone else changed this record at the same moment: read it again and retry"},
            status.HTTP_409_CONFLICT,
        )

    async def not_permitted(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status.HTTP_403_FORBIDDEN)

    app.add_exception_handler(Conflict, conflict)
    app.add_exception_handler(NotPermitted, not_permitted)
    app.add_exception_handler(StaleDataError, collided)
    app.add_exception_handler(RuleRefused, refused)
    app.add_exception_handler(StaleVersion, stale)
    app.add_exception_handler(PreconditionRequired, precondition)
