"""A broker that enforces the privacy boundary, as make run's does: SASL/SCRAM on every client listener, KRaft's
StandardAuthorizer, and the ACLs of deploy/kafka/access.py for two sites and the network. One per test session; the
rest of the suite keeps its plain broker (tests/conftest.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from deploy.kafka import credentials
from deploy.kafka.access import ADMIN, AccessTable, access_table
from deploy.kafka.launcher import BrokerSecurity, BrokerTls, KafkaNode, free_port
from shared.bus.kafka import KafkaAccess
from tests.harness import TEST_BROKER_JVM

ROOT = Path(__file__).resolve().parents[2]
MAKE_CERTS = ROOT / "deploy" / "kafka" / "make-certs.sh"
SECURED_SITES = ("north", "south")


@dataclass
class SecuredBroker:
    node: KafkaNode
    table: AccessTable
    passwords: dict[str, str]
    cafile: Path

    def login(self, principal: str, *, tls: bool = False) -> KafkaAccess:
        """``principal`` with its own password, on the SASL_PLAINTEXT listener (``tls``: the SASL_SSL one)."""
        return self.node.client_access(principal, self.passwords[principal], tls=tls)


@pytest.fixture(scope="session")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    workdir = tmp_path_factory.mktemp("secured-broker")
    # The certificates as an operator makes them (the script compose's broker uses), for its SASL_SSL listener.
    certs = workdir / "certs"
    subprocess.run(["bash", str(MAKE_CERTS), str(certs), "127.0.0.1", "localhost"], check=True, capture_output=True)
    tls = BrokerTls(
        keystore=certs / "broker" / "kafka.keystore.p12",
        password=SecretStr((certs / "broker" / "kafka.keystore.password").read_text().strip()),
        cafile=certs / "ca.crt",
    )
    table = access_table(SECURED_SITES)
    passwords = credentials.load_or_create(workdir / "credentials.json", [p.name for p in table.principals])
    node = KafkaNode(
        workdir / "kafka",
        port=free_port(),
        security=BrokerSecurity(SecretStr(passwords[ADMIN]), tls=tls),
        jvm_options=TEST_BROKER_JVM,
    )
    with node:
        node.apply_access(table, passwords)
        yield SecuredBroker(node, table, passwords, tls.cafile)
