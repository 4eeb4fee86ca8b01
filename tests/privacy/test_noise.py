"""The differential-privacy mode: OpenDP's integer noise, the monthly budget, and the error report.

The statistical tests draw 20 000 counts in one release; their tolerances are at least 6 standard errors wide,
so they do not flake (OpenDP draws from its own CSPRNG, which cannot be seeded).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime
from fractions import Fraction
from typing import Any

import opendp.prelude as dp
import pytest

from shared.privacy.noise import (
    SUPPRESSED,
    IntegerNoise,
    PrivacyAccountant,
    PrivacyBudgetSpent,
    PrivacyLossExceeded,
    ReleasedCount,
    ShownCount,
    SuppressedCount,
    add_integer_noise,
    as_epsilon,
    integer_noise,
    noise_error,
    release_with_noise,
    released_count,
)

DRAWS = 20_000


def _privacy_loss(noise: IntegerNoise, sensitivity: int) -> float:
    # OpenDP 0.16 leaves Measurement.map unannotated.
    loss: float = noise.measurement.map(sensitivity)  # type: ignore[no-untyped-call]
    return loss


def _discrete_laplace_alpha(scale: float) -> float:
    return math.exp(-1 / scale)


# --- the mechanism --------------------------------------------------------------------------------------------


def test_noise_is_integer_and_varies_between_calls() -> None:
    counts = {f"2025-{month:02d}": 500 for month in range(1, 13)} | {("cut", n): 500 for n in range(40)}
    noise = integer_noise(epsilon=0.5, sensitivity=1)

    first = add_integer_noise(noise, counts)
    second = add_integer_noise(noise, counts)

    assert first.keys() == counts.keys()
    assert all(type(value) is int for value in [*first.values(), *second.values()])
    # 52 cells at scale 2: the chance that two draws agree everywhere, or that no cell moves, is far below 1e-20.
    assert first != second
    assert first != counts


def test_spread_matches_the_scale() -> None:
    noise = integer_noise(epsilon=0.1, sensitivity=1)
    raw = 1_000  # far from 0: no clamping in play
    noisy = add_integer_noise(noise, {cell: raw for cell in range(DRAWS)})
    errors = [value - raw for value in noisy.values()]

    alpha = _discrete_laplace_alpha(noise.scale)
    expected_mae = 2 * alpha / (1 - alpha**2)  # E|X| of the discrete Laplace, ≈ scale (9.98 at scale 10)
    expected_variance = 2 * alpha / (1 - alpha) ** 2  # ≈ 2·scale²
    mae = sum(abs(e) for e in errors) / DRAWS
    mean = sum(errors) / DRAWS
    variance = sum(e * e for e in errors) / DRAWS

    # Standard errors: 0.07 for the MAE, 0.10 for the mean, 3.2 for the variance.
    assert mae == pytest.approx(expected_mae, abs=0.5)
    assert mae == pytest.approx(noise.scale, rel=0.06)
    assert abs(mean) < 0.7
    assert variance == pytest.approx(expected_variance, abs=20)


def test_scale_grows_with_sensitivity() -> None:
    noise = integer_noise(epsilon=1, sensitivity=4)
    noisy = add_integer_noise(noise, {cell: 1_000 for cell in range(DRAWS)})
    mae = sum(abs(value - 1_000) for value in noisy.values()) / DRAWS

    assert noise.scale == pytest.approx(4.0)
    alpha = _discrete_laplace_alpha(noise.scale)
    assert mae == pytest.approx(2 * alpha / (1 - alpha**2), abs=0.2)  # standard error 0.03


@pytest.mark.parametrize("epsilon", [0.1, 0.3, 0.7, 1, "0.05", Fraction(1, 3), 2.5])
@pytest.mark.parametrize("sensitivity", [1, 3, 12])
def test_opendp_map_confirms_epsilon(epsilon: float | str | Fraction, sensitivity: int) -> None:
    noise = integer_noise(epsilon, sensitivity)
    exact = as_epsilon(epsilon)

    loss = _privacy_loss(noise, sensitivity)
    assert Fraction(loss) <= exact
    assert noise.certified_loss == loss
    # Only raised by float steps where OpenDP's conservative rounding needed it.
    nominal = float(Fraction(sensitivity) / exact)
    assert nominal <= noise.scale <= nominal * (1 + 1e-12)
    # The certificate is for this sensitivity: a release one patient could move more would cost more.
    assert Fraction(_privacy_loss(noise, sensitivity + 1)) > exact
    assert str(noise.measurement.input_metric) == "L1Distance(i32)"


def test_release_carries_its_certificate() -> None:
    release = release_with_noise({"2025-01": 40, "2025-02": 60}, epsilon="0.25", sensitivity=2)

    assert release.epsilon == Fraction(1, 4)
    assert release.sensitivity == 2
    assert release.scale == pytest.approx(8.0)
    assert Fraction(release.certified_loss) <= Fraction(1, 4)
    assert set(release.cells) == {"2025-01", "2025-02"}


def test_raises_when_opendp_does_not_confirm_epsilon(monkeypatch: pytest.MonkeyPatch) -> None:
    make_laplace = dp.m.make_laplace

    def too_little_noise(*args: Any, **kwargs: Any) -> dp.Measurement:
        return make_laplace(*args, **(kwargs | {"scale": 1.0}))

    monkeypatch.setattr(dp.m, "make_laplace", too_little_noise)

    with pytest.raises(PrivacyLossExceeded):
        integer_noise(epsilon=0.1, sensitivity=1)


@pytest.mark.parametrize(
    ("noisy", "released"),
    [
        (-7, ShownCount(0)),
        (-1, ShownCount(0)),
        (0, ShownCount(0)),
        (1, SUPPRESSED),
        (5, SUPPRESSED),
        (10, SUPPRESSED),
        (11, ShownCount(11)),
        (250, ShownCount(250)),
    ],
)
def test_post_processing_clamps_and_suppresses(noisy: int, released: ReleasedCount) -> None:
    assert released_count(noisy) == released


def test_small_and_zero_counts_never_come_out_negative_or_small() -> None:
    # Scale 10 around raw counts 0-12: many draws land below 0 and in 1-10.
    counts = {cell: cell % 13 for cell in range(5_000)}
    release = release_with_noise(counts, epsilon=0.1, sensitivity=1)

    shown = [cell.count for cell in release.cells.values() if isinstance(cell, ShownCount)]
    suppressed = [cell for cell in release.cells.values() if isinstance(cell, SuppressedCount)]
    assert shown and suppressed
    assert all(count == 0 or count >= 11 for count in shown)
    assert 0 in shown  # clamped, not dropped


def test_empty_release() -> None:
    assert release_with_noise({}, epsilon=1, sensitivity=1).cells == {}


@pytest.mark.parametrize("epsilon", [0, -0.5, "0", Fraction(-1, 2)])
def test_epsilon_must_be_positive(epsilon: float | str | Fraction) -> None:
    with pytest.raises(ValueError, match="ε must be positive"):
        integer_noise(epsilon, sensitivity=1)


@pytest.mark.parametrize("sensitivity", [0, -1, True])
def test_sensitivity_must_be_a_positive_integer(sensitivity: int) -> None:
    with pytest.raises(ValueError, match="sensitivity"):
        integer_noise(1, sensitivity)


def test_raw_counts_must_be_non_negative_integers() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        release_with_noise({"2025-01": -1}, epsilon=1, sensitivity=1)


# --- the budget -----------------------------------------------------------------------------------------------

JANUARY = date(2025, 1, 15)


def test_floats_are_read_as_the_decimal_written() -> None:
    assert as_epsilon(0.1) == Fraction(1, 10)
    assert as_epsilon("0.1") == Fraction(1, 10)


def test_refuses_the_spend_that_would_exceed_the_month() -> None:
    accountant = PrivacyAccountant.opened("north", JANUARY, budget=1.0).spend(0.6, JANUARY)

    assert accountant.spent == Fraction(3, 5)
    assert accountant.can_spend(0.4, JANUARY)
    assert not accountant.can_spend(0.5, JANUARY)
    with pytest.raises(PrivacyBudgetSpent, match="north"):
        accountant.spend(0.5, date(2025, 1, 31))
    # Refused, not partly spent.
    assert accountant.spent == Fraction(3, 5)


def test_ten_spends_of_a_tenth_fill_a_budget_of_one() -> None:
    accountant = PrivacyAccountant.opened("north", JANUARY, budget=1.0)
    for day in range(1, 11):
        accountant = accountant.spend(0.1, date(2025, 1, day))

    assert accountant.spends == (Fraction(1, 10),) * 10
    assert accountant.spent == 1
    assert accountant.remaining == 0
    assert not accountant.can_spend(0.1, JANUARY)
    with pytest.raises(PrivacyBudgetSpent):
        accountant.spend(Fraction(1, 10**9), JANUARY)


def test_spend_returns_a_new_state() -> None:
    opened = PrivacyAccountant.opened("north", JANUARY, budget=1)
    after = opened.spend("0.3", JANUARY)

    assert opened.spends == ()
    assert after.spends == (Fraction(3, 10),)


def test_budget_resets_next_month() -> None:
    spent = PrivacyAccountant.opened("north", date(2024, 12, 3), budget=1).spend(1, date(2024, 12, 3))
    assert not spent.can_spend(0.1, date(2024, 12, 31))

    assert spent.can_spend(1, date(2025, 1, 1))
    january = spent.spend(0.25, date(2025, 1, 1))
    assert january.month == "2025-01"
    assert january.spends == (Fraction(1, 4),)
    assert january.budget == 1


def test_budget_does_not_go_back_a_month() -> None:
    accountant = PrivacyAccountant.opened("north", JANUARY, budget=1)
    with pytest.raises(ValueError, match="does not go back"):
        accountant.spend(0.1, date(2024, 12, 31))


def test_a_release_retried_after_a_lost_connection_spends_its_epsilon_once() -> None:
    monday, tuesday = datetime(2025, 1, 6, tzinfo=UTC), datetime(2025, 1, 7, tzinfo=UTC)
    spent = PrivacyAccountant.opened("north", JANUARY, budget=1).spend_for_release(0.25, JANUARY, monday)
    assert (spent.spends, spent.kept_for) == ((Fraction(1, 4),), None)
    # Nothing kept (a defect, a timeout, a crash): the retry spends again.
    assert spent.spend_for_release(0.25, JANUARY, monday).spends == (Fraction(1, 4),) * 2
    # The release lost its connection: its spend is kept, and one retry draws on it.
    kept = spent.keep_for(monday, spends=1)
    assert kept.kept_for == monday
    retried = kept.spend_for_release(0.25, date(2025, 1, 8), monday)
    assert (retried.spends, retried.kept_for) == ((Fraction(1, 4),), None)
    assert retried.spend_for_release(0.25, JANUARY, monday).spends == (Fraction(1, 4),) * 2, "used once only"
    # Another release, or the same ε no longer (the setting changed), spends, and the kept spend is gone.
    assert kept.spend_for_release(0.25, JANUARY, tuesday) == replace(spent.spend(0.25, JANUARY), kept_for=None)
    assert kept.spend_for_release(0.5, JANUARY, monday).spends == (Fraction(1, 4), Fraction(1, 2))


def test_a_spend_made_since_is_not_kept_for_an_older_release() -> None:
    monday = datetime(2025, 1, 6, tzinfo=UTC)
    spent = PrivacyAccountant.opened("north", JANUARY, budget=1).spend_for_release(0.25, JANUARY, monday)
    # Another instance spent for its own draw before Monday's failed release was kept: that draw is not Monday's.
    assert spent.spend(0.25, JANUARY).keep_for(monday, spends=1).kept_for is None


def test_a_kept_spend_does_not_cross_into_the_next_month() -> None:
    end_of_january = datetime(2025, 1, 31, tzinfo=UTC)
    kept = PrivacyAccountant.opened("north", JANUARY, budget=1).spend_for_release(1, JANUARY, end_of_january)
    kept = kept.keep_for(end_of_january, spends=1)
    assert kept.spend_for_release(1, JANUARY, end_of_january).spends == (Fraction(1),), "January's retry reuses"
    february = kept.spend_for_release(1, date(2025, 2, 1), end_of_january)
    assert (february.month, february.spends, february.kept_for) == ("2025-02", (Fraction(1),), None)
    with pytest.raises(PrivacyBudgetSpent):
        february.spend_for_release(1, date(2025, 2, 2), end_of_january)


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PrivacyAccountant.opened("north", JANUARY, budget=0)
    with pytest.raises(ValueError):
        PrivacyAccountant(site="north", month="2025-01", budget=Fraction(0))


# --- the error it adds ----------------------------------------------------------------------------------------


def test_error_report_on_a_hand_made_release() -> None:
    raw = {"a": 100, "b": 20, "c": 5, "d": 0, "e": 12, "f": 3, "g": 0}
    released: dict[str, ReleasedCount] = {
        "a": ShownCount(110),  # error 10, relative 10%
        "b": ShownCount(18),  # error 2, relative 10%
        "c": SUPPRESSED,  # suppressed either way
        "d": SUPPRESSED,  # raw 0 would be shown: hidden by the noise
        "e": SUPPRESSED,  # raw 12 would be shown: hidden by the noise
        "f": ShownCount(11),  # raw 3 would be suppressed: shown because of the noise; error 8
        "g": ShownCount(0),  # error 0
    }

    report = noise_error(raw, released)

    assert report.cells == 7
    assert report.shown_cells == 4
    assert report.mean_absolute_error == 5.0  # (10 + 2 + 8 + 0) / 4
    assert report.p95_absolute_error == 10  # nearest rank ceil(0.95 · 4) = 4 of [0, 2, 8, 10]
    assert report.mean_relative_error == pytest.approx(0.1)
    assert report.relative_error_cells == 2
    assert report.hidden_by_noise == 2
    assert report.shown_by_noise == 1
    assert report.lines() == [
        "cells: 7 (4 shown)",
        "mean absolute error (shown cells): 5.00",
        "95th percentile absolute error (shown cells): 10",
        "mean relative error (shown cells, raw ≥ 11): 10.0% over 2 cells",
        "suppressed by the noise, shown without it: 2",
        "shown because of the noise, suppressed without it: 1",
    ]


def test_p95_is_the_nearest_rank() -> None:
    raw = {cell: 100 for cell in range(20)}
    released: dict[int, ReleasedCount] = {cell: ShownCount(100 + cell + 1) for cell in range(20)}

    report = noise_error(raw, released)

    assert report.p95_absolute_error == 19  # rank 19 of 1..20, not 20
    assert report.mean_absolute_error == 10.5


def test_error_report_with_nothing_shown() -> None:
    report = noise_error({"a": 3}, {"a": SUPPRESSED})

    assert report.mean_absolute_error is None
    assert report.p95_absolute_error is None
    assert report.mean_relative_error is None
    assert "n/a" in report.lines()[1]


def test_error_report_needs_the_same_cells() -> None:
    with pytest.raises(ValueError, match="same cells"):
        noise_error({"a": 3, "b": 4}, {"a": SUPPRESSED})


def test_error_report_of_a_real_release() -> None:
    raw = {cell: 50 + cell % 100 for cell in range(DRAWS)}
    release = release_with_noise(raw, epsilon=0.5, sensitivity=1)

    report = noise_error(raw, release.cells)

    alpha = _discrete_laplace_alpha(release.scale)
    assert report.shown_cells == DRAWS  # raw ≥ 50 at scale 2: nothing drops into 1-10 (p < 1e-8 per cell)
    assert report.mean_absolute_error == pytest.approx(2 * alpha / (1 - alpha**2), abs=0.1)  # standard error 0.015
    # At scale 2, P(|X| ≤ 5) = 0.938 and P(|X| ≤ 6) = 0.962: both 7 standard errors away from 0.95.
    assert report.p95_absolute_error == 6
