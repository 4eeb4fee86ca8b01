"""A single-node Apache Kafka 4 (KRaft, combined broker+controller) run from Maven Central jars.

No Docker here: the jars are fetched once with Maven into a cache directory and the node runs as a
plain ``java`` subprocess. The data directory holds everything (config, ports, KRaft metadata, topic
logs), so stopping and starting a node on the same directory brings back the same cluster and data. Several nodes
can also form one cluster on 127.0.0.1 (``ClusterMembership``: the production profile's shape, for its tests).

Unsecured (the default, for tests and benchmarks): one PLAINTEXT client listener. Secured (``security=``,
``make run`` and the broker-access tests): every client authenticates with SASL/SCRAM-SHA-512 on the client
listener (optionally also a SASL_SSL one), KRaft's StandardAuthorizer refuses whatever the access table
(deploy/kafka/access.py) does not grant, and the broker itself and the admin are one super user that logs in with
PLAIN on loopback-only internal and controller listeners: its credential lives in the broker's config, not in the
metadata log, so a new or an old (unsecured) data directory needs no bootstrapping before the admin can connect.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import concurrent.futures
import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
import weakref
from collections.abc import Callable, Collection, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import SecretStr

from deploy.lifetime import die_with_parent

if TYPE_CHECKING:
    from deploy.kafka.access import AccessTable
    from deploy.kafka.provision import Applied
    from shared.bus.kafka import KafkaAccess

KAFKA_VERSION = "4.1.1"
HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LOG4J2_CONFIG = HERE / "log4j2.xml"

_T = TypeVar("_T")


class _LoopbackPlainWarning(logging.Filter):
    """aiokafka warns on every PLAIN login over SASL_PLAINTEXT. Here that is only the super user on the broker's own
    loopback listener (services use SCRAM, which never sends the password): not worth a line per probe."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Sending username and password in the clear")


logging.getLogger("aiokafka.conn").addFilter(_LoopbackPlainWarning())


# --------------------------------------------------------------------------------------------- jars


def cache_dir() -> Path:
    """``$KAPNET_CACHE_DIR`` or ``~/.cache/kapnet``."""
    env = os.environ.get("KAPNET_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kapnet"


def _pom_digest() -> str:
    # The marker records which pom produced the jars, so editing the pom (e.g. a version bump)
    # triggers a fresh fetch instead of silently running stale jars.
    return hashlib.sha256(POM.read_bytes()).hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # Parallel test workers may all call kafka_jars() on a cold cache: only one runs Maven.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def kafka_jars() -> Path:
    """Ensure the Kafka jars are in the cache (fetching them with Maven once) and return the lib dir."""
    home = cache_dir() / f"kafka-{KAFKA_VERSION}"
    lib = home / "lib"
    marker = home / ".fetched"
    digest = _pom_digest()

    def fresh() -> bool:
        # Fast path: no Maven, no network, when the marker matches the current pom.
        return marker.is_file() and marker.read_text().strip() == digest and lib.is_dir()

    if fresh():
        return lib
    with _file_lock(home / ".lock"):
        if fresh():  # another process fetched while we waited for the lock
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError("Maven ('mvn') is needed to fetch the Kafka jars: apt-get install -y maven")
        # Copy into a scratch dir and swap it in, so an interrupted fetch never leaves a half lib dir.
        tmp = home / f"lib.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [
            mvn, "-B", "-q", "-f", str(POM),
            "dependency:copy-dependencies", f"-DoutputDirectory={tmp}",
        ]  # fmt: skip
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            shutil.rmtree(tmp, ignore_errors=True)
            out = (proc.stdout + proc.stderr)[-4000:]
            raise RuntimeError(f"fetching Kafka jars failed ({' '.join(cmd)}):\n{out}")
        shutil.rmtree(lib, ignore_errors=True)
        class_archive(lib).unlink(missing_ok=True)  # made for the jars that were there
        tmp.rename(lib)
        marker.write_text(digest + "\n")
    return lib


# ----------------------------------------------------------------------------------- class-data sharing

# A JVM spends most of a broker's start loading and verifying Kafka's classes, and the tests and make run start over
# a dozen brokers. A dynamic class-data archive (JDK 13+: the classes a broker loaded, already parsed and verified,
# mapped from one file) took a start and stop from 10.1 to 7.6 s of CPU here, and a start from 6.0 to 4.4 s. It is
# made once, beside the jars, by `python -m deploy.kafka fetch` (make install). It only saves time: a JVM that finds
# it missing runs without it, and one that finds it made by another JDK or for other jars ignores it (-Xshare:auto,
# the default; tests/deploy/test_kafka_class_archive.py starts a broker on a damaged one).
CLASS_ARCHIVE = "broker-classes.jsa"


def class_archive(lib: Path) -> Path:
    return lib.parent / CLASS_ARCHIVE


def _class_sharing(lib: Path, jvm: Collection[str]) -> tuple[str, ...]:
    archive = class_archive(lib)
    # A JVM dumping an archive must not map one too (-XX:ArchiveClassesAtExit is made over the JDK's own base).
    if any(option.startswith(("-XX:ArchiveClassesAtExit", "-XX:SharedArchiveFile", "-Xshare")) for option in jvm):
        return ()
    return (f"-XX:SharedArchiveFile={archive}",) if archive.is_file() else ()


def _class_archive_maps(lib: Path, archive: Path) -> bool:
    """Whether this JDK maps the archive with these jars (-Xshare:on fails on a mismatch where auto ignores it)."""
    if not archive.is_file():
        return False
    check = [_java(), f"-XX:SharedArchiveFile={archive}", "-Xshare:on", "-cp", f"{lib}/*", "-version"]
    return subprocess.run(check, capture_output=True, timeout=60, check=False).returncode == 0


def prepare_class_archive(timeout: float = 120.0) -> Path:
    """The broker's class-data archive for this JDK and these jars: kept when it maps, made again otherwise, by
    starting a throwaway node that dumps the classes it loaded when it stops."""
    lib = kafka_jars()
    archive = class_archive(lib)
    if _class_archive_maps(lib, archive):
        return archive
    with _file_lock(lib.parent / ".archive.lock"):
        if _class_archive_maps(lib, archive):  # another process made it while we waited for the lock
            return archive
        archive.unlink(missing_ok=True)
        scratch = lib.parent / f"archive.tmp-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            dump = scratch / CLASS_ARCHIVE
            node = KafkaNode(
                scratch / "kafka", port=free_port(), jvm_options=("-Xmx512m", f"-XX:ArchiveClassesAtExit={dump}")
            )
            node.start(timeout)
            node.stop()
            # The JVM writes the archive on its way out; swapped in whole, so no JVM ever maps half of one.
            if not _class_archive_maps(lib, dump):
                raise RuntimeError(f"the JVM made no usable class-data archive; log tail:\n{node.log_tail()}")
            os.replace(dump, archive)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return archive


# -------------------------------------------------------------------------------------------- ports


def free_port(besides: Collection[int] = ()) -> int:
    """An unused loopback TCP port (free now; another process could still take it later), none of ``besides``: the
    kernel may hand out a port just closed again, and a broker refused two listeners on one (a CI run of 694accf)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in besides:
            return port


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------ readiness probe


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    # start() is synchronous but may be called from code that already runs an event loop (an async
    # test, a FastAPI lifespan); asyncio.run() refuses to nest, so use a private thread then.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def _metadata_answers(access: KafkaAccess, wait_s: float, node_id: int | None = None) -> bool:
    """True when the broker answers a metadata request listing at least one (unfenced) broker (``node_id``: listing
    that broker, i.e. this node itself is unfenced)."""
    from aiokafka import AIOKafkaClient  # imported lazily: `fetch` needs no Kafka client

    client = AIOKafkaClient(**access.client_kwargs(), request_timeout_ms=int(wait_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), wait_s)
        # A broker that is still fenced (e.g. catching up on metadata after a restart) is left
        # out of metadata responses, so an empty broker list means "not ready yet".
        brokers = client.cluster.brokers()
        if node_id is not None:
            # In a cluster the others answer before this node is unfenced: only its own id counts.
            return any(b.nodeId == node_id for b in brokers)
        return bool(brokers)
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), wait_s)


# --------------------------------------------------------------------------------------------- node

# Nodes run in their own session (so a terminal's Ctrl-C doesn't kill them behind the owner's back);
# the flip side is that nothing kills them when the owner exits without stop(): atexit does.
_LIVE_NODES: weakref.WeakSet[KafkaNode] = weakref.WeakSet()


@atexit.register
def _stop_live_nodes() -> None:
    for node in list(_LIVE_NODES):
        with contextlib.suppress(Exception):
            node.stop(timeout=10.0)


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("Java 17+ is needed to run Kafka: apt-get install -y openjdk-17-jre-headless")
    return java


# The super user's name: the broker's own identity and the admin's (deploy/kafka/access.py names every principal).
ADMIN_USER = "admin"
_JAAS_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+/=")


@dataclass(frozen=True)
class BrokerTls:
    """A SASL_SSL client listener too: the broker's PKCS12 keystore (key and certificate) and its password, and the
    CA's PEM that clients trust (deploy/kafka/make-certs.sh makes all three)."""

    keystore: Path
    password: SecretStr
    cafile: Path


@dataclass(frozen=True)
class BrokerSecurity:
    """SASL on every listener, KRaft's StandardAuthorizer with nothing allowed that is not granted, and the one
    super user's password (PLAIN, on the loopback-only internal and controller listeners)."""

    admin_password: SecretStr
    tls: BrokerTls | None = None

    def __post_init__(self) -> None:
        # It goes into a JAAS line in quotes: keep it to characters that need no escaping there.
        if not self.admin_password.get_secret_value() or set(self.admin_password.get_secret_value()) - _JAAS_SAFE:
            raise ValueError("the admin password must be non-empty letters, digits and -_.~+/=")


def _plain_jaas(password: str) -> str:
    # username/password: what this node presents to its own listeners; user_<name>: whom those listeners accept.
    return (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{ADMIN_USER}" password="{password}" user_{ADMIN_USER}="{password}";'
    )


def new_cluster_id() -> str:
    """A KRaft cluster id as ``StorageTool random-uuid`` makes one: a random UUID, URL-safe base64 without padding
    (never one starting with "-", which would read as an option on a command line)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class ClusterMembership:
    """One node's place in a cluster of combined broker+controller nodes on 127.0.0.1 (the production profile's
    shape, unsecured). Every node gets the same ``voters``, ``cluster_id`` and replication settings."""

    node_id: int
    # "1@127.0.0.1:p1,2@127.0.0.1:p2,3@127.0.0.1:p3": each node's id and controller port.
    voters: str
    # Shared: a node formatted with another cluster's id is refused by the quorum.
    cluster_id: str
    replication_factor: int = 3
    # Kafka 4.1's format also writes this into the metadata log as the cluster-wide dynamic default (for eligible
    # leader replicas), which outranks server.properties: a later change needs kafka-configs, not a restart.
    min_insync_replicas: int = 2

    def __post_init__(self) -> None:
        if self.node_id not in self.controller_ports():
            raise ValueError(f"node {self.node_id} is not one of the voters {self.voters!r}")
        if not 1 <= self.min_insync_replicas <= self.replication_factor <= len(self.controller_ports()):
            raise ValueError("need 1 <= min_insync_replicas <= replication_factor <= the number of nodes")

    def controller_ports(self) -> dict[int, int]:
        """Each voter's controller port, by node id."""
        ports: dict[int, int] = {}
        for voter in self.voters.split(","):
            node, _, address = voter.strip().partition("@")
            ports[int(node)] = int(address.rsplit(":", 1)[1])
        return ports


class KafkaNode:
    """One combined broker+controller KRaft node listening on 127.0.0.1.

    ``port`` is the client port (PLAINTEXT, or SASL_PLAINTEXT with ``security``); 0 means "the port this data_dir
    used before, else a free one". ``controller_port`` (and, secured, ``internal_port`` and ``tls_port``) default
    to the ones stored in data_dir, else free ports.

    ``cluster``: this node is one of several (its controller port is then its entry in ``cluster.voters``); without
    it, the node is a cluster of its own.
    """

    PORTS_FILE = "kapnet-ports.json"

    def __init__(
        self,
        data_dir: Path,
        port: int = 9092,
        controller_port: int | None = None,
        log_file: Path | None = None,
        *,
        security: BrokerSecurity | None = None,
        internal_port: int | None = None,
        tls_port: int | None = None,
        cluster: ClusterMembership | None = None,
        # The broker's JVM; the tests' and benchmarks' brokers keep the default, make run's is leaner (local_stack).
        jvm_options: tuple[str, ...] = ("-Xmx512m",),
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.jvm_options = jvm_options
        stored = self._stored_ports()
        self.port = port or stored.get("port") or free_port()
        self.cluster = cluster
        if cluster is not None:
            # The other nodes reach this one's controller at the port the shared voters list names.
            own = cluster.controller_ports()[cluster.node_id]
            if controller_port not in (None, own):
                raise ValueError(f"controller_port {controller_port} is not node {cluster.node_id}'s in the voters")
            controller_port = own
        # The controller port is part of controller.quorum.voters: a restart of the same data_dir
        # must present the same quorum (and not need a port passed in), so it is stored in data_dir.
        self.controller_port = controller_port or stored.get("controller_port") or free_port({self.port})
        self.security = security
        taken = {self.port, self.controller_port}
        self.internal_port = (internal_port or stored.get("internal_port") or free_port(taken)) if security else None
        has_tls = security is not None and security.tls is not None
        taken.add(self.internal_port or 0)
        self.tls_port = (tls_port or stored.get("tls_port") or free_port(taken)) if has_tls else None
        self.log_file = Path(log_file).absolute() if log_file else self.data_dir / "kafka.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- paths and config

    @property
    def bootstrap_servers(self) -> str:
        """The client listener (SASL_PLAINTEXT when secured)."""
        return f"127.0.0.1:{self.port}"

    @property
    def tls_bootstrap_servers(self) -> str | None:
        """The SASL_SSL client listener, when there is one."""
        return f"127.0.0.1:{self.tls_port}" if self.tls_port else None

    def admin_access(self) -> KafkaAccess:
        """The super user on the internal listener; unsecured: anyone on the client listener."""
        from shared.bus.kafka import KafkaAccess

        if self.security is None:
            return KafkaAccess(self.bootstrap_servers)
        return KafkaAccess(
            f"127.0.0.1:{self.internal_port}",
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            username=ADMIN_USER,
            password=self.security.admin_password,
        )

    def client_access(self, username: str, password: str, *, tls: bool = False) -> KafkaAccess:
        """A principal on the client listener (``tls``: on the SASL_SSL one, trusting the broker's CA)."""
        from shared.bus.kafka import KafkaAccess

        if self.security is None:
            raise RuntimeError("an unsecured broker has no principals")
        if not tls:
            return KafkaAccess(
                self.bootstrap_servers,
                security_protocol="SASL_PLAINTEXT",
                username=username,
                password=SecretStr(password),
            )
        if self.security.tls is None or self.tls_bootstrap_servers is None:
            raise RuntimeError("this broker has no SASL_SSL listener")
        return KafkaAccess(
            self.tls_bootstrap_servers,
            security_protocol="SASL_SSL",
            username=username,
            password=SecretStr(password),
            ssl_cafile=str(self.security.tls.cafile),
        )

    def apply_access(self, table: AccessTable, passwords: Mapping[str, str], timeout: float = 30.0) -> Applied:
        """Give the table's principals their SCRAM credentials and exactly its ACLs; returns once each can log in."""
        from deploy.kafka.provision import provision

        if self.security is None:
            raise RuntimeError("an unsecured broker has no ACLs to apply")
        admin = self.admin_access()
        return _run_coroutine(
            lambda: provision(admin, table, passwords, client_listener=self.bootstrap_servers, timeout_seconds=timeout)
        )

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _stored_ports(self) -> dict[str, int]:
        try:
            data = json.loads((self.data_dir / self.PORTS_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return {k: int(v) for k, v in data.items() if k in ("port", "controller_port", "internal_port", "tls_port")}

    def _listener_config(self) -> dict[str, str]:
        p, c = self.port, self.controller_port
        if self.security is None:
            return {
                "listeners": f"PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{p}",
                "controller.listener.names": "CONTROLLER",
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            }
        plain = _plain_jaas(self.security.admin_password.get_secret_value())
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        i = self.internal_port
        clients = [f"CLIENT://127.0.0.1:{p}", f"INTERNAL://127.0.0.1:{i}"]
        protocols = "CLIENT:SASL_PLAINTEXT,INTERNAL:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
        props = {
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "INTERNAL",
            # Services: SCRAM only. The super user: PLAIN, on loopback listeners no service is given.
            "listener.name.client.sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.client.scram-sha-512.sasl.jaas.config": scram,
            "listener.name.internal.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.internal.plain.sasl.jaas.config": plain,
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            # KRaft cannot use SCRAM between broker and controller (its credentials live in the metadata they carry).
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": plain,
            "sasl.mechanism.controller.protocol": "PLAIN",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{ADMIN_USER}",
        }
        tls = self.security.tls
        if tls is not None:
            clients.append(f"CLIENT_TLS://127.0.0.1:{self.tls_port}")
            protocols += ",CLIENT_TLS:SASL_SSL"
            props |= {
                "listener.name.client_tls.sasl.enabled.mechanisms": "SCRAM-SHA-512",
                "listener.name.client_tls.scram-sha-512.sasl.jaas.config": scram,
                "listener.name.client_tls.ssl.keystore.type": "PKCS12",
                "listener.name.client_tls.ssl.keystore.location": str(Path(tls.keystore).absolute()),
                "listener.name.client_tls.ssl.keystore.password": tls.password.get_secret_value(),
                "listener.name.client_tls.ssl.key.password": tls.password.get_secret_value(),
            }
        return {
            "listeners": ",".join([*clients, f"CONTROLLER://127.0.0.1:{c}"]),
            "advertised.listeners": ",".join(clients),
            "listener.security.protocol.map": protocols,
            **props,
        }

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ports = {"port": self.port, "controller_port": self.controller_port}
        ports |= {k: v for k, v in (("internal_port", self.internal_port), ("tls_port", self.tls_port)) if v}
        (self.data_dir / self.PORTS_FILE).write_text(json.dumps(ports) + "\n")
        c, cluster = self.controller_port, self.cluster
        # One node: the internal topics can only ever have one replica. A cluster: as docker-compose.yml's
        # production profile sets them (acks=all needs min.insync.replicas copies, so one node may be down).
        rf = str(cluster.replication_factor) if cluster else "1"
        min_isr = str(cluster.min_insync_replicas) if cluster else "1"
        props = {
            "process.roles": "broker,controller",
            "node.id": str(cluster.node_id) if cluster else "1",
            # Static voters (not controller.quorum.bootstrap.servers): format needs no --standalone.
            "controller.quorum.voters": cluster.voters if cluster else f"1@127.0.0.1:{c}",
            **self._listener_config(),
            "log.dirs": str(self.logs_dir),
            "num.partitions": "3",
            "default.replication.factor": rf,
            # Only a cluster sets it: one node's config stays what it always was (Kafka's default is 1 too).
            **({"min.insync.replicas": min_isr} if cluster else {}),
            # Topics are declared explicitly by the services; a typo must fail, not create a topic.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": min_isr,
            # Consumer groups form immediately instead of after 3 s (tests join/leave a lot).
            "group.initial.rebalance.delay.ms": "0",
            # Compaction otherwise default, but the cleaner re-checks every 1 s instead of 15 s.
            "log.cleaner.backoff.ms": "1000",
            # The cleaner's offset map is allocated on the heap at start, whatever the load: Kafka's default of 128 MB
            # was 100 MB of a demo broker's 377 MB RSS. 16 MB holds about 600,000 keys a cleaning pass (24 bytes a
            # key, 90 % full), more than the compacted topics of a node started here ever hold.
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        }
        text = "# Written by deploy/kafka/launcher.py on every start; edits are overwritten.\n"
        text += "".join(f"{k}={v}\n" for k, v in props.items())
        # Secured, it holds the super user's password: readable by its owner only, from the first byte on.
        fd = os.open(self.properties_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(text)

    def _java_cmd(self, lib: Path, main: str, *args: str, jvm: tuple[str, ...] = ("-Xmx512m",)) -> list[str]:
        return [
            _java(),
            *jvm,
            *_class_sharing(lib, jvm),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            "-cp",
            f"{lib}/*",
            main,
            *args,
        ]

    def _format_if_needed(self, lib: Path) -> None:
        # meta.properties is what StorageTool writes last; its presence means the store holds a
        # cluster already, and re-formatting would throw away every topic.
        if (self.logs_dir / "meta.properties").is_file():
            return

        def storage_tool(*args: str) -> str:
            # Short-lived JVMs: small heap and C1-only JIT start noticeably faster.
            cmd = self._java_cmd(lib, "kafka.tools.StorageTool", *args, jvm=("-Xmx256m", "-XX:TieredStopAtLevel=1"))
            proc = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False
            )
            if proc.returncode != 0:
                raise RuntimeError(f"kafka StorageTool {args[0]} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
            return proc.stdout

        # Every node of a cluster is formatted with the same id. A lone node's is made here as `StorageTool
        # random-uuid` makes one, without a JVM of its own for it (about 1.2 s of CPU a start).
        cluster_id = self.cluster.cluster_id if self.cluster is not None else new_cluster_id()
        storage_tool("format", "-t", cluster_id, "-c", str(self.properties_file))

    # -- lifecycle

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        """The end of this run's output (the log file is appended to across restarts).

        Java stack frames are dropped: a startup failure prints several long traces whose frames
        would otherwise push the one useful line ("Address already in use", ...) out of the tail.
        """
        try:
            with self.log_file.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(self._log_offset, fh.tell() - 50 * chars))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith(("at ", "... "))]
        return "\n".join(lines)[-chars:]

    def start(self, timeout: float = 90.0) -> None:
        """Fetch jars if needed, format the store once, start the node, wait until it serves metadata."""
        if self.is_running():
            return
        deadline = time.monotonic() + timeout
        self.launch()
        self.wait_until_ready(deadline - time.monotonic())

    def launch(self) -> None:
        """start() without the wait: a node of a cluster cannot serve metadata before a majority of the voters runs,
        so a cluster's nodes are all launched before any is waited for (:meth:`wait_until_ready`)."""
        if self.is_running():
            return
        lib = kafka_jars()
        self._write_config()
        self._format_if_needed(lib)

        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n==== kapnet: starting Kafka {KAFKA_VERSION} at {time.ctime()} ====\n".encode())
            log.flush()
            self._log_offset = log.tell()
            # Own process group: stop() can signal the JVM and anything it spawned at once, and a
            # Ctrl-C meant for the owner's terminal doesn't kill the broker mid-test.
            self._proc = subprocess.Popen(
                self._java_cmd(lib, "kafka.Kafka", str(self.properties_file), jvm=self.jvm_options),
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # atexit does not run when the owner is killed outright: then the kernel stops the broker.
                preexec_fn=die_with_parent,
            )
        _LIVE_NODES.add(self)

    def wait_until_ready(self, timeout: float = 90.0) -> None:
        """Wait until the launched node serves metadata (a cluster's node: until it is itself unfenced); stops it
        when it does not in ``timeout`` seconds or exits."""
        try:
            self._wait_ready(time.monotonic() + timeout)
        except BaseException:
            self.stop(timeout=10.0)
            raise

    def _wait_ready(self, deadline: float) -> None:
        if self._proc is None:
            raise RuntimeError("the node was not launched")
        node_id = self.cluster.node_id if self.cluster else None
        while True:
            code = self._proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"Kafka exited with code {code} during startup; log tail ({self.log_file}):\n{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(
                    f"Kafka did not answer metadata requests on {self.bootstrap_servers} in time; "
                    f"log tail ({self.log_file}):\n{self.log_tail()}"
                )
            # A plain TCP connect first: it is cheap, and it keeps aiokafka from logging connection
            # errors while the JVM is still booting.
            admin = self.admin_access()
            if _port_open(int(admin.bootstrap_servers.rsplit(":", 1)[1])):
                probe = functools.partial(_metadata_answers, admin, max(0.5, min(5.0, remaining)), node_id)
                if _run_coroutine(probe):
                    return
            time.sleep(0.2)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the node's process group (a clean, flushed shutdown), SIGKILL after ``timeout``."""
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10.0)
        finally:
            self._proc = None
            _LIVE_NODES.discard(self)

    def kill(self) -> None:
        """SIGKILL the node: a crash, with nothing flushed (fault tests)."""
        proc = self._proc
        if proc is None:
            return
        try:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10.0)
        finally:
            self._proc = None
            _LIVE_NODES.discard(self)

    def __enter__(self) -> KafkaNode:
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
        state = "running" if self.is_running() else "stopped"
        return f"KafkaNode({str(self.data_dir)!r}, port={self.port}, {state})"
