"""The dosing session record at the chair. Every use case has one shape: load the chart (and the patient's facts
it is checked against), call its method, then save, publish what it returned, audit and commit."""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

from services.sessions.domain.dosing import DoseCheck
from services.sessions.domain.session_record import (
    AddendumEntry,
    AdverseEventRecord,
    AdverseEventReport,
    DischargeEntry,
    DoseEntry,
    InfusionEndEntry,
    MonitoringView,
    PreDoseEntry,
    RecoveryCheckEntry,
    TherapyEntry,
)
from services.sessions.domain.settings import SessionRuleSettings
from services.sessions.domain.vitals import VitalsAlert, VitalsReading
from services.sessions.service import store
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.db.unit_of_work import UnitOfWork
from shared.events.registry import DomainEvent
from shared.instants import local_date, utcnow


async def _save(
    uow: UnitOfWork, actor: Actor, loaded: store.LoadedChart, action: str, events: list[DomainEvent]
) -> store.LoadedChart:
    store.save_chart(uow, loaded)
    await uow.publish_all(events)
    record_access(uow, actor, action, loaded.chart.patient_id, f"sessions/{loaded.chart.id}")
    await uow.commit()
    return loaded


async def record_pre_dose(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, entry: PreDoseEntry, rules: SessionRuleSettings
) -> store.LoadedChart:
    loaded = await store.load_chart(uow, session_id)
    context = await store.dosing_context(uow, loaded)
    events = loaded.chart.record_pre_dose(entry, store.staff(actor), context, rules, utcnow())
    return await _save(uow, actor, loaded, "session.pre_dose", events)


async def record_dose(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, entry: DoseEntry, rules: SessionRuleSettings, zone: ZoneInfo
) -> store.LoadedChart:
    loaded = await store.load_chart(uow, session_id)
    context = await store.dosing_context(uow, loaded)
    now = utcnow()
    events = loaded.chart.record_dose(entry, store.staff(actor), context, rules, zone, now)
    # The first dose starts the course.
    events += loaded.course.course.first_dose_given(now)
    store.save_course(uow, loaded.course)
    return await _save(uow, actor, loaded, "dose.administer", events)


async def record_infusion_end(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, entry: InfusionEndEntry, rules: SessionRuleSettings
) -> store.LoadedChart:
    loaded = await store.load_chart(uow, session_id)
    events = loaded.chart.record_infusion_end(entry, store.staff(actor), rules, utcnow())
    return await _save(uow, actor, loaded, "session.infusion_end", events)


async def record_vitals(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, reading: VitalsReading, rules: SessionRuleSettings
) -> tuple[store.LoadedChart, list[VitalsAlert]]:
    loaded = await store.load_chart(uow, session_id)
    alerts, events = loaded.chart.record_vitals(reading, store.staff(actor), rules, utcnow())
    return await _save(uow, actor, loaded, "session.vitals", events), alerts


async def record_recovery_check(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, entry: RecoveryCheckEntry
) -> store.LoadedChart:
    loaded = await store.load_chart(uow, session_id)
    events = loaded.chart.record_recovery_check(entry, store.staff(actor), utcnow())
    return await _save(uow, actor, loaded, "session.recovery_check", events)


async def report_adverse_event(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, report: AdverseEventReport
) -> AdverseEventRecord:
    loaded = await store.load_chart(uow, session_id)
    entry, events = loaded.chart.report_adverse_event(report, store.staff(actor), utcnow())
    await _save(uow, actor, loaded, "session.adverse_event", events)
    return entry


async def record_therapy(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, entry: TherapyEntry
) -> store.LoadedChart:
    loaded = await store.load_chart(uow, session_id)
    events = loaded.chart.record_therapy(entry, store.staff(actor))
    return await _save(uow, actor, loaded, "session.therapy", events)


async def discharge(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, entry: DischargeEntry, rules: SessionRuleSettings
) -> store.LoadedChart:
    loaded = await store.load_chart(uow, session_id)
    events = loaded.chart.discharge(entry, store.staff(actor), rules, utcnow())
    return await _save(uow, actor, loaded, "session.discharge", events)


async def sign(uow: UnitOfWork, actor: Actor, session_id: uuid.UUID) -> store.LoadedChart:
    loaded = await store.load_chart(uow, session_id)
    events = loaded.chart.sign(store.staff(actor), utcnow())
    return await _save(uow, actor, loaded, "session.sign", events)


async def add_addendum(uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, entry: AddendumEntry) -> store.LoadedChart:
    loaded = await store.load_chart(uow, session_id)
    events = loaded.chart.add_addendum(entry, store.staff(actor), utcnow())
    return await _save(uow, actor, loaded, "session.addendum", events)


async def monitoring(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, rules: SessionRuleSettings
) -> MonitoringView:
    loaded = await store.load_chart(uow, session_id)
    view = loaded.chart.monitoring(rules, utcnow())
    record_access(uow, actor, "session.monitoring", loaded.chart.patient_id, f"sessions/{session_id}")
    await uow.commit()
    return view


async def dose_calculation(
    uow: UnitOfWork,
    actor: Actor,
    session_id: uuid.UUID,
    mg_per_kg: float | None,
    dose_mg: float | None,
    rules: SessionRuleSettings,
    zone: ZoneInfo,
) -> DoseCheck:
    """The bedside calculator: the dose worked out and checked as record_dose will check it, saving nothing."""
    loaded = await store.load_chart(uow, session_id)
    context = await store.dosing_context(uow, loaded)
    _, check = loaded.chart.dose_check(mg_per_kg, dose_mg, context, rules, local_date(utcnow(), zone))
    record_access(uow, actor, "session.dose_calculation", loaded.chart.patient_id, f"sessions/{session_id}")
    await uow.commit()
    return check
