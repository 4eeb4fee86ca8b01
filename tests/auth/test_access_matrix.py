"""Role x own site / other site x every route of every service, generated from the permission table and each
service's OpenAPI document, so that a route added later is in the matrix without anyone writing a case."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.billing.app import create_app as create_billing
from services.intake.app import create_app as create_intake
from services.outcomes.app import create_app as create_outcomes
from services.sessions.app import create_app as create_sessions
from services.webhooks.app import create_app as create_webhooks
from shared.auth.guard import PERMISSION_EXTENSION, PUBLIC_PATHS
from shared.auth.permissions import NETWORK_PERMISSIONS, PERMISSION_TABLE, Permission, Role
from shared.settings import ServiceSettings
from tests.harness import app_in_process, auth_headers

SITE = "north"
OTHER_SITE = "south"
SERVICES: dict[str, tuple[Callable[[ServiceSettings], FastAPI], dict[str, Any]]] = {
    "intake@north": (create_intake, {"service": "intake", "site": SITE}),
    "sessions@north": (create_sessions, {"service": "sessions", "site": SITE}),
    "billing@north": (create_billing, {"service": "billing", "site": SITE}),
    "outcomes@north": (create_outcomes, {"service": "outcomes", "site": SITE}),
    "webhooks@north": (create_webhooks, {"service": "webhooks", "site": SITE}),
    "outcomes@network": (
        create_outcomes,
        {"service": "outcomes", "role": "network", "network_sites": ["north", "south"]},
    ),
    "webhooks@network": (
        create_webhooks,
        {"service": "webhooks", "role": "network", "network_sites": ["north", "south"]},
    ),
}


@dataclass
class RunningService:
    name: str
    client: httpx.AsyncClient
    key_dir: Path
    openapi: dict[str, Any]

    @property
    def is_network(self) -> bool:
        return self.name.endswith("@network")


@pytest.fixture(scope="module")
async def services(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, RunningService]]:
    var_dir = tmp_path_factory.mktemp("matrix")
    running: dict[str, RunningService] = {}
    async with AsyncExitStack() as stack:
        for name, (create_app, options) in SERVICES.items():
            # No broker: access control must not depend on it.
            settings = ServiceSettings(
                **options, var_dir=var_dir, kafka_bootstrap_servers="127.0.0.1:1", kafka_timeout_seconds=1
            )
            client = await stack.enter_async_context(app_in_process(create_app(settings)))
            openapi = (await client.get("/openapi.json")).json()
            running[name] = RunningService(name, client, settings.dev_key_dir, openapi)
        yield running


def operations(service: RunningService) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in service.openapi["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def fill(path: str, patient_id: str) -> str:
    """A real patient where a patient goes; any other record id is made up (an allowed caller then gets 404)."""
    known = {"patient_id": patient_id, "site": SITE, "cohort": "registrations", "document_id": "1"}
    return re.sub(r"\{(\w+)\}", lambda m: known.get(m.group(1), str(uuid.uuid4())), path)


def token_sites(role: Role) -> dict[str, str]:
    return {"own": "network", "other": SITE} if role is Role.network_admin else {"own": SITE, "other": OTHER_SITE}


def expected_allowed(service: RunningService, permission: Permission, role: Role, token_site: str) -> bool:
    """The rule, restated from the issue: site routes need a site role of this very site; network routes need
    the network admin; and the permission table must grant the role."""
    if role not in PERMISSION_TABLE[permission]:
        return False
    if service.is_network:
        return permission in NETWORK_PERMISSIONS and role is Role.network_admin
    return role is not Role.network_admin and token_site == SITE


async def test_every_route_declares_a_permission(services: dict[str, RunningService]) -> None:
    missing = [
        f"{name}: {method} {path}"
        for name, service in services.items()
        for method, path, operation in operations(service)
        if path not in PUBLIC_PATHS and PERMISSION_EXTENSION not in operation
    ]
    assert missing == []


async def test_docs_offer_the_bearer_scheme_for_the_authorize_button(services: dict[str, RunningService]) -> None:
    for service in services.values():
        schemes = service.openapi["components"]["securitySchemes"]
        assert {"type": "http", "scheme": "bearer"}.items() <= next(iter(schemes.values())).items()
        for _method, path, operation in operations(service):
            assert (path in PUBLIC_PATHS) != bool(operation.get("security")), path


async def test_the_matrix(services: dict[str, RunningService]) -> None:
    patient_id = await a_registered_patient(services["intake@north"])
    outcomes: list[tuple[str, str, str, str, str, bool, int]] = []
    for name, service in services.items():
        for method, path, operation in operations(service):
            if path in PUBLIC_PATHS:
                continue
            permission = Permission(operation[PERMISSION_EXTENSION])
            url = fill(path, patient_id)
            for role in Role:
                for which, token_site in token_sites(role).items():
                    headers = auth_headers(service.key_dir, token_site, role.value)
                    reply = await service.client.request(
                        method, url, headers=headers, json={} if method != "GET" else None
                    )
                    allowed = expected_allowed(service, permission, role, token_site)
                    outcomes.append((name, method, path, role.value, which, allowed, reply.status_code))
                    if allowed:
                        assert reply.status_code not in (401, 403), (name, method, path, role, which, reply.text)
                    else:
                        assert reply.status_code == 403, (name, method, path, role, which, reply.text)
                        assert patient_id not in reply.text, "a denied reply showed the record"
    routes = {(name, method, path) for name, method, path, *_ in outcomes}
    allowed_count = sum(1 for *_, allowed, _status in outcomes if allowed)
    print(
        f"\naccess matrix: {len(routes)} routes x {len(Role)} roles x own/other site = {len(outcomes)} cases, "
        f"{allowed_count} allowed, {len(outcomes) - allowed_count} denied, all as the table says"
    )
    assert len(routes) >= 8


async def test_the_network_admin_is_refused_by_every_site_route(services: dict[str, RunningService]) -> None:
    for name, service in services.items():
        if service.is_network:
            continue
        for method, path, _operation in operations(service):
            if path in PUBLIC_PATHS:
                continue
            url = fill(path, str(uuid.uuid4()))
            for site in ("network", SITE):
                headers = auth_headers(service.key_dir, site, "network_admin")
                reply = await service.client.request(method, url, headers=headers)
                assert reply.status_code == 403, (name, method, path, site)


async def test_a_missing_record_and_a_hidden_one_get_the_same_404(services: dict[str, RunningService]) -> None:
    intake = services["intake@north"]
    headers = auth_headers(intake.key_dir, SITE, "therapist")
    missing = await intake.client.get(f"/patients/{uuid.uuid4()}", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no such patient at this site"


async def a_registered_patient(intake: RunningService) -> str:
    body = {"given_name": "Matrix", "family_name": "Patient", "birth_date": "1990-01-01", "sex": "unknown"}
    reply = await intake.client.post("/patients", json=body, headers=auth_headers(intake.key_dir, SITE, "front_desk"))
    assert reply.status_code == 201
    return str(reply.json()["id"])
