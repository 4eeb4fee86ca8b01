"""Discharge: observation from the end of the administration, the latest value of each vital sign, esketamine's
40-minute blood pressure, sedation and dissociation resolved, and an escort. Every unmet criterion is listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.sessions.domain.discharge import DischargeCheck, discharge_check, vital_sign_unmet
from services.sessions.domain.recovery import RecoveryCheck, sedation_level
from services.sessions.domain.settings import DEFAULT_SETTINGS, SessionRuleSettings
from services.sessions.domain.vitals import VitalsReading
from shared.treatment import Route

S = DEFAULT_SETTINGS
START = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # the start of the administration (the first esketamine device)
NORMAL = {"systolic_mmhg": 125, "diastolic_mmhg": 80, "heart_rate_bpm": 72, "spo2_percent": 98}
NORMAL_FULL = {**NORMAL, "respiratory_rate_per_min": 14}


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def full(at: datetime, **changes: int) -> VitalsReading:
    return VitalsReading.model_validate({"taken_at": at, **NORMAL_FULL, **changes})


def alert(at: datetime, moaa_s: int = 5) -> RecoveryCheck:
    return RecoveryCheck(
        assessed_at=at,
        moaa_s=moaa_s,
        sedation_level=sedation_level(moaa_s),
        dissociation_present=False,
        respiratory_depression_present=False,
        recorded_by="nurse-1",
    )


def discharge(route: Route, now: datetime, **changes: Any) -> list[str]:
    """Everything in order (a full set of vital signs 5 minutes ago and at 40 minutes, a recent check, an escort)
    except what ``changes`` says."""
    arguments: dict[str, Any] = {
        "administration_start": START,
        "administration_end": START,
        "now": now,
        "readings": [full(START + minutes(40)), full(now - minutes(5))],
        "recovery_checks": [alert(now - minutes(5))],
        "escort_present": True,
        "settings": S,
        **changes,
    }
    result = discharge_check(route, **arguments)
    assert result.allowed is (result.unmet == [])
    return result.unmet


# --- observation, from the end of the last administration ---

OBSERVATION = [
    # [Spravato PI], [Spravato REMS]: at least 2 hours; the racemic routes: the sessions issue's 60 minutes.
    (Route.intranasal_esketamine, 120),
    (Route.iv_infusion, 60),
    (Route.intramuscular, 60),
    (Route.subcutaneous, 60),
    (Route.sublingual_oral, 60),
]


@pytest.mark.parametrize(("route", "minimum"), OBSERVATION)
def test_observation_minimum_reached_exactly(route: Route, minimum: int) -> None:
    assert discharge(route, START + minutes(minimum)) == []


@pytest.mark.parametrize(("route", "minimum"), OBSERVATION)
def test_observation_one_minute_short(route: Route, minimum: int) -> None:
    (unmet,) = discharge(route, START + minutes(minimum - 1))
    assert unmet.startswith("observation not complete") and unmet.endswith("(1 min to go)")


def test_observation_message_reads_for_a_nurse() -> None:
    assert discharge(Route.intranasal_esketamine, START + minutes(119)) == [
        "observation not complete: 1 h 59 min of the 2 h minimum after the last esketamine device (1 min to go)"
    ]
    assert discharge(Route.iv_infusion, START + minutes(45)) == [
        "observation not complete: 45 min of the 1 h minimum after the end of the infusion (15 min to go)"
    ]


def test_iv_observation_counts_from_the_end_of_the_infusion() -> None:
    # Started at START and ran 40 minutes: 60 minutes after the start is not 60 minutes after the end.
    end = START + minutes(40)
    (unmet,) = discharge(Route.iv_infusion, end + minutes(59), administration_end=end)
    assert unmet.startswith("observation not complete: 59 min of the 1 h minimum after the end of the infusion")
    assert discharge(Route.iv_infusion, end + minutes(60), administration_end=end) == []


def test_esketamine_observation_counts_from_the_last_device() -> None:
    # 84 mg: three devices, 5 minutes apart ([Spravato PI]); the last at +10 minutes.
    last = START + minutes(10)
    assert discharge(Route.intranasal_esketamine, last + minutes(119), administration_end=last) != []
    assert discharge(Route.intranasal_esketamine, last + minutes(120), administration_end=last) == []


def test_an_infusion_with_no_recorded_end_cannot_be_discharged() -> None:
    unmet = discharge(Route.iv_infusion, START + minutes(300), administration_end=None)
    assert unmet[0] == ("the infusion's end is not recorded: record when it ended (observation counts from the end)")


# --- esketamine: a blood pressure at about 40 minutes ---


@pytest.mark.parametrize(
    ("after_first_device", "counts"), [(34, False), (35, True), (40, True), (50, True), (51, False)]
)
def test_esketamine_needs_a_bp_35_to_50_minutes_after_the_first_device(after_first_device: int, counts: bool) -> None:
    # [Spravato PI]: reassess blood pressure at about 40 minutes; [Spravato REMS] form: BP at 40 minutes.
    last = START + minutes(10)
    now = last + minutes(120)
    readings = [full(START + minutes(after_first_device)), full(now - minutes(5))]
    unmet = discharge(Route.intranasal_esketamine, now, administration_end=last, readings=readings)
    assert unmet == (
        []
        if counts
        else [
            "no blood pressure taken 35-50 minutes after the first device (the label asks for one at about 40 minutes)"
        ]
    )


def test_only_esketamine_needs_the_40_minute_bp() -> None:
    now = START + minutes(90)
    assert discharge(Route.iv_infusion, now, readings=[full(now - minutes(5))]) == []


# --- the latest value of each vital sign ---

NOW = START + minutes(130)


@pytest.mark.parametrize(
    ("changes", "unmet"),
    [
        # Below [ESC/ESH 2018] grade 2 (160/100): at most 159/99.
        ({"systolic_mmhg": 159, "diastolic_mmhg": 99}, None),
        (
            {"systolic_mmhg": 160, "diastolic_mmhg": 99},
            "blood pressure 160/99 mmHg is above the discharge limit of 159/99 mmHg",
        ),
        (
            {"systolic_mmhg": 159, "diastolic_mmhg": 100},
            "blood pressure 159/100 mmHg is above the discharge limit of 159/99 mmHg",
        ),
        # [NEWS2] systolic <= 90 scores 3.
        ({"systolic_mmhg": 91, "diastolic_mmhg": 60}, None),
        ({"systolic_mmhg": 90, "diastolic_mmhg": 60}, "systolic 90 mmHg is below the discharge minimum of 91 mmHg"),
        # [AHA ACLS] 50/min; [NEWS2] 111/min or more scores 2.
        ({"heart_rate_bpm": 50}, None),
        ({"heart_rate_bpm": 49}, "heart rate 49/min is outside the discharge range of 50-110/min"),
        ({"heart_rate_bpm": 110}, None),
        ({"heart_rate_bpm": 111}, "heart rate 111/min is outside the discharge range of 50-110/min"),
        # [NEWS2] 94-95 % scores 1, <= 93 % scores 2 or more.
        ({"spo2_percent": 94}, None),
        ({"spo2_percent": 93}, "SpO2 93 % is below the discharge minimum of 94 %"),
        # [NEWS2] <= 8/min scores 3, 21-24/min scores 2.
        ({"respiratory_rate_per_min": 9}, None),
        ({"respiratory_rate_per_min": 8}, "respiratory rate 8/min is outside the discharge range of 9-20/min"),
        ({"respiratory_rate_per_min": 20}, None),
        ({"respiratory_rate_per_min": 21}, "respiratory rate 21/min is outside the discharge range of 9-20/min"),
    ],
)
def test_each_vital_sign_within_the_discharge_criteria(changes: dict[str, int], unmet: str | None) -> None:
    assert vital_sign_unmet([full(NOW, **changes)], NOW, S) == ([] if unmet is None else [unmet])


def test_a_full_set_at_most_15_minutes_old() -> None:
    assert vital_sign_unmet([full(NOW - minutes(15))], NOW, S) == []
    assert vital_sign_unmet([full(NOW - minutes(16))], NOW, S) == [
        f"the last {name} is 16 min old: take it again (at most 15 minutes old at discharge)"
        for name in ("blood pressure", "heart rate", "SpO2", "respiratory rate")
    ]


def test_each_measure_is_as_old_as_its_own_latest_value() -> None:
    # A blood pressure taken now does not make the SpO2 of half an hour ago recent.
    readings = [full(NOW - minutes(30)), VitalsReading(taken_at=NOW - minutes(2), systolic_mmhg=130, diastolic_mmhg=85)]
    assert vital_sign_unmet(readings, NOW, S) == [
        f"the last {name} is 30 min old: take it again (at most 15 minutes old at discharge)"
        for name in ("heart rate", "SpO2", "respiratory rate")
    ]


def test_a_recent_good_value_replaces_an_older_bad_one() -> None:
    readings = [full(NOW - minutes(20), systolic_mmhg=175, spo2_percent=90), full(NOW - minutes(1))]
    assert vital_sign_unmet(readings, NOW, S) == []


def test_an_old_value_out_of_range_is_reported_on_both_counts() -> None:
    assert vital_sign_unmet([full(NOW - minutes(20), spo2_percent=93)], NOW, S)[2:4] == [
        "the last SpO2 is 20 min old: take it again (at most 15 minutes old at discharge)",
        "SpO2 93 % is below the discharge minimum of 94 %",
    ]


def test_every_vital_sign_must_have_been_recorded() -> None:
    assert vital_sign_unmet([VitalsReading(taken_at=NOW, **NORMAL)], NOW, S) == [
        "no respiratory rate recorded: take a full set of vital signs"
    ]
    assert vital_sign_unmet([], NOW, S) == [
        f"no {name} recorded: take a full set of vital signs"
        for name in ("blood pressure", "heart rate", "SpO2", "respiratory rate")
    ]


def test_readings_after_now_are_not_counted() -> None:
    assert vital_sign_unmet([full(NOW + minutes(1))], NOW, S) == vital_sign_unmet([], NOW, S)


def test_discharge_criteria_are_site_settings() -> None:
    site = SessionRuleSettings(discharge_spo2_min_percent=96, discharge_reading_max_age_minutes=10)
    assert vital_sign_unmet([full(NOW - minutes(10), spo2_percent=96)], NOW, site) == []
    assert vital_sign_unmet([full(NOW, spo2_percent=95)], NOW, site) == [
        "SpO2 95 % is below the discharge minimum of 96 %"
    ]


def test_vitals_not_back_block_discharge() -> None:
    unmet = discharge(
        Route.intramuscular, NOW, readings=[full(NOW - minutes(5), systolic_mmhg=182, diastolic_mmhg=100)]
    )
    assert unmet == ["blood pressure 182/100 mmHg is above the discharge limit of 159/99 mmHg"]


# --- sedation, dissociation, escort ---


def test_sedation_must_have_resolved() -> None:
    assert discharge(Route.intramuscular, NOW, recovery_checks=[alert(NOW - minutes(5), 4)]) == [
        "still sedated (MOAA/S 4 of 5): wait until the patient responds readily to their name"
    ]


def test_a_check_before_the_end_of_the_infusion_does_not_count() -> None:
    end = START + minutes(40)
    unmet = discharge(Route.iv_infusion, end + minutes(70), administration_end=end, recovery_checks=[alert(end)])
    assert unmet == [
        "the last sedation and dissociation check is 1 h 10 min old: check again (at most 15 minutes old at discharge)"
    ]
    unmet = discharge(Route.iv_infusion, end + minutes(70), administration_end=end, recovery_checks=[alert(START)])
    assert unmet[0].startswith("no sedation and dissociation check since the dose ended")


def test_escort_absent() -> None:
    # [Spravato PI]: no driving until the next day after a restful sleep.
    assert discharge(Route.intramuscular, NOW, escort_present=False) == [
        "no escort present: the patient must leave with a responsible adult and must not drive"
    ]


def test_every_unmet_criterion_is_listed_in_order() -> None:
    now = START + minutes(60)
    unmet = discharge(
        Route.intranasal_esketamine,
        now,
        readings=[VitalsReading(taken_at=now - minutes(5), spo2_percent=90)],
        recovery_checks=[alert(now - minutes(5), 3)],
        escort_present=False,
    )
    assert [u.split(":")[0].split(" (")[0] for u in unmet] == [
        "observation not complete",
        "no blood pressure recorded",
        "no heart rate recorded",
        "SpO2 90 % is below the discharge minimum of 94 %",
        "no respiratory rate recorded",
        "no blood pressure taken 35-50 minutes after the first device",
        "still sedated",
        "no escort present",
    ]


@pytest.mark.parametrize(("allowed", "unmet"), [(True, ["no escort present"]), (False, [])])
def test_a_discharge_check_cannot_contradict_itself(allowed: bool, unmet: list[str]) -> None:
    with pytest.raises(ValidationError):
        DischargeCheck(allowed=allowed, unmet=unmet)
