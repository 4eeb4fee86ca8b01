"""The dosing session record: pre-dose checks, dose, vitals, dissociation, adverse events, the therapist's
record, discharge, signature and addenda. Each entry is checked against the site's rules (rules.py)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from services.sessions.domain import course_blockers
from services.sessions.models import Course, DosingSession, PatientStatus
from services.sessions.record import (
    Addendum,
    Discharge,
    DissociationEntry,
    DoseEntry,
    PreDoseChecks,
    TherapyRecord,
)
from services.sessions.rules import (
    AdverseEvent,
    CadssAnswerError,
    SedationLevel,
    SessionRuleSettings,
    VitalsReading,
    calculate_dose,
    check_device_times,
    check_dose,
    discharge_check,
    dose_allowed,
    fixed_dose,
    is_serious,
    monitoring_gaps,
    predose_bp_needs_decision,
    score_cadss,
    sedation_level,
    vitals_alerts,
)
from services.sessions.service.courses import move_course, session_or_404, standing_of
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.auth.permissions import Role
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict, RuleRefused
from shared.events.sessions import AdverseEventReported, DoseAdministered, SessionCompleted, VitalsAlertRaised
from shared.treatment import OPEN_COURSE_STATUSES, CourseStatus, Route

PER_KG_ROUTES = frozenset({Route.iv_infusion, Route.intramuscular, Route.subcutaneous})


class RuleViolation(RuleRefused):
    """An entry the site's rules refuse as it stands (a 422), e.g. a dose out of range without an override."""


async def _open_session(uow: UnitOfWork, session_id: uuid.UUID) -> tuple[DosingSession, Course]:
    session = await session_or_404(uow, session_id)
    if session.signed_at is not None:
        raise Conflict("the session record is signed and cannot change; add an addendum instead")
    if session.status not in ("scheduled", "in_progress"):
        raise Conflict(f"the session is {session.status}")
    course = await uow.session.get(Course, session.course_id)
    assert course is not None
    return session, course


# Entries are made as things happen: a time ahead of the server's clock (beyond a little skew between devices)
# would let a record claim observation time that has not passed (found in review).
CLOCK_SKEW = timedelta(minutes=5)


def _not_ahead(*moments: datetime | None) -> None:
    latest = utcnow() + CLOCK_SKEW
    for moment in moments:
        if moment is not None and moment > latest:
            raise RuleViolation(f"{moment.isoformat()} is in the future: record what has happened")


async def _may_dose(uow: UnitOfWork, course: Course) -> None:
    """The course must be open, and the patient still eligible and consented (a withdrawal holds the course,
    and no dose may follow, even in a session booked before)."""
    if CourseStatus(course.status) not in OPEN_COURSE_STATUSES:
        raise Conflict(f"the course is {course.status.replace('_', ' ')}: no dose may be given")
    blockers = course_blockers(await standing_of(uow, course.patient_id))
    if blockers:
        raise Conflict("no dose may be given: " + "; ".join(blockers))


def _with(session: DosingSession, **sections: Any) -> None:
    # A new dict, so the JSON column is seen as changed.
    session.record = {**session.record, **sections}


def _is_clinician(actor: Actor) -> bool:
    return Role.clinician in actor.principal.roles


async def _save(uow: UnitOfWork, actor: Actor, session: DosingSession, action: str) -> DosingSession:
    uow.session.add(session)
    record_access(uow, actor, action, session.patient_id, f"sessions/{session.id}")
    await uow.commit()
    return session


async def record_pre_dose_checks(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, checks: PreDoseChecks, rules: SessionRuleSettings
) -> DosingSession:
    session, course = await _open_session(uow, session_id)
    if "dose" in session.record:
        raise Conflict("the dose was already given; pre-dose checks cannot change")
    await _may_dose(uow, course)
    _not_ahead(checks.vitals.taken_at)
    vitals = checks.vitals
    assert vitals.systolic_mmhg is not None and vitals.diastolic_mmhg is not None
    needs_decision = predose_bp_needs_decision(vitals.systolic_mmhg, vitals.diastolic_mmhg, rules)
    if checks.bp_decision is not None and not needs_decision:
        raise RuleViolation("the blood pressure is within the threshold: no decision to proceed is needed")
    if checks.bp_decision is not None and not _is_clinician(actor):
        raise RuleViolation("only a clinician decides to proceed despite the blood pressure")
    entry = checks.model_dump(mode="json")
    entry.update(bp_needs_decision=needs_decision, recorded_by=actor.sub, recorded_at=utcnow().isoformat())
    reading = {
        **vitals.model_dump(mode="json"),
        "phase": "pre_dose",
        "alerts": [a.model_dump(mode="json") for a in vitals_alerts(vitals, rules)],
    }
    later = [r for r in session.record.get("vitals", []) if r.get("phase") != "pre_dose"]
    _with(session, pre_dose=entry, vitals=sorted([reading, *later], key=lambda r: str(r["taken_at"])))
    session.status = "in_progress"
    return await _save(uow, actor, session, "session.pre_dose")


async def record_dose(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, entry: DoseEntry, rules: SessionRuleSettings
) -> DosingSession:
    session, course = await _open_session(uow, session_id)
    pre_dose = session.record.get("pre_dose")
    if pre_dose is None:
        raise Conflict("record the pre-dose checks first")
    if pre_dose["bp_needs_decision"] and not (pre_dose.get("bp_decision") or {}).get("proceed"):
        raise Conflict("the blood pressure is above the site threshold: a clinician's decision to proceed is needed")
    if "dose" in session.record:
        raise Conflict("a dose is already recorded for this session")
    await _may_dose(uow, course)
    _not_ahead(entry.administration_start, entry.administration_end, *(entry.device_times or []))
    route, weight = Route(course.route), float(pre_dose["weight_kg"])
    status = await uow.session.get(PatientStatus, session.patient_id)
    age = _age(status.birth_date if status else None, entry.administration_start.date())
    try:
        if route in PER_KG_ROUTES:
            if entry.mg_per_kg is None:
                raise RuleViolation(f"{route.value} is dosed in mg/kg: give mg_per_kg")
            calculation = calculate_dose(route, weight, entry.mg_per_kg)
        else:
            if entry.dose_mg is None:
                raise RuleViolation(f"{route.value} is a fixed dose: give dose_mg")
            calculation = fixed_dose(route, weight, entry.dose_mg)
        check = check_dose(
            route,
            dose_mg=calculation.dose_mg,
            weight_kg=weight,
            age_years=age,
            first_esketamine_dose=entry.first_esketamine_dose,
            settings=rules,
        )
    except ValidationError as exc:
        raise RuleViolation(f"the dose cannot be checked: {exc.errors(include_url=False)[0]['msg']}") from None
    if not check.within_range:
        if entry.override is None or not check.overridable:
            raise RuleViolation(
                "; ".join(check.problems)
                + ("" if check.overridable else " (no override can accept this)")
                + ("" if entry.override else "; a clinician may override with a reason")
            )
        if not dose_allowed(check, entry.override):
            raise RuleViolation("; ".join(check.problems))
    elif entry.override is not None:
        raise RuleViolation("the dose is within the site's range: no override is needed")
    device_problems = check_device_times(entry.device_times, settings=rules) if entry.device_times else []
    if device_problems:
        raise RuleViolation("; ".join(device_problems))
    ended = entry.administration_end or (max(entry.device_times) if entry.device_times else entry.administration_start)
    _with(
        session,
        dose={
            "route": route.value,
            "dose_mg": check.dose_mg,
            "mg_per_kg": check.mg_per_kg,
            "weight_kg": weight,
            "within_range": check.within_range,
            "problems": check.problems,
            "devices": check.devices,
            "override_reason": entry.override.reason if entry.override else None,
            "lot_number": entry.lot_number,
            "administration_start": entry.administration_start.isoformat(),
            "administration_end": ended.isoformat(),
            "device_times": [t.isoformat() for t in entry.device_times or []],
            "recorded_by": actor.sub,
        },
    )
    uow.session.add(session)
    await uow.publish(
        DoseAdministered(
            patient_id=session.patient_id,
            session_id=session.id,
            course_id=session.course_id,
            route=route,
            dose_mg=check.dose_mg,
            dose_mg_per_kg=check.mg_per_kg,
            within_range=check.within_range,
            override_reason=entry.override.reason if entry.override else None,
            administered_at=entry.administration_start,
        )
    )
    if CourseStatus(course.status) is CourseStatus.planned:
        await move_course(uow, course, CourseStatus.active, "first dose given")
    return await _save(uow, actor, session, "dose.administer")


async def record_vitals(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, reading: VitalsReading, rules: SessionRuleSettings
) -> tuple[DosingSession, list[dict[str, Any]]]:
    session, _ = await _open_session(uow, session_id)
    if "pre_dose" not in session.record:
        raise Conflict("record the pre-dose checks first (they include the first vitals)")
    _not_ahead(reading.taken_at)
    alerts = vitals_alerts(reading, rules)
    entry = {
        **reading.model_dump(mode="json"),
        "phase": "monitoring",
        "recorded_by": actor.sub,
        "alerts": [a.model_dump(mode="json") for a in alerts],
    }
    timeline = sorted([*session.record.get("vitals", []), entry], key=lambda r: r["taken_at"])
    _with(session, vitals=timeline)
    uow.session.add(session)
    for alert in alerts:
        await uow.publish(
            VitalsAlertRaised(
                patient_id=session.patient_id,
                session_id=session.id,
                code=alert.code.value,
                value=alert.value,
                threshold=alert.threshold,
                message=alert.message,
                taken_at=reading.taken_at,
            )
        )
    await _save(uow, actor, session, "session.vitals")
    return session, entry["alerts"]


async def record_dissociation(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, entry: DissociationEntry
) -> DosingSession:
    session, _ = await _open_session(uow, session_id)
    try:
        _not_ahead(entry.assessed_at)
        score = score_cadss(entry.cadss_subjective, entry.cadss_observer)
    except CadssAnswerError as exc:
        raise RuleViolation(str(exc)) from None
    level = sedation_level(entry.moaa_s)
    _with(
        session,
        dissociation={
            **score.model_dump(mode="json"),
            "moaa_s": entry.moaa_s,
            "sedation_level": level.value,
            "assessed_at": entry.assessed_at.isoformat(),
            "recorded_by": actor.sub,
        },
    )
    return await _save(uow, actor, session, "session.dissociation")


async def report_adverse_event(
    uow: UnitOfWork,
    actor: Actor,
    session_id: uuid.UUID,
    event: AdverseEvent,
    action_taken: str,
    occurred_at: datetime,
) -> tuple[DosingSession, dict[str, Any]]:
    session, _ = await _open_session(uow, session_id)
    _not_ahead(occurred_at)
    serious = is_serious(event)
    entry = {
        **event.model_dump(mode="json"),
        "id": str(uuid.uuid4()),
        "serious": serious,
        "flagged_for_reporting": serious,
        "action_taken": action_taken,
        "occurred_at": occurred_at.isoformat(),
        "reported_by": actor.sub,
    }
    _with(session, adverse_events=[*session.record.get("adverse_events", []), entry])
    uow.session.add(session)
    await uow.publish(
        AdverseEventReported(
            patient_id=session.patient_id,
            session_id=session.id,
            adverse_event_id=uuid.UUID(entry["id"]),
            type=event.type.value,
            severity=event.severity.value,
            serious=serious,
            action_taken=action_taken,
            occurred_at=occurred_at,
        )
    )
    await _save(uow, actor, session, "session.adverse_event")
    return session, entry


async def record_therapy(uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, therapy: TherapyRecord) -> DosingSession:
    session, _ = await _open_session(uow, session_id)
    _with(session, therapy={**therapy.model_dump(mode="json"), "recorded_by": actor.sub})
    return await _save(uow, actor, session, "session.therapy")


async def discharge(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, request: Discharge, rules: SessionRuleSettings
) -> DosingSession:
    session, course = await _open_session(uow, session_id)
    dose = session.record.get("dose")
    if dose is None:
        raise Conflict("no dose is recorded: cancel the session or record the dose first")
    _not_ahead(request.discharged_at)
    now = request.discharged_at or utcnow()
    dissociation = session.record.get("dissociation")
    timeline = _timeline(session)
    last = timeline[-1] if timeline else None
    ended = datetime.fromisoformat(dose["administration_end"])
    check = discharge_check(
        Route(course.route),
        last_administration_end=ended,
        now=now,
        last_reading=last,
        escort_present=request.escort_present,
        settings=rules,
        # A patient still sedated stays: the REMS asks for monitoring until sedation has resolved.
        sedation=SedationLevel(dissociation["sedation_level"]) if dissociation else None,
    )
    if not check.allowed:
        raise Conflict("discharge not yet allowed: " + "; ".join(check.unmet))
    observation_minutes = int((now - ended).total_seconds() // 60)
    _with(
        session,
        discharge={
            "discharged_at": now.isoformat(),
            "escort_present": True,
            "observation_minutes": observation_minutes,
            "by": actor.sub,
        },
    )
    session.status = "completed"
    uow.session.add(session)
    await uow.publish(
        SessionCompleted(
            patient_id=session.patient_id,
            session_id=session.id,
            course_id=session.course_id,
            route=Route(course.route),
            dose_mg=dose["dose_mg"],
            dose_mg_per_kg=dose["mg_per_kg"],
            observation_minutes=observation_minutes,
            modalities=(session.record.get("therapy") or {}).get("modalities", []),
            dissociation_score=dissociation["total"] if dissociation else None,
            dissociation_scale=dissociation["version"] if dissociation else None,
            discharged_at=now,
        )
    )
    return await _save(uow, actor, session, "session.discharge")


async def sign(uow: UnitOfWork, actor: Actor, session_id: uuid.UUID) -> DosingSession:
    session = await session_or_404(uow, session_id)
    if session.signed_at is not None:
        raise Conflict("the session record is already signed")
    if session.status not in ("completed", "cancelled", "no_show"):
        raise Conflict("sign the record after discharge")
    session.signed_at, session.signed_by = utcnow(), actor.sub
    return await _save(uow, actor, session, "session.sign")


def _timeline(session: DosingSession) -> list[VitalsReading]:
    return [
        VitalsReading.model_validate({k: v for k, v in entry.items() if k in VitalsReading.model_fields})
        for entry in session.record.get("vitals", [])
    ]


async def monitoring(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, rules: SessionRuleSettings
) -> dict[str, Any]:
    """Where the monitoring stands: what the vitals timeline is missing (pre-dose reading, every 15 minutes,
    blood pressure at about 40 minutes), the last reading's alerts, and what discharge still waits for."""
    session = await session_or_404(uow, session_id)
    course = await uow.session.get(Course, session.course_id)
    assert course is not None
    dose = session.record.get("dose")
    now = utcnow()
    timeline = _timeline(session)
    status: dict[str, Any] = {
        "session_id": str(session.id),
        "status": session.status,
        "dose_recorded": bool(dose),
        "gaps": [],
        "last_alerts": [],
        "discharge_unmet": [],
    }
    if timeline:
        status["last_alerts"] = session.record["vitals"][-1].get("alerts", [])
    if dose and session.status == "in_progress":
        start = datetime.fromisoformat(dose["administration_start"])
        status["gaps"] = monitoring_gaps(start, timeline, now, rules)
        check = discharge_check(
            Route(course.route),
            last_administration_end=datetime.fromisoformat(dose["administration_end"]),
            now=now,
            last_reading=timeline[-1] if timeline else None,
            escort_present=bool((session.record.get("pre_dose") or {}).get("escort_arranged")),
            settings=rules,
        )
        status["discharge_unmet"] = check.unmet
    record_access(uow, actor, "session.monitoring", session.patient_id, f"sessions/{session.id}")
    await uow.commit()
    return status


async def add_addendum(uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, addendum: Addendum) -> DosingSession:
    """After signing only an addendum is allowed, kept beside the original, which never changes."""
    session = await session_or_404(uow, session_id)
    if session.signed_at is None:
        raise Conflict("the record is not signed yet: change it directly")
    entry = {"text": addendum.text, "author": actor.sub, "added_at": utcnow().isoformat()}
    _with(session, addenda=[*session.record.get("addenda", []), entry])
    return await _save(uow, actor, session, "session.addendum")


def _age(birth_date: date | None, on: date) -> int:
    if birth_date is None:
        raise Conflict("sessions does not know the patient's date of birth yet (from intake's registration)")
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
