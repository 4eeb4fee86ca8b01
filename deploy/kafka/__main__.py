"""Kafka without Docker, and who may do what on it.

``python -m deploy.kafka fetch``                      download the jars, make the class-data archive (once)
``python -m deploy.kafka run --data-dir var/kafka``   a single-node unsecured broker in the foreground
``python -m deploy.kafka acls``                       the ACL matrix of deploy/kafka/access.py (Markdown)
``python -m deploy.kafka provision ...``              apply it to a broker as the admin (docker-compose.yml's job)
``python -m deploy.kafka compose-secrets``            passwords for every principal into .env (docker-compose.yml)
``python -m deploy.kafka rotate NAME``                a new password for make run's principal NAME
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from pydantic import SecretStr

from deploy.kafka import credentials
from deploy.kafka.access import ADMIN, access_table, password_variable
from deploy.kafka.launcher import ADMIN_USER, KafkaNode, kafka_jars, prepare_class_archive

DEFAULT_SITES = "north,south"


def _run(data_dir: Path, port: int, controller_port: int | None, timeout: float) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Handlers go in before start(): a SIGTERM during the (slow) startup still stops the broker cleanly.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    node = KafkaNode(data_dir, port=port, controller_port=controller_port)
    try:
        node.start(timeout=timeout)
        print(node.bootstrap_servers, flush=True)
        print(f"kafka: running (log {node.log_file}); Ctrl-C to stop", file=sys.stderr, flush=True)
        # Wake up now and then to notice a broker that died on its own.
        while not stop.wait(1.0):
            if not node.is_running():
                print(f"kafka: broker exited; log tail:\n{node.log_tail()}", file=sys.stderr)
                return 1
        return 0
    finally:
        node.stop()


def _sites(text: str) -> list[str]:
    return [site.strip() for site in text.split(",") if site.strip()]


def _provision(args: argparse.Namespace) -> int:
    """Every password from its environment variable (password_variable), the admin's included; retried while the
    broker is still starting, so a job started with it needs no wait of its own."""
    from deploy.kafka.provision import provision
    from shared.bus.kafka import KafkaAccess

    table = access_table(_sites(args.sites))
    names = [p.name for p in table.principals]
    missing = [password_variable(name) for name in names if not os.environ.get(password_variable(name))]
    if missing:
        print(f"provision: set {', '.join(missing)} (python -m deploy.kafka compose-secrets)", file=sys.stderr)
        return 2
    passwords = {name: os.environ[password_variable(name)] for name in names}
    admin = KafkaAccess(
        args.bootstrap_servers,
        security_protocol=args.security_protocol,
        sasl_mechanism="PLAIN",
        username=ADMIN_USER,
        password=SecretStr(passwords[ADMIN]),
        ssl_cafile=args.ssl_cafile,
    )
    deadline = time.monotonic() + args.wait
    while True:
        try:
            applied = asyncio.run(provision(admin, table, passwords))
        except Exception as exc:
            if time.monotonic() > deadline:
                print(f"provision: {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
            time.sleep(2.0)
            continue
        print(f"provision: {applied} on {args.bootstrap_servers}", flush=True)
        for line in applied.deleted:
            print(f"  deleted (not in the table): {line}")
        return 0


def _compose_secrets(args: argparse.Namespace) -> int:
    """Appends a fresh password for each principal that has none in the env file yet; never changes one."""
    path: Path = args.env_file
    text = path.read_text() if path.exists() else ""
    present = {line.split("=", 1)[0].strip() for line in text.splitlines() if "=" in line}
    principals = access_table(_sites(args.sites)).principals
    added = [
        f"{password_variable(p.name)}={credentials.new_password()}"
        for p in principals
        if password_variable(p.name) not in present
    ]
    if added:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as fh:
            os.fchmod(fh.fileno(), 0o600)
            if text and not text.endswith("\n"):
                fh.write("\n")
            fh.write("# Kafka SASL passwords, one per principal (deploy/kafka/access.py)\n")
            fh.write("".join(f"{line}\n" for line in added))
    print(f"{path}: {len(added)} Kafka password(s) added, {len(principals) - len(added)} kept")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.kafka", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "fetch", help="download the Kafka jars into the cache and make the brokers' class-data archive (once)"
    )
    run = sub.add_parser("run", help="run a single-node (unsecured) broker in the foreground")
    run.add_argument("--data-dir", type=Path, default=Path("var/kafka"))
    run.add_argument("--port", type=int, default=9092, help="client port (0: previous or a free one)")
    run.add_argument("--controller-port", type=int, default=None)
    run.add_argument("--timeout", type=float, default=90.0, help="startup timeout, seconds")

    acls = sub.add_parser("acls", help="print the principals and their ACLs as a Markdown table")
    acls.add_argument("--sites", default=DEFAULT_SITES, help="comma-separated site names")
    acls.add_argument("--loader", action="store_true", help="with make run's demo loader")

    prov = sub.add_parser("provision", help="set every principal's SCRAM password and exactly the table's ACLs")
    prov.add_argument("--bootstrap-servers", required=True, help="the broker's admin (PLAIN) listener")
    prov.add_argument("--security-protocol", choices=["SASL_PLAINTEXT", "SASL_SSL"], default="SASL_SSL")
    prov.add_argument("--ssl-cafile", default=None, help="PEM of the CA that signed the broker's certificate")
    prov.add_argument("--sites", default=DEFAULT_SITES, help="comma-separated site names")
    prov.add_argument("--wait", type=float, default=120.0, help="seconds to keep trying while the broker starts")

    secrets_ = sub.add_parser("compose-secrets", help="add a password per principal to docker-compose's .env")
    secrets_.add_argument("--env-file", type=Path, default=Path(".env"))
    secrets_.add_argument("--sites", default=DEFAULT_SITES, help="comma-separated site names")

    rotate = sub.add_parser("rotate", help="a new password for a principal of make run (used from its next start)")
    rotate.add_argument("principal", help="e.g. north-intake (python -m deploy.kafka acls lists them)")
    rotate.add_argument("--var-dir", type=Path, default=Path("var"))
    args = parser.parse_args(argv)

    if args.command == "fetch":
        print(kafka_jars())
        try:
            print(prepare_class_archive())
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            # Brokers start without it, only slower: a warning, not a failed install.
            print(f"kafka: no class-data archive, brokers start without one: {exc}", file=sys.stderr)
        return 0
    if args.command == "acls":
        print(access_table(_sites(args.sites), loader=args.loader).matrix(), end="")
        return 0
    if args.command == "provision":
        return _provision(args)
    if args.command == "compose-secrets":
        return _compose_secrets(args)
    if args.command == "rotate":
        path = args.var_dir / "kafka" / "credentials.json"
        try:
            credentials.rotate(path, args.principal)
        except KeyError as exc:
            parser.error(str(exc))
        print(f"new password for {args.principal} in {path}: stop make run and start it again to use it")
        return 0
    return _run(args.data_dir, args.port, args.controller_port, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
