"""Events the outcomes service publishes; the network aggregate is the only thing that leaves a site."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events.registry import DomainEvent, registered


class AggregateCell(BaseModel):
    """One count of a cohort. A suppressed cell carries no number at all (not a zero, not a range)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    period: str = Field(pattern=r"^\d{4}-\d{2}$|^all$", description="a month (YYYY-MM) or 'all'")
    count: int | None = Field(default=None, ge=0)
    suppressed: bool = False

    @model_validator(mode="after")
    def _suppressed_means_no_number(self) -> AggregateCell:
        if self.suppressed and self.count is not None:
            raise ValueError("a suppressed cell carries no count")
        if not self.suppressed and self.count is None:
            raise ValueError("an unsuppressed cell needs a count")
        return self


@registered
class CohortAggregatePublished(DomainEvent):
    """The latest aggregate of one (site, cohort): counts by month, small counts suppressed."""

    name = "cohort_aggregate.published"
    producer = "outcomes"
    scope = "network"
    summary = "Latest de-identified aggregate of one site's cohort; counts 1-10 suppressed."

    site: str
    cohort: str = Field(description="what is counted, e.g. 'registrations'")
    measure: str
    cells: list[AggregateCell]
    total: AggregateCell
    generated_at: datetime

    def partition_key(self) -> str:
        return f"{self.site}|{self.cohort}"
