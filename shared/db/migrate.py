"""Alembic migrations, run at service start. One env.py for every service; each service keeps its own
``migrations/versions`` folder and its own database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from shared.db.database import sync_url

ALEMBIC_ENV = Path(__file__).parent / "alembic"


def alembic_config(database_url: str, versions: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_ENV))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(versions))
    # Alembic's ini interpolation would choke on a '%' in a password.
    config.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return config


def upgrade_to_head(database_url: str, versions: Path) -> None:
    command.upgrade(alembic_config(database_url, versions), "head")


def downgrade_to_base(database_url: str, versions: Path) -> None:
    command.downgrade(alembic_config(database_url, versions), "base")
