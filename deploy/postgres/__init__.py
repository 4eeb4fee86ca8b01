"""Run a private PostgreSQL server (Debian's packaged binaries) on 127.0.0.1, without Docker."""

from deploy.postgres.launcher import PostgresServer, pg_bin_dir

__all__ = ["PostgresServer", "pg_bin_dir"]
