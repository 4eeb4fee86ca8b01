"""Sessions learns eligibility and consent from intake's events over the real broker, never by calling intake."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from services.intake.app import create_app as create_intake
from services.sessions.app import create_app as create_sessions
from services.sessions.models import Course, PatientStatus
from shared.settings import ServiceSettings
from tests.harness import app_in_process, auth_headers, eventually
from tests.intake.test_consent_and_screening_api import DOCUMENT, NO_FLAGS, SIGNATURE

pytestmark = pytest.mark.broker


async def test_a_course_follows_intake_and_a_withdrawal_holds_it(kafka: str, tmp_path: Path) -> None:
    site = f"se{uuid.uuid4().hex[:6]}"
    common: dict[str, Any] = {
        "site": site,
        "var_dir": tmp_path,
        "kafka_bootstrap_servers": kafka,
        "outbox_poll_interval_seconds": 0.2,
    }
    intake_app = create_intake(ServiceSettings(service="intake", **common))
    sessions_app = create_sessions(ServiceSettings(service="sessions", **common))
    keys = tmp_path / "auth"

    def as_(role: str) -> dict[str, str]:
        return auth_headers(keys, site, role)

    async with app_in_process(intake_app) as intake, app_in_process(sessions_app) as sessions:
        database = sessions_app.state.runtime.database

        async def status(patient_id: str) -> PatientStatus | None:
            async with database.sessions() as s:
                return await s.get(PatientStatus, uuid.UUID(patient_id))

        body = {"given_name": "Flow", "family_name": "Through", "birth_date": "1975-05-05", "sex": "female"}
        patient = (await intake.post("/patients", json=body, headers=as_("front_desk"))).json()
        base = f"/patients/{patient['id']}"
        await intake.post(f"{base}/screenings", json=NO_FLAGS, headers=as_("clinician"))
        document = (await intake.post("/consent-documents", json=DOCUMENT, headers=as_("site_admin"))).json()
        consent = (
            await intake.post(
                f"{base}/consents", json={**SIGNATURE, "document_id": document["id"]}, headers=as_("front_desk")
            )
        ).json()

        async def a_course_can_be_planned() -> bool:
            s = await status(patient["id"])
            return s is not None and s.eligible and (await plan()).status_code == 201

        async def plan() -> httpx.Response:
            return await sessions.post(
                "/courses",
                headers=as_("clinician"),
                json={
                    "patient_id": patient["id"],
                    "indication": "ptsd",
                    "route": "intranasal_esketamine",
                    "planned_dosing_sessions": 8,
                    "dosing_sessions_per_week": 2,
                    "planned_integration_sessions": 4,
                },
            )

        await eventually(a_course_can_be_planned, within=60, what="sessions to learn eligibility and consent")

        await intake.post(
            f"{base}/consents/{consent['id']}/withdraw", json={"reason": "no longer wishes"}, headers=as_("front_desk")
        )

        async def held() -> bool:
            async with database.sessions() as s:
                course = (await s.exec(select(Course))).first()
                return course is not None and course.status == "on_hold"

        await eventually(held, within=60, what="the course to go on hold")
