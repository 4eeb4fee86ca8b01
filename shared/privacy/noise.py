"""The differential-privacy mode of the release rules: OpenDP's integer noise, a monthly budget, and its error.

A site in this mode adds discrete Laplace noise (OpenDP's ``make_laplace`` over integers) to every count of a
release. One patient's course can change at most ``sensitivity`` counts of a release, each by 1, so the release's
L1 sensitivity is ``sensitivity``; noise of scale sensitivity/ε on every count makes the whole release ε-DP. OpenDP's
own privacy map certifies that loss before anything is drawn.

What follows the noise is post-processing, which costs no privacy: negative counts become 0, and counts from 1 to 10
are suppressed anyway, because the network refuses them whatever their origin (``shared.privacy``).

Each release spends its ε from the site's monthly budget (``PrivacyAccountant``); when the budget is spent, releasing
stops until the next calendar month. The accountant is pure: the caller persists its state.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Generic, TypeVar

from shared.privacy import SMALLEST_SHOWN_COUNT, is_small

if TYPE_CHECKING:
    import opendp.prelude as dp

K = TypeVar("K", bound=Hashable)

# What settings may hold for an ε. Floats are read as the decimal they were written as (0.1 is 1/10), so that
# budgets and spends written in decimals add up exactly.
EpsilonLike = Fraction | Decimal | int | float | str

# OpenDP rounds its privacy map up (conservatively), so sensitivity/ε as a float may certify a hair above ε;
# the scale is then raised by one float step at a time. A few steps always suffice; the bound only stops a loop.
_MAX_SCALE_STEPS = 64


class PrivacyLossExceeded(Exception):
    """OpenDP could not certify the noise mechanism within the release's ε."""


class PrivacyBudgetSpent(Exception):
    """The site's ε for this month is spent: no further release until the next calendar month."""


def as_epsilon(value: EpsilonLike) -> Fraction:
    """An ε as an exact positive fraction; a float is taken as its shortest decimal (0.1 -> 1/10)."""
    epsilon = Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
    if epsilon <= 0:
        raise ValueError(f"ε must be positive, got {value!r}")
    return epsilon


# --- the mechanism --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShownCount:
    count: int


@dataclass(frozen=True, slots=True)
class SuppressedCount:
    """A count the network may not see (noisy count from 1 to 10)."""


SUPPRESSED = SuppressedCount()

ReleasedCount = ShownCount | SuppressedCount


@dataclass(frozen=True, slots=True)
class NoisyRelease(Generic[K]):
    """One release in the differential-privacy mode: per cell, a shown noisy count or suppressed."""

    cells: Mapping[K, ReleasedCount]
    epsilon: Fraction
    sensitivity: int
    # The discrete Laplace scale actually used (≥ sensitivity/ε; see _MAX_SCALE_STEPS).
    scale: float
    # The privacy loss OpenDP certified for this release (≤ epsilon).
    certified_loss: float


@dataclass(frozen=True, slots=True)
class IntegerNoise:
    """An OpenDP-certified discrete Laplace mechanism over a vector of counts."""

    measurement: dp.Measurement
    epsilon: Fraction
    sensitivity: int
    scale: float
    certified_loss: float


def integer_noise(epsilon: EpsilonLike, sensitivity: int) -> IntegerNoise:
    """The discrete Laplace mechanism for a release of L1 sensitivity ``sensitivity``, certified ε-DP by OpenDP.

    Raises ``PrivacyLossExceeded`` if OpenDP's privacy map does not confirm a loss ≤ ε.
    """
    eps = as_epsilon(epsilon)
    if isinstance(sensitivity, bool) or not isinstance(sensitivity, int) or sensitivity < 1:
        raise ValueError(f"sensitivity must be a positive integer, got {sensitivity!r}")
    # Imported and enabled here, not at import: only the differential mode needs OpenDP (12 MB a process that
    # suppresses only) and its contributed (not yet vetted) components.
    import opendp.prelude as dp

    dp.enable_features("contrib")
    # The whole release is one vector: OpenDP then certifies the release (L1 ball of radius sensitivity), not a cell.
    space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
    scale = float(Fraction(sensitivity) / eps)
    for _ in range(_MAX_SCALE_STEPS):
        measurement = dp.m.make_laplace(*space, scale=scale)
        # OpenDP 0.16 leaves Measurement.map unannotated; it returns the ε (a float) for MaxDivergence.
        loss: float = measurement.map(sensitivity)  # type: ignore[no-untyped-call]
        # Compared exactly: a float converts to Fraction without rounding.
        if Fraction(loss) <= eps:
            return IntegerNoise(measurement, eps, sensitivity, scale, float(loss))
        scale = math.nextafter(scale, math.inf)
    raise PrivacyLossExceeded(f"OpenDP certified {loss} > ε = {eps} for sensitivity {sensitivity}")


def add_integer_noise(noise: IntegerNoise, counts: Mapping[K, int]) -> dict[K, int]:
    """Raw counts with discrete Laplace noise, before any post-processing (may be negative)."""
    keys = list(counts)
    raw = [counts[key] for key in keys]
    for key, count in zip(keys, raw, strict=True):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"raw count of {key!r} must be a non-negative integer, got {count!r}")
    if not keys:
        return {}
    noisy: list[int] = noise.measurement(raw)
    return dict(zip(keys, noisy, strict=True))


def released_count(noisy: int) -> ReleasedCount:
    """Post-processing of one noisy count: never negative, and 1-10 suppressed as the network requires."""
    clamped = max(noisy, 0)
    return SUPPRESSED if is_small(clamped) else ShownCount(clamped)


def release_with_noise(counts: Mapping[K, int], epsilon: EpsilonLike, sensitivity: int) -> NoisyRelease[K]:
    """The release of ``counts`` in the differential-privacy mode, ε-DP for L1 sensitivity ``sensitivity``.

    The caller spends ``epsilon`` from the site's ``PrivacyAccountant`` before publishing the result.
    """
    noise = integer_noise(epsilon, sensitivity)
    noisy = add_integer_noise(noise, counts)
    return NoisyRelease(
        cells={key: released_count(value) for key, value in noisy.items()},
        epsilon=noise.epsilon,
        sensitivity=sensitivity,
        scale=noise.scale,
        certified_loss=noise.certified_loss,
    )


# --- the budget -----------------------------------------------------------------------------------------------


def calendar_month(on: date) -> str:
    """The month as the network writes it (YYYY-MM)."""
    return f"{on.year:04d}-{on.month:02d}"


@dataclass(frozen=True, slots=True)
class PrivacyAccountant:
    """A site's privacy budget for one calendar month, and what has been spent from it.

    Immutable: ``spend`` returns the new state, which the caller persists (``month``, ``budget``, ``spends``,
    ``kept_for``).
    """

    site: str
    month: str
    budget: Fraction
    spends: tuple[Fraction, ...] = field(default=())
    # The release boundary the month's last spend is kept for. The spend comes before the noise is drawn (a crash
    # after it must waste budget, never reuse it), so a release the database's connection stopped would spend
    # again at every retry: at 0.25 of 1.0, four lost connections empty the month. Such a failure has nothing to
    # do with the draw, and an unpublished draw tells nobody anything, so after it (and only after it) the caller
    # keeps the spend (``keep_for``) and the retry draws afresh on it. Every spend, and every reuse, leaves this
    # empty: any other end of a release (a defect, a timeout, a crash, the keeping's own write failing) makes
    # its retry spend again. Fail closed (clinic policy).
    kept_for: datetime | None = None

    def __post_init__(self) -> None:
        if self.budget <= 0:
            raise ValueError(f"the monthly ε budget of site {self.site!r} must be positive, got {self.budget}")

    @classmethod
    def opened(cls, site: str, on: date, budget: EpsilonLike) -> PrivacyAccountant:
        """A fresh month: nothing spent yet."""
        return cls(site=site, month=calendar_month(on), budget=as_epsilon(budget))

    @property
    def spent(self) -> Fraction:
        return sum(self.spends, Fraction(0))

    @property
    def remaining(self) -> Fraction:
        return self.budget - self.spent

    def for_month(self, on: date) -> PrivacyAccountant:
        """This state if ``on`` falls in its month, else a fresh month with the same budget."""
        month = calendar_month(on)
        if month == self.month:
            return self
        if month < self.month:
            raise ValueError(f"{month} is before the accountant's month {self.month}: the budget does not go back")
        return PrivacyAccountant(site=self.site, month=month, budget=self.budget)

    def can_spend(self, epsilon: EpsilonLike, on: date) -> bool:
        return as_epsilon(epsilon) <= self.for_month(on).remaining

    def spend(self, epsilon: EpsilonLike, on: date) -> PrivacyAccountant:
        """The state after spending ``epsilon`` on ``on``; ``PrivacyBudgetSpent`` if that would exceed the budget."""
        eps = as_epsilon(epsilon)
        current = self.for_month(on)
        if not current.can_spend(eps, on):
            raise PrivacyBudgetSpent(
                f"site {self.site!r}: spending ε = {eps} in {current.month} would exceed the month's budget "
                f"{current.budget} ({current.spent} spent, {current.remaining} left); no release until next month"
            )
        return replace(current, spends=(*current.spends, eps))

    def spend_for_release(self, epsilon: EpsilonLike, on: date, released_for: datetime) -> PrivacyAccountant:
        """The state after spending ``epsilon`` on the release for ``released_for``, or after using the month's
        last spend, of the same ε, when it is kept for that release (a retry after a lost connection).
        ``PrivacyBudgetSpent`` as ``spend``."""
        eps = as_epsilon(epsilon)
        current = self.for_month(on)
        if current.kept_for == released_for and current.spends and current.spends[-1] == eps:
            return replace(current, kept_for=None)
        return replace(current.spend(eps, on), kept_for=None)

    def keep_for(self, released_for: datetime, spends: int) -> PrivacyAccountant:
        """The month's last spend kept for a retry of the release for ``released_for``, which its connection to
        the database stopped; ``spends`` is how many the month had once that release's spend was made (or used).
        Unchanged when another spend has been made since: the last spend then belongs to another draw."""
        if len(self.spends) != spends:
            return self
        return replace(self, kept_for=released_for)


# --- the error it adds ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoiseErrorReport:
    """How far a noisy release is from the raw counts.

    Errors are measured over the cells the release shows (a suppressed cell has no number to compare). Cells whose
    shown/suppressed fate the noise changed, against plain small-cell suppression of the raw counts, are counted.
    """

    cells: int
    shown_cells: int
    mean_absolute_error: float | None
    # Nearest-rank 95th percentile of the absolute errors.
    p95_absolute_error: int | None
    # Over shown cells whose raw count is at least SMALLEST_SHOWN_COUNT.
    mean_relative_error: float | None
    relative_error_cells: int
    # Would have been shown without noise (raw 0 or ≥ 11), suppressed in the release.
    hidden_by_noise: int
    # Would have been suppressed without noise (raw 1-10), shown in the release.
    shown_by_noise: int

    def lines(self) -> list[str]:
        def figure(value: float | None, fmt: str) -> str:
            return "n/a" if value is None else format(value, fmt)

        relative = "n/a" if self.mean_relative_error is None else f"{self.mean_relative_error:.1%}"
        return [
            f"cells: {self.cells} ({self.shown_cells} shown)",
            f"mean absolute error (shown cells): {figure(self.mean_absolute_error, '.2f')}",
            f"95th percentile absolute error (shown cells): {figure(self.p95_absolute_error, 'd')}",
            f"mean relative error (shown cells, raw ≥ {SMALLEST_SHOWN_COUNT}): {relative}"
            f" over {self.relative_error_cells} cells",
            f"suppressed by the noise, shown without it: {self.hidden_by_noise}",
            f"shown because of the noise, suppressed without it: {self.shown_by_noise}",
        ]


def _nearest_rank(percent: int, size: int) -> int:
    """The 1-based nearest rank, ceil(percent/100 · size), in integers (0.95 · 20 must be 19, not 19.000…01)."""
    return -(-percent * size // 100)


def noise_error(raw: Mapping[K, int], released: Mapping[K, ReleasedCount]) -> NoiseErrorReport:
    """The error a noisy release (``NoisyRelease.cells``) adds to the raw counts it was made from."""
    if set(raw) != set(released):
        raise ValueError("the release and the raw counts must have the same cells")
    absolute: list[int] = []
    relative: list[Fraction] = []
    hidden_by_noise = shown_by_noise = 0
    for key, count in raw.items():
        cell = released[key]
        if isinstance(cell, SuppressedCount):
            hidden_by_noise += not is_small(count)
            continue
        shown_by_noise += is_small(count)
        error = abs(cell.count - count)
        absolute.append(error)
        if count >= SMALLEST_SHOWN_COUNT:
            relative.append(Fraction(error, count))
    absolute.sort()
    return NoiseErrorReport(
        cells=len(raw),
        shown_cells=len(absolute),
        mean_absolute_error=float(Fraction(sum(absolute), len(absolute))) if absolute else None,
        p95_absolute_error=absolute[_nearest_rank(95, len(absolute)) - 1] if absolute else None,
        mean_relative_error=float(sum(relative, Fraction(0)) / len(relative)) if relative else None,
        relative_error_cells=len(relative),
        hidden_by_noise=hidden_by_noise,
        shown_by_noise=shown_by_noise,
    )
