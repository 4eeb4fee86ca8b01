"""What every service does with a request before and after its route: one error shape (RFC 9457), unknown query
parameters and control characters refused, bounded numbers and dates, literal search, an honest OpenAPI, and an
unexpected error that shows no trace and no patient data."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends

from services.intake.app import create_app as create_intake
from services.sessions.app import create_app as create_sessions
from shared.app import ServiceDefinition, create_service_app
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission
from shared.settings import ServiceSettings
from tests.harness import ROOT, app_in_process, auth_headers
from tests.sessions.conftest import Sessions, sessions_settings
from tests.sessions.test_session_record_api import a_session

ADA = {"given_name": "Ada", "family_name": "Lovelace", "birth_date": "1985-12-10", "sex": "female"}


@pytest.fixture
async def intake(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    settings = ServiceSettings(
        service="intake",
        site="north",
        database_url=database_url,
        var_dir=tmp_path,
        kafka_bootstrap_servers="127.0.0.1:1",
    )
    async with app_in_process(create_intake(settings)) as client:
        yield client, settings.dev_key_dir


def as_(key_dir: Path, role: str) -> dict[str, str]:
    return auth_headers(key_dir, "north", role)


def assert_problem(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = reply.json()
    assert {"type", "title", "status", "detail", "trace_id", "errors"} <= body.keys()
    assert body["status"] == status and len(body["trace_id"]) == 32
    return body


async def test_an_unknown_query_parameter_is_refused_by_name(intake: tuple[httpx.AsyncClient, Path]) -> None:
    client, keys = intake
    await client.post("/patients", json=ADA, headers=as_(keys, "front_desk"))
    reply = await client.get("/patients", params={"family_name": "Nobody"}, headers=as_(keys, "front_desk"))
    problem = assert_problem(reply, 422)
    assert [e["pointer"] for e in problem["errors"]] == ["/query/family_name"]
    assert "unknown query parameter 'family_name'" in problem["detail"] and "name" in problem["detail"]


@pytest.mark.parametrize("text", ["Ada\x00", "Ada\x1b[2J", "Ada\x7f", "Ada\u0085"])
async def test_control_characters_are_refused_and_nothing_is_stored(
    intake: tuple[httpx.AsyncClient, Path], text: str
) -> None:
    client, keys = intake
    reply = await client.post("/patients", json={**ADA, "given_name": text}, headers=as_(keys, "front_desk"))
    problem = assert_problem(reply, 422)
    assert [e["pointer"] for e in problem["errors"]] == ["/body/given_name"]
    assert text not in reply.text, "a refusal does not echo what was sent"
    search = await client.get("/patients", params={"name": "Ada\x00"}, headers=as_(keys, "front_desk"))
    assert_problem(search, 422)
    listed = await client.get("/patients", headers=as_(keys, "front_desk"))
    assert listed.json()["total"] == 0
    assert (
        await client.post("/patients", json={**ADA, "given_name": "Ada\tMary"}, headers=as_(keys, "front_desk"))
    ).status_code == 201


async def test_a_name_search_is_literal(intake: tuple[httpx.AsyncClient, Path]) -> None:
    client, keys = intake
    for family in ("Lovelace", "Per%cent", "Under_score"):
        await client.post("/patients", json={**ADA, "family_name": family}, headers=as_(keys, "front_desk"))

    async def found(name: str) -> list[str]:
        reply = await client.get("/patients", params={"name": name}, headers=as_(keys, "front_desk"))
        return sorted(p["family_name"] for p in reply.json()["patients"])

    assert await found("%%") == []
    assert await found("r%c") == ["Per%cent"]
    assert await found("r_s") == ["Under_score"]
    assert await found("__") == []


async def test_a_patient_looks_the_same_in_a_list_and_a_read(intake: tuple[httpx.AsyncClient, Path]) -> None:
    client, keys = intake
    created = (await client.post("/patients", json=ADA, headers=as_(keys, "front_desk"))).json()
    read = (await client.get(f"/patients/{created['id']}", headers=as_(keys, "front_desk"))).json()
    [listed] = (await client.get("/patients", headers=as_(keys, "front_desk"))).json()["patients"]
    assert listed == read and listed["consented"] is False


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/consent-documents/99999999999999999999", {}),
        ("/patients", {"offset": "99999999999999999999"}),
        ("/audit", {"before_id": "99999999999999999999"}),
        ("/audit", {"since": "0001-01-01T00:30:00+01:00"}),
        ("/audit", {"until": "9999-12-31T23:30:00-01:00"}),
        ("/patients", {"birth_date": "0001-01-01"}),
    ],
)
async def test_numbers_and_dates_out_of_range_are_422_not_500(
    intake: tuple[httpx.AsyncClient, Path], path: str, params: dict[str, str]
) -> None:
    client, keys = intake
    reply = await client.get(path, params=params, headers=as_(keys, "site_admin"))
    assert_problem(reply, 422)


async def test_a_bounded_body_number_is_422(intake: tuple[httpx.AsyncClient, Path]) -> None:
    client, keys = intake
    patient = (await client.post("/patients", json=ADA, headers=as_(keys, "front_desk"))).json()
    body = {"document_id": 99999999999999999999, "witnessed_by": "N", "informed_off_label_use": True}
    reply = await client.post(f"/patients/{patient['id']}/consents", json=body, headers=as_(keys, "front_desk"))
    problem = assert_problem(reply, 422)
    assert "/body/document_id" in [e["pointer"] for e in problem["errors"]]


async def test_role_refusals_are_403_problems(intake: tuple[httpx.AsyncClient, Path]) -> None:
    client, keys = intake
    reply = await client.post("/patients", json=ADA, headers=as_(keys, "billing"))
    assert_problem(reply, 403)
    missing = await client.get("/patients")
    assert assert_problem(missing, 401) and missing.headers["www-authenticate"].startswith("Bearer")


async def test_the_openapi_document_says_what_each_route_answers(intake: tuple[httpx.AsyncClient, Path]) -> None:
    client, _ = intake
    document = (await client.get("/openapi.json")).json()
    update = document["paths"]["/patients/{patient_id}"]["patch"]
    assert {"200", "401", "403", "404", "409", "412", "422", "428", "500"} <= update["responses"].keys()
    [if_match] = [p for p in update["parameters"] if p["name"].lower() == "if-match"]
    assert if_match["required"] is True
    assert "HTTPValidationError" not in str(document)
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "trace_id", "errors"} <= problem["properties"].keys()


async def test_an_unexpected_error_shows_no_trace_and_no_patient_data(tmp_path: Path) -> None:
    router = APIRouter()

    @router.get("/explode")
    async def explode(actor: Annotated[Actor, Depends(require(Permission.patient_read))]) -> None:
        raise RuntimeError("Ada Lovelace, born 1815-12-10")

    settings = ServiceSettings(service="intake", site="north", var_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1")
    definition = ServiceDefinition(
        title="t",
        description="t",
        migrations=ROOT / "services" / "intake" / "migrations" / "versions",
        routers=[router],
    )
    async with app_in_process(create_service_app(settings, definition)) as client:
        reply = await client.get("/explode", headers=auth_headers(settings.dev_key_dir, "north", "clinician"))
    problem = assert_problem(reply, 500)
    assert "Lovelace" not in reply.text and "Traceback" not in reply.text and "RuntimeError" not in reply.text
    assert problem["trace_id"]


# --- sessions ---------------------------------------------------------------------------------------------------


@pytest.fixture
async def sessions(database_url: str, tmp_path: Path) -> AsyncIterator[Sessions]:
    async with app_in_process(create_sessions(sessions_settings(database_url, tmp_path))) as client:
        yield Sessions(client, sessions_settings(database_url, tmp_path))


async def test_an_unknown_patient_is_404_at_sessions_too(sessions: Sessions) -> None:
    for path in (f"/patients/{uuid.uuid4()}/courses", f"/patients/{uuid.uuid4()}/assessments"):
        assert_problem(await sessions.client.get(path, headers=sessions.as_("clinician")), 404)


async def test_the_front_desk_reads_the_bookings_it_makes_and_a_course_lists_its_sessions(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    desk = sessions.as_("front_desk")
    booking = await sessions.client.get(f"/sessions/{session_id}/booking", headers=desk)
    assert booking.status_code == 200 and "record" not in booking.json()
    assert (await sessions.client.get(f"/sessions/{session_id}", headers=desk)).status_code == 403
    listed = await sessions.client.get(f"/courses/{booking.json()['course_id']}/sessions", headers=desk)
    assert [s["id"] for s in listed.json()] == [session_id]


def test_mint_uses_the_services_var_dir(tmp_path: Path) -> None:
    env = {**os.environ, "KAPNET_VAR_DIR": str(tmp_path)}
    minted = subprocess.run(
        [sys.executable, "-m", "shared.auth", "mint", "--site", "north", "--role", "clinician"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert minted.stdout.count(".") == 2 and (tmp_path / "auth").is_dir()
