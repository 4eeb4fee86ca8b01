"""Sedation and dissociation: the MOAA/S, the CADSS, and the check made at the chair until both have resolved.

Sources (docs/clinical-rules.md): [MOAA/S], [Bremner 1998], [Spravato PI], [Spravato REMS].
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.sessions.domain.settings import SessionRuleSettings
from services.sessions.domain.wording import duration


class SedationLevel(StrEnum):
    """The MOAA/S, from fully alert (5) to no response to a painful stimulus (0) [MOAA/S].

    What the REMS form asks is only whether the patient experienced sedation (yes/no) [Spravato REMS]; the
    MOAA/S is what the SPRAVATO trials measured it with [Spravato PI], so the timeline records the level and the
    form's answer is derived from it (`sedation_observed`).
    """

    responds_readily = "responds_readily"  # 5: responds readily to name spoken in normal tone
    lethargic = "lethargic"  # 4: lethargic response to name spoken in normal tone
    responds_to_loud_voice = "responds_to_loud_voice"  # 3: only after name is called loudly and/or repeatedly
    responds_to_prodding = "responds_to_prodding"  # 2: only after mild prodding or shaking
    responds_to_trapezius_squeeze = "responds_to_trapezius_squeeze"  # 1: only after painful trapezius squeeze
    no_response = "no_response"  # 0: no response after painful trapezius squeeze


MOAAS_SCORE: dict[SedationLevel, int] = {
    SedationLevel.responds_readily: 5,
    SedationLevel.lethargic: 4,
    SedationLevel.responds_to_loud_voice: 3,
    SedationLevel.responds_to_prodding: 2,
    SedationLevel.responds_to_trapezius_squeeze: 1,
    SedationLevel.no_response: 0,
}


def sedation_level(score: int) -> SedationLevel:
    """The level for a MOAA/S score 0-5, or ValueError."""
    for level, value in MOAAS_SCORE.items():
        if value == score and not isinstance(score, bool):
            return level
    raise ValueError(f"MOAA/S score {score!r} is out of range 0-5")


def is_sedated(level: SedationLevel) -> bool:
    """Any level below fully alert (5): the trials counted 4 as mild sedation [MOAA/S]."""
    return MOAAS_SCORE[level] < 5


def sedation_observed(levels: Sequence[SedationLevel]) -> bool:
    """The answer to the REMS form's "did the patient experience sedation?" from the session's MOAA/S ratings."""
    return any(is_sedated(level) for level in levels)


# --- dissociation: CADSS ---

CADSS_VERSION = "CADSS (Bremner et al. 1998)"
# [Bremner 1998] manual: 23 subjective items and 5 observer-rated items, each 0 "not at all" to 4 "extremely".
CADSS_SUBJECTIVE_ITEMS = 23
CADSS_OBSERVER_ITEMS = 5
CADSS_ITEM_MIN, CADSS_ITEM_MAX = 0, 4


class CadssPart(StrEnum):
    subjective = "subjective"
    observer = "observer"


class CadssAnswerError(ValueError):
    """Answers that cannot be scored. ``item`` is the 1-based item within its ``part`` at fault, or None when
    the part as a whole is wrong (count, type)."""

    def __init__(self, message: str, *, part: CadssPart, item: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.part = part
        self.item = item


class CadssScore(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    # The sum of the 23 subjective items, 0-92: the score the ketamine and esketamine literature reports.
    total: int = Field(ge=0, le=CADSS_SUBJECTIVE_ITEMS * CADSS_ITEM_MAX)
    # The sum of the 5 observer items, 0-20, when they were rated; never added into `total`.
    observer_total: int | None = Field(default=None, ge=0, le=CADSS_OBSERVER_ITEMS * CADSS_ITEM_MAX)
    subjective_answers: tuple[int, ...]
    observer_answers: tuple[int, ...] | None


def _check_cadss(answers: Sequence[int], part: CadssPart, count: int) -> tuple[int, ...]:
    # Strict on purpose, like shared.instruments: a str is a Sequence, a bool is an int, 2.5 may be a UI slip.
    label = "observer item" if part is CadssPart.observer else "item"
    if isinstance(answers, str | bytes | bytearray) or not isinstance(answers, Sequence):
        raise CadssAnswerError(f"{part} answers must be a sequence of ints, got {type(answers).__name__}", part=part)
    if len(answers) != count:
        raise CadssAnswerError(f"expected {count} {part} answers, got {len(answers)}", part=part)
    checked: list[int] = []
    for number, value in enumerate(answers, start=1):
        if isinstance(value, bool) or not isinstance(value, int):
            raise CadssAnswerError(
                f"{label} {number}: expected an int, got {type(value).__name__} {value!r}", part=part, item=number
            )
        if not CADSS_ITEM_MIN <= value <= CADSS_ITEM_MAX:
            raise CadssAnswerError(
                f"{label} {number}: {value} is out of range {CADSS_ITEM_MIN}-{CADSS_ITEM_MAX}", part=part, item=number
            )
        checked.append(int(value))
    return tuple(checked)


def score_cadss(subjective_answers: Sequence[int], observer_answers: Sequence[int] | None = None) -> CadssScore:
    """Scores one CADSS: the total of the 23 subjective items (0-92); the 5 observer items are optional and
    summed apart. Raises CadssAnswerError naming the part and the item at fault."""
    subjective = _check_cadss(subjective_answers, CadssPart.subjective, CADSS_SUBJECTIVE_ITEMS)
    observer = (
        None if observer_answers is None else _check_cadss(observer_answers, CadssPart.observer, CADSS_OBSERVER_ITEMS)
    )
    return CadssScore(
        version=CADSS_VERSION,
        total=sum(subjective),
        observer_total=None if observer is None else sum(observer),
        subjective_answers=subjective,
        observer_answers=observer,
    )


# --- the check at the chair ---------------------------------------------------------------------------------


class RecoveryCheck(BaseModel):
    """One sedation and dissociation check, as recorded: the MOAA/S, whether the patient is still dissociated and
    whether breathing is depressed (the three things [Spravato REMS] monitoring lasts "until" they resolve), and
    optionally a full CADSS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    assessed_at: datetime
    moaa_s: int = Field(ge=0, le=5)
    sedation_level: SedationLevel
    dissociation_present: bool
    respiratory_depression_present: bool
    cadss: CadssScore | None = None
    recorded_by: str

    @model_validator(mode="after")
    def _level_is_the_score(self) -> Self:
        # The level is read for discharge and the score printed: a record where they disagree is refused.
        if MOAAS_SCORE[self.sedation_level] != self.moaa_s:
            raise ValueError(f"sedation level {self.sedation_level} is not MOAA/S {self.moaa_s}")
        return self


def recovery_unmet(
    checks: Sequence[RecoveryCheck], *, administration_end: datetime, now: datetime, settings: SessionRuleSettings
) -> list[str]:
    """What stops discharge on sedation, dissociation and respiratory depression, for every route ([Spravato
    REMS]: monitor until they resolve; the sessions issue extends it to racemic ketamine).

    The latest check counts only if it was made after the end of the administration and no more than the site's
    discharge age (15 minutes) ago: an older check does not describe the patient now."""
    relevant = [c for c in checks if administration_end <= c.assessed_at <= now]
    if not relevant:
        return [
            "no sedation and dissociation check since the dose ended: assess the patient (MOAA/S, dissociation, "
            "breathing)"
        ]
    latest = max(relevant, key=lambda c: c.assessed_at)
    unmet: list[str] = []
    age = now - latest.assessed_at
    if age > timedelta(minutes=settings.discharge_reading_max_age_minutes):
        unmet.append(
            f"the last sedation and dissociation check is {duration(age)} old: check again (at most "
            f"{settings.discharge_reading_max_age_minutes} minutes old at discharge)"
        )
    if is_sedated(latest.sedation_level):
        unmet.append(
            f"still sedated (MOAA/S {latest.moaa_s} of 5): wait until the patient responds readily to their name"
        )
    if latest.dissociation_present:
        unmet.append("dissociation has not resolved")
    if latest.respiratory_depression_present:
        unmet.append("respiratory depression has not resolved")
    return unmet
