"""The attacker of the privacy tests: a reader of the topic who kept every published version, as the auditor reads
them (shared/privacy/inference.py over what each version shows)."""

from __future__ import annotations

from collections.abc import Sequence

from shared.privacy.inference import Inference, SumBound, Version, infer_shown, shown_version


def infer(versions: Sequence[Version], extra: Sequence[SumBound] = (), *, exact: bool = False) -> Inference:
    """Every suppressed cell's range over the versions, in publication order, and the extra bounds (``exact``: every
    range solved exactly, not only the leaks')."""
    return infer_shown([shown_version(v) for v in versions], extra, exact=exact)
