"""Intake's tables."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.db.types import UtcDateTime


class Patient(SQLModel, table=True):
    __tablename__ = "patient"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    mrn: str = Field(sa_column=sa.Column(sa.String(40), nullable=False, unique=True))
    given_name: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    family_name: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    birth_date: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    sex: str = Field(sa_column=sa.Column(sa.String(10), nullable=False))
    active: bool = Field(default=True, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.true()))
    registered_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
