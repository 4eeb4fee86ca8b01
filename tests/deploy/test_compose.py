"""docker-compose.yml, read as a file (no Docker engine needed): it runs every service the code has, each one
configured only by settings that ServiceSettings really reads, against its own site's database and broker."""

from __future__ import annotations

import os
import re
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from deploy.kafka.access import ADMIN, NETWORK, NETWORK_WEBHOOKS, access_table, password_variable, site_principal
from deploy.kafka.launcher import KAFKA_VERSION
from deploy.local_stack import NETWORK_PORTS
from services.console.settings import ConsoleSettings
from shared.freed_memory import allocator_environment
from shared.settings import NETWORK_SERVICES, SERVICES, ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

SITES = ("north", "south")
NETWORK_PRINCIPALS = {"outcomes": NETWORK, "webhooks": NETWORK_WEBHOOKS}
# The services that also run in the network role, by compose name.
NETWORK_COMPOSE_SERVICES = {f"{service}-network": service for service in NETWORK_SERVICES}
KAFKA_ACCESS_JOB = "kafka-access"
ENV_PREFIX = str(ServiceSettings.model_config.get("env_prefix", ""))
SETTINGS_VARIABLES = {f"{ENV_PREFIX}{name}".upper() for name in ServiceSettings.model_fields}
# The port plan of the local stack: 8<site><service>, and 8300 for the network.
SITE_DIGIT = {"north": 1, "south": 2}


def service_packages() -> list[str]:
    """Every service the code has: a package under services/ with an app.py and records of its own (models.py).
    The console (services/console) keeps none: its compose services are checked on their own below."""
    return sorted(
        p.name for p in (ROOT / "services").iterdir() if (p / "app.py").is_file() and (p / "models.py").is_file()
    )


def expected_kapnet_services() -> set[str]:
    return {f"{name}-{site}" for site in SITES for name in service_packages()} | set(NETWORK_COMPOSE_SERVICES)


def identities() -> list[tuple[str, str]]:
    """(site or "network", service) of every kapnet service compose runs."""
    return [(site or "network", package) for package, _, site in map(expected_identity, expected_kapnet_services())]


# ----------------------------------------------------------------------------------------------- reading


_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` interpolation, as an operator with no variables set would get it."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name")
        assert match.group("op") is not None, f"${{{name}}} has no default: `docker compose up` would need it set"
        return match.group("default")

    return _VARIABLE.sub(replace, value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, from either the mapping or the list form, interpolated."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    env: dict[str, str] = {}
    for key, value in raw.items():
        # Compose wants strings here (an unquoted `true` is rejected); numbers pass but quote them anyway.
        assert isinstance(value, str), f"{key}={value!r} should be a quoted string"
        env[key] = interpolate(value)
    return env


def published_ports(service: dict[str, Any]) -> list[tuple[int, int]]:
    """(host port, container port) of every published port, short or long syntax."""
    pairs: list[tuple[int, int]] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            pairs.append((int(entry["published"]), int(entry["target"])))
            continue
        spec = str(entry).split("/", 1)[0]
        *host_part, container = spec.rsplit(":", 2)
        assert host_part, f"port {entry!r} is not published on a fixed host port"
        pairs.append((int(host_part[-1]), int(container)))
    return pairs


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def our_image(service: dict[str, Any]) -> bool:
    return isinstance(service.get("build"), dict) and service["build"].get("dockerfile") == "deploy/Dockerfile"


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


@pytest.fixture(scope="module")
def kapnet(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The compose services that run our image (built from deploy/Dockerfile), bar the one-shot jobs."""
    return {
        name: service
        for name, service in services.items()
        if our_image(service) and command_of(service)[:1] not in (["deploy.kafka"], ["services.console"])
    }


@pytest.fixture(scope="module")
def consoles(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if our_image(s) and command_of(s) == ["services.console"]}


def postgres_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if str(s.get("image", "")).startswith("postgres:")}


def expected_identity(name: str) -> tuple[str, str, str | None]:
    """(service, role, site) that the compose service ``name`` must run as."""
    if name in NETWORK_COMPOSE_SERVICES:
        return NETWORK_COMPOSE_SERVICES[name], "network", None
    service, site = name.rsplit("-", 1)
    return service, "site", site


def load_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ServiceSettings:
    """ServiceSettings as the container would build it: from its environment and nothing else."""
    for key in list(os.environ):
        if key.upper().startswith(ENV_PREFIX.upper()):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return ServiceSettings()


# ------------------------------------------------------------------------------------------ the services


def test_the_code_has_services() -> None:
    assert service_packages(), "no service package found under services/"
    assert set(service_packages()) <= set(SERVICES)


def test_every_service_runs_at_every_site_and_outcomes_in_the_network(kapnet: dict[str, dict[str, Any]]) -> None:
    assert set(kapnet) == expected_kapnet_services()
    for name in NETWORK_COMPOSE_SERVICES:
        assert environment(kapnet[name]).get(f"{ENV_PREFIX}ROLE") == "network"


def test_each_service_runs_its_own_module(kapnet: dict[str, dict[str, Any]]) -> None:
    for name, service in kapnet.items():
        package, _, _ = expected_identity(name)
        command = service.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        assert command == [f"services.{package}"], name
        assert (ROOT / "services" / package / "__main__.py").is_file(), name


def test_services_set_only_settings_that_exist(kapnet: dict[str, dict[str, Any]]) -> None:
    assert ENV_PREFIX == "KAPNET_"
    for name, service in kapnet.items():
        env = environment(service)
        assert env, f"{name} sets no environment"
        unknown = sorted(set(env) - SETTINGS_VARIABLES)
        # extra="ignore": a misspelt variable would be dropped silently and the default used instead.
        assert not unknown, f"{name} sets variables ServiceSettings does not read: {unknown}"


@pytest.mark.parametrize("name", sorted(expected_kapnet_services()))
def test_settings_validate_and_name_the_compose_service(
    name: str, kapnet: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = kapnet[name]
    settings = load_settings(monkeypatch, environment(service))
    package, role, site = expected_identity(name)
    assert settings.service == package
    assert settings.role == role
    if site is not None:
        assert settings.site == site
    assert settings.instance == f"{package}@{site or 'network'}"
    # Reachable from outside the container, on the port that is published.
    assert settings.host == "0.0.0.0"
    assert [target for _, target in published_ports(service)] == [settings.port]
    # A container must not fall back to a SQLite file inside itself.
    assert settings.database_url.startswith("postgresql://")


def test_services_wait_for_healthy_kafka_its_acls_and_database(kapnet: dict[str, dict[str, Any]]) -> None:
    for name, service in kapnet.items():
        host = make_url(environment(service)[f"{ENV_PREFIX}DATABASE_URL"]).host
        # Nodes 2 and 3 of the production profile's cluster too, when they run (tests/deploy/test_compose_profiles.py).
        assert depends_on(service) == {
            "kafka": "service_healthy",
            "kafka-2": "service_healthy",
            "kafka-3": "service_healthy",
            KAFKA_ACCESS_JOB: "service_completed_successfully",
            host: "service_healthy",
        }, name
        optional = {name for name, spec in service["depends_on"].items() if spec.get("required") is False}
        assert optional == {"kafka-2", "kafka-3"}, name


def test_services_have_a_health_check_on_healthz(kapnet: dict[str, dict[str, Any]]) -> None:
    for name, service in kapnet.items():
        test = service.get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        text = " ".join(test) if isinstance(test, list) else str(test)
        assert "/healthz" in text, name
        assert "curl" not in text and "wget" not in text, f"{name}: python:3.11-slim has neither curl nor wget"


def test_services_reach_the_broker_on_its_advertised_listener(
    services: dict[str, dict[str, Any]], kapnet: dict[str, dict[str, Any]]
) -> None:
    advertised = environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    endpoints = {listener.split("://", 1)[1] for listener in advertised.split(",")}
    for name, service in kapnet.items():
        bootstrap = environment(service)[f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS"]
        assert set(bootstrap.split(",")) <= endpoints, name


# -------------------------------------------------------------------------------------------- databases


def databases_created(name: str, service: dict[str, Any]) -> set[str]:
    """What a postgres container has after its first start: POSTGRES_DB and each mounted init script's."""
    env = environment(service)
    created = {env.get("POSTGRES_DB") or env.get("POSTGRES_USER", "postgres")}
    for volume in service.get("volumes") or []:
        source, target = str(volume).split(":")[:2]
        if target.startswith("/docker-entrypoint-initdb.d/") and source.startswith("."):
            script = (COMPOSE_FILE.parent / source).resolve()
            assert script.is_file(), f"{name} mounts {source}, which does not exist"
            created |= {m.lower() for m in re.findall(r"CREATE\s+DATABASE\s+\"?(\w+)", script.read_text(), re.I)}
    return created


def test_one_postgres_per_service(services: dict[str, dict[str, Any]]) -> None:
    postgres = postgres_services(services)
    assert set(postgres) == {f"postgres-{name}" for name in (f"{site}-{service}" for site, service in identities())}
    for name, service in postgres.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        data = [v for v in service.get("volumes") or [] if str(v).endswith(":/var/lib/postgresql/data")]
        assert data, f"{name} keeps its data in no volume"


def test_each_service_owns_a_database_at_its_own_site(
    services: dict[str, dict[str, Any]], kapnet: dict[str, dict[str, Any]]
) -> None:
    postgres = postgres_services(services)
    owners: Counter[tuple[str | None, str | None]] = Counter()
    for name, service in kapnet.items():
        package, _, site = expected_identity(name)
        url = make_url(environment(service)[f"{ENV_PREFIX}DATABASE_URL"])
        assert url.get_backend_name() == "postgresql", name
        assert url.host == f"postgres-{site or 'network'}-{package}", name
        assert url.port in (None, 5432), name
        assert url.database == package, name
        assert url.username == environment(postgres[url.host]).get("POSTGRES_USER"), name
        assert url.password == environment(postgres[url.host]).get("POSTGRES_PASSWORD"), name
        assert url.database in databases_created(url.host, postgres[url.host]), f"{name}: no such database"
        owners[(url.host, url.database)] += 1
    shared = [key for key, count in owners.items() if count > 1]
    assert not shared, f"databases used by more than one service: {shared}"


# ------------------------------------------------------------------------------------------------ kafka


def test_kafka_is_the_official_image_in_kraft_mode(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}", "the same Kafka as deploy/kafka/launcher.py"
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@")
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
    ):
        assert env[key] == "1", key
    assert kafka.get("healthcheck", {}).get("test"), "kafka has no healthcheck"
    log_dirs = env["KAFKA_LOG_DIRS"]
    assert any(str(v).split(":")[1:2] == [log_dirs] for v in kafka.get("volumes") or []), "kafka data in no volume"


# ------------------------------------------------------------------------------------------------ ports


def test_published_ports_do_not_clash(services: dict[str, dict[str, Any]]) -> None:
    hosts = Counter(host for service in services.values() for host, _ in published_ports(service))
    clashes = sorted(port for port, count in hosts.items() if count > 1)
    assert not clashes, f"host ports published twice: {clashes}"


def test_ports_follow_the_local_stack_plan(kapnet: dict[str, dict[str, Any]]) -> None:
    for name, service in kapnet.items():
        package, _, site = expected_identity(name)
        expected = 8000 + (
            NETWORK_PORTS[package] if site is None else 100 * SITE_DIGIT[site] + SERVICES.index(package) + 1
        )
        assert published_ports(service) == [(expected, expected)], name


# ------------------------------------------------------------------------------------------------ image


def test_the_image_installs_the_project_and_runs_unprivileged() -> None:
    instructions = [line.strip() for line in DOCKERFILE.read_text().splitlines() if line.strip()]
    instructions = [line for line in instructions if not line.startswith("#")]
    # The last stage is the image that runs (an earlier one only builds the console's browser assets).
    assert [line for line in instructions if line.startswith("FROM ")][-1] == "FROM python:3.11-slim"
    run = " ".join(line for line in instructions if not line.startswith(("FROM", "USER", "ENTRYPOINT", "CMD")))
    assert "pip install ." in run and "[dev]" not in run
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the services must not run as root"
    assert 'ENTRYPOINT ["python", "-m"]' in instructions


def test_the_image_starts_python_on_the_allocator_that_gives_freed_memory_back() -> None:
    """Set at start-up or not at all: the image installs jemalloc and its ENV carries what make run's processes
    get (on this machine's library name, which Debian's slim image shares)."""
    text = DOCKERFILE.read_text()
    assert "libjemalloc2" in text
    for name, value in allocator_environment().items():
        assert f'{name}="{value}"' in text, name


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".venv", "var", ".git"} <= ignored


# ------------------------------------------------------------------------------------------ kafka security


def test_each_service_logs_in_over_tls_as_its_own_principal(
    kapnet: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The principal is the access table's; the password comes from .env (never from this file), from the variable
    `python -m deploy.kafka compose-secrets` writes and the kafka-access job reads for that same principal."""
    table = access_table(SITES)
    for name, service in kapnet.items():
        settings = load_settings(monkeypatch, environment(service))
        package, _, site = expected_identity(name)
        principal = site_principal(site, package) if site else NETWORK_PRINCIPALS[package]
        table.get(principal)
        assert settings.kafka_security_protocol == "SASL_SSL", name
        assert settings.kafka_sasl_username == principal, name
        assert settings.kafka_sasl_password.get_secret_value() == (
            f"${{{password_variable(principal)}:?run python -m deploy.kafka compose-secrets}}"
        ), name
        assert settings.kafka_ssl_cafile is not None, name
        mounted = [str(v).split(":")[1] for v in service.get("volumes") or []]
        assert str(settings.kafka_ssl_cafile) in mounted, f"{name}: the CA file is not mounted"


def test_the_kafka_access_job_applies_the_table_with_every_password(services: dict[str, dict[str, Any]]) -> None:
    job = services[KAFKA_ACCESS_JOB]
    assert our_image(job) and job.get("restart") == "no"
    command = command_of(job)
    assert command[:2] == ["deploy.kafka", "provision"]
    sites = command[command.index("--sites") + 1].split(",")
    assert sorted(sites) == sorted(SITES)
    # It reaches the broker's internal (admin) listener, over TLS.
    advertised = environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert f"INTERNAL://{command[command.index('--bootstrap-servers') + 1]}" in advertised.split(",")
    assert command[command.index("--security-protocol") + 1] == "SASL_SSL"
    env = environment(job)
    assert set(env) == {password_variable(p.name) for p in access_table(SITES).principals}
    assert depends_on(job) == {"kafka": "service_healthy"}


def test_kafka_authenticates_everyone_and_allows_only_what_is_granted(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["kafka"])
    protocols = dict(pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    advertised = {listener.split("://")[0] for listener in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    # No listener anyone can reach without logging in; TLS wherever the compose network is crossed.
    assert {protocols[name] for name in advertised} == {"SASL_SSL"}
    # The quorum too: in the production profile's cluster it crosses the compose network.
    assert set(protocols.values()) == {"SASL_SSL"}
    assert protocols[env["KAFKA_CONTROLLER_LISTENER_NAMES"]] == "SASL_SSL"
    assert env["KAFKA_LISTENER_NAME_CLIENT_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SUPER_USERS"] == f"User:{ADMIN}"
    # The image turns KAFKA_* variables (but KAFKA_OPTS, the JVM's) into properties and drops a value with '=' in
    # it: no login module (JAAS) may hide in one.
    assert not [k for k, v in env.items() if k.startswith("KAFKA_") and k != "KAFKA_OPTS" and "=" in v]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in services["kafka"].get("volumes") or []}
    assert mounts["/etc/kafka/secrets"] == "./deploy/kafka/secrets/broker", (
        "the broker sees its keystore, not the CA key"
    )


def test_certificates_and_secrets_stay_out_of_the_image_and_git() -> None:
    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    assert "deploy/kafka/secrets" in ignored
    assert "secrets/" in (ROOT / "deploy" / "kafka" / ".gitignore").read_text().splitlines()


# --------------------------------------------------------------------------------------------- the consoles

CONSOLE_VARIABLES = {f"{ENV_PREFIX}{name}".upper() for name in ConsoleSettings.model_fields}
CONSOLES = {"console-north": "north", "console-south": "south", "dashboard-network": None}


def test_each_site_has_its_console_and_the_network_its_dashboard(consoles: dict[str, dict[str, Any]]) -> None:
    assert set(consoles) == set(CONSOLES)


@pytest.mark.parametrize("name", sorted(CONSOLES))
def test_a_console_calls_its_own_sites_services_in_production_with_oidc(
    name: str, consoles: dict[str, dict[str, Any]], services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, site = consoles[name], CONSOLES[name]
    env = environment(service)
    unknown = sorted(set(env) - CONSOLE_VARIABLES)
    assert not unknown, f"{name} sets variables ConsoleSettings does not read: {unknown}"
    for key in list(os.environ):
        if key.upper().startswith(ENV_PREFIX.upper()):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = ConsoleSettings()
    assert (settings.environment, settings.auth_mode, settings.host) == ("production", "oidc", "0.0.0.0")
    assert settings.role == ("site" if site else "network") and (site is None or settings.site == site)
    assert [target for _, target in published_ports(service)] == [settings.port]
    assert settings.port == (8310 if site is None else 8000 + 100 * SITE_DIGIT[site])
    called = (
        {"network": settings.network_url}
        if site is None
        else {s: getattr(settings, f"{s}_url") for s in ("intake", "sessions", "billing", "outcomes")}
    )
    for package, url in called.items():
        target = "outcomes-network" if site is None else f"{package}-{site}"
        host, port = url.removeprefix("http://").split(":")
        # The URL names the compose service of this site (or the network), on the port it listens on.
        assert host == target, (name, url)
        assert int(port) == int(environment(services[target])[f"{ENV_PREFIX}PORT"]), (name, url)
        assert depends_on(service).get(target) == "service_healthy", (name, target)
    text = " ".join(service.get("healthcheck", {}).get("test") or [])
    assert "/healthz" in text, name


def test_the_image_builds_the_consoles_browser_assets_from_its_pinned_package() -> None:
    dockerfile = DOCKERFILE.read_text()
    assert "COPY services/console/assets/package.json" in dockerfile and "npm install" in dockerfile
    assert "services/console/assets/node_modules" in dockerfile
