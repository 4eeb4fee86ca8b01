"""SessionRuleSettings: the defaults and their sources, and the bounds that keep every safety limit switched on.

A site may be stricter than a default; no setting may switch a limit off (an observation of 0 minutes, an alert
that never fires, a ceiling above its source, a discharge criterion looser than its alert, a range above its
ceiling). Each refusal below is checked for its own reason, and the other side of its boundary is accepted.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from services.sessions.domain.settings import (
    DEFAULT_SETTINGS,
    ESKETAMINE_DEVICE_MG,
    ESKETAMINE_LABEL_MAXIMUM_MG,
    IM_SC_CEILING_LIMIT_MG_PER_KG,
    IV_CEILING_LIMIT_MG_PER_KG,
    SUBLINGUAL_ORAL_CEILING_LIMIT_MG,
    DoseRange,
    EsketamineLabel,
    MinutesRange,
    SessionRuleSettings,
)
from shared.treatment import Route

S = DEFAULT_SETTINGS


def test_the_defaults_are_valid_and_the_module_default_is_them() -> None:
    assert SessionRuleSettings() == S


def test_dose_defaults_are_the_published_values() -> None:
    # [Andrade 2017]: 0.1-0.75 mg/kg IV used, 0.5 usual; [Sanacora 2017]: 0.5 mg/kg over 40 minutes.
    assert S.iv_mg_per_kg == DoseRange(minimum=0.1, maximum=0.75)
    assert S.iv_default_mg_per_kg == 0.5
    assert S.iv_infusion_minutes == MinutesRange(minimum=30, maximum=60)
    # [Fava 2018]: 1.0 mg/kg, the highest IV dose studied for depression.
    assert S.iv_ceiling_mg_per_kg == IV_CEILING_LIMIT_MG_PER_KG == 1.0
    # [Chilukuri 2014]: IM 0.25 and 0.5 mg/kg; [Loo 2023]: SC 0.5-0.9 mg/kg.
    assert S.im_mg_per_kg == DoseRange(minimum=0.25, maximum=0.5)
    assert S.subcutaneous_mg_per_kg == DoseRange(minimum=0.5, maximum=0.9)
    assert (S.im_ceiling_mg_per_kg, S.subcutaneous_ceiling_mg_per_kg, IM_SC_CEILING_LIMIT_MG_PER_KG) == (0.75, 1.0, 1.0)
    # [Al Shirawi 2017] starts at 50 mg; [Andrade 2019]: nothing above 300 mg is published.
    assert S.sublingual_oral_mg == DoseRange(minimum=50, maximum=300)
    assert S.sublingual_oral_ceiling_mg == SUBLINGUAL_ORAL_CEILING_LIMIT_MG == 300
    # [Spravato PI]: 28 mg devices, 56 or 84 mg a session, 56 mg on day 1, at most 84 mg, 5 minutes between devices.
    assert (ESKETAMINE_DEVICE_MG, ESKETAMINE_LABEL_MAXIMUM_MG) == (28, 84)
    assert S.esketamine_label is EsketamineLabel.us
    assert (S.esketamine_doses_mg, S.esketamine_first_dose_mg) == ((56, 84), 56)
    assert S.esketamine_device_interval_minutes == 5
    # [Spravato SmPC] 4.2, elderly: from 65, day 1 is 28 mg and 28, 56 or 84 mg may follow.
    assert S.esketamine_older_adult_age_years == 65
    assert (S.esketamine_older_adult_doses_mg, S.esketamine_older_adult_first_dose_mg) == ((28, 56, 84), 28)


def test_vital_sign_defaults_are_the_published_values() -> None:
    # [Spravato PI]: ">140 mmHg systolic, >90 mmHg diastolic" as a guide before dosing.
    assert str(S.predose_bp_threshold) == "140/90"
    assert S.predose_reading_window_minutes == 60
    # [ESC/ESH 2018] grade 3 hypertension: >= 180 systolic or >= 110 diastolic.
    assert (S.alert_systolic_at_or_above_mmhg, S.alert_diastolic_at_or_above_mmhg) == (180, 110)
    # [NEWS2]: systolic <= 90, SpO2 <= 91 %, respiration <= 8 or >= 25 each score 3.
    assert S.alert_systolic_at_or_below_mmhg == 90
    assert S.alert_spo2_below_percent == 92
    assert (S.alert_respiratory_rate_below_per_min, S.alert_respiratory_rate_above_per_min) == (9, 24)
    # [AHA ACLS] bradycardia below 50/min; above 120/min is the sessions issue's value.
    assert (S.alert_heart_rate_below_bpm, S.alert_heart_rate_above_bpm) == (50, 120)
    # [Spravato PI]: blood pressure at about 40 minutes, read as 35-50.
    assert (S.monitoring_interval_minutes, S.postdose_bp_earliest_minutes, S.postdose_bp_latest_minutes) == (15, 35, 50)


def test_observation_discharge_and_scheduling_defaults() -> None:
    # [Spravato PI], [Spravato REMS]: at least 2 hours; racemic routes: the sessions issue's 60 minutes.
    assert [S.observation_minutes(route) for route in Route] == [60, 60, 60, 60, 120]
    # Below [ESC/ESH 2018] grade 2 (160/100); [NEWS2] bands for the rest.
    assert (S.discharge_systolic_max_mmhg, S.discharge_diastolic_max_mmhg, S.discharge_systolic_min_mmhg) == (
        159,
        99,
        91,
    )
    assert S.discharge_spo2_min_percent == 94
    assert (S.discharge_heart_rate_min_bpm, S.discharge_heart_rate_max_bpm) == (50, 110)
    assert (S.discharge_respiratory_rate_min_per_min, S.discharge_respiratory_rate_max_per_min) == (9, 20)
    assert S.discharge_reading_max_age_minutes == 15
    # [Spravato PI] twice weekly induction; 44 hours is clinic policy from [Singh 2016]'s Monday-Wednesday-Friday.
    assert (S.weekly_session_cap, S.min_hours_between_dosing_sessions) == (2, 44)
    assert (S.weight_change_confirm_percent, S.eligibility_valid_days) == (10, 180)


def test_ranges_and_ceilings_by_route() -> None:
    assert S.dose_range(Route.sublingual_oral) == DoseRange(minimum=50, maximum=300)
    assert [S.dose_ceiling(route) for route in Route] == [1.0, 0.75, 1.0, 300, 84]
    with pytest.raises(ValueError, match="whole 28 mg devices"):
        S.dose_range(Route.intranasal_esketamine)


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        S.weekly_session_cap = 5  # type: ignore[misc]


def test_settings_build_from_the_sites_json() -> None:
    site = SessionRuleSettings.model_validate_json(
        '{"iv_mg_per_kg": {"minimum": 0.2, "maximum": 0.6}, "esketamine_label": "eu",'
        ' "predose_bp_threshold": {"systolic_mmhg": 150, "diastolic_mmhg": 95}, "weekly_session_cap": 3}'
    )
    assert site.iv_mg_per_kg == DoseRange(minimum=0.2, maximum=0.6)
    assert site.esketamine_label is EsketamineLabel.eu
    assert str(site.predose_bp_threshold) == "150/95"
    assert site.weekly_session_cap == 3


def test_esketamine_doses_are_kept_sorted_and_unique() -> None:
    assert SessionRuleSettings(esketamine_doses_mg=(84, 56, 56)).esketamine_doses_mg == (56, 84)


def test_a_site_may_be_stricter() -> None:
    site = SessionRuleSettings(observation_minutes_esketamine=150, esketamine_device_interval_minutes=6)
    assert site.observation_minutes(Route.intranasal_esketamine) == 150


# Each row: the change, and the words of the refusal (a field's name, or the model's own message).
REFUSED = [
    # --- observation cannot be zero or shortened below its floor ---
    pytest.param({"observation_minutes_esketamine": 0}, "observation_minutes_esketamine", id="esketamine-obs-0"),
    # [Spravato REMS]: at least 2 hours.
    pytest.param({"observation_minutes_esketamine": 119}, "observation_minutes_esketamine", id="esketamine-obs-119"),
    pytest.param({"observation_minutes_iv_after_infusion_end": 0}, "observation_minutes_iv", id="iv-obs-0"),
    pytest.param({"observation_minutes_iv_after_infusion_end": 29}, "observation_minutes_iv", id="iv-obs-29"),
    pytest.param({"observation_minutes_intramuscular": 29}, "observation_minutes_intramuscular", id="im-obs-29"),
    pytest.param({"observation_minutes_subcutaneous": 29}, "observation_minutes_subcutaneous", id="sc-obs-29"),
    pytest.param({"observation_minutes_sublingual_oral": 29}, "observation_minutes_sublingual_oral", id="sl-obs-29"),
    # [Spravato PI]: 5 minutes between devices, never less.
    pytest.param({"esketamine_device_interval_minutes": 4}, "esketamine_device_interval_minutes", id="devices-4min"),
    # --- alert thresholds cannot be moved where they (almost) never fire ---
    pytest.param({"alert_systolic_at_or_above_mmhg": 201}, "alert_systolic_at_or_above", id="sys-alert-201"),
    pytest.param({"alert_systolic_at_or_above_mmhg": 149}, "alert_systolic_at_or_above", id="sys-alert-149"),
    pytest.param({"alert_diastolic_at_or_above_mmhg": 121}, "alert_diastolic_at_or_above", id="dia-alert-121"),
    pytest.param({"alert_diastolic_at_or_above_mmhg": 89}, "alert_diastolic_at_or_above", id="dia-alert-89"),
    pytest.param({"alert_systolic_at_or_below_mmhg": 79}, "alert_systolic_at_or_below", id="hypotension-79"),
    pytest.param({"alert_systolic_at_or_below_mmhg": 101}, "alert_systolic_at_or_below", id="hypotension-101"),
    pytest.param({"alert_spo2_below_percent": 87}, "alert_spo2_below_percent", id="spo2-alert-87"),
    pytest.param({"alert_spo2_below_percent": 97}, "alert_spo2_below_percent", id="spo2-alert-97"),
    pytest.param({"alert_heart_rate_below_bpm": 39}, "alert_heart_rate_below_bpm", id="hr-low-39"),
    pytest.param({"alert_heart_rate_below_bpm": 61}, "alert_heart_rate_below_bpm", id="hr-low-61"),
    pytest.param({"alert_heart_rate_above_bpm": 99}, "alert_heart_rate_above_bpm", id="hr-high-99"),
    pytest.param({"alert_heart_rate_above_bpm": 141}, "alert_heart_rate_above_bpm", id="hr-high-141"),
    pytest.param({"alert_respiratory_rate_below_per_min": 5}, "alert_respiratory_rate_below", id="rr-low-5"),
    pytest.param({"alert_respiratory_rate_below_per_min": 13}, "alert_respiratory_rate_below", id="rr-low-13"),
    pytest.param({"alert_respiratory_rate_above_per_min": 19}, "alert_respiratory_rate_above", id="rr-high-19"),
    pytest.param({"alert_respiratory_rate_above_per_min": 31}, "alert_respiratory_rate_above", id="rr-high-31"),
    # --- a ceiling cannot be raised past its source ---
    pytest.param({"iv_ceiling_mg_per_kg": 1.01}, "iv_ceiling_mg_per_kg", id="iv-ceiling-fava"),
    pytest.param({"iv_ceiling_mg_per_kg": 0.49}, "iv_ceiling_mg_per_kg", id="iv-ceiling-0.49"),
    pytest.param({"im_ceiling_mg_per_kg": 1.01}, "im_ceiling_mg_per_kg", id="im-ceiling"),
    pytest.param({"subcutaneous_ceiling_mg_per_kg": 1.01}, "subcutaneous_ceiling_mg_per_kg", id="sc-ceiling"),
    pytest.param({"sublingual_oral_ceiling_mg": 300.1}, "sublingual_oral_ceiling_mg", id="sl-ceiling"),
    # --- a range cannot end above its ceiling ---
    pytest.param(
        {"iv_mg_per_kg": {"minimum": 0.1, "maximum": 0.95}, "iv_ceiling_mg_per_kg": 0.9},
        "the iv_infusion range ends at 0.95, above its ceiling 0.9",
        id="iv-range-above-ceiling",
    ),
    pytest.param(
        {"im_mg_per_kg": {"minimum": 0.25, "maximum": 0.8}},
        "the intramuscular range ends at 0.8, above its ceiling 0.75",
        id="im-range-above-ceiling",
    ),
    pytest.param(
        {"subcutaneous_mg_per_kg": {"minimum": 0.5, "maximum": 1.1}},
        "the subcutaneous range ends at 1.1, above its ceiling 1.0",
        id="sc-range-above-ceiling",
    ),
    pytest.param(
        {"sublingual_oral_mg": {"minimum": 50, "maximum": 301}},
        "the sublingual_oral range ends at 301.0, above its ceiling 300",
        id="sl-range-above-ceiling",
    ),
    pytest.param({"iv_mg_per_kg": {"minimum": 0.8, "maximum": 0.75}}, "minimum 0.8 is above maximum", id="iv-upside"),
    pytest.param({"iv_mg_per_kg": {"minimum": 0, "maximum": 0.75}}, "iv_mg_per_kg.minimum", id="iv-min-0"),
    pytest.param({"iv_default_mg_per_kg": 0.8}, "the default IV dose 0.8 mg/kg is outside", id="iv-default-high"),
    pytest.param({"iv_default_mg_per_kg": 0.09}, "the default IV dose 0.09 mg/kg is outside", id="iv-default-low"),
    pytest.param({"iv_infusion_minutes": {"minimum": 19, "maximum": 60}}, "under 20 minutes", id="infusion-19min"),
    pytest.param({"iv_infusion_minutes": {"minimum": 61, "maximum": 60}}, "minimum 61 is above", id="infusion-upside"),
    # --- esketamine doses are whole devices up to the label's maximum ---
    pytest.param({"esketamine_doses_mg": (56, 70)}, "70 mg is not a whole number of 28 mg devices", id="esk-70"),
    pytest.param({"esketamine_doses_mg": (56, 112)}, "112 mg is above the label's maximum of 84", id="esk-112"),
    pytest.param({"esketamine_doses_mg": ()}, "at least one esketamine dose", id="esk-none"),
    pytest.param({"esketamine_first_dose_mg": 28}, "first dose 28 mg is not an allowed dose", id="esk-first-28"),
    pytest.param(
        {"esketamine_older_adult_doses_mg": (56, 84)}, "older adults' esketamine first dose", id="esk-older-first"
    ),
    pytest.param({"esketamine_label": "jp"}, "esketamine_label", id="esk-label"),
    pytest.param({"esketamine_older_adult_age_years": 59}, "esketamine_older_adult_age_years", id="esk-age-59"),
    # --- the pre-dose threshold may be stricter than 140/90, never looser than 160/100 ---
    pytest.param(
        {"predose_bp_threshold": {"systolic_mmhg": 161, "diastolic_mmhg": 100}}, "above 160/100", id="161/100"
    ),
    pytest.param(
        {"predose_bp_threshold": {"systolic_mmhg": 160, "diastolic_mmhg": 101}}, "above 160/100", id="160/101"
    ),
    pytest.param(
        {"predose_bp_threshold": {"systolic_mmhg": 90, "diastolic_mmhg": 90}}, "systolic threshold", id="90/90"
    ),
    pytest.param({"predose_reading_window_minutes": 121}, "predose_reading_window_minutes", id="predose-window"),
    # --- monitoring ---
    pytest.param({"monitoring_interval_minutes": 31}, "monitoring_interval_minutes", id="monitoring-31"),
    pytest.param({"postdose_bp_earliest_minutes": 41}, "postdose_bp_earliest_minutes", id="postdose-41"),
    pytest.param({"postdose_bp_latest_minutes": 61}, "postdose_bp_latest_minutes", id="postdose-61"),
    # --- a discharge criterion cannot be looser than the alert it follows ---
    pytest.param({"alert_systolic_at_or_above_mmhg": 159}, "discharge systolic maximum must be below", id="dc-sys-max"),
    pytest.param(
        {"alert_diastolic_at_or_above_mmhg": 99}, "discharge diastolic maximum must be below", id="dc-dia-max"
    ),
    pytest.param({"discharge_systolic_min_mmhg": 90}, "discharge systolic minimum must be above", id="dc-sys-min"),
    pytest.param({"discharge_spo2_min_percent": 91}, "discharge SpO2 minimum must not be below", id="dc-spo2"),
    pytest.param({"discharge_heart_rate_min_bpm": 49}, "discharge heart-rate range", id="dc-hr-min"),
    pytest.param({"alert_heart_rate_above_bpm": 109}, "discharge heart-rate range", id="dc-hr-max"),
    pytest.param({"discharge_respiratory_rate_min_per_min": 8}, "respiratory-rate range", id="dc-rr-min"),
    pytest.param(
        {"alert_respiratory_rate_above_per_min": 20, "discharge_respiratory_rate_max_per_min": 21},
        "respiratory-rate range",
        id="dc-rr-max",
    ),
    pytest.param({"discharge_reading_max_age_minutes": 31}, "discharge_reading_max_age_minutes", id="dc-age-31"),
    pytest.param({"discharge_reading_max_age_minutes": 0}, "discharge_reading_max_age_minutes", id="dc-age-0"),
    # --- scheduling, weight, eligibility ---
    pytest.param({"weekly_session_cap": 0}, "weekly_session_cap", id="cap-0"),
    # [Singh 2016] thrice weekly is the most studied.
    pytest.param({"weekly_session_cap": 4}, "weekly_session_cap", id="cap-4"),
    pytest.param({"min_hours_between_dosing_sessions": 19.9}, "min_hours_between_dosing_sessions", id="interval-19.9h"),
    pytest.param({"weight_change_confirm_percent": 20.1}, "weight_change_confirm_percent", id="weight-20.1"),
    pytest.param({"weight_change_confirm_percent": 4.9}, "weight_change_confirm_percent", id="weight-4.9"),
    pytest.param({"eligibility_valid_days": 366}, "eligibility_valid_days", id="eligibility-366"),
    pytest.param({"eligibility_valid_days": 29}, "eligibility_valid_days", id="eligibility-29"),
    pytest.param({"unknown_setting": 1}, "unknown_setting", id="unknown"),
]


@pytest.mark.parametrize(("changes", "says"), REFUSED)
def test_a_setting_that_switches_a_limit_off_is_refused(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)):
        SessionRuleSettings.model_validate(changes)


# The accepted side of the boundaries above: the last value each bound lets through.
ACCEPTED = [
    pytest.param({"observation_minutes_esketamine": 120}, id="esketamine-obs-120"),
    pytest.param({"observation_minutes_iv_after_infusion_end": 30}, id="iv-obs-30"),
    pytest.param({"observation_minutes_intramuscular": 30}, id="im-obs-30"),
    pytest.param({"observation_minutes_subcutaneous": 30}, id="sc-obs-30"),
    pytest.param({"observation_minutes_sublingual_oral": 30}, id="sl-obs-30"),
    pytest.param({"esketamine_device_interval_minutes": 5}, id="devices-5min"),
    pytest.param({"alert_systolic_at_or_above_mmhg": 200}, id="sys-alert-200"),
    pytest.param({"alert_systolic_at_or_above_mmhg": 160}, id="sys-alert-160"),
    pytest.param({"alert_diastolic_at_or_above_mmhg": 120}, id="dia-alert-120"),
    pytest.param({"alert_diastolic_at_or_above_mmhg": 100}, id="dia-alert-100"),
    pytest.param({"alert_systolic_at_or_below_mmhg": 80}, id="hypotension-80"),
    pytest.param({"alert_systolic_at_or_below_mmhg": 100, "discharge_systolic_min_mmhg": 101}, id="hypotension-100"),
    pytest.param({"alert_spo2_below_percent": 88}, id="spo2-alert-88"),
    pytest.param({"alert_spo2_below_percent": 94}, id="spo2-alert-at-discharge-min"),
    pytest.param({"alert_heart_rate_below_bpm": 40}, id="hr-low-40"),
    pytest.param({"alert_heart_rate_above_bpm": 110}, id="hr-high-at-discharge-max"),
    pytest.param({"alert_heart_rate_above_bpm": 140}, id="hr-high-140"),
    pytest.param({"alert_respiratory_rate_below_per_min": 6}, id="rr-low-6"),
    pytest.param({"alert_respiratory_rate_above_per_min": 20}, id="rr-high-at-discharge-max"),
    pytest.param({"iv_ceiling_mg_per_kg": 1.0}, id="iv-ceiling-fava"),
    pytest.param({"im_ceiling_mg_per_kg": 1.0}, id="im-ceiling"),
    pytest.param({"subcutaneous_ceiling_mg_per_kg": 1.0}, id="sc-ceiling"),
    pytest.param({"sublingual_oral_ceiling_mg": 300}, id="sl-ceiling"),
    pytest.param({"iv_mg_per_kg": {"minimum": 0.1, "maximum": 1.0}}, id="iv-range-at-ceiling"),
    pytest.param({"iv_mg_per_kg": {"minimum": 0.5, "maximum": 0.5}}, id="iv-range-one-value"),
    pytest.param({"im_mg_per_kg": {"minimum": 0.25, "maximum": 0.75}}, id="im-range-at-ceiling"),
    pytest.param({"iv_default_mg_per_kg": 0.75}, id="iv-default-at-max"),
    pytest.param({"iv_infusion_minutes": {"minimum": 20, "maximum": 60}}, id="infusion-20min"),
    pytest.param({"esketamine_doses_mg": (28, 56, 84), "esketamine_first_dose_mg": 28}, id="esk-28"),
    pytest.param({"esketamine_label": "eu"}, id="esk-eu"),
    pytest.param({"predose_bp_threshold": {"systolic_mmhg": 160, "diastolic_mmhg": 100}}, id="160/100"),
    pytest.param({"predose_bp_threshold": {"systolic_mmhg": 130, "diastolic_mmhg": 80}}, id="130/80"),
    pytest.param({"alert_systolic_at_or_above_mmhg": 160}, id="dc-sys-max"),
    pytest.param({"alert_diastolic_at_or_above_mmhg": 100}, id="dc-dia-max"),
    pytest.param({"discharge_systolic_min_mmhg": 91}, id="dc-sys-min"),
    pytest.param({"discharge_spo2_min_percent": 92}, id="dc-spo2"),
    pytest.param({"discharge_heart_rate_max_bpm": 120}, id="dc-hr-max"),
    pytest.param({"discharge_respiratory_rate_max_per_min": 24}, id="dc-rr-max"),
    pytest.param({"weekly_session_cap": 3}, id="cap-3"),
    pytest.param({"min_hours_between_dosing_sessions": 20}, id="interval-20h"),
    pytest.param({"weight_change_confirm_percent": 20}, id="weight-20"),
    pytest.param({"eligibility_valid_days": 365}, id="eligibility-365"),
]


@pytest.mark.parametrize("changes", ACCEPTED)
def test_the_other_side_of_each_bound_is_accepted(changes: dict[str, Any]) -> None:
    SessionRuleSettings.model_validate(changes)
