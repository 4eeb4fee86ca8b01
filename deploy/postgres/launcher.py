"""A private PostgreSQL server (Debian's packaged binaries) on 127.0.0.1, one data directory per server.

No Docker here: ``initdb`` + ``pg_ctl`` from ``/usr/lib/postgresql/<version>/bin`` (see install.sh).
The cluster has one superuser, ``kapnet``, with trust authentication: it only listens on loopback and
on a Unix socket inside its own data directory, so it is for development and tests only.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import weakref
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

PG_USER = "kapnet"
# The OS account that owns the cluster when we are root (created by Debian's postgresql package).
OS_USER = "postgres"
CONF_FILE = "kapnet.conf"  # included from postgresql.conf; rewritten on every start
LOCATION_FILE = "kapnet-pgdata-location"  # in data_dir, when the cluster lives elsewhere (see below)
SERVER_LOG = "kapnet-server.log"
# A Unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux, NUL included).
_MAX_SOCKET_PATH = 100


def pg_bin_dir() -> Path:
    """``/usr/lib/postgresql/<highest version>/bin`` (or ``$KAPNET_PG_BIN``)."""
    env = os.environ.get("KAPNET_PG_BIN")
    if env:
        return Path(env)
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")]
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed: run deploy/postgres/install.sh")

    def version(bin_dir: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", bin_dir.parent.name))

    return max(candidates, key=version)


def free_port() -> int:
    """An unused loopback TCP port (free now; another process could still take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _traversable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Can ``user`` reach ``path``? (Checks x permission on every existing ancestor.)"""
    groups = {user.pw_gid, *os.getgrouplist(user.pw_name, user.pw_gid)}
    for directory in [path, *path.parents]:
        try:
            st = directory.stat()
        except FileNotFoundError:
            continue  # created later by us with the default mode (0755 under the usual umask)
        if st.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


_LIVE_SERVERS: weakref.WeakSet[PostgresServer] = weakref.WeakSet()


@atexit.register
def _stop_live_servers() -> None:
    # pg_ctl daemonizes the server: without this, an owner that exits without stop() leaks it.
    for server in list(_LIVE_SERVERS):
        with contextlib.suppress(Exception):
            server.stop()


class PostgresServer:
    """``port=None``: the port this data_dir used before, else a free one.

    ``durable=False``: a throwaway cluster (the tests') that never waits for the disk: fsync and full-page writes
    off. A crash of a server process still loses nothing committed (each commit is still written to the OS, which
    keeps it); a crash of the machine could lose or corrupt the cluster, which PostgreSQL's documentation allows
    for data that can be made again. Commits stay synchronous: asynchronous ones could be lost to a kill -9."""

    def __init__(self, data_dir: Path, port: int | None = None, *, durable: bool = True) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.durable = durable
        # initdb and postgres refuse to run as root: then they run as the "postgres" OS user.
        self._os_user = pwd.getpwnam(OS_USER) if os.geteuid() == 0 else None
        self.pgdata = self._choose_pgdata()
        self.port = port or self._stored_port() or free_port()

    # -- where things live

    def _choose_pgdata(self) -> Path:
        if self._os_user is None or _traversable_by(self.data_dir, self._os_user):
            return self.data_dir
        # As root, data_dir may sit under a directory the postgres user cannot traverse (/root,
        # pytest's /tmp/pytest-of-root is 0700). Rather than loosening permissions on the user's
        # directories, the cluster lives under /tmp and data_dir records where. The random suffix
        # ties the cluster to this data_dir's lifetime: a new directory at the same path (a reused
        # test path) gets a fresh cluster, not a stale one. /tmp is cleared on reboot; so is that data.
        location = self.data_dir / LOCATION_FILE
        with contextlib.suppress(OSError):
            return Path(location.read_text().strip())
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path("/tmp") / f"kapnet-pg-{digest}-{secrets.token_hex(4)}"

    @property
    def relocated(self) -> bool:
        return self.pgdata != self.data_dir

    @property
    def log_file(self) -> Path:
        return self.pgdata / SERVER_LOG

    def _stored_port(self) -> int | None:
        with contextlib.suppress(OSError):
            match = re.search(r"^port\s*=\s*(\d+)", (self.pgdata / CONF_FILE).read_text(), re.M)
            if match:
                return int(match.group(1))
        return None

    def url(self, name: str) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{quote(name, safe='')}"

    # -- running the binaries

    def _run(
        self, tool: str, *args: str, timeout: float = 120.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(pg_bin_dir() / tool), *args]
        if self._os_user is not None:
            cmd = ["runuser", "-u", OS_USER, "--", *cmd]
        proc = subprocess.run(
            cmd,
            # cwd "/": the postgres user may not be able to enter our cwd (e.g. /root), which
            # makes the tools complain.
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            # Own session: a Ctrl-C meant for the owner's terminal must not reach the daemonized
            # postmaster (it would fast-shutdown behind our back); stop() does that.
            start_new_session=True,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc

    def _chown(self, path: Path) -> None:
        if self._os_user is not None:
            os.chown(path, self._os_user.pw_uid, self._os_user.pw_gid)

    def _initdb_if_needed(self) -> None:
        if (self.pgdata / "PG_VERSION").is_file():
            return
        if self.relocated:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            (self.data_dir / LOCATION_FILE).write_text(f"{self.pgdata}\n")
        self.pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._chown(self.pgdata)
        # A umask like 077 can make directories we just created unreachable: fail with a clear message.
        if self._os_user is not None and not _traversable_by(self.pgdata, self._os_user):
            raise RuntimeError(f"user {OS_USER!r} cannot reach {self.pgdata} (directory permissions)")
        self._run(
            "initdb", "-D", str(self.pgdata), "-U", PG_USER,
            "--auth=trust", "--encoding=UTF8", "--locale=C",
        )  # fmt: skip
        # Our settings go in a separate file so each start can rewrite them (port, socket dir)
        # without editing the initdb-generated postgresql.conf again.
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(f"\n# Added by deploy/postgres/launcher.py\ninclude_if_exists = '{CONF_FILE}'\n")

    def _write_conf(self) -> None:
        socket_dir = str(self.pgdata)
        if len(f"{socket_dir}/.s.PGSQL.{self.port}") > _MAX_SOCKET_PATH:
            socket_dir = ""  # a deep data_dir: no Unix socket at all (we connect over TCP anyway)
        text = (
            "# Written by deploy/postgres/launcher.py on every start; edits are overwritten.\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{socket_dir}'\n"
        )
        if not self.durable:
            text += "fsync = off\nfull_page_writes = off\n"
        path = self.pgdata / CONF_FILE
        path.write_text(text)
        self._chown(path)

    # -- lifecycle

    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").is_file():
            return False
        # pg_ctl status: 0 running, 3 not running, 4 no valid data directory.
        return self._run("pg_ctl", "status", "-D", str(self.pgdata), check=False).returncode == 0

    def start(self, timeout: float = 60.0) -> None:
        """initdb once, then ``pg_ctl start -w``; returns when the server accepts connections."""
        self._initdb_if_needed()
        if self.is_running():
            # Already up (an earlier start, maybe by another process): report the port it really uses.
            self.port = self._stored_port() or self.port
            _LIVE_SERVERS.add(self)
            return
        self._write_conf()
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        proc = self._run(
            "pg_ctl", "start", "-w", "-s", "-t", str(max(1, int(timeout))),
            "-D", str(self.pgdata), "-l", str(self.log_file),
            timeout=timeout + 30, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            tail = ""
            with contextlib.suppress(OSError), self.log_file.open("rb") as fh:
                fh.seek(log_offset)
                tail = fh.read()[-4000:].decode("utf-8", "replace")
            raise RuntimeError(
                f"PostgreSQL did not start on 127.0.0.1:{self.port}:\n{proc.stdout}{proc.stderr}\n"
                f"log tail ({self.log_file}):\n{tail}"
            )
        _LIVE_SERVERS.add(self)

    def stop(self) -> None:
        """``pg_ctl stop -m fast`` (rolls back open transactions, shuts down cleanly); idempotent."""
        _LIVE_SERVERS.discard(self)
        if not self.is_running():
            return
        proc = self._run("pg_ctl", "stop", "-w", "-s", "-m", "fast", "-D", str(self.pgdata), check=False)
        if proc.returncode != 0 and self.is_running():
            raise RuntimeError(f"pg_ctl stop failed:\n{proc.stdout}{proc.stderr}")

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name`` unless it exists; returns its URL."""
        import psycopg  # lazily: starting a server needs no driver
        from psycopg import errors, sql

        # CREATE DATABASE cannot run inside a transaction block: autocommit.
        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists is None:
                # Two callers may race between the check and the CREATE: the loser is fine too.
                with contextlib.suppress(errors.DuplicateDatabase):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def destroy(self) -> None:
        """Stop and delete the cluster's files (including a relocated cluster under /tmp)."""
        self.stop()
        shutil.rmtree(self.pgdata, ignore_errors=True)
        if self.relocated:
            (self.data_dir / LOCATION_FILE).unlink(missing_ok=True)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PostgresServer({str(self.data_dir)!r}, port={self.port}, pgdata={str(self.pgdata)!r})"
