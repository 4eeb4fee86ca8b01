"""docker-compose.yml as Docker Compose itself reads it: through compose-go (deploy/tools/compose-check, the loader
`docker compose config` uses), which validates the file against the compose specification, interpolates it, applies
profiles and env files, and checks every dependency. No Docker engine is needed.

Two shapes: by default one Kafka node; the production profile (deploy/production.env) a 3-node cluster with every
topic on all three and min.insync.replicas 2. Both keep one PostgreSQL per service and the broker's security."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.deploy.test_compose import (
    COMPOSE_FILE,
    ENV_PREFIX,
    ROOT,
    expected_identity,
    expected_kapnet_services,
    load_settings,
)

COMPOSE_CHECK = ROOT / "deploy" / "tools" / "compose-check" / "compose-check"
PRODUCTION_ENV = ROOT / "deploy" / "production.env"
MAKE_CERTS = ROOT / "deploy" / "kafka" / "make-certs.sh"
NODES = ("kafka", "kafka-2", "kafka-3")
# Variables an operator must set (`${NAME:?...}`): any value will do for reading the file.
REQUIRED = sorted(set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE_FILE.read_text())))


def resolved(*env_files: Path, profiles: tuple[str, ...] = ()) -> dict[str, Any]:
    """The project `docker compose config` would give, from a clean environment plus the required secrets."""
    assert COMPOSE_CHECK.is_file(), "make prerequisites builds deploy/tools/compose-check"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "KAFKA_", "POSTGRES_", ENV_PREFIX))}
    env |= {name: f"test-{name.lower()}" for name in REQUIRED}
    arguments = [a for f in env_files for a in ("--env-file", str(f))] + [a for p in profiles for a in ("--profile", p)]
    done = subprocess.run(
        [str(COMPOSE_CHECK), *arguments, str(COMPOSE_FILE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"compose refuses the file: {done.stderr}"
    project = json.loads(done.stdout)
    assert isinstance(project, dict)
    return project


@pytest.fixture(scope="module")
def trial() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = resolved()["services"]
    return services


@pytest.fixture(scope="module")
def production() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = resolved(PRODUCTION_ENV)["services"]
    return services


def kapnet_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: services[name] for name in sorted(expected_kapnet_services())}


def properties(node: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = node["environment"]
    return env


def test_by_default_one_node_keeps_one_replica(trial: dict[str, dict[str, Any]]) -> None:
    assert [name for name in NODES if name in trial] == ["kafka"]
    env = properties(trial["kafka"])
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    for service in kapnet_services(trial).values():
        assert service["environment"][f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert service["environment"][f"{ENV_PREFIX}KAFKA_REPLICATION_FACTOR"] == "1"


def test_the_production_profile_runs_three_nodes_in_one_quorum(production: dict[str, dict[str, Any]]) -> None:
    nodes = {name: properties(production[name]) for name in NODES}
    assert [production[name].get("profiles") for name in NODES] == [None, ["production"], ["production"]]
    assert sorted(env["KAFKA_NODE_ID"] for env in nodes.values()) == ["1", "2", "3"]
    voters = {f"{env['KAFKA_NODE_ID']}@{name}:9093" for name, env in nodes.items()}
    for name, env in nodes.items():
        assert production[name]["hostname"] == name
        # Every node names the same three voters and the same cluster.
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters, name
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}, name
        assert env["CLUSTER_ID"] == nodes["kafka"]["CLUSTER_ID"], name
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"CLIENT://{name}:9092,INTERNAL://{name}:9094", name
        data = [v for v in production[name]["volumes"] if v["target"] == env["KAFKA_LOG_DIRS"]]
        assert [v["type"] for v in data] == ["volume"], f"{name} keeps its log in no volume of its own"
    volumes = [v["source"] for name in NODES for v in production[name]["volumes"] if v["type"] == "volume"]
    assert len(set(volumes)) == 3


def test_the_production_profile_keeps_every_topic_on_three_nodes_and_acks_on_two(
    production: dict[str, dict[str, Any]],
) -> None:
    for name in NODES:
        env = properties(production[name])
        for key in (
            "KAFKA_DEFAULT_REPLICATION_FACTOR",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        ):
            assert env[key] == "3", (name, key)
        for key in (
            "KAFKA_MIN_INSYNC_REPLICAS",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
        ):
            assert env[key] == "2", (name, key)


@pytest.mark.parametrize("name", NODES)
def test_every_node_keeps_the_brokers_security(production: dict[str, dict[str, Any]], name: str) -> None:
    env = properties(production[name])
    protocols = dict(pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocols.values()) == {"SASL_SSL"}, "every listener logs in over TLS, the quorum's too"
    assert env["KAFKA_LISTENER_NAME_CLIENT_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    secrets = [v for v in production[name]["volumes"] if v["target"] == "/etc/kafka/secrets"]
    assert [(Path(v["source"]).relative_to(ROOT).as_posix(), v.get("read_only")) for v in secrets] == [
        ("deploy/kafka/secrets/broker", True)
    ]


def test_the_nodes_certificate_names_every_node(tmp_path: Path) -> None:
    """The nodes share the one certificate make-certs.sh makes by default; TLS checks the name each is reached by."""
    subprocess.run(["bash", str(MAKE_CERTS), str(tmp_path)], check=True, capture_output=True, timeout=60)
    keystore, password = tmp_path / "broker" / "kafka.keystore.p12", tmp_path / "broker" / "kafka.keystore.password"
    certificate = subprocess.run(
        ["openssl", "pkcs12", "-in", str(keystore), "-nokeys", "-clcerts", "-passin", f"file:{password}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    names = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName"],
        input=certificate,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert {f"DNS:{node}" for node in NODES} <= set(re.findall(r"DNS:[\w.-]+", names)), names


def test_in_production_every_service_reaches_all_three_nodes_and_replicates_what_it_creates(
    production: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = {properties(production[n])["KAFKA_ADVERTISED_LISTENERS"].split(",")[0].split("//")[1] for n in NODES}
    for name, service in kapnet_services(production).items():
        settings = load_settings(monkeypatch, service["environment"])
        assert set(settings.kafka_bootstrap_servers.split(",")) == clients, name
        assert settings.kafka_replication_factor == 3, name
        assert settings.kafka_security_protocol == "SASL_SSL", name
        # It starts once every node is healthy: the topics it creates need three brokers.
        waits = {n for n, spec in service["depends_on"].items() if spec["condition"] == "service_healthy"}
        assert set(NODES) <= waits, name


@pytest.mark.parametrize("shape", ["trial", "production"])
def test_each_service_has_a_postgresql_of_its_own(
    shape: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    services: dict[str, dict[str, Any]] = request.getfixturevalue(shape)
    hosts: dict[str, str] = {}
    for name, service in kapnet_services(services).items():
        package, _, _ = expected_identity(name)
        url = make_url(load_settings(monkeypatch, service["environment"]).database_url)
        assert url.host is not None, name
        assert url.host not in hosts, f"{name} shares {url.host} with {hosts[url.host]}"
        hosts[url.host] = name
        server = services[url.host]
        assert str(server["image"]).startswith("postgres:"), name
        assert server["environment"]["POSTGRES_DB"] == url.database == package, name
        assert (server["environment"]["POSTGRES_USER"], server["environment"]["POSTGRES_PASSWORD"]) == (
            url.username,
            url.password,
        ), name
        assert service["depends_on"][url.host]["condition"] == "service_healthy", name
        assert [v["type"] for v in server["volumes"] if v["target"] == "/var/lib/postgresql/data"] == ["volume"]
    postgres = {n for n, s in services.items() if str(s.get("image", "")).startswith("postgres:")}
    assert postgres == set(hosts), "a PostgreSQL no service uses"


def test_the_profile_comes_with_its_settings() -> None:
    """deploy/production.env turns the profile on with the cluster's settings, and holds no secret."""
    lines = [line for line in PRODUCTION_ENV.read_text().splitlines() if line and not line.startswith("#")]
    settings = dict(line.split("=", 1) for line in lines)
    assert settings["COMPOSE_PROFILES"] == "production"
    assert not [key for key in settings if "PASSWORD" in key or "SECRET" in key]
    assert set(settings) - {"COMPOSE_PROFILES"} <= set(re.findall(r"\$\{([A-Z_]+):-", COMPOSE_FILE.read_text()))


def test_the_profile_without_its_settings_is_refused_by_kafka_not_split_in_two() -> None:
    """`--profile production` alone: nodes 2 and 3 are not among the voters they are given, which Kafka refuses at
    start, rather than three clusters of one."""
    services = resolved(profiles=("production",))["services"]
    for name in ("kafka-2", "kafka-3"):
        env = properties(services[name])
        voters = {v.split("@")[0] for v in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")}
        assert env["KAFKA_NODE_ID"] not in voters, name
