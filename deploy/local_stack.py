"""``make run``: the whole local network on one machine.

Kafka from its jars, intake, sessions, billing and outcomes for the sites north and south, outcomes in the
network role, demo patients (a few through the APIs, and a synthetic cohort with months of history through the
services' events, deploy/synthetic.py), and the URLs. Ctrl-C stops every process it started, services first, then Kafka.

The broker enforces the privacy boundary as in production: every service logs in with SASL/SCRAM-SHA-512 as its
own principal, and Kafka's ACLs (deploy/kafka/access.py, applied on every start) give it its own site's topics only.
The passwords are made once into var/kafka/credentials.json (0600); each service gets its own in its environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import FrameType

from pydantic import SecretStr

from deploy.demo_data import DemoClinic
from deploy.kafka import credentials
from deploy.kafka.access import ADMIN, LOADER, NETWORK, NETWORK_WEBHOOKS, AccessTable, access_table, site_principal
from deploy.kafka.launcher import BrokerSecurity, KafkaNode
from deploy.processes import ROOT, ServiceProcess
from deploy.synthetic import load as load_synthetic
from shared.auth.permissions import Role
from shared.auth.tokens import mint_dev_token
from shared.bus.kafka import KafkaAccess

SITES = ("north", "south")
SERVICES = ("intake", "sessions", "billing", "outcomes", "webhooks")
# The network's processes, at port base + these: the two services in the network role, and the dashboard.
NETWORK_PORTS = {"outcomes": 300, "console": 310, "webhooks": 320}
DEMO_PATIENTS = {"north": 14, "south": 6}  # north passes the small-count threshold, south stays suppressed
# Synthetic patients over both sites: enough that several cohorts (site x indication x route x month) of each
# site, and their cuts, reach 11 courses and show their figures. Seeded, so every `make run` has the same ones.
SYNTHETIC_PATIENTS, SYNTHETIC_SEED = 1000, 1
# A demo's broker: the serial collector (G1's remembered sets and its threads cost memory a demo's few thousand
# records a minute do not need), a 128 MB heap (about 50 MB live after make run's demo data, the cleaner's map cut
# to 16 MB by the launcher), and only the C1 compiler with a smaller code cache (C2's compilations cost about
# 35 MB and buy a throughput a demo never asks for). bench/footprint.py measured RSS (P5, bench/RESULTS.md).
DEMO_BROKER_JVM = ("-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:ReservedCodeCacheSize=32m")
# Four months of history rather than ten: a demo's monthly cohorts are then dense enough (up to 88 courses) for
# the dashboard's rates to stand over shown counts, not only suppressed ones.
SYNTHETIC_HISTORY_DAYS = 120
FIRST_RESTART_SECONDS, MAX_RESTART_SECONDS, HEALTHY_RUN_SECONDS = 1.0, 60.0, 60.0
# Each demo site's calendar (REMS deadlines, the weekly cap's ISO week, a patient's age on the day).
TIME_ZONES = {"north": "America/New_York", "south": "America/Chicago"}
# Each demo site as the provider on its estimates and claims (invented; the NPIs pass the NPI check digit), and
# whether it is certified to give esketamine (REMS).
BILLING_RULES = {
    "north": {
        "rems_certified": True,
        "provider": {
            "name": "Kapnet North Clinic",
            "npi": "1234567893",
            "tin": "123456789",
            "location": {"line1": "1 Main St", "city": "Albany", "state": "NY", "postal_code": "12207"},
        },
    },
    "south": {
        "rems_certified": False,
        "provider": {
            "name": "Kapnet South Clinic",
            "npi": "1245319599",
            "tin": "987654321",
            "location": {"line1": "2 Oak Ave", "city": "Austin", "state": "TX", "postal_code": "78701"},
        },
    },
}


def kafka_table() -> AccessTable:
    """make run's principals: every site service, the network, the auditor, the admin and the demo loader."""
    return access_table(SITES, loader=True)


def kafka_login(principal: str, passwords: Mapping[str, str] | None) -> dict[str, str]:
    """The settings that make a service log in as ``principal`` (none: an unsecured broker)."""
    if passwords is None:
        return {}
    return {
        "KAPNET_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAPNET_KAFKA_SASL_USERNAME": principal,
        "KAPNET_KAFKA_SASL_PASSWORD": passwords[principal],
    }


def plan(
    port_base: int,
    kafka: str,
    var_dir: Path,
    publish_interval: float,
    passwords: Mapping[str, str] | None = None,
) -> list[ServiceProcess]:
    """Ports: site i's services at base+100*(i+1)+1.. (north 8101-8104, south 8201-8204), network at base+300.
    With ``passwords`` each service logs in as its own principal with its own password, and knows no other."""
    common = {
        "KAPNET_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "KAPNET_VAR_DIR": str(var_dir),
        "KAPNET_AGGREGATE_PUBLISH_INTERVAL_SECONDS": str(publish_interval),
        # A demo shows its data crossing now, not at tomorrow's release (shared/privacy/release.py): development only.
        "KAPNET_RELEASE_PERIOD": "beat",
    }
    processes = []
    for i, site in enumerate(SITES):
        for j, service in enumerate(SERVICES):
            port = port_base + 100 * (i + 1) + j + 1
            env = {
                **common,
                **kafka_login(site_principal(site, service), passwords),
                "KAPNET_SITE": site,
                "KAPNET_ROLE": "site",
                "KAPNET_TIME_ZONE": TIME_ZONES[site],
                "KAPNET_BILLING_RULES": json.dumps(BILLING_RULES[site]),
            }
            processes.append(ServiceProcess(service, port, env, var_dir / "logs" / f"{service}@{site}.log"))
    network_env = {
        **common,
        **kafka_login(NETWORK, passwords),
        "KAPNET_ROLE": "network",
        "KAPNET_NETWORK_SITES": json.dumps(list(SITES)),
    }
    processes.append(
        ServiceProcess(
            "outcomes", port_base + NETWORK_PORTS["outcomes"], network_env, var_dir / "logs" / "outcomes@network.log"
        )
    )
    processes.append(
        ServiceProcess(
            "webhooks",
            port_base + NETWORK_PORTS["webhooks"],
            {**network_env, **kafka_login(NETWORK_WEBHOOKS, passwords)},
            var_dir / "logs" / "webhooks@network.log",
        )
    )
    for i, site in enumerate(SITES):
        # Each site's console calls that site's services with the signed-in user's token, and needs no broker.
        first = port_base + 100 * (i + 1)
        urls = {f"KAPNET_{s.upper()}_URL": f"http://127.0.0.1:{first + j + 1}" for j, s in enumerate(SERVICES)}
        env = {"KAPNET_VAR_DIR": str(var_dir), "KAPNET_SITE": site, "KAPNET_TIME_ZONE": TIME_ZONES[site], **urls}
        processes.append(ServiceProcess("console", first, env, var_dir / "logs" / f"console@{site}.log"))
    # The network dashboard: the console in the network role, reading the network's outcomes service only.
    dashboard = {
        "KAPNET_VAR_DIR": str(var_dir),
        "KAPNET_ROLE": "network",
        "KAPNET_NETWORK_URL": f"http://127.0.0.1:{port_base + NETWORK_PORTS['outcomes']}",
    }
    processes.append(
        ServiceProcess(
            "console", port_base + NETWORK_PORTS["console"], dashboard, var_dir / "logs" / "console@network.log"
        )
    )
    return processes


def planned_services(port_base: int) -> dict[str, int]:
    """Every process of the local network by name (``intake@north``, ``console@network``), and its port."""
    services = {
        f"{service}@{site}": port_base + 100 * (i + 1) + j + 1
        for i, site in enumerate(SITES)
        for j, service in enumerate(SERVICES)
    }
    consoles = {f"console@{site}": port_base + 100 * (i + 1) for i, site in enumerate(SITES)}
    network = {f"{process}@network": port_base + offset for process, offset in NETWORK_PORTS.items()}
    return {**services, **consoles, **network}


def planned_ports(port_base: int) -> list[int]:
    return list(planned_services(port_base).values())


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def dev_tokens(var_dir: Path) -> dict[tuple[str, str], str]:
    """One ready development token per role and site (and the network admin's)."""
    tokens = {
        (site, role.value): mint_dev_token(var_dir / "auth", site=site, roles=[role.value])
        for site in SITES
        for role in Role
        if role is not Role.network_admin
    }
    tokens["network", Role.network_admin.value] = mint_dev_token(
        var_dir / "auth", site="network", roles=[Role.network_admin.value]
    )
    return tokens


def load_demo_data(
    processes: list[ServiceProcess],
    var_dir: Path,
    tokens: dict[tuple[str, str], str],
    kafka: KafkaAccess | str,
    synthetic_patients: int = SYNTHETIC_PATIENTS,
) -> None:
    """Once per var/ folder: a restart keeps the data it already has. The API patients first: they enter the
    price lists and plans that billing needs when it reads the synthetic courses. ``kafka``: the demo loader's
    login, which may write the sites' intake, sessions and billing topics and nothing else."""
    marker = var_dir / "demo-data-loaded"
    if marker.exists():
        return
    for site in SITES:
        url = {p.service: p.url for p in processes if p.env.get("KAPNET_SITE") == site}
        DemoClinic(site, url["intake"], url["sessions"], tokens, url["billing"]).load(DEMO_PATIENTS[site])
    if synthetic_patients:
        certified = {site for site in SITES if BILLING_RULES[site]["rems_certified"]}
        # History up to yesterday; the consumers take it in after the console says ready.
        asyncio.run(
            load_synthetic(
                synthetic_patients,
                SITES,
                SYNTHETIC_SEED,
                date.today(),
                kafka,
                esketamine_sites=certified,
                history_days=SYNTHETIC_HISTORY_DAYS,
                say=lambda line: print(line, flush=True),
            )
        )
    marker.write_text("demo data loaded\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local_stack", description=__doc__)
    parser.add_argument("--var-dir", type=Path, default=ROOT / "var")
    parser.add_argument(
        "--kafka-port",
        type=int,
        default=9092,
        help="the services' (SASL) port; the broker's loopback-only controller and admin ports are the next two",
    )
    parser.add_argument("--port-base", type=int, default=8000)
    parser.add_argument("--publish-interval", type=float, default=5.0, help="seconds between aggregate updates")
    parser.add_argument("--no-demo", action="store_true", help="start without demo patients")
    parser.add_argument(
        "--synthetic-patients",
        type=int,
        default=SYNTHETIC_PATIENTS,
        help="synthetic demo patients over both sites, with months of history (0: none)",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    var_dir: Path = args.var_dir.resolve()
    table = kafka_table()
    # Made once, kept across runs; a principal added to the table gets its password on the next start.
    passwords = credentials.load_or_create(var_dir / "kafka" / "credentials.json", [p.name for p in table.principals])
    # The controller and admin ports are fixed too, so that Kafka never takes a port the services are about to use.
    kafka = KafkaNode(
        var_dir / "kafka",
        port=args.kafka_port,
        controller_port=args.kafka_port + 1,
        internal_port=args.kafka_port + 2,
        security=BrokerSecurity(SecretStr(passwords[ADMIN])),
        jvm_options=DEMO_BROKER_JVM,
    )
    processes: list[ServiceProcess] = []
    kafka_ports = [args.kafka_port, args.kafka_port + 1, args.kafka_port + 2]
    busy = [p for p in [*kafka_ports, *planned_ports(args.port_base)] if not port_free(p)]
    if busy:
        print(
            f"ports already in use: {busy}; is another `make run` going? (--port-base/--kafka-port move them)",
            file=sys.stderr,
        )
        return 1
    try:
        print(f"starting Kafka on 127.0.0.1:{args.kafka_port} ...", flush=True)
        kafka.start()
        # Every start: the table may have changed since the data directory was made (grants not in it are removed).
        print(f"Kafka access: {kafka.apply_access(table, passwords)}", flush=True)
        tokens = dev_tokens(var_dir)  # also makes the development key before any service looks for it
        processes = plan(args.port_base, kafka.bootstrap_servers, var_dir, args.publish_interval, passwords)
        for process in processes:
            process.start()
        for process in processes:
            process.wait_healthy()
        if not args.no_demo:
            loader = kafka.client_access(LOADER, passwords[LOADER])
            load_demo_data(processes, var_dir, tokens, loader, args.synthetic_patients)
        print_tokens(tokens, var_dir)
        print_urls(kafka, processes, var_dir, tokens)
        keeper = Keeper(kafka, processes, var_dir)
        while not stop.wait(1.0):
            keeper.check()
        return 0
    except Exception as exc:  # a failed start still stops whatever did start
        print(f"make run failed: {exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping ...", flush=True)
        for process in processes:
            process.stop()
        kafka.stop()
        print("stopped: no kapnet process left running", flush=True)


@dataclass
class Restarts:
    backoff: float = FIRST_RESTART_SECONDS
    due: float | None = None
    started: float = field(default_factory=time.monotonic)


class Keeper:
    """Keeps the network up: a process that exits is started again after a backoff (1 s, doubling to a minute;
    back to 1 s once it has run a minute), and the console says so. Only Ctrl-C stops the network."""

    def __init__(self, kafka: KafkaNode, processes: list[ServiceProcess], var_dir: Path) -> None:
        self.kafka = kafka
        self.processes = processes
        self.logs = var_dir / "logs"
        self.state: dict[str, Restarts] = {name: Restarts() for name in ["kafka", *(p.name for p in processes)]}

    def check(self) -> None:
        self._keep("kafka", self.kafka.is_running, self.kafka.start, None)
        for process in self.processes:
            self._keep(process.name, process.is_running, process.start, process)

    def _keep(
        self, name: str, running: Callable[[], bool], start: Callable[[], object], process: ServiceProcess | None
    ) -> None:
        state, now = self.state[name], time.monotonic()
        if running():
            if now - state.started > HEALTHY_RUN_SECONDS:
                state.backoff = FIRST_RESTART_SECONDS
            return
        if state.due is None:
            code = process.returncode if process is not None else None
            why = f"exited with code {code}" if code is not None else "stopped"
            log = self.logs / f"{name}.log" if process is not None else self.logs
            print(f"{name} {why}; restarting it in {state.backoff:.0f} s (see {log})", file=sys.stderr, flush=True)
            state.due = now + state.backoff
            return
        if now < state.due:
            return
        try:
            start()
        except Exception as exc:
            print(f"{name} did not start again ({exc}); trying again", file=sys.stderr, flush=True)
        else:
            print(f"{name} restarted", flush=True)
        state.due, state.started = None, time.monotonic()
        state.backoff = min(state.backoff * 2, MAX_RESTART_SECONDS)


def print_tokens(tokens: dict[tuple[str, str], str], var_dir: Path) -> None:
    """Paste one into a /docs page's Authorize button. Also written to var/dev-tokens.txt."""
    lines = [f"{role}@{site}: {token}" for (site, role), token in tokens.items()]
    (var_dir / "dev-tokens.txt").write_text("\n".join(lines) + "\n")
    print("\nDevelopment tokens (12 h; `python -m shared.auth mint` makes more):", flush=True)
    print("\n".join(f"  {line}" for line in lines), flush=True)


def print_urls(
    kafka: KafkaNode, processes: list[ServiceProcess], var_dir: Path, tokens: Mapping[tuple[str, str], str]
) -> None:
    lines = [
        "",
        "kapnet is running. Ctrl-C stops everything.",
        f"  Kafka            {kafka.bootstrap_servers} (SASL/SCRAM-SHA-512, one principal per service: "
        f"python -m deploy.kafka acls; passwords in {var_dir / 'kafka' / 'credentials.json'})",
    ]
    consoles = [p for p in processes if p.service == "console"]
    [network] = [p for p in processes if p.name == "outcomes@network"]
    for process in processes:
        if process not in consoles:
            lines.append(f"  {process.name:<18} {process.url}/docs")
    lines.append(f"  network aggregates: {network.url}/aggregates")
    for console in consoles:
        where = "network" if console.env.get("KAPNET_ROLE") == "network" else console.env["KAPNET_SITE"]
        what = "dashboard" if where == "network" else "console"
        lines.append(f"  {what}@{where:<10} {console.url}/  sign in as (development links):")
        lines += [
            f"    {role:<13} {console.url}/sign-in?token={token}"
            for (site, role), token in tokens.items()
            if site == where
        ]
    lines += [f"  logs: {var_dir / 'logs'}   data: {var_dir}", "KAPNET_READY"]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
