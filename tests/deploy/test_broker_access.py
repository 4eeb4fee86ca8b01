"""The broker enforces the privacy boundary (DESIGN.md): each refusal below comes from the broker itself, answering a
principal of deploy/kafka/access.py (two sites and the network, as the ``secured_broker`` fixture sets them up), and
each allowed path goes through with the same clients the services use."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    for_code,
)
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.protocol.offset import OffsetRequest
from pydantic import SecretStr

from deploy.kafka.access import (
    NETWORK,
    NETWORK_DEAD_LETTER,
    AccessTable,
    Topics,
    group_id,
    site_principal,
    site_topic,
)
from shared.bus.kafka import (
    KafkaAccess,
    TopicCreationRefused,
    TopicSpec,
    broker_answers,
    ensure_topics,
    manual_commit_consumer,
    reliable_producer,
    start_with_timeout,
    stop_quietly,
)
from shared.events.registry import network_topic
from tests.deploy.conftest import SecuredBroker

pytestmark = pytest.mark.broker

TIMEOUT = 10.0
EARLIEST = -2


async def first_offset(access: KafkaAccess, topic: str) -> int:
    """The broker's answer to this principal's first step of reading ``topic`` from its start (ListOffsets of
    partition 0): the offset, or the broker's refusal raised as aiokafka's error for its code. (An aiokafka consumer
    told to read a topic its principal may not see just never gets a record: the broker hides even its metadata.)"""
    client = AIOKafkaClient(**access.client_kwargs(), request_timeout_ms=int(TIMEOUT * 1000))
    await asyncio.wait_for(client.bootstrap(), TIMEOUT)
    try:
        [broker] = client.cluster.brokers()
        response = await client.send(broker.nodeId, OffsetRequest(-1, 0, [(topic, [(0, EARLIEST)])]))
        [(_, [(_, code, _, offset)])] = response.topics
        if code:
            raise for_code(code)(topic)
        return int(offset)
    finally:
        await client.close()


@asynccontextmanager
async def producer_as(access: KafkaAccess) -> AsyncIterator[AIOKafkaProducer]:
    producer = reliable_producer(access, TIMEOUT)
    await start_with_timeout(producer, TIMEOUT)
    try:
        yield producer
    finally:
        await stop_quietly(producer, TIMEOUT)


async def write(access: KafkaAccess, topic: str, value: bytes) -> None:
    async with producer_as(access) as producer:
        await asyncio.wait_for(producer.send_and_wait(topic, value=value, key=b"k"), TIMEOUT)


async def read_in_group(access: KafkaAccess, group: str, topic: str, wanted: bytes, within: float = 20.0) -> bool:
    """Reads ``topic`` from its start in ``group`` as the services' consumers do, until ``wanted`` comes by."""
    consumer = manual_commit_consumer(access, group, group, TIMEOUT)
    consumer.subscribe([topic])
    await start_with_timeout(consumer, TIMEOUT)
    try:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            if any(record.value == wanted for records in batches.values() for record in records):
                return True
        return False
    finally:
        await stop_quietly(consumer, TIMEOUT)


async def own_topic(access: KafkaAccess, topic: str, partitions: int = 3) -> None:
    """Created as the services create theirs: by their owner."""
    assert await ensure_topics(access, [TopicSpec(topic, partitions=partitions)], TIMEOUT) == []


def marker() -> bytes:
    return f"record {uuid.uuid4()}".encode()


# ------------------------------------------------------------------------------------------------- refused


async def test_a_site_cannot_read_another_sites_topic_nor_use_its_consumer_group(secured_broker: SecuredBroker) -> None:
    north_intake = secured_broker.login(site_principal("north", "intake"))
    await own_topic(north_intake, site_topic("north", "intake"))
    south_sessions = secured_broker.login(site_principal("south", "sessions"))

    with pytest.raises(TopicAuthorizationFailedError):
        await first_offset(south_sessions, site_topic("north", "intake"))
    # Nor may it join north's group, even to read its own site's topic (offsets there are north's to move).
    await own_topic(secured_broker.login(site_principal("south", "intake")), site_topic("south", "intake"))
    consumer = manual_commit_consumer(south_sessions, group_id("sessions", "north"), "intruder", TIMEOUT)
    consumer.subscribe([site_topic("south", "intake")])
    with pytest.raises(GroupAuthorizationFailedError):
        await start_with_timeout(consumer, TIMEOUT)


async def test_the_network_cannot_read_a_site_topic(secured_broker: SecuredBroker) -> None:
    north_intake = secured_broker.login(site_principal("north", "intake"))
    await own_topic(north_intake, site_topic("north", "intake"))
    network = secured_broker.login(NETWORK)
    for service in ("intake", "outcomes"):
        with pytest.raises(TopicAuthorizationFailedError):
            await first_offset(network, site_topic("north", service))


async def test_a_sites_outcomes_writes_no_network_topic_but_its_own(secured_broker: SecuredBroker) -> None:
    north_outcomes = secured_broker.login(site_principal("north", "outcomes"))
    south_topic = network_topic("south")
    with pytest.raises(TopicCreationRefused) as refused:
        await ensure_topics(north_outcomes, [TopicSpec(south_topic, partitions=1)], TIMEOUT)
    assert refused.value.refused == {south_topic: TopicAuthorizationFailedError.errno}
    # Its owner made it: north may still not write there, nor onto another service's topic of its own site.
    await own_topic(secured_broker.login(site_principal("south", "outcomes")), south_topic, partitions=1)
    await own_topic(secured_broker.login(site_principal("north", "intake")), site_topic("north", "intake"))
    for topic in (south_topic, site_topic("north", "intake")):
        with pytest.raises(TopicAuthorizationFailedError):
            await write(north_outcomes, topic, marker())


async def test_a_client_without_sasl_is_not_served(secured_broker: SecuredBroker) -> None:
    anonymous = secured_broker.node.bootstrap_servers  # a plain address: PLAINTEXT, no login
    assert not await broker_answers(anonymous, 5)
    producer = AIOKafkaProducer(bootstrap_servers=anonymous, request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await start_with_timeout(producer, TIMEOUT)
    # The broker's side of it: it hangs up on the first request that is not part of a SASL handshake.
    conn = await create_conn("127.0.0.1", secured_broker.node.port)
    with pytest.raises(KafkaConnectionError, match="closed"):
        await asyncio.wait_for(conn.send(MetadataRequest([])), TIMEOUT)
    conn.close()


@pytest.mark.parametrize("password", ["not-the-password", "another principal's"])
async def test_a_wrong_password_fails_authentication(secured_broker: SecuredBroker, password: str) -> None:
    if password == "another principal's":
        password = secured_broker.passwords[site_principal("south", "intake")]
    with pytest.raises(SaslAuthenticationFailed, match="invalid credentials"):
        await create_conn(
            "127.0.0.1",
            secured_broker.node.port,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username=site_principal("north", "intake"),
            sasl_plain_password=password,
        )
    wrong = KafkaAccess(
        secured_broker.node.bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
        username=site_principal("north", "intake"),
        password=SecretStr(password),
    )
    assert not await broker_answers(wrong, 5)  # what /readyz reports


async def test_a_grant_not_in_the_table_is_taken_away_on_the_next_apply(secured_broker: SecuredBroker) -> None:
    """An ACL someone added by hand (here: by applying a table with one more grant) is gone after the next apply,
    as make run and the compose job apply the table: the broker grants what the docs show and nothing else."""
    await own_topic(secured_broker.login(site_principal("north", "intake")), site_topic("north", "intake"))
    south = site_principal("south", "sessions")
    widened = secured_broker.table.get(south)
    widened = replace(widened, reads=(*widened.reads, Topics(site_topic("north", "intake"))))
    loose = AccessTable(tuple(widened if p.name == south else p for p in secured_broker.table.principals))
    node, passwords = secured_broker.node, secured_broker.passwords
    try:
        assert len((await asyncio.to_thread(node.apply_access, loose, passwords)).created) == 1
        assert await first_offset(secured_broker.login(south), site_topic("north", "intake")) >= 0
    finally:
        applied = await asyncio.to_thread(node.apply_access, secured_broker.table, passwords)
    assert applied.deleted == [f"User:{south} ALLOW READ topic {site_topic('north', 'intake')} from *"]
    with pytest.raises(TopicAuthorizationFailedError):
        await first_offset(secured_broker.login(south), site_topic("north", "intake"))


# ------------------------------------------------------------------------------------------------- allowed


async def test_a_sites_outcomes_writes_its_network_topic_and_the_network_reads_it(
    secured_broker: SecuredBroker,
) -> None:
    north_outcomes = secured_broker.login(site_principal("north", "outcomes"))
    topic = network_topic("north")
    await own_topic(north_outcomes, topic, partitions=1)
    aggregate = marker()
    await write(north_outcomes, topic, aggregate)

    network = secured_broker.login(NETWORK)
    assert await first_offset(network, topic) == 0
    assert await read_in_group(network, group_id("outcomes", "network"), topic, aggregate)


async def test_a_site_service_reads_its_own_sites_topic(secured_broker: SecuredBroker) -> None:
    north_intake = secured_broker.login(site_principal("north", "intake"))
    await own_topic(north_intake, site_topic("north", "intake"))
    registered = marker()
    await write(north_intake, site_topic("north", "intake"), registered)
    north_sessions = secured_broker.login(site_principal("north", "sessions"))
    assert await read_in_group(north_sessions, group_id("sessions", "north"), site_topic("north", "intake"), registered)


async def test_a_reader_waits_for_the_owner_of_a_topic_and_creates_only_its_own(secured_broker: SecuredBroker) -> None:
    """As the network's consumer starts: a member site's topic that is not there yet is its owner's to create."""
    network = secured_broker.login(NETWORK)
    not_yet = network_topic(f"site-{uuid.uuid4().hex[:8]}")
    specs = [TopicSpec(not_yet, partitions=1), TopicSpec(NETWORK_DEAD_LETTER, partitions=1)]
    assert await ensure_topics(network, specs, TIMEOUT, owned_elsewhere=[not_yet]) == [not_yet]
    assert await first_offset(network, NETWORK_DEAD_LETTER) == 0


async def test_services_can_log_in_over_tls_trusting_the_brokers_ca(secured_broker: SecuredBroker) -> None:
    north_intake = secured_broker.login(site_principal("north", "intake"), tls=True)
    assert north_intake.security_protocol == "SASL_SSL"
    await own_topic(north_intake, site_topic("north", "intake"))
    await write(north_intake, site_topic("north", "intake"), marker())
    # A client that does not trust the broker's CA does not even get to log in.
    untrusting = KafkaAccess(
        north_intake.bootstrap_servers,
        security_protocol="SASL_SSL",
        username=north_intake.username,
        password=north_intake.password,
    )
    assert not await broker_answers(untrusting, 5)
