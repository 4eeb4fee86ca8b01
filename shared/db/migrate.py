"""Alembic migrations, run at service start (a server runs them in a child: shared/db/migration_process.py).
One env.py for every service; each service keeps its own ``migrations/versions`` folder and its own database."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from shared.db.database import sync_url
from shared.db.migration_process import DATABASE_URL_VARIABLE

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


def main() -> None:
    """``python -m shared.db.migrate VERSIONS``, the database's URL in ``KAPNET_MIGRATE_DATABASE_URL``."""
    upgrade_to_head(os.environ[DATABASE_URL_VARIABLE], Path(sys.argv[1]))


if __name__ == "__main__":
    main()
