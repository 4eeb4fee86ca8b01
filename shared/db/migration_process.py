"""Migrations at a server's start, run in a short-lived child process.

Alembic, Mako and the migration scripts cost a server about 14 MB (measured on outcomes: 11 to import, 3 to
run) that it would keep for its whole life after using them once. ``serve()`` turns this on
(``ServiceSettings.migrate_in_child_process``); tests' in-process apps migrate in their own process, which has
Alembic loaded already and would pay a second interpreter's start (about 1.4 s) for every app."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

# The URL goes in the child's environment, not its arguments: any user of the machine can read another's argv.
DATABASE_URL_VARIABLE = "KAPNET_MIGRATE_DATABASE_URL"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


async def upgrade_in_child_process(database_url: str, versions: Path) -> None:
    python_path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.db.migrate",
        str(versions),
        env={**os.environ, DATABASE_URL_VARIABLE: database_url, "PYTHONPATH": python_path},
    )
    try:
        code = await child.wait()
    except asyncio.CancelledError:
        # A server stopped while it starts leaves no migration running on behind it.
        child.kill()
        await child.wait()
        raise
    if code != 0:
        raise RuntimeError(f"migrations in {versions} failed (exit code {code}); the child's error is in the log")
