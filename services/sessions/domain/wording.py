"""How numbers and spans read in a message to a nurse or a prescriber."""

from __future__ import annotations

from datetime import timedelta


def number(value: float) -> str:
    """0.75 -> "0.75", 0.9 -> "0.9", 55.0 -> "55"; at most 3 decimals."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def duration(span: timedelta) -> str:
    """A nurse's reading of a span: "4 min 59 s", "45 min", "1 h 59 min", "2 h"."""
    seconds = int(span.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    if secs or not parts:
        parts.append(f"{secs} s")
    return sign + " ".join(parts)
