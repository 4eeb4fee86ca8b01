"""Bad input is refused with an error that names the item at fault (1-based), for every instrument."""

from collections.abc import Sequence
from enum import IntEnum

import pytest

from shared.instruments import AnswerError, Instrument, UnknownInstrument, score

COUNTS = {Instrument.phq9: 9, Instrument.gad7: 7, Instrument.pcl5: 20}
MAXIMA = {Instrument.phq9: 3, Instrument.gad7: 3, Instrument.pcl5: 4}


def refused(instrument: Instrument | str, answers: Sequence[object]) -> AnswerError:
    with pytest.raises(AnswerError) as raised:
        score(instrument, answers)  # type: ignore[arg-type]
    return raised.value


@pytest.mark.parametrize("instrument", list(Instrument))
@pytest.mark.parametrize("delta", [-1, 1])
def test_one_answer_too_few_or_too_many(instrument: Instrument, delta: int) -> None:
    count = COUNTS[instrument] + delta
    error = refused(instrument, [0] * count)
    assert error.item is None
    assert error.instrument is instrument
    assert str(error) == f"expected {COUNTS[instrument]} answers, got {count}"


def test_no_answers_at_all() -> None:
    assert str(refused("phq9", [])) == "expected 9 answers, got 0"


@pytest.mark.parametrize(
    ("instrument", "item", "value", "message"),
    [
        (Instrument.phq9, 3, -1, "item 3: -1 is out of range 0-3"),
        (Instrument.phq9, 3, 4, "item 3: 4 is out of range 0-3"),
        (Instrument.phq9, 9, 4, "item 9: 4 is out of range 0-3"),
        (Instrument.gad7, 1, -1, "item 1: -1 is out of range 0-3"),
        (Instrument.gad7, 7, 4, "item 7: 4 is out of range 0-3"),
        (Instrument.pcl5, 1, -1, "item 1: -1 is out of range 0-4"),
        (Instrument.pcl5, 12, 5, "item 12: 5 is out of range 0-4"),
        (Instrument.pcl5, 20, 5, "item 20: 5 is out of range 0-4"),
    ],
)
def test_out_of_range(instrument: Instrument, item: int, value: int, message: str) -> None:
    answers = [0] * COUNTS[instrument]
    answers[item - 1] = value
    error = refused(instrument, answers)
    assert error.item == item
    assert error.instrument is instrument
    assert str(error) == error.message == message


@pytest.mark.parametrize("instrument", list(Instrument))
def test_the_highest_rating_is_in_range(instrument: Instrument) -> None:
    maximum = MAXIMA[instrument]
    assert score(instrument, [maximum] * COUNTS[instrument]).total == maximum * COUNTS[instrument]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "item 4: expected an int, got bool True"),
        (False, "item 4: expected an int, got bool False"),
        (2.0, "item 4: expected an int, got float 2.0"),
        (1.5, "item 4: expected an int, got float 1.5"),
        ("2", "item 4: expected an int, got str '2'"),
        (None, "item 4: expected an int, got NoneType None"),
    ],
)
@pytest.mark.parametrize("instrument", list(Instrument))
def test_non_ints_and_bools_are_refused(instrument: Instrument, value: object, message: str) -> None:
    # True is an int in Python and would count as 1; a float may be a slip. Neither is summed silently.
    answers: list[object] = [0] * COUNTS[instrument]
    answers[3] = value
    error = refused(instrument, answers)
    assert error.item == 4
    assert str(error) == message


def test_the_first_bad_item_is_the_one_named() -> None:
    error = refused("gad7", [0, 0, 9, 0, True, 0, 0])
    assert error.item == 3


def test_the_count_is_checked_before_the_items() -> None:
    error = refused("phq9", [9] * 8)
    assert error.item is None


@pytest.mark.parametrize(
    ("answers", "kind"),
    [("000000000", "str"), (b"\x00" * 9, "bytes"), ({0, 1, 2}, "set"), (None, "NoneType"), (7, "int")],
)
def test_answers_that_are_not_an_ordered_sequence_are_refused(answers: object, kind: str) -> None:
    error = refused("phq9", answers)  # type: ignore[arg-type]
    assert error.item is None
    assert str(error) == f"answers must be a sequence of ints, got {kind}"


def test_a_tuple_is_as_good_as_a_list_and_answers_are_stored_as_a_tuple() -> None:
    answers = [1, 1, 1, 1, 1, 1, 1]
    result = score("gad7", tuple(answers))
    assert result == score("gad7", answers)
    assert result.answers == (1, 1, 1, 1, 1, 1, 1)
    answers[0] = 3  # the caller's list changing later does not change the score
    assert result.answers[0] == 1


def test_int_enum_ratings_are_stored_as_plain_ints() -> None:
    class Rating(IntEnum):
        not_at_all = 0
        several_days = 1

    result = score("gad7", [Rating.several_days] * 7)
    assert result.total == 7
    assert all(type(a) is int for a in result.answers)


@pytest.mark.parametrize("name", ["phq-9", "PHQ9", "phq", "", "dissociation", "gad-7", "pcl 5"])
def test_unknown_instrument(name: str) -> None:
    with pytest.raises(UnknownInstrument) as raised:
        score(name, [0] * 9)
    assert raised.value.instrument == name
    assert str(raised.value) == f"unknown instrument {name!r}; expected one of phq9, gad7, pcl5"


def test_unknown_instrument_is_a_value_error_and_not_an_answer_error() -> None:
    with pytest.raises(ValueError) as raised:
        score(None, [0] * 9)  # type: ignore[arg-type]
    assert isinstance(raised.value, UnknownInstrument)
    assert not isinstance(raised.value, AnswerError)


def test_answer_error_is_a_value_error() -> None:
    assert issubclass(AnswerError, ValueError)
