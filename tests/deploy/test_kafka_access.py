"""The one access table (deploy/kafka/access.py) against the code it governs, and the settings that carry each
service's login into every Kafka client. No broker here: tests/deploy/test_broker_access.py has the broker's word."""

from __future__ import annotations

import importlib
import json
import re
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from deploy.kafka import credentials
from deploy.kafka.__main__ import main as kafka_cli
from deploy.kafka.access import (
    ADMIN,
    AUDITOR,
    LOADER,
    NETWORK,
    NETWORK_WEBHOOKS,
    Operation,
    Pattern,
    access_table,
    password_variable,
    site_principal,
)
from deploy.local_stack import SITES, kafka_table, plan
from shared.app import ServiceDefinition, ServiceRuntime
from shared.bus.kafka import KafkaAccess
from shared.events.registry import NETWORK_TOPIC_PREFIX, SITE_CHANNEL, network_topic
from shared.settings import SERVICES, ServiceSettings

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------- the table and the services


def definition_of(settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch) -> ServiceDefinition:
    """The ServiceDefinition a service hands the shared shell, caught on its way in."""
    module = importlib.import_module(f"services.{settings.service}.app")
    caught: list[ServiceDefinition] = []

    def catch(_settings: ServiceSettings, definition: ServiceDefinition) -> Any:
        caught.append(definition)
        return SimpleNamespace(state=SimpleNamespace())

    monkeypatch.setattr(module, "create_service_app", catch)
    module.create_app(settings)
    [definition] = caught
    return definition


def every_instance(tmp_path: Path) -> list[ServiceSettings]:
    common: dict[str, Any] = {"var_dir": tmp_path, "kafka_bootstrap_servers": "127.0.0.1:1"}
    sites = [ServiceSettings(service=service, site=site, **common) for site in SITES for service in SERVICES]
    return [*sites, ServiceSettings(service="outcomes", role="network", network_sites=list(SITES), **common)]


async def test_the_table_grants_each_service_exactly_the_topics_and_group_its_code_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service that starts consuming another topic, or producing one, fails here before the broker refuses it."""
    table = kafka_table()
    for settings in every_instance(tmp_path):
        principal = table.get(site_principal(settings.where, settings.service) if settings.site else NETWORK)
        definition = definition_of(settings, monkeypatch)
        runtime = ServiceRuntime(settings)
        try:
            consumers = definition.consumers(runtime)
            produced = {t.name for t in definition.produces(runtime)}
        finally:
            await runtime.database.dispose()
        read = {t.name for c in consumers for t in c.config.topics}
        dead_letters = {c.config.dead_letter_topic for c in consumers}
        assert {g for g in principal.groups} == {c.config.name for c in consumers}, settings.instance
        assert {t.name for t in principal.owns} == produced | dead_letters, settings.instance
        assert not principal.writes, settings.instance
        if settings.role == "network":
            assert [str(t) for t in principal.reads] == [f"{NETWORK_TOPIC_PREFIX}*"]
            assert all(topic.startswith(NETWORK_TOPIC_PREFIX) for topic in read)
        else:
            assert {t.name for t in principal.reads} == read, settings.instance


def test_no_site_principal_touches_another_sites_or_the_networks_topics_but_its_own_network_topic() -> None:
    table = access_table(["north", "south", "east-2"], loader=True)
    for site in ("north", "south", "east-2"):
        for service in SERVICES:
            for acl in table.get(site_principal(site, service)).acls():
                assert acl.pattern is Pattern.LITERAL, acl
                if acl.resource.name == "GROUP":
                    assert acl.name == f"{service}@{site}"
                elif acl.name.startswith(NETWORK_TOPIC_PREFIX):
                    assert (service, acl.name) == ("outcomes", network_topic(site)), acl
                    assert acl.operation in (Operation.WRITE, Operation.CREATE), acl
                else:
                    assert acl.name.startswith(f"kapnet.{site}."), acl
                    if acl.operation is not Operation.READ:
                        assert acl.name.startswith(f"kapnet.{site}.{service}."), acl
    for reader in (NETWORK, AUDITOR):
        reads = [a for a in table.get(reader).acls() if a.operation is Operation.READ and a.resource.name == "TOPIC"]
        assert [(a.pattern, a.name) for a in reads] == [(Pattern.PREFIXED, NETWORK_TOPIC_PREFIX)]
    assert not [a for a in table.get(AUDITOR).acls() if a.operation is not Operation.READ]
    loader = table.get(LOADER)
    assert loader.development_only and not loader.reads and not loader.owns and not loader.groups
    assert table.super_users() == [ADMIN]
    network_side = (NETWORK, NETWORK_WEBHOOKS, AUDITOR)
    assert "network" not in {p.name.split("-")[0] for p in table.principals if p.name not in network_side}
    with pytest.raises(ValueError, match="not a site name"):
        access_table(["network"])


def test_every_site_topic_in_the_table_follows_the_topic_naming() -> None:
    pattern = re.compile(r"kapnet\.(north|south)\.(intake|sessions|billing|outcomes|webhooks)\.(deadletter\.)?v1")
    for acl in kafka_table().acls():
        if acl.resource.name == "TOPIC" and not acl.name.startswith(NETWORK_TOPIC_PREFIX):
            assert pattern.fullmatch(acl.name), acl
    assert SITE_CHANNEL == "kapnet.{site}.{service}.v1"


def test_the_readme_shows_the_matrix_make_run_applies() -> None:
    assert kafka_table().matrix() in (ROOT / "README.md").read_text(), "python -m deploy.kafka acls --loader"


def test_the_cli_prints_the_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    assert kafka_cli(["acls", "--sites", "north,south", "--loader"]) == 0
    assert capsys.readouterr().out == kafka_table().matrix()


# -------------------------------------------------------------------------------------------- settings


def settings(**kafka: Any) -> ServiceSettings:
    return ServiceSettings(service="intake", site="north", **kafka)


def test_services_connect_unauthenticated_unless_told_otherwise() -> None:
    access = KafkaAccess.from_settings(settings())
    assert access.client_kwargs() == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    assert KafkaAccess.of("127.0.0.1:1") == KafkaAccess("127.0.0.1:1")


def test_a_sasl_login_reaches_every_client_option_and_never_a_log_line() -> None:
    configured = settings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="north-intake", kafka_sasl_password="s3cret"
    )
    assert "s3cret" not in repr(configured)
    access = KafkaAccess.from_settings(configured)
    assert access.client_kwargs() == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "north-intake",
        "sasl_plain_password": "s3cret",
    }
    assert "s3cret" not in repr(access) and "s3cret" not in str(access)
    assert access.principal == "User:north-intake"


def test_sasl_ssl_trusts_the_ca_file_and_a_missing_one_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        KafkaAccess.from_settings(
            settings(
                kafka_security_protocol="SASL_SSL",
                kafka_sasl_username="north-intake",
                kafka_sasl_password="pw",
                kafka_ssl_cafile=tmp_path / "missing.crt",
            )
        )
    access = KafkaAccess("kafka:9092", security_protocol="SASL_SSL", username="u", password=SecretStr("p"))
    context = access.security_kwargs()["ssl_context"]
    assert getattr(context, "check_hostname", False) is True  # the system's CAs, and the broker's name checked


@pytest.mark.parametrize(
    ("kafka", "error"),
    [
        ({"kafka_security_protocol": "SASL_PLAINTEXT"}, "needs KAPNET_KAFKA_SASL_USERNAME"),
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u"}, "needs KAPNET_KAFKA_SASL_USERNAME"),
        ({"kafka_sasl_username": "u", "kafka_sasl_password": "p"}, "PROTOCOL is PLAINTEXT"),
        ({"kafka_ssl_cafile": "/ca.crt"}, "only used with"),
    ],
)
def test_incomplete_or_unused_kafka_credentials_stop_the_start(kafka: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        settings(**kafka)


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_production_talks_to_kafka_over_tls_only(protocol: str) -> None:
    login: dict[str, Any] = {} if protocol == "PLAINTEXT" else {"kafka_sasl_username": "u", "kafka_sasl_password": "p"}
    with pytest.raises(ValidationError, match="SASL_SSL only"):
        ServiceSettings(
            service="intake",
            site="north",
            environment="production",
            database_url="postgresql://db/intake",
            auth_mode="oidc",
            auth_jwks_url="https://issuer/jwks",
            kafka_security_protocol=protocol,
            **login,
        )


# ---------------------------------------------------------------------------------------- make run's secrets


def test_make_run_makes_each_password_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "kafka" / "credentials.json"
    first = credentials.load_or_create(path, ["a", "b"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert credentials.load_or_create(path, ["a", "b", "c"]) == {**first, "c": json.loads(path.read_text())["c"]}
    credentials.rotate(path, "b")
    after = credentials.read(path)
    assert after["a"] == first["a"] and after["b"] != first["b"]
    path.chmod(0o644)
    credentials.load_or_create(path, ["a"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_make_run_gives_each_service_its_own_login_and_no_other(tmp_path: Path) -> None:
    table = kafka_table()
    passwords = credentials.load_or_create(tmp_path / "credentials.json", [p.name for p in table.principals])
    planned = plan(8000, "127.0.0.1:9092", tmp_path, 5.0, passwords)
    processes = [p for p in planned if p.service != "console"]
    consoles = [p for p in planned if p.service == "console"]
    # Each site's services, the network's outcomes and webhooks; each site's console and the dashboard.
    assert len(processes) == len(SITES) * len(SERVICES) + 2 and len(consoles) == len(SITES) + 1
    for console in consoles:  # a console calls its site's APIs; it never talks to Kafka
        assert not set(passwords.values()) & set(console.env.values()), console.name
    for process in processes:
        where = "network" if process.env["KAPNET_ROLE"] == "network" else process.env["KAPNET_SITE"]
        network_principal = {"outcomes": NETWORK, "webhooks": NETWORK_WEBHOOKS}
        principal = network_principal[process.service] if where == "network" else site_principal(where, process.service)
        assert process.env["KAPNET_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert process.env["KAPNET_KAFKA_SASL_USERNAME"] == principal
        assert process.env["KAPNET_KAFKA_SASL_PASSWORD"] == passwords[principal]
        others = set(passwords.values()) - {passwords[principal]}
        assert not others & set(process.env.values()), process.name


def test_compose_secrets_adds_a_password_per_principal_and_keeps_those_there(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("POSTGRES_PASSWORD=x\nKAFKA_PASSWORD_ADMIN=kept")
    assert kafka_cli(["compose-secrets", "--env-file", str(env_file)]) == 0
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    assert values["KAFKA_PASSWORD_ADMIN"] == "kept" and values["POSTGRES_PASSWORD"] == "x"
    assert {password_variable(p.name) for p in access_table(SITES).principals} <= set(values)
    assert LOADER not in {p.name for p in access_table(SITES).principals}
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    before = env_file.read_text()
    assert kafka_cli(["compose-secrets", "--env-file", str(env_file)]) == 0
    assert env_file.read_text() == before
