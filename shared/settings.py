"""Settings every service reads, from the environment only (prefix ``KAPNET_``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.instants import site_zone

SERVICES = ("intake", "sessions", "billing", "outcomes", "webhooks")
# The services that also run in the network role, on the aggregates only.
NETWORK_SERVICES = ("outcomes", "webhooks")
_SITE_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAPNET_", extra="ignore")

    service: Literal["intake", "sessions", "billing", "outcomes", "webhooks"] = "intake"
    # No default: a site service started without its site would write one site's records into another's topics.
    site: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{0,30}$")
    # network role: its member sites, whose network topics it reads (JSON, e.g. ["north","south"]).
    network_sites: list[str] = Field(default_factory=list)
    # "production" refuses the development fallbacks (a SQLite file inside the container).
    environment: Literal["development", "production"] = "development"
    # Only outcomes and webhooks run in the network role; every other service is always "site".
    role: Literal["site", "network"] = "site"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Empty means a SQLite file under var_dir; any SQLAlchemy URL works (postgresql://... for PostgreSQL).
    database_url: str = ""
    var_dir: Path = Path("var")
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Who this process is to the broker (deploy/kafka/access.py names every principal and its ACLs). PLAINTEXT is an
    # unauthenticated development broker; SASL_* authenticate with SCRAM-SHA-512 as kafka_sasl_username; production
    # takes SASL_SSL only, so patient records never cross the network unencrypted.
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    # PEM of the CA that signed the broker's certificate (SASL_SSL); unset: the system's trust store.
    kafka_ssl_cafile: Path | None = None
    # Every call to the broker is bounded by this, so a dead broker never hangs a service (aiokafka #1101).
    kafka_timeout_seconds: float = Field(default=10.0, gt=0)
    kafka_site_topic_partitions: int = Field(default=3, ge=1)
    # The nodes each topic this service creates is kept on: 1 on one broker, 3 on the production cluster
    # (docker-compose.yml's production profile), whose min.insync.replicas of 2 then lets one node be down.
    kafka_replication_factor: int = Field(default=1, ge=1)
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    outbox_batch_size: int = Field(default=500, ge=1)
    consumer_max_attempts: int = Field(default=3, ge=1)
    consumer_retry_backoff_seconds: float = Field(default=0.2, ge=0)
    # Bearer tokens. development: signed by the key in var_dir/auth (python -m shared.auth mint);
    # oidc: the issuer's JWKS. The algorithm is pinned; issuer and audience are checked.
    auth_mode: Literal["development", "oidc"] = "development"
    auth_issuer: str = "kapnet-dev"
    auth_audience: str = "kapnet"
    auth_algorithm: Literal["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"] = "RS256"
    auth_jwks_url: str = ""
    # Clinical thresholds that are a clinic's choice rather than a published rule: one value per site.
    # Blood pressure at screening above which a medical review is needed (issue: intake, default 140/90).
    screening_bp_threshold_systolic: int = Field(default=140, ge=90, le=200)
    screening_bp_threshold_diastolic: int = Field(default=90, ge=50, le=130)
    # PCL-5 total at or above which a probable PTSD is reported (NCPTSD: 31-33 suggested; default 33).
    pcl5_cutoff: int = Field(default=33, ge=0, le=80)
    # The site's IANA time zone: its calendar days (the REMS form's 7 days, the ISO week of the weekly cap, a
    # patient's age on the day) are counted here. Checked at start.
    time_zone: str = "UTC"
    # sessions: per-site overrides of the clinical rules' defaults (services/sessions/rules.py,
    # SessionRuleSettings), as JSON, e.g. {"weekly_session_cap": 3}. Checked when the service starts.
    session_rules: dict[str, Any] = Field(default_factory=dict)
    # billing: per-site settings (services/billing/domain/settings.py, BillingSettings), as JSON, e.g.
    # {"rems_certified": true}. Checked when the service starts.
    billing_rules: dict[str, Any] = Field(default_factory=dict)
    # A server (serve(), python -m services.X) migrates in a child process and never holds Alembic's modules
    # (shared/db/migration_process.py); an app built in a test's process migrates in that process.
    migrate_in_child_process: bool = False
    # outcomes (site role): how often the site's aggregates are recomputed and, if changed, published.
    aggregate_publish_interval_seconds: float = Field(default=60.0, gt=0)
    # outcomes (site role): how often its aggregates may cross to the network (shared/privacy/release.py):
    # once a day, week or month, at the first beat of the period; "beat" (every beat) is for development only.
    release_period: Literal["day", "week", "month", "beat"] = "day"
    # outcomes (site role): "suppression" (small-cell and complementary suppression, the step rule) or
    # "differential" (OpenDP integer noise on every count, then the same rules; shared/privacy/noise.py). In the
    # differential mode each release spends privacy_epsilon_per_release of the month's privacy_epsilon_per_month;
    # when the month's budget is spent the site releases nothing more until the next month.
    privacy_mode: Literal["suppression", "differential"] = "suppression"
    privacy_epsilon_per_month: float = Field(default=1.0, gt=0, le=10)
    privacy_epsilon_per_release: float = Field(default=0.25, gt=0, le=10)
    # webhooks: a failed delivery is tried again after base * 2^(n-1) seconds (at most the cap) until the retry
    # window has passed since its first attempt; then it is failed, to be replayed. The window is at least a day in
    # production (issue 14); tests shorten all three.
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_cap_seconds: float = Field(default=3600.0, gt=0)
    webhook_retry_window_seconds: float = Field(default=86400.0, gt=0)
    # webhooks: an endpoint whose deliveries fail this many times in a row (each after its whole retry window) is
    # disabled until its admin resumes it; what arrives meanwhile waits for it (clinic policy).
    webhook_disable_after_failures: int = Field(default=3, ge=1)
    # webhooks: how long a receiver has to answer one attempt (Standard Webhooks' senders use 15 s).
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    # webhooks: attempts in flight at once, over all endpoints and per endpoint.
    webhook_concurrency: int = Field(default=16, ge=1)
    webhook_concurrency_per_endpoint: int = Field(default=4, ge=1)
    webhook_poll_interval_seconds: float = Field(default=0.5, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        site_zone(value)
        return value

    @model_validator(mode="after")
    def _complete(self) -> ServiceSettings:
        if self.role == "network" and self.service not in NETWORK_SERVICES:
            raise ValueError(f"only {' and '.join(NETWORK_SERVICES)} run in the network role")
        if self.role == "site" and not self.site:
            raise ValueError("KAPNET_SITE is required for a site service")
        if self.role == "network" and self.site:
            raise ValueError("the network role belongs to no site: leave KAPNET_SITE unset")
        if self.role == "network" and not self.network_sites:
            raise ValueError(
                'the network role reads its member sites: set KAPNET_NETWORK_SITES, e.g. ["north","south"]'
            )
        # "network" names the network's own topics (kapnet.network.*): a site of that name would share them.
        if "network" in {self.site, *self.network_sites}:
            raise ValueError("'network' is reserved and cannot name a site")
        for member in self.network_sites:
            if not _SITE_NAME.fullmatch(member):
                raise ValueError(f"not a site name: {member!r}")
        if self.environment == "production" and not self.database_url:
            raise ValueError("KAPNET_DATABASE_URL is required in production")
        if self.privacy_epsilon_per_release > self.privacy_epsilon_per_month:
            raise ValueError("KAPNET_PRIVACY_EPSILON_PER_RELEASE cannot exceed the month's budget")
        if self.environment == "production" and self.release_period == "beat":
            raise ValueError("production releases on a fixed cadence: KAPNET_RELEASE_PERIOD is day, week or month")
        if self.environment == "production" and self.webhook_retry_window_seconds < 86400:
            raise ValueError(
                "production retries a webhook delivery for at least a day: KAPNET_WEBHOOK_RETRY_WINDOW_SECONDS"
            )
        if self.environment == "production" and self.auth_mode != "oidc":
            raise ValueError("production trusts an OIDC issuer only: set KAPNET_AUTH_MODE=oidc")
        if self.auth_mode == "oidc" and not self.auth_jwks_url:
            raise ValueError("KAPNET_AUTH_JWKS_URL is required with KAPNET_AUTH_MODE=oidc")
        self._kafka_security_complete()
        return self

    def _kafka_security_complete(self) -> None:
        if self.environment == "production" and self.kafka_security_protocol != "SASL_SSL":
            raise ValueError(
                "production talks to Kafka over SASL_SSL only (an authenticated principal, encrypted records): "
                "set KAPNET_KAFKA_SECURITY_PROTOCOL=SASL_SSL"
            )
        has_credentials = bool(self.kafka_sasl_username or self.kafka_sasl_password.get_secret_value())
        if self.kafka_security_protocol == "PLAINTEXT":
            if has_credentials:
                raise ValueError("Kafka credentials are set but KAPNET_KAFKA_SECURITY_PROTOCOL is PLAINTEXT")
        elif not self.kafka_sasl_username or not self.kafka_sasl_password.get_secret_value():
            raise ValueError(
                f"KAPNET_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs KAPNET_KAFKA_SASL_USERNAME "
                "and KAPNET_KAFKA_SASL_PASSWORD"
            )
        if self.kafka_ssl_cafile is not None and self.kafka_security_protocol != "SASL_SSL":
            raise ValueError("KAPNET_KAFKA_SSL_CAFILE is only used with KAPNET_KAFKA_SECURITY_PROTOCOL=SASL_SSL")

    @property
    def where(self) -> str:
        """The site this process serves, or ``network``."""
        return self.site if self.role == "site" and self.site else "network"

    @property
    def instance(self) -> str:
        """Who this process is, e.g. ``intake@north`` or ``outcomes@network``."""
        return f"{self.service}@{self.where}"

    @property
    def zone(self) -> ZoneInfo:
        return site_zone(self.time_zone)

    @property
    def dev_key_dir(self) -> Path:
        return self.var_dir / "auth"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        path = (self.var_dir / self.where / f"{self.service}.db").resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
