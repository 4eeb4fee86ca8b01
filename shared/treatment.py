"""Words of the treatment record that several services share (sessions records them; billing prices them;
outcomes groups cohorts by them), so each means the same everywhere."""

from __future__ import annotations

from enum import StrEnum


class Route(StrEnum):
    iv_infusion = "iv_infusion"
    intramuscular = "intramuscular"
    subcutaneous = "subcutaneous"
    # Racemic ketamine lozenges, troches or oral solution.
    sublingual_oral = "sublingual_oral"
    intranasal_esketamine = "intranasal_esketamine"


class Indication(StrEnum):
    depression = "depression"
    treatment_resistant_depression = "treatment_resistant_depression"
    anxiety = "anxiety"
    ptsd = "ptsd"
    ocd = "ocd"
    substance_use_disorder = "substance_use_disorder"
    other = "other"


class CourseStatus(StrEnum):
    planned = "planned"
    active = "active"
    on_hold = "on_hold"
    completed = "completed"
    discontinued = "discontinued"


OPEN_COURSE_STATUSES = frozenset({CourseStatus.planned, CourseStatus.active})


class VitalsAlertCode(StrEnum):
    """Stable codes of the vital-sign alerts (sessions' domain/vitals.py): stored and sent in events, so never
    rename one."""

    systolic_high = "systolic_high"
    diastolic_high = "diastolic_high"
    systolic_low = "systolic_low"
    spo2_low = "spo2_low"
    heart_rate_low = "heart_rate_low"
    heart_rate_high = "heart_rate_high"
    respiratory_rate_low = "respiratory_rate_low"
    respiratory_rate_high = "respiratory_rate_high"


class AdverseEventType(StrEnum):
    nausea = "nausea"
    vomiting = "vomiting"
    hallucinations = "hallucinations"
    hypertension = "hypertension"
    sedation = "sedation"
    agitation = "agitation"
    respiratory_depression = "respiratory_depression"
    other = "other"


class AdverseEventSeverity(StrEnum):
    """CTCAE v5 grades 1-5. Severity is how intense; seriousness (21 CFR 312.32) is what it led to."""

    mild = "mild"
    moderate = "moderate"
    severe = "severe"
    life_threatening = "life_threatening"
    death = "death"
