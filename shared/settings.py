"""Settings every service reads, from the environment only (prefix ``KAPNET_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("intake", "sessions", "billing", "outcomes")


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAPNET_", extra="ignore")

    service: Literal["intake", "sessions", "billing", "outcomes"] = "intake"
    site: str = Field(default="north", pattern=r"^[a-z][a-z0-9-]{0,30}$")
    # Only outcomes runs in the network role; every other service is always "site".
    role: Literal["site", "network"] = "site"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Empty means a SQLite file under var_dir; any SQLAlchemy URL works (postgresql://... for PostgreSQL).
    database_url: str = ""
    var_dir: Path = Path("var")
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Every call to the broker is bounded by this, so a dead broker never hangs a service (aiokafka #1101).
    kafka_timeout_seconds: float = Field(default=10.0, gt=0)
    kafka_site_topic_partitions: int = Field(default=3, ge=1)
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    outbox_batch_size: int = Field(default=500, ge=1)
    consumer_max_attempts: int = Field(default=3, ge=1)
    consumer_retry_backoff_seconds: float = Field(default=0.2, ge=0)
    # outcomes (site role): how often the site's aggregates are recomputed and, if changed, published.
    aggregate_publish_interval_seconds: float = Field(default=60.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @property
    def instance(self) -> str:
        """Who this process is, e.g. ``intake@north`` or ``outcomes@network``."""
        return f"{self.service}@{'network' if self.role == 'network' else self.site}"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        where = "network" if self.role == "network" else self.site
        path = (self.var_dir / where / f"{self.service}.db").resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
