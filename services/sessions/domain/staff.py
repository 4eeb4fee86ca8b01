"""Who acts on a record, as the domain needs to know them: their id, their name, and whether they may prescribe."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Staff:
    sub: str  # the token's subject: how the record names them
    name: str
    # A clinician may prescribe and dose, and decide what a rule leaves to clinical judgement (an override).
    clinician: bool
