"""Outcomes' pure rules: how site records become a network aggregate."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime

from shared.events.outcomes import AggregateCell
from shared.privacy import suppress_small_counts

REGISTRATIONS_COHORT = "registrations"


def month_of(moment: date | datetime) -> str:
    """No date finer than a month crosses the privacy boundary."""
    return f"{moment.year:04d}-{moment.month:02d}"


def registrations_by_month(months: Iterable[str]) -> tuple[list[AggregateCell], AggregateCell]:
    return suppress_small_counts(Counter(months))


def fingerprint(cells: list[AggregateCell], total: AggregateCell) -> str:
    """Identity of what would be published: a change hidden by suppression publishes nothing, so a new
    aggregate's timing never betrays a single small-count change."""
    shown = json.dumps([c.model_dump() for c in [*cells, total]], sort_keys=True)
    return hashlib.sha256(shown.encode()).hexdigest()
