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
