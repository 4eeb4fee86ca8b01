"""The public surface: instruments, versions, specs, the Score record, and LOINC data."""

import dataclasses
import json

import pytest

import shared.instruments as instruments
from shared.instruments import (
    INSTRUMENT_VERSIONS,
    LOINC,
    LOINC_SYSTEM,
    SPECS,
    Instrument,
    parse_instrument,
    score,
)
from shared.instruments.phq9 import SAFETY_ITEM


def test_every_instrument_has_a_version_a_spec_and_loinc_data() -> None:
    assert set(INSTRUMENT_VERSIONS) == set(SPECS) == set(LOINC) == set(Instrument)
    assert [i.value for i in Instrument] == ["phq9", "gad7", "pcl5"]


@pytest.mark.parametrize(
    ("instrument", "count", "maximum", "max_total"),
    [(Instrument.phq9, 9, 3, 27), (Instrument.gad7, 7, 3, 21), (Instrument.pcl5, 20, 4, 80)],
)
def test_specs(instrument: Instrument, count: int, maximum: int, max_total: int) -> None:
    spec = SPECS[instrument]
    assert (spec.item_count, spec.item_min, spec.item_max, spec.max_total) == (count, 0, maximum, max_total)


def test_instrument_accepts_the_enum_or_its_exact_value() -> None:
    assert parse_instrument("pcl5") is Instrument.pcl5
    assert parse_instrument(Instrument.gad7) is Instrument.gad7
    assert score("gad7", [0] * 7) == score(Instrument.gad7, [0] * 7)


def test_a_score_is_frozen() -> None:
    result = score("phq9", [0] * 9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.total = 27  # type: ignore[misc]


def test_a_score_has_no_cleared_state() -> None:
    # A PHQ-9 item 9 of 0 only means the flag is not raised by this form; nothing "clears" a patient.
    names = {f.name for f in dataclasses.fields(instruments.Score)}
    assert not any("clear" in name for name in names)


def test_a_score_turns_into_plain_json() -> None:
    data = dataclasses.asdict(score("pcl5", [2] * 20))
    assert json.loads(json.dumps(data)) == {
        "instrument": "pcl5",
        "version": INSTRUMENT_VERSIONS[Instrument.pcl5],
        "total": 40,
        "severity": None,
        "clusters": {"B": 10, "C": 4, "D": 14, "E": 12},
        "endorsed": {"B": 5, "C": 2, "D": 7, "E": 6},
        "provisional_ptsd": True,
        "at_or_above_cutoff": True,
        "cutoff": 33,
        "safety_flag": False,
        "item_count": 20,
        "answers": [2] * 20,
    }


def test_every_name_in_all_is_exported() -> None:
    for name in instruments.__all__:
        assert hasattr(instruments, name), name


def loinc_check_digit_ok(code: str) -> bool:
    """LOINC's mod 10 check digit (LOINC Users' Guide, "Calculating Mod 10 check digits"), the Luhn scheme."""
    body, _, check = code.partition("-")
    total = 0
    for position, digit in enumerate(reversed(body), start=1):
        value = int(digit) * (2 if position % 2 else 1)
        total += value // 10 + value % 10
    return (10 - total % 10) % 10 == int(check)


def all_loinc_codes() -> list[str]:
    codes = []
    for data in LOINC.values():
        codes += [c.code for c in (data.panel, data.total) if c is not None]
        codes += [c.code for c in data.items or ()]
    return codes


@pytest.mark.parametrize("code", all_loinc_codes())
def test_every_loinc_code_has_a_valid_check_digit(code: str) -> None:
    assert loinc_check_digit_ok(code)


def test_the_check_digit_catches_a_typo() -> None:
    assert loinc_check_digit_ok("44261-6")
    assert not loinc_check_digit_ok("44261-7")
    assert not loinc_check_digit_ok("44216-6")


def test_loinc_totals_and_panels() -> None:
    assert LOINC_SYSTEM == "http://loinc.org"
    phq9, gad7, pcl5 = LOINC[Instrument.phq9], LOINC[Instrument.gad7], LOINC[Instrument.pcl5]
    assert phq9.panel is not None and phq9.total is not None
    assert (phq9.panel.code, phq9.total.code) == ("44249-1", "44261-6")
    assert gad7.panel is not None and gad7.total is not None
    assert (gad7.panel.code, gad7.total.code) == ("69737-5", "70274-6")
    # PCL-5 codes came from secondary LOINC browsers only, and say so; item codes were not looked up.
    assert pcl5.verified is False
    assert pcl5.items is None


def test_loinc_item_codes_in_form_order() -> None:
    phq9_items = LOINC[Instrument.phq9].items
    gad7_items = LOINC[Instrument.gad7].items
    assert phq9_items is not None and gad7_items is not None
    assert [c.code for c in phq9_items] == [
        "44250-9",
        "44255-8",
        "44259-0",
        "44254-1",
        "44251-7",
        "44258-2",
        "44252-5",
        "44253-3",
        "44260-8",
    ]
    assert [c.code for c in gad7_items] == [
        "69725-0",
        "68509-9",
        "69733-4",
        "69734-2",
        "69735-9",
        "69689-8",
        "69736-7",
    ]
    assert len(phq9_items) == SPECS[Instrument.phq9].item_count
    assert len(gad7_items) == SPECS[Instrument.gad7].item_count


def test_the_safety_item_is_the_loinc_self_harm_item() -> None:
    items = LOINC[Instrument.phq9].items
    assert items is not None
    assert items[SAFETY_ITEM - 1].code == "44260-8"
    assert "better off dead" in items[SAFETY_ITEM - 1].display


def test_no_loinc_code_is_used_twice() -> None:
    codes = all_loinc_codes()
    assert len(codes) == len(set(codes))
