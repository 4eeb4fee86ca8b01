"""Outcomes' tables: site role (per patient, stays at the site) and network role (aggregates only)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.db.types import UtcDateTime


class Registration(SQLModel, table=True):
    """Site role: one row per registered patient, as learnt from intake's events."""

    __tablename__ = "registration"

    patient_id: uuid.UUID = Field(primary_key=True)
    registered_month: str = Field(sa_column=sa.Column(sa.String(7), nullable=False, index=True))


class PublishedAggregate(SQLModel, table=True):
    """Site role: what was last published per cohort, so an unchanged aggregate is not sent again."""

    __tablename__ = "published_aggregate"

    cohort: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    fingerprint: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    published_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class NetworkAggregate(SQLModel, table=True):
    """Network role: the latest aggregate of every (site, cohort)."""

    __tablename__ = "network_aggregate"

    site: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    cohort: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    aggregate: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    received_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
