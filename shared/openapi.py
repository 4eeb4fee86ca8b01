"""An honest OpenAPI document: every status a route can answer is documented, with the one error shape.

FastAPI documents a route's success and, from its parameters, a 422 in its own shape. Every kapnet route can also
answer the shared problem replies (shared.errors): 401 and 403 when it needs a token, 404 when it names a record
in its path, 409 when it changes something, 412 and 428 when it takes If-Match, 422 for any request it cannot
accept (an unknown query parameter included), and 500. A header the route requires (If-Match) is marked
required, though a missing one answers 428 rather than 422 (RFC 6585).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shared.errors import PROBLEM_JSON, Problem

ERROR_DESCRIPTIONS: dict[str, str] = {
    "401": "No bearer token, or one that is expired, tampered with or from another issuer",
    "403": "The token's role or site may not do this",
    "404": "No such record at this site",
    "409": "The record's state does not allow this (yet), or someone changed it at the same moment",
    "412": "If-Match names an older version of the record",
    "422": "The request does not validate, names an unknown query parameter, or a clinical rule refuses it",
    "428": "A change to a versioned record needs If-Match",
    "500": "An unexpected error; the trace id finds it in the logs",
}
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
REQUIRED_HEADERS = frozenset({"if-match"})


def honest_openapi(app: FastAPI, public_paths: frozenset[str]) -> None:
    """Replace ``app.openapi`` with one that documents every error reply (built once, then cached)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schemas["Problem"].pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        problem_content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                _document_errors(path, method, operation, problem_content, path in public_paths)
        # FastAPI's own validation-error schemas are no longer what any route answers.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]


def _document_errors(path: str, method: str, operation: dict[str, Any], content: dict[str, Any], public: bool) -> None:
    parameters = operation.get("parameters", [])
    for parameter in parameters:
        if parameter.get("in") == "header" and parameter["name"].lower() in REQUIRED_HEADERS:
            parameter["required"] = True
    codes = ["422", "500"]
    if not public:
        codes += ["401", "403"]
    if "{" in path:
        codes.append("404")
    # A change can clash with the record's state; so can a read of what the state has not made yet (a REMS form
    # of a session that has not ended).
    if method in WRITE_METHODS or "{" in path:
        codes.append("409")
    if any(p.get("in") == "header" and p["name"].lower() == "if-match" for p in parameters):
        codes += ["412", "428"]
    responses = operation.setdefault("responses", {})
    for code in codes:
        existing = responses.get(code)
        if existing is None or "HTTPValidationError" in str(existing):
            responses[code] = {"description": ERROR_DESCRIPTIONS[code], "content": content}
