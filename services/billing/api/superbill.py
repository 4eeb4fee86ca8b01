"""A patient's superbill for a period, as JSON and as PDF: what they send their health plan to seek out-of-network
reimbursement."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response

from services.billing.api.deps import Reader, SettingsDep, SiteZone
from services.billing.domain.settings import BillingSettings
from services.billing.domain.superbill import Superbill
from services.billing.service import superbill as superbills
from shared.app import UnitOfWorkDep
from shared.auth.guard import Actor
from shared.db.unit_of_work import UnitOfWork
from shared.errors import InvalidRequest
from shared.instants import PlausibleDate

router = APIRouter(prefix="/patients/{patient_id}", tags=["superbills"])

From = Annotated[PlausibleDate, Query(alias="from", description="first date of service, YYYY-MM-DD")]
To = Annotated[PlausibleDate, Query(alias="to", description="last date of service (inclusive), YYYY-MM-DD")]
# A superbill names the patient and their diagnoses: no cache keeps it.
NO_STORE = {"Cache-Control": "no-store"}


class PdfResponse(Response):
    media_type = "application/pdf"


def _period(from_: date, to: date) -> None:
    if from_ > to:
        message = f"the period starts ({from_.isoformat()}) after it ends ({to.isoformat()})"
        raise InvalidRequest(f"/query/from: {message}", [("/query/from", message)])


async def _superbill(
    patient_id: uuid.UUID,
    from_: date,
    to: date,
    actor: Actor,
    uow: UnitOfWork,
    settings: BillingSettings,
    zone: ZoneInfo,
) -> Superbill:
    _period(from_, to)
    return await superbills.superbill(uow, actor, patient_id, from_, to, settings, zone=zone)


@router.get(
    "/superbill",
    response_model=Superbill,
    summary="The patient's superbill for a period: visits with codes, diagnoses, charges and what they paid",
)
async def superbill(
    patient_id: uuid.UUID,
    from_: From,
    to: To,
    actor: Reader,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    zone: SiteZone,
    response: Response,
) -> Superbill:
    response.headers.update(NO_STORE)
    return await _superbill(patient_id, from_, to, actor, uow, settings, zone)


def _render_pdf(superbill: Superbill) -> bytes:
    # Imported on the first PDF asked for, in the rendering thread, not at start: ReportLab and its fonts cost every
    # billing process memory (issue 15's footprint), and most never render one.
    from services.billing.superbill_pdf import render_superbill_pdf

    return render_superbill_pdf(superbill)


@router.get(
    "/superbill.pdf",
    response_class=PdfResponse,
    responses={200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}},
    summary="The patient's superbill for a period, as a PDF to send to their health plan",
)
async def superbill_pdf(
    patient_id: uuid.UUID,
    from_: From,
    to: To,
    actor: Reader,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    zone: SiteZone,
) -> PdfResponse:
    found = await _superbill(patient_id, from_, to, actor, uow, settings, zone)
    # The file name carries the period only: a download folder or a mail attachment must not show who it is for.
    filename = f"superbill_{from_.isoformat()}_{to.isoformat()}.pdf"
    # Rendering takes a while (about 0.2 s for a hundred lines): off the event loop.
    return PdfResponse(
        await asyncio.to_thread(_render_pdf, found),
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **NO_STORE},
    )
