"""Checks every request gets before its route runs, the same in every service.

- A query parameter the route does not take is refused (422 naming it): ``?family_name=`` on a route that
  searches by ``family`` would otherwise return everyone.
- Control characters are refused in any text: in the query and anywhere in a JSON body. NUL and the other C0
  and C1 controls are never clinical data, and once stored they break exports, FHIR and logs. Tab, line feed and
  carriage return are text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams

from shared.errors import InvalidRequest

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _declared_query_names(route: APIRoute) -> set[str]:
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(param.alias for param in dependant.query_params)
        pending.extend(dependant.dependencies)
    return names


def _strings(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield where, node
    elif isinstance(node, dict):
        for key, value in node.items():
            escaped = str(key).replace("~", "~0").replace("/", "~1")
            yield f"{where}/{escaped}", str(key)
            yield from _strings(value, f"{where}/{escaped}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{where}/{index}")


def _query_problems(route: APIRoute, query: QueryParams) -> list[tuple[str, str]]:
    problems = []
    declared = _declared_query_names(route)
    for name in sorted(set(query.keys()) - declared):
        allowed = ", ".join(sorted(declared)) or "none"
        problems.append((f"/query/{name}", f"unknown query parameter {name!r}; this route takes: {allowed}"))
    for name, value in query.multi_items():
        if CONTROL.search(name) or CONTROL.search(value):
            problems.append((f"/query/{name}", "control characters are not allowed"))
    return problems


async def refuse_unclean_requests(request: Request) -> None:
    """An app-wide dependency: runs before each route's own parameters are used."""
    route = request.scope.get("route")
    problems = _query_problems(route, request.query_params) if isinstance(route, APIRoute) else []
    if request.headers.get("content-type", "").split(";")[0].strip().endswith("json"):
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None  # the route's own validation reports a malformed body
        problems += [
            (where, "control characters are not allowed")
            for where, text in _strings(body, "/body")
            if CONTROL.search(text)
        ]
    if problems:
        raise InvalidRequest("; ".join(f"{where}: {message}" for where, message in problems), problems)
