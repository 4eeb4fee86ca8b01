"""Kafka clients with the settings we need, not aiokafka's defaults (see KAFKA-NOTES.md).

Every client is built from one :class:`KafkaAccess`: where the broker is and who this process is to it (its SASL
principal and the CA it trusts). A plain ``str`` wherever an access is accepted means an unauthenticated PLAINTEXT
broker, as the tests' and benchmarks' brokers are.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import struct
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.partitioner import DefaultPartitioner
from pydantic import SecretStr

if TYPE_CHECKING:
    from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
TOPIC_AUTHORIZATION_FAILED = 29

SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"]
# SCRAM for every service; PLAIN only for the broker's own admin on its internal listener (deploy/kafka).
SaslMechanism = Literal["SCRAM-SHA-512", "PLAIN"]


@functools.lru_cache(maxsize=8)
def _ssl_context(cafile: str | None) -> ssl.SSLContext:
    # Hostname and chain checked; with no CA file, the system's trust store (a broker with a public certificate).
    return ssl.create_default_context(cafile=cafile)


@dataclass(frozen=True)
class KafkaAccess:
    """How to reach the broker and who to be there. Built from settings in one place
    (:meth:`from_settings`); every producer, consumer and admin client takes its options from
    :meth:`client_kwargs`, so no client can be built without the process's credentials."""

    bootstrap_servers: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str = ""
    password: SecretStr = field(default_factory=lambda: SecretStr(""))
    # PEM of the CA that signed the broker's certificate (SASL_SSL); None: the system's trust store.
    ssl_cafile: str | None = None

    def __post_init__(self) -> None:
        if self.security_protocol == "PLAINTEXT":
            if self.username or self.password.get_secret_value():
                # Credentials with PLAINTEXT would be silently unused: almost surely a forgotten protocol setting.
                raise ValueError("Kafka credentials given but the security protocol is PLAINTEXT")
        elif not self.username or not self.password.get_secret_value():
            raise ValueError(f"{self.security_protocol} needs a SASL username and password")
        if self.security_protocol == "SASL_SSL":
            _ssl_context(self.ssl_cafile)  # now: a missing or unreadable CA file stops the start, not every client

    @classmethod
    def of(cls, kafka: KafkaAccess | str) -> KafkaAccess:
        """An access as given, or an unauthenticated PLAINTEXT one to the address given."""
        return kafka if isinstance(kafka, KafkaAccess) else cls(kafka)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> KafkaAccess:
        cafile = settings.kafka_ssl_cafile
        return cls(
            settings.kafka_bootstrap_servers,
            security_protocol=settings.kafka_security_protocol,
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            ssl_cafile=str(cafile) if cafile is not None else None,
        )

    @property
    def principal(self) -> str:
        """Who the broker sees: ``User:<name>``, or ``User:ANONYMOUS`` over PLAINTEXT."""
        return f"User:{self.username or 'ANONYMOUS'}"

    def security_kwargs(self) -> dict[str, object]:
        """The aiokafka keyword arguments that authenticate (and encrypt) a connection; for code that builds its
        own aiokafka client, e.g. ``AIOKafkaConsumer(bootstrap_servers=..., **access.security_kwargs())``."""
        if self.security_protocol == "PLAINTEXT":
            return {"security_protocol": "PLAINTEXT"}
        kwargs: dict[str, object] = {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password.get_secret_value(),
        }
        if self.security_protocol == "SASL_SSL":
            kwargs["ssl_context"] = _ssl_context(self.ssl_cafile)
        return kwargs

    def client_kwargs(self) -> dict[str, object]:
        """Everything an aiokafka producer, consumer or admin client needs to reach the broker as this principal."""
        return {"bootstrap_servers": self.bootstrap_servers, **self.security_kwargs()}

    def __str__(self) -> str:
        # Never the password: this ends up in log lines.
        return f"{self.bootstrap_servers} as {self.principal} ({self.security_protocol})"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)


_MURMUR2_SEED = 0x9747B28C
_MURMUR2_M = 0x5BD1E995
_U32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's key hash (the Java client's ``Utils.murmur2``), as aiokafka's ``murmur2`` computes it, word by word
    rather than byte by byte: aiokafka's took a tenth of the relay's time per event."""
    m = _MURMUR2_M
    length = len(data)
    h = _MURMUR2_SEED ^ length
    whole = length & ~3
    for (k,) in struct.iter_unpack("<I", data[:whole]):
        k = (k * m) & _U32
        k ^= k >> 24
        h = ((h * m) & _U32) ^ ((k * m) & _U32)
    extra = length - whole
    if extra >= 3:
        h ^= data[whole + 2] << 16
    if extra >= 2:
        h ^= data[whole + 1] << 8
    if extra >= 1:
        h = ((h ^ data[whole]) * m) & _U32
    h ^= h >> 13
    h = (h * m) & _U32
    return h ^ (h >> 15)


def key_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's DefaultPartitioner (the Java client's for a keyed record), with the faster hash: a key lands on the
    partition every other Kafka producer puts it on."""
    if key is None:
        return int(DefaultPartitioner()(key, all_partitions, available))
    return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]


def reliable_producer(kafka: KafkaAccess | str, timeout_seconds: float) -> AIOKafkaProducer:
    # Idempotence forces acks=all and keeps per-partition order through the producer's own retries. Kafka 3+ lets a
    # principal with WRITE on any topic start an idempotent producer (KIP-679): no cluster-wide grant is needed.
    return AIOKafkaProducer(
        **KafkaAccess.of(kafka).client_kwargs(),
        enable_idempotence=True,
        request_timeout_ms=int(timeout_seconds * 1000),
        linger_ms=5,
        max_batch_size=256 * 1024,
        partitioner=key_partitioner,
    )


def manual_commit_consumer(
    kafka: KafkaAccess | str, group_id: str | None, client_id: str, timeout_seconds: float
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **KafkaAccess.of(kafka).client_kwargs(),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        request_timeout_ms=max(int(timeout_seconds * 1000), 40000),
        # New topics show up within seconds rather than the 5-minute default.
        metadata_max_age_ms=5000,
    )


async def read_from_start(
    consumer: AIOKafkaConsumer, topics: list[str], timeout_seconds: float
) -> dict[TopicPartition, tuple[int, int]]:
    """Subscribe a started consumer without a group to ``topics`` (which exist: an unknown one would be waited
    for), wait until it holds every partition, and seek each to its first offset. Returns each partition's
    (first, end) offsets as of now: a reader of a history stops at the end it had when it began."""
    consumer.subscribe(topics)  # without a group: every partition is this consumer's
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    while {tp.topic for tp in consumer.assignment()} != set(topics):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"no partitions of {topics} assigned after {timeout_seconds}s")
        await asyncio.sleep(0.1)
    partitions = sorted(consumer.assignment())
    begins = await asyncio.wait_for(consumer.beginning_offsets(partitions), timeout_seconds)
    ends = await asyncio.wait_for(consumer.end_offsets(partitions), timeout_seconds)
    for tp in partitions:
        consumer.seek(tp, begins[tp])
    return {tp: (begins[tp], ends[tp]) for tp in partitions}


def admin_client(kafka: KafkaAccess | str, timeout_seconds: float) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**KafkaAccess.of(kafka).client_kwargs(), request_timeout_ms=int(timeout_seconds * 1000))


def cancelled_from_outside() -> bool:
    """Whether someone asked this task to stop. A CancelledError can also escape from inside aiokafka when
    nobody did (see stop_quietly); only this tells the two apart."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def raise_if_cancelling() -> None:
    """aiokafka sometimes turns a cancellation into a connection error; a loop that catches errors and retries
    would then outlive its own cancellation. Call this in such an ``except`` block."""
    if cancelled_from_outside():
        raise asyncio.CancelledError


def reraise_unless_recoverable(exc: BaseException) -> None:
    """For a loop that retries what went wrong: re-raise a real cancellation of this task and anything that is not
    an error (KeyboardInterrupt, SystemExit); let the loop retry the rest, a stray CancelledError included."""
    if isinstance(exc, asyncio.CancelledError):
        if cancelled_from_outside():
            raise exc
        return
    if not isinstance(exc, Exception):
        raise exc
    raise_if_cancelling()


# A broker outage of any length: the relay and the consumers try again at most this long after their last try, so
# they are back at most this long after the broker is. 30 s made the 60 s outage test wait up to 30 s more; each
# try is one log line, six a minute while the broker is away.
MAX_RECONNECT_BACKOFF_SECONDS = 10.0


async def start_with_timeout(client: AIOKafkaProducer | AIOKafkaConsumer, timeout_seconds: float) -> None:
    """``start()`` raises at once when the broker is down and may hang when it dies mid-way: bound it and
    leave no half-started client behind."""
    try:
        await asyncio.wait_for(client.start(), timeout_seconds)
    except BaseException:
        await stop_quietly(client, timeout_seconds)
        raise


async def stop_quietly(client: AIOKafkaProducer | AIOKafkaConsumer, timeout_seconds: float) -> None:
    try:
        await asyncio.wait_for(client.stop(), timeout_seconds)
    except asyncio.CancelledError:
        # aiokafka's stop() cancels its fetch tasks and awaits them; one asleep in its retry backoff after a broker
        # outage re-raises that CancelledError here, though nobody cancelled this task. Left to escape, it ended
        # the consumer's task for good, without a log line.
        if cancelled_from_outside():
            raise
        log.warning("kafka client stopped with a stray cancellation from its own tasks")
    except Exception as exc:  # a client that cannot stop cleanly is abandoned, not waited for forever
        raise_if_cancelling()
        log.warning("kafka client did not stop cleanly: %s", type(exc).__name__)


class TopicCreationRefused(RuntimeError):
    """The broker would not create a topic: this principal has no CREATE on it (or it is not a valid topic)."""

    def __init__(self, refused: dict[str, int]) -> None:
        self.refused = refused
        super().__init__(
            "cannot create topic(s) "
            + ", ".join(
                f"{name} (error {code}{', not authorized' if code == TOPIC_AUTHORIZATION_FAILED else ''})"
                for name, code in sorted(refused.items())
            )
        )


async def ensure_topics(
    kafka: KafkaAccess | str,
    topics: list[TopicSpec],
    timeout_seconds: float,
    *,
    owned_elsewhere: Collection[str] = (),
) -> list[str]:
    """Create the topics that do not exist yet (the broker does not auto-create them).

    With ACLs a principal may create only the topics it owns; a topic it only reads is created by its owner. Those
    named in ``owned_elsewhere`` whose creation the broker refuses are left to their owner and returned (a topic a
    principal may not even see looks the same as one that does not exist yet); any other refusal raises
    :class:`TopicCreationRefused`."""
    admin = admin_client(kafka, timeout_seconds)
    await asyncio.wait_for(admin.start(), timeout_seconds)
    try:
        # Lists only the topics this principal may see (DESCRIBE, which READ and WRITE imply).
        existing = set(await asyncio.wait_for(admin.list_topics(), timeout_seconds))
        missing = [t for t in topics if t.name not in existing]
        if not missing:
            return []
        response = await asyncio.wait_for(
            admin.create_topics(
                [NewTopic(t.name, t.partitions, t.replication_factor, topic_configs=t.config) for t in missing]
            ),
            timeout_seconds,
        )
        refused: dict[str, int] = {}
        for error in response.to_object().get("topic_errors", []):
            code = error.get("error_code", 0)
            if code not in (0, TOPIC_ALREADY_EXISTS):
                refused[str(error.get("topic", error.get("name")))] = int(code)
        left = sorted(n for n, c in refused.items() if n in owned_elsewhere and c == TOPIC_AUTHORIZATION_FAILED)
        if len(left) < len(refused):
            raise TopicCreationRefused({n: c for n, c in refused.items() if n not in left})
        return left
    finally:
        await asyncio.wait_for(admin.close(), timeout_seconds)


async def wait_for_topics(
    kafka: KafkaAccess | str, names: Collection[str], timeout_seconds: float, within: float
) -> None:
    """Until every topic named is visible to this principal: for a writer whose topics their owners create."""
    deadline = asyncio.get_running_loop().time() + within
    admin = admin_client(kafka, timeout_seconds)
    await asyncio.wait_for(admin.start(), timeout_seconds)
    try:
        while True:
            missing = set(names) - set(await asyncio.wait_for(admin.list_topics(), timeout_seconds))
            if not missing:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"topics not created by their owners within {within:.0f} s: {sorted(missing)}")
            await asyncio.sleep(0.5)
    finally:
        await asyncio.wait_for(admin.close(), timeout_seconds)


async def broker_answers(kafka: KafkaAccess | str, timeout_seconds: float) -> bool:
    """True when a broker answers a metadata request within the timeout (as this principal: a refused login is
    not an answer)."""
    client = AIOKafkaClient(**KafkaAccess.of(kafka).client_kwargs(), request_timeout_ms=int(timeout_seconds * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_seconds)
        return True
    except Exception:
        return False
    finally:
        try:
            await asyncio.wait_for(client.close(), timeout_seconds)
        except Exception:
            pass
