"""The console's settings, from ``KAPNET_*`` environment variables like every service's."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.instants import site_zone
from shared.settings import ServiceSettings


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAPNET_", extra="ignore")

    # A site's console (its staff's pages), or the network's dashboard (aggregates only: network administrators).
    role: Literal["site", "network"] = "site"
    site: str = Field(default="north", pattern=r"^[a-z][a-z0-9-]{0,30}$")
    environment: Literal["development", "production"] = "development"
    # The site's IANA time zone, as its services have it: times typed at the chair are the site's wall clock.
    time_zone: str = "UTC"
    # The site's PCL-5 cutoff, as its services have it (KAPNET_PCL5_CUTOFF): the score shown as a form is filled in.
    pcl5_cutoff: int = Field(default=33, ge=0, le=80)
    host: str = "127.0.0.1"
    port: int = Field(default=8100, ge=1, le=65535)
    var_dir: Path = Path("var")
    # The site's services, called with the signed-in user's token.
    intake_url: str = "http://127.0.0.1:8101"
    sessions_url: str = "http://127.0.0.1:8102"
    billing_url: str = "http://127.0.0.1:8103"
    outcomes_url: str = "http://127.0.0.1:8104"
    network_url: str = "http://127.0.0.1:8300"  # the network's outcomes service (the dashboard's only source)
    service_timeout_seconds: float = Field(default=10.0, gt=0)
    # Tokens are checked as the services check them (shared/auth): development keys, or an OIDC issuer's.
    auth_mode: Literal["development", "oidc"] = "development"
    auth_issuer: str = "kapnet-dev"
    auth_audience: str = "kapnet"
    auth_jwks_url: str = ""
    # Signing in at the OIDC issuer (authorization code with PKCE, a public client): its client id, and the
    # console's callback as the issuer knows it (default: this console's own /sign-in/callback).
    oidc_client_id: str = ""
    oidc_redirect_url: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        site_zone(value)
        return value

    @property
    def zone(self) -> ZoneInfo:
        return site_zone(self.time_zone)

    @property
    def oidc_configured(self) -> bool:
        return self.auth_mode == "oidc" and bool(self.oidc_client_id)

    @property
    def where(self) -> str:
        """Whose tokens this console takes: its site's staff, or the network's (``network``)."""
        return "network" if self.role == "network" else self.site

    def token_settings(self) -> ServiceSettings:
        """The settings the shared token verifier reads (built, not read again from the environment: this process
        is not one of the services)."""
        return ServiceSettings.model_construct(
            site=self.site,
            environment=self.environment,
            var_dir=self.var_dir,
            auth_mode=self.auth_mode,
            auth_issuer=self.auth_issuer,
            auth_audience=self.auth_audience,
            auth_jwks_url=self.auth_jwks_url,
        )
