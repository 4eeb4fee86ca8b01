"""``python -m deploy.postgres run --data-dir var/pg --port 5433 [--database NAME ...]``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from deploy.postgres.launcher import PostgresServer


def _run(data_dir: Path, port: int | None, databases: list[str], timeout: float) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server = PostgresServer(data_dir, port=port)
    try:
        server.start(timeout=timeout)
        for name in databases:
            print(server.create_database(name), flush=True)
        print(server.url("postgres"), flush=True)
        print(f"postgres: running (log {server.log_file}); Ctrl-C to stop", file=sys.stderr, flush=True)
        # Wake up now and then to notice a server that died on its own.
        while not stop.wait(2.0):
            if not server.is_running():
                print(f"postgres: server exited; see {server.log_file}", file=sys.stderr)
                return 1
        return 0
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.postgres", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a PostgreSQL server in the foreground")
    run.add_argument("--data-dir", type=Path, default=Path("var/pg"))
    run.add_argument("--port", type=int, default=None, help="default: the previous port, else a free one")
    run.add_argument("--database", action="append", default=[], help="create this database (repeatable)")
    run.add_argument("--timeout", type=float, default=60.0, help="startup timeout, seconds")
    args = parser.parse_args(argv)
    return _run(args.data_dir, args.port, args.database, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
