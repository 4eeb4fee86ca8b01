"""Billing codes: a date-versioned table of every HCPCS, CPT and ICD-10-CM code kapnet bills, and the choice of
charge lines for a dosing session, an integration session and an intake evaluation. Pure functions, no I/O.

A code is chosen by the date of service: the code valid that day is used, so a session on 2025-12-31 bills the
esketamine drug as S0013 and one on 2026-01-01 as J0013. A code used outside its dates is refused, naming the
dates it is valid on.

Sources:

- [CMS HCPCS] CMS HCPCS Level II code set. G2082 and G2083 (visit with supervised esketamine nasal
  self-administration, up to 56 mg / more than 56 mg, 2 hours of observation included) were created by the CY2020
  Medicare Physician Fee Schedule final rule, effective 2020-01-01. Their descriptor includes the E/M, the
  observation *and the provision of the esketamine*. J3490 "Unclassified drugs" (there is no ketamine-specific
  HCPCS code). J0013 "Esketamine, nasal spray, 1 mg" from 2026-01-01 (2026 annual HCPCS update).
- [S0013] HCPCS S code "Esketamine, nasal spray, 1 mg" (S codes are for non-Medicare payers), discontinued at the
  end of 2025 and replaced by J0013 on 2026-01-01 (the billing issue; CMS 2026 HCPCS update).
- [AMA CPT] AMA CPT code set and its guidelines:
  96365/96366 (IV infusion, initial hour / each additional hour) and 96372 (SC or IM injection) since CPT 2009.
  Guidelines for 96360-96549: an infusion of 15 minutes or less is not an infusion (it is a push); an additional
  hour (96366) is reported for an interval of more than 30 minutes beyond the last full hour; an E/M service on
  the same day as a drug administration is reported with modifier 25.
  90791/90792 (psychiatric diagnostic evaluation, without / with medical services), 90832/90834/90837
  (psychotherapy, standalone) and +90833/+90836/+90838 (psychotherapy added to an E/M) since CPT 2013; their time
  bands: 16-37 minutes -> 30-minute code, 38-52 -> 45-minute code, 53 or more -> 60-minute code, under 16 minutes
  not reported.
  99214 (office or other outpatient visit, established patient, moderate medical decision making) in its
  descriptor of the 2021 E/M revision.
- [ICD-10-CM FY2026] ICD-10-CM, fiscal year 2026 release (CDC NCHS and CMS), effective 2025-10-01. US use of
  ICD-10-CM began 2015-10-01 (FY2016); F42.2 was added in FY2017 (2016-10-01).
- [clinic policy] Not from a code set, chosen by kapnet's clinics: 99214 as the E/M of the supervising clinician
  of an IV, IM, SC or sublingual/oral dosing session; no drug code for sublingual/oral ketamine (the patient takes
  the drug themselves under supervision, and a self-administered oral drug is not billed as J3490); the default
  ICD-10-CM code of each indication (INDICATION_DIAGNOSES says which and why).
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.treatment import Indication, Route

# --- errors ---------------------------------------------------------------------------------------------------


class NotBillable(ValueError):
    """What was asked cannot be billed as given; the message says what is missing or wrong."""


class UnknownCode(NotBillable):
    """The code is not in kapnet's code table."""

    def __init__(self, code: str) -> None:
        super().__init__(f"unknown code {code!r}: kapnet's code table has no such HCPCS, CPT or ICD-10-CM code")
        self.code = code


class CodeNotValidOn(NotBillable):
    """The code exists but is not valid on the date of service; the message names the dates it is valid on."""

    def __init__(self, service_code: ServiceCode, day: date) -> None:
        replaced = f"; it was replaced by {service_code.replaced_by}" if service_code.replaced_by else ""
        super().__init__(
            f"{service_code.system.value} {service_code.code} ({service_code.description}) is not valid on "
            f"{day.isoformat()}: it is valid {service_code.validity}{replaced}"
        )
        self.code = service_code.code
        self.day = day
        self.valid_from = service_code.valid_from
        self.valid_to = service_code.valid_to


# --- the code table -------------------------------------------------------------------------------------------


class CodeSystem(StrEnum):
    HCPCS = "HCPCS"  # HCPCS Level II (CMS): G, J and S codes
    CPT = "CPT"  # AMA CPT (HCPCS Level I)
    ICD10CM = "ICD10CM"  # ICD-10-CM diagnoses


# The shape of a code in each system: CPT five digits; HCPCS Level II a letter and four digits; ICD-10-CM a
# letter, a digit, a character, then optionally a dot and one to four more.
CODE_PATTERNS: dict[CodeSystem, str] = {
    CodeSystem.CPT: r"^\d{5}$",
    CodeSystem.HCPCS: r"^[A-V]\d{4}$",
    CodeSystem.ICD10CM: r"^[A-Z]\d[0-9A-Z](\.[0-9A-Z]{1,4})?$",
}


class ServiceCode(BaseModel):
    """One code of one code system, valid from ``valid_from`` to ``valid_to`` (both inclusive; no end: still valid)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    code: str = Field(min_length=3, max_length=8)
    system: CodeSystem
    description: str = Field(min_length=3, max_length=400)
    valid_from: date
    valid_to: date | None = None
    # What one unit is ("1 mg", "session", "each additional hour"); None for a diagnosis, which has no units.
    unit: str | None = Field(default=None, min_length=1, max_length=60)
    # A CPT add-on code ("+"): reported only with its primary code, never alone.
    add_on: bool = False
    source: str = Field(min_length=3, max_length=400)
    # The code that took over when this one ended (S0013 -> J0013), named in the error for a later date.
    replaced_by: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not re.match(CODE_PATTERNS[self.system], self.code):
            raise ValueError(f"{self.code!r} is not shaped like a {self.system.value} code")
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"{self.code}: valid_to {self.valid_to} is before valid_from {self.valid_from}")
        if self.system is CodeSystem.ICD10CM:
            if self.unit is not None or self.add_on:
                raise ValueError(f"{self.code}: a diagnosis has no unit and is never an add-on")
        elif self.unit is None:
            raise ValueError(f"{self.code}: a procedure, service or drug code needs its unit")
        if self.replaced_by is not None and self.valid_to is None:
            raise ValueError(f"{self.code}: a replaced code needs the date it ended (valid_to)")
        return self

    def is_valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    @property
    def validity(self) -> str:
        """The dates it is valid on, in words: "from 2026-01-01 onward", "from 2020-01-01 to 2025-12-31"."""
        if self.valid_to is None:
            return f"from {self.valid_from.isoformat()} onward"
        return f"from {self.valid_from.isoformat()} to {self.valid_to.isoformat()}"


def _normalise(code: str) -> str:
    # "+90833" is how CPT prints an add-on; the code itself is 90833.
    return code.strip().upper().removeprefix("+")


def _calendar_day(day: date) -> None:
    # A datetime is a date to Python but cannot be compared with one; the date of service is the site's calendar
    # date of the session, which the caller works out in the site's time zone.
    if isinstance(day, datetime) or not isinstance(day, date):
        raise NotBillable(f"the date of service must be a calendar date, not {type(day).__name__}")


class CodeTable(BaseModel):
    """Every code kapnet bills, each with its dates; one row per code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    codes: tuple[ServiceCode, ...]

    @model_validator(mode="after")
    def _well_formed(self) -> Self:
        seen: dict[str, ServiceCode] = {}
        for row in self.codes:
            if row.code in seen:
                raise ValueError(f"code {row.code} is listed twice")
            seen[row.code] = row
        for row in self.codes:
            if row.replaced_by is None:
                continue
            successor = seen.get(row.replaced_by)
            if successor is None:
                raise ValueError(f"{row.code} is replaced by {row.replaced_by}, which is not in the table")
            assert row.valid_to is not None  # checked by ServiceCode
            if successor.valid_from != row.valid_to + timedelta(days=1):
                raise ValueError(f"{row.replaced_by} must start the day after {row.code} ends ({row.valid_to})")
        return self

    def find(self, code: str) -> ServiceCode | None:
        """The row of ``code`` whatever its dates, or None when kapnet has no such code."""
        wanted = _normalise(code)
        return next((row for row in self.codes if row.code == wanted), None)

    def valid_on(self, code: str, day: date) -> ServiceCode:
        """The row of ``code`` if it is valid on ``day``; UnknownCode or CodeNotValidOn otherwise."""
        _calendar_day(day)
        row = self.find(code)
        if row is None:
            raise UnknownCode(code)
        if not row.is_valid_on(day):
            raise CodeNotValidOn(row, day)
        return row


# The day J0013 took over from S0013 [S0013].
ESKETAMINE_J_CODE_FROM = date(2026, 1, 1)
# The first date of service this table answers for: G2082/G2083 begin on it [CMS HCPCS]. Two codes that are older
# but whose first date kapnet has not verified (S0013, J3490) are listed from it, and their source says so.
TABLE_START = date(2020, 1, 1)
CPT_2009 = date(2009, 1, 1)
CPT_2013 = date(2013, 1, 1)
CPT_2021 = date(2021, 1, 1)
ICD10CM_US_START = date(2015, 10, 1)  # FY2016, the first US ICD-10-CM
ICD10CM_FY2017 = date(2016, 10, 1)

_ESKETAMINE_VISIT_SOURCE = (
    "CMS HCPCS Level II, created by the CY2020 Medicare Physician Fee Schedule final rule, effective 2020-01-01; "
    "the descriptor includes the E/M, 2 hours of observation and the provision of the esketamine"
)
_PSYCHOTHERAPY_SOURCE = "AMA CPT (since CPT 2013); time band per the CPT psychotherapy guidelines"
_ICD_SOURCE = "ICD-10-CM FY2026 (CDC NCHS/CMS), in ICD-10-CM since "

CODE_TABLE = CodeTable(
    codes=(
        # --- esketamine [CMS HCPCS], [S0013] ---
        ServiceCode(
            code="G2082",
            system=CodeSystem.HCPCS,
            description=(
                "Office or other outpatient visit, established patient, supervised self-administration of up to "
                "56 mg esketamine nasal spray, includes 2 hours of post-administration observation"
            ),
            valid_from=TABLE_START,
            unit="session",
            source=_ESKETAMINE_VISIT_SOURCE,
        ),
        ServiceCode(
            code="G2083",
            system=CodeSystem.HCPCS,
            description=(
                "Office or other outpatient visit, established patient, supervised self-administration of more than "
                "56 mg esketamine nasal spray, includes 2 hours of post-administration observation"
            ),
            valid_from=TABLE_START,
            unit="session",
            source=_ESKETAMINE_VISIT_SOURCE,
        ),
        ServiceCode(
            code="S0013",
            system=CodeSystem.HCPCS,
            description="Esketamine, nasal spray, 1 mg",
            valid_from=TABLE_START,
            valid_to=ESKETAMINE_J_CODE_FROM - timedelta(days=1),
            unit="1 mg",
            source=(
                "HCPCS Level II S code (non-Medicare payers); replaced by J0013 on 2026-01-01 (CMS 2026 HCPCS "
                "update). Older than 2020; listed from 2020-01-01, the start of kapnet's table"
            ),
            replaced_by="J0013",
        ),
        ServiceCode(
            code="J0013",
            system=CodeSystem.HCPCS,
            description="Esketamine, nasal spray, 1 mg",
            valid_from=ESKETAMINE_J_CODE_FROM,
            unit="1 mg",
            source="CMS HCPCS Level II, 2026 annual update: replaces S0013 from 2026-01-01",
        ),
        # --- IV, IM and SC racemic ketamine [AMA CPT], [CMS HCPCS] ---
        ServiceCode(
            code="96365",
            system=CodeSystem.CPT,
            description="Intravenous infusion, for therapy, prophylaxis or diagnosis; initial, up to 1 hour",
            valid_from=CPT_2009,
            unit="initial hour (more than 15 minutes)",
            source="AMA CPT (since CPT 2009); more than 15 minutes per the CPT guidelines for 96360-96379",
        ),
        ServiceCode(
            code="96366",
            system=CodeSystem.CPT,
            description=(
                "Intravenous infusion, for therapy, prophylaxis or diagnosis; each additional hour (add-on to 96365)"
            ),
            valid_from=CPT_2009,
            unit="each additional hour (more than 30 minutes into it)",
            add_on=True,
            source=(
                "AMA CPT (since CPT 2009); an additional hour counts when the infusion runs more than 30 minutes "
                "beyond the last full hour (CPT guidelines for 96360-96379)"
            ),
        ),
        ServiceCode(
            code="96372",
            system=CodeSystem.CPT,
            description="Therapeutic, prophylactic or diagnostic injection; subcutaneous or intramuscular",
            valid_from=CPT_2009,
            unit="injection",
            source="AMA CPT (since CPT 2009)",
        ),
        ServiceCode(
            code="J3490",
            system=CodeSystem.HCPCS,
            description="Unclassified drugs (racemic ketamine hydrochloride: no ketamine-specific HCPCS code exists)",
            valid_from=TABLE_START,
            unit="administration",
            source=(
                "CMS HCPCS Level II; the claim names the drug, dose and NDC. Older than 2020; listed from "
                "2020-01-01, the start of kapnet's table"
            ),
        ),
        # --- E/M [AMA CPT], [clinic policy] ---
        ServiceCode(
            code="99214",
            system=CodeSystem.CPT,
            description=(
                "Office or other outpatient visit, established patient, moderate level of medical decision making"
            ),
            valid_from=CPT_2021,
            unit="visit",
            source=(
                "AMA CPT, descriptor of the 2021 E/M revision; clinic policy: the E/M of the supervising clinician "
                "of an IV, IM, SC or sublingual/oral dosing session; modifier 25 beside a drug administration code "
                "(CPT guidelines for 96360-96549)"
            ),
        ),
        # --- psychotherapy [AMA CPT] ---
        ServiceCode(
            code="90832",
            system=CodeSystem.CPT,
            description="Psychotherapy, 30 minutes with patient (16-37 minutes)",
            valid_from=CPT_2013,
            unit="session",
            source=_PSYCHOTHERAPY_SOURCE,
        ),
        ServiceCode(
            code="90834",
            system=CodeSystem.CPT,
            description="Psychotherapy, 45 minutes with patient (38-52 minutes)",
            valid_from=CPT_2013,
            unit="session",
            source=_PSYCHOTHERAPY_SOURCE,
        ),
        ServiceCode(
            code="90837",
            system=CodeSystem.CPT,
            description="Psychotherapy, 60 minutes with patient (53 minutes or more)",
            valid_from=CPT_2013,
            unit="session",
            source=_PSYCHOTHERAPY_SOURCE,
        ),
        ServiceCode(
            code="90833",
            system=CodeSystem.CPT,
            description="Psychotherapy, 30 minutes with patient, with an E/M service the same day (16-37 minutes)",
            valid_from=CPT_2013,
            unit="session",
            add_on=True,
            source=_PSYCHOTHERAPY_SOURCE,
        ),
        ServiceCode(
            code="90836",
            system=CodeSystem.CPT,
            description="Psychotherapy, 45 minutes with patient, with an E/M service the same day (38-52 minutes)",
            valid_from=CPT_2013,
            unit="session",
            add_on=True,
            source=_PSYCHOTHERAPY_SOURCE,
        ),
        ServiceCode(
            code="90838",
            system=CodeSystem.CPT,
            description=(
                "Psychotherapy, 60 minutes with patient, with an E/M service the same day (53 minutes or more)"
            ),
            valid_from=CPT_2013,
            unit="session",
            add_on=True,
            source=_PSYCHOTHERAPY_SOURCE,
        ),
        # --- intake [AMA CPT] ---
        ServiceCode(
            code="90791",
            system=CodeSystem.CPT,
            description="Psychiatric diagnostic evaluation",
            valid_from=CPT_2013,
            unit="evaluation",
            source="AMA CPT (since CPT 2013)",
        ),
        ServiceCode(
            code="90792",
            system=CodeSystem.CPT,
            description="Psychiatric diagnostic evaluation with medical services",
            valid_from=CPT_2013,
            unit="evaluation",
            source="AMA CPT (since CPT 2013)",
        ),
        # --- diagnoses [ICD-10-CM FY2026], [clinic policy] ---
        ServiceCode(
            code="F32.9",
            system=CodeSystem.ICD10CM,
            description="Major depressive disorder, single episode, unspecified",
            valid_from=ICD10CM_US_START,
            source=_ICD_SOURCE + "FY2016; kapnet's default for indication depression (clinic policy)",
        ),
        ServiceCode(
            code="F33.9",
            system=CodeSystem.ICD10CM,
            description="Major depressive disorder, recurrent, unspecified",
            valid_from=ICD10CM_US_START,
            source=(
                _ICD_SOURCE + "FY2016; kapnet's default for indication treatment_resistant_depression (clinic policy)"
            ),
        ),
        ServiceCode(
            code="F41.1",
            system=CodeSystem.ICD10CM,
            description="Generalized anxiety disorder",
            valid_from=ICD10CM_US_START,
            source=_ICD_SOURCE + "FY2016; kapnet's default for indication anxiety (clinic policy)",
        ),
        ServiceCode(
            code="F43.10",
            system=CodeSystem.ICD10CM,
            description="Post-traumatic stress disorder, unspecified",
            valid_from=ICD10CM_US_START,
            source=_ICD_SOURCE + "FY2016; kapnet's default for indication ptsd (clinic policy)",
        ),
        ServiceCode(
            code="F42.2",
            system=CodeSystem.ICD10CM,
            description="Mixed obsessional thoughts and acts",
            valid_from=ICD10CM_FY2017,
            source=_ICD_SOURCE + "FY2017; kapnet's default for indication ocd (clinic policy)",
        ),
        ServiceCode(
            code="F19.20",
            system=CodeSystem.ICD10CM,
            description="Other psychoactive substance dependence, uncomplicated",
            valid_from=ICD10CM_US_START,
            source=_ICD_SOURCE + "FY2016; kapnet's default for indication substance_use_disorder (clinic policy)",
        ),
    )
)


# --- diagnoses ------------------------------------------------------------------------------------------------

# The default ICD-10-CM code of each indication, and why (clinic policy over [ICD-10-CM FY2026]). The clinician
# may always give a more specific code; "other" has no default: the clinician must give one.
INDICATION_DIAGNOSES: dict[Indication, tuple[str, str]] = {
    Indication.depression: (
        "F32.9",
        "major depression, severity and episode not yet coded; F32.A 'Depression, unspecified' is not used because "
        "ketamine is given for a major depressive disorder. A specific code (F32.0-F32.5) is better where known",
    ),
    Indication.treatment_resistant_depression: (
        "F33.9",
        "ICD-10-CM has no code for 'treatment-resistant': the resistance is documented in the prior-treatment "
        "history, not in the code. Recurrent is the default because resistance follows failed treatment over time; "
        "a specific code (F32.x/F33.x with severity) is better where known",
    ),
    Indication.anxiety: ("F41.1", "generalized anxiety disorder, the anxiety disorder ketamine is studied in"),
    Indication.ptsd: ("F43.10", "post-traumatic stress disorder, acute or chronic not yet coded"),
    Indication.ocd: ("F42.2", "obsessive-compulsive disorder with both obsessional thoughts and compulsive acts"),
    Indication.substance_use_disorder: (
        "F19.20",
        "dependence on a psychoactive substance, substance not yet coded; a substance-specific code (F10-F16, F18) "
        "is better where known",
    ),
}


def diagnosis_for(indication: Indication, day: date) -> ServiceCode:
    """The default ICD-10-CM code of a course's indication, valid on ``day``; refused for ``other``."""
    if indication is Indication.other:
        raise NotBillable(
            "indication 'other' has no default diagnosis code: the clinician must give the ICD-10-CM code"
        )
    code, _why = INDICATION_DIAGNOSES[indication]
    return CODE_TABLE.valid_on(code, day)


# --- charge lines ---------------------------------------------------------------------------------------------

Modifier = Annotated[str, Field(pattern=r"^[A-Z0-9]{2}$")]


class ChargeLine(BaseModel):
    """One line of a charge: a code valid on the date of service, how many units, its modifiers, in words."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    code: ServiceCode
    units: int = Field(ge=1, le=9999, strict=True)
    modifiers: tuple[Modifier, ...] = ()
    description: str = Field(min_length=3, max_length=400)
    # What the claim must say beside the code: for J3490 the drug, dose and NDC.
    note: str | None = Field(default=None, max_length=400)

    @model_validator(mode="after")
    def _no_diagnosis(self) -> Self:
        if self.code.system is CodeSystem.ICD10CM:
            raise ValueError(f"{self.code.code} is a diagnosis, not a charge")
        return self


# CPT time bands for psychotherapy [AMA CPT]: (first minute, standalone code, code added to an E/M).
PSYCHOTHERAPY_MIN_MINUTES = 16
PSYCHOTHERAPY_BANDS: tuple[tuple[int, str, str], ...] = (
    (53, "90837", "90838"),
    (38, "90834", "90836"),
    (16, "90832", "90833"),
)
# 96365 is an infusion of more than 15 minutes; 15 or less is a push [AMA CPT].
INFUSION_MIN_MINUTES = 16
# Modifier 25: an E/M significant and separately identifiable from a procedure the same day [AMA CPT].
MODIFIER_SEPARATE_EM = "25"
ESKETAMINE_G2082_MAX_MG = 56

_ROUTE_WORDS: dict[Route, str] = {
    Route.iv_infusion: "IV infusion",
    Route.intramuscular: "intramuscular injection",
    Route.subcutaneous: "subcutaneous injection",
    Route.sublingual_oral: "sublingual/oral",
    Route.intranasal_esketamine: "esketamine nasal spray",
}


def _minutes(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotBillable(f"{name} must be a whole number of minutes, not {value!r}")
    if value < 0:
        raise NotBillable(f"{name} cannot be negative ({value})")
    return value


def psychotherapy_code(minutes: int, *, with_em: bool) -> str:
    """The psychotherapy code for ``minutes`` [AMA CPT]: standalone, or the add-on when an E/M is billed the same
    day. Under 16 minutes nothing is reported: NotBillable."""
    minutes = _minutes("psychotherapy minutes", minutes)
    for first_minute, standalone, add_on in PSYCHOTHERAPY_BANDS:
        if minutes >= first_minute:
            return add_on if with_em else standalone
    raise NotBillable(
        f"psychotherapy of {minutes} minutes is not billable: CPT reports psychotherapy from "
        f"{PSYCHOTHERAPY_MIN_MINUTES} minutes"
    )


def infusion_additional_hours(infusion_minutes: int) -> int:
    """Units of 96366 for an infusion of ``infusion_minutes`` [AMA CPT]: the first hour is 96365; each further hour
    counts once the infusion runs more than 30 minutes into it (hour k counts from 60k + 31 minutes), so 91
    minutes gives 1, 150 gives 1 and 151 gives 2."""
    minutes = _minutes("infusion minutes", infusion_minutes)
    return max(0, (minutes - 31) // 60)


def _line(
    code: str, day: date, units: int = 1, *, modifiers: tuple[str, ...] = (), description: str | None = None
) -> ChargeLine:
    row = CODE_TABLE.valid_on(code, day)
    return ChargeLine(code=row, units=units, modifiers=modifiers, description=description or row.description)


def _psychotherapy_lines(day: date, minutes: int | None, *, with_em: bool) -> list[ChargeLine]:
    if minutes is None:
        return []
    minutes = _minutes("psychotherapy minutes", minutes)
    if minutes < PSYCHOTHERAPY_MIN_MINUTES:
        # Under 16 minutes is not reported [AMA CPT]; the dosing session is still billed.
        return []
    row = CODE_TABLE.valid_on(psychotherapy_code(minutes, with_em=with_em), day)
    return [ChargeLine(code=row, units=1, description=f"{row.description}: {minutes} minutes")]


def _ketamine_drug_line(day: date, route: Route, dose_mg: float) -> ChargeLine:
    row = CODE_TABLE.valid_on("J3490", day)
    return ChargeLine(
        code=row,
        units=1,
        description=f"Ketamine hydrochloride (racemic), {dose_mg:g} mg, {_ROUTE_WORDS[route]}",
        note=(
            f"unclassified drug: ketamine hydrochloride (racemic) {dose_mg:g} mg {_ROUTE_WORDS[route]}; the claim "
            "must carry the NDC of the vial used"
        ),
    )


def dosing_session_lines(
    route: Route,
    day: date,
    dose_mg: float,
    infusion_minutes: int | None,
    psychotherapy_minutes: int | None,
) -> list[ChargeLine]:
    """The charge lines of one dosing session on ``day`` (the site's calendar date of service), each code the one
    valid that day.

    - esketamine: G2082 (up to 56 mg) or G2083 (more), the drug code of the day (S0013 until 2025-12-31, J0013
      from 2026-01-01) in 1 mg units, no E/M (the G code includes it), psychotherapy standalone;
    - IV: 96365, 96366 per additional hour, J3490 x 1, 99214-25, psychotherapy added to the E/M;
    - IM or SC: 96372, J3490 x 1, 99214-25, psychotherapy added to the E/M;
    - sublingual/oral: 99214, psychotherapy added to the E/M; no administration and no drug code (clinic policy).

    Psychotherapy under 16 minutes (or none) adds no line. Raises NotBillable saying what is missing or wrong.
    """
    _calendar_day(day)
    try:
        route = Route(route)
    except ValueError:
        raise NotBillable(f"unknown route {route!r}") from None
    if isinstance(dose_mg, bool) or not isinstance(dose_mg, int | float) or not math.isfinite(dose_mg):
        raise NotBillable(f"dose_mg must be a number of milligrams, not {dose_mg!r}")
    if dose_mg <= 0:
        raise NotBillable(f"dose_mg must be more than 0 mg (got {dose_mg:g}): nothing was given to bill")
    if route is not Route.iv_infusion and infusion_minutes is not None:
        raise NotBillable(f"an infusion duration was given for a {_ROUTE_WORDS[route]} session, which has no infusion")
    if psychotherapy_minutes is not None:
        _minutes("psychotherapy minutes", psychotherapy_minutes)

    if route is Route.intranasal_esketamine:
        if not float(dose_mg).is_integer():
            raise NotBillable(f"an esketamine dose is billed in whole mg (1 mg units), not {dose_mg:g} mg")
        mg = int(dose_mg)
        visit = "G2082" if mg <= ESKETAMINE_G2082_MAX_MG else "G2083"
        drug = CODE_TABLE.valid_on("J0013" if day >= ESKETAMINE_J_CODE_FROM else "S0013", day)
        return [
            _line(visit, day),
            ChargeLine(
                code=drug,
                units=mg,
                description=f"Esketamine nasal spray, {mg} mg ({mg} x 1 mg)",
                note=(
                    f"{visit}'s descriptor includes the provision of the esketamine: a payer that pays the drug "
                    "inside the G code (Medicare) must not be billed this line as well"
                ),
            ),
            *_psychotherapy_lines(day, psychotherapy_minutes, with_em=False),
        ]

    lines: list[ChargeLine] = []
    em_modifiers: tuple[str, ...] = ()
    if route is Route.iv_infusion:
        if infusion_minutes is None:
            raise NotBillable("an IV session needs its infusion duration (infusion_minutes) to be billed")
        minutes = _minutes("infusion minutes", infusion_minutes)
        if minutes < INFUSION_MIN_MINUTES:
            raise NotBillable(
                f"an infusion of {minutes} minutes is not billable as 96365: CPT counts an infusion from "
                f"{INFUSION_MIN_MINUTES} minutes (15 minutes or less is an IV push)"
            )
        lines.append(_line("96365", day, description=f"IV infusion of ketamine, {minutes} minutes: initial hour"))
        additional = infusion_additional_hours(minutes)
        if additional:
            lines.append(_line("96366", day, additional, description=f"IV infusion, {additional} additional hour(s)"))
        lines.append(_ketamine_drug_line(day, route, dose_mg))
        em_modifiers = (MODIFIER_SEPARATE_EM,)
    elif route in (Route.intramuscular, Route.subcutaneous):
        lines.append(_line("96372", day, description=f"Ketamine {_ROUTE_WORDS[route]}"))
        lines.append(_ketamine_drug_line(day, route, dose_mg))
        em_modifiers = (MODIFIER_SEPARATE_EM,)
    # sublingual/oral: the patient takes the drug themselves under supervision, so there is no administration
    # code, and a self-administered oral drug is not billed as J3490 (clinic policy).
    lines.append(
        _line(
            "99214",
            day,
            modifiers=em_modifiers,
            description=f"Supervising clinician's E/M, {_ROUTE_WORDS[route]} dosing session",
        )
    )
    lines.extend(_psychotherapy_lines(day, psychotherapy_minutes, with_em=True))
    return lines


def integration_session_lines(day: date, minutes: int) -> list[ChargeLine]:
    """An integration session: standalone psychotherapy by time [AMA CPT]; under 16 minutes nothing is billable."""
    _calendar_day(day)
    code = psychotherapy_code(minutes, with_em=False)
    return [_line(code, day, description=f"Integration psychotherapy: {minutes} minutes")]


def intake_evaluation_lines(day: date, with_medical_services: bool) -> list[ChargeLine]:
    """An intake evaluation: 90792 with medical services (a prescriber's evaluation), 90791 without [AMA CPT]."""
    _calendar_day(day)
    return [_line("90792" if with_medical_services else "90791", day)]
