"""LOINC codes of the instruments, for FHIR Observations (system http://loinc.org).

Sources, checked November 2026 (loinc.org itself could not be queried directly from here):
- PHQ-9: loinc.org panel 69729-2 (PHQ-SADS), which lists the PHQ-9 items in form order, and FHIR
  Questionnaires generated from LOINC panel 44249-1 (LHC-Forms), which give the same order item by item;
  total 44261-6 from loinc.org/44261-6.
- GAD-7: loinc.org panel 69729-2 and a FHIR Questionnaire generated from LOINC panel 69737-5 (LHC-Forms),
  same order; total 70274-6 listed in 69729-2.
- PCL-5: panel 101697-1 (added in LOINC 2.75) and total 101698-9 "PTSD PCL-5 score [PCL-5]", found only on
  secondary LOINC browsers (findacode.com, healthassure.in) and one public project that checked them on the
  HL7 terminology server; not confirmed on loinc.org itself. Per-item PCL-5 codes were not looked up and
  are left None rather than guessed.
Item displays are LOINC's names, which differ slightly from the printed forms.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.instruments.scoring import Instrument

LOINC_SYSTEM = "http://loinc.org"


@dataclass(frozen=True)
class LoincCode:
    code: str
    display: str


@dataclass(frozen=True)
class InstrumentLoinc:
    panel: LoincCode | None
    total: LoincCode | None
    # In form order: items[0] is item 1. None where the item codes are not known.
    items: tuple[LoincCode, ...] | None
    # Whether every code here was confirmed against loinc.org (or a LOINC-generated panel definition).
    verified: bool


LOINC: dict[Instrument, InstrumentLoinc] = {
    Instrument.phq9: InstrumentLoinc(
        panel=LoincCode("44249-1", "PHQ-9 quick depression assessment panel [Reported.PHQ]"),
        total=LoincCode("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
        items=(
            LoincCode("44250-9", "Little interest or pleasure in doing things"),
            LoincCode("44255-8", "Feeling down, depressed, or hopeless"),
            LoincCode("44259-0", "Trouble falling or staying asleep, or sleeping too much"),
            LoincCode("44254-1", "Feeling tired or having little energy"),
            LoincCode("44251-7", "Poor appetite or overeating"),
            LoincCode(
                "44258-2",
                "Feeling bad about yourself-or that you are a failure or have let yourself or your family down",
            ),
            LoincCode(
                "44252-5", "Trouble concentrating on things, such as reading the newspaper or watching television"
            ),
            LoincCode(
                "44253-3",
                "Moving or speaking so slowly that other people could have noticed. Or the opposite-being so "
                "fidgety or restless that you have been moving around a lot more than usual",
            ),
            LoincCode("44260-8", "Thoughts that you would be better off dead, or of hurting yourself in some way"),
        ),
        verified=True,
    ),
    Instrument.gad7: InstrumentLoinc(
        panel=LoincCode("69737-5", "Generalized anxiety disorder 7 item (GAD-7)"),
        total=LoincCode("70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]"),
        items=(
            LoincCode("69725-0", "Feeling nervous, anxious or on edge"),
            LoincCode("68509-9", "Over the past 2 weeks have you not been able to stop or control worrying"),
            LoincCode("69733-4", "Worrying too much about different things"),
            LoincCode("69734-2", "Trouble relaxing"),
            LoincCode("69735-9", "Being so restless that it is hard to sit still"),
            LoincCode("69689-8", "Becoming easily annoyed or irritable."),
            LoincCode("69736-7", "Feeling afraid as if something awful might happen"),
        ),
        verified=True,
    ),
    Instrument.pcl5: InstrumentLoinc(
        panel=LoincCode("101697-1", "Post traumatic stress disorder checklist - civilian version DSM-5 [PCL-5]"),
        total=LoincCode("101698-9", "PTSD PCL-5 score [PCL-5]"),
        items=None,
        # Seen only on secondary LOINC browsers: spot-check on loinc.org before sending them to another system.
        verified=False,
    ),
}


def usable_loinc(instrument: Instrument) -> InstrumentLoinc | None:
    """The instrument's LOINC codes if every one was confirmed; else None, and kapnet's own codes are used.
    Sending an unconfirmed LOINC code to another system would be worse than sending a plainly local one."""
    codes = LOINC.get(instrument)
    return codes if codes is not None and codes.verified else None
