"""Who may do what on the broker: every principal and every ACL, defined once.

The launcher (``make run``, the tests) and the compose provisioning job apply this table to the broker
(deploy/kafka/provision.py: SCRAM credentials and ACLs, stale grants removed); ``python -m deploy.kafka acls``
prints it as the documentation's matrix. The broker runs KRaft's StandardAuthorizer with
``allow.everyone.if.no.acl.found=false``: what is not granted here is refused.

The boundary it draws (docs: DESIGN.md, "Privacy boundary"):

- a site's service reads the site topics it consumes and writes (and creates) its own topic and dead-letter topic,
  all of its own site; its consumer group is its own;
- a site's outcomes service writes one network topic, its site's ``kapnet.network.<site>.aggregates.v1``;
- the network role (outcomes and webhooks) reads only the network topics (prefix ``kapnet.network.``) and writes its
  own dead-letter topic;
- a site's webhooks reads the site's topics and writes only its dead-letter topic: it publishes nothing.

Topics are created by the principal that owns them (CREATE on exactly those names), not pre-created here: the service
stays the one place that declares its topics' partitions and retention, and no principal can create any other name.
A consumer whose input topic does not exist yet waits for its owner (shared/bus/consumer.py).

No principal has a cluster-wide grant: Kafka 3+ allows an idempotent producer to any principal with WRITE on some
topic (KIP-679), which every producer here has.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from deploy.kafka.launcher import ADMIN_USER
from shared.events.registry import NETWORK_TOPIC_PREFIX, SITE_CHANNEL, network_topic

# The site services and the site topics each consumes (services/<name>/app.py: ServiceDefinition.consumers).
# tests/deploy/test_broker_access.py checks this against the services' own definitions.
SITE_SERVICE_READS: Mapping[str, tuple[str, ...]] = {
    "intake": (),
    "sessions": ("intake",),
    "billing": ("intake", "sessions"),
    "outcomes": ("intake", "sessions", "billing"),
    "webhooks": ("intake", "sessions", "billing", "outcomes"),
}
# Site services that publish no topic of their own: webhooks only delivers what it reads, over HTTP.
SITE_SERVICES_PUBLISHING_NOTHING = frozenset({"webhooks"})
# The services whose events the synthetic cohort imitates (deploy/synthetic.py), for make run's demo loader.
LOADED_SERVICES = ("intake", "sessions", "billing")

ADMIN = ADMIN_USER  # the broker's super user: its own identity and the operator's (PLAIN, internal listener)
NETWORK = "network-outcomes"
NETWORK_WEBHOOKS = "network-webhooks"
AUDITOR = "network-auditor"
LOADER = "demo-loader"
NETWORK_DEAD_LETTER = "kapnet.network.outcomes.deadletter.v1"
NETWORK_WEBHOOKS_DEAD_LETTER = "kapnet.network.webhooks.deadletter.v1"
_SITE = re.compile(r"[a-z][a-z0-9-]{0,30}")


class Resource(Enum):
    TOPIC = 2  # Kafka's ResourceType codes
    GROUP = 3


class Pattern(Enum):
    LITERAL = 3  # Kafka's PatternType codes
    PREFIXED = 4


class Operation(Enum):
    """The operations granted here (Kafka's AclOperation codes). READ and WRITE imply DESCRIBE."""

    READ = 3
    WRITE = 4
    CREATE = 5


@dataclass(frozen=True)
class Acl:
    """One ALLOW binding for any host; nothing here is ever DENY (no grant is already a refusal)."""

    principal: str  # the SASL user name
    resource: Resource
    pattern: Pattern
    name: str
    operation: Operation

    def key(self) -> tuple[str, int, int, str, int]:
        return (self.principal, self.resource.value, self.pattern.value, self.name, self.operation.value)

    @property
    def kafka_principal(self) -> str:
        return f"User:{self.principal}"

    def __str__(self) -> str:
        star = "*" if self.pattern is Pattern.PREFIXED else ""
        return f"{self.principal}: {self.operation.name} {self.resource.name.lower()} {self.name}{star}"


@dataclass(frozen=True)
class Topics:
    """A topic name, or every topic whose name starts with ``name`` (``prefixed``)."""

    name: str
    prefixed: bool = False

    @property
    def pattern(self) -> Pattern:
        return Pattern.PREFIXED if self.prefixed else Pattern.LITERAL

    def __str__(self) -> str:
        return f"{self.name}*" if self.prefixed else self.name


@dataclass(frozen=True)
class Principal:
    """A SASL/SCRAM user and everything it may do. ``super_user``: the broker's own identity and the operator's
    (broker config ``super.users``); it authenticates with PLAIN on the internal listener, not SCRAM."""

    name: str
    role: str  # what it is, for the matrix and the log
    reads: tuple[Topics, ...] = ()
    owns: tuple[Topics, ...] = ()  # writes and creates: only a topic's owner may create it
    writes: tuple[Topics, ...] = ()  # writes to topics others own and create
    groups: tuple[str, ...] = ()
    super_user: bool = False
    development_only: bool = False

    def acls(self) -> list[Acl]:
        def on(topics: Iterable[Topics], operation: Operation) -> list[Acl]:
            return [Acl(self.name, Resource.TOPIC, t.pattern, t.name, operation) for t in topics]

        return [
            *on(self.reads, Operation.READ),
            *on((*self.owns, *self.writes), Operation.WRITE),
            *on(self.owns, Operation.CREATE),
            *(Acl(self.name, Resource.GROUP, Pattern.LITERAL, g, Operation.READ) for g in self.groups),
        ]


def site_principal(site: str, service: str) -> str:
    """e.g. ``north-sessions``."""
    return f"{site}-{service}"


def group_id(service: str, where: str) -> str:
    """The consumer group of a service at a site (or ``network``): ServiceSettings.instance, e.g. ``billing@north``."""
    return f"{service}@{where}"


def site_topic(site: str, service: str) -> str:
    return SITE_CHANNEL.format(site=site, service=service)


def dead_letter_topic(where: str, service: str) -> str:
    return f"kapnet.{where}.{service}.deadletter.v1"


def _site_service(site: str, service: str) -> Principal:
    reads = SITE_SERVICE_READS[service]
    owns = [] if service in SITE_SERVICES_PUBLISHING_NOTHING else [site_topic(site, service)]
    if reads:
        owns.append(dead_letter_topic(site, service))
    if service == "outcomes":
        owns.append(network_topic(site))  # its own site's aggregates, and no other site's
    return Principal(
        site_principal(site, service),
        f"{service}@{site}",
        reads=tuple(Topics(site_topic(site, s)) for s in reads),
        owns=tuple(Topics(t) for t in owns),
        groups=(group_id(service, site),) if reads else (),
    )


@dataclass(frozen=True)
class AccessTable:
    principals: tuple[Principal, ...]

    def __post_init__(self) -> None:
        names = [p.name for p in self.principals]
        if len(set(names)) != len(names):
            raise ValueError(f"a principal is named twice: {names}")

    def acls(self) -> list[Acl]:
        return sorted((acl for p in self.principals for acl in p.acls()), key=Acl.key)

    def super_users(self) -> list[str]:
        return [p.name for p in self.principals if p.super_user]

    def scram_users(self) -> list[str]:
        """Every principal that logs in with SCRAM (all but the super user, which uses PLAIN)."""
        return [p.name for p in self.principals if not p.super_user]

    def get(self, name: str) -> Principal:
        for principal in self.principals:
            if principal.name == name:
                return principal
        raise KeyError(name)

    def matrix(self) -> str:
        """The ACL matrix as a Markdown table, one row per principal: READ on the topics it reads, WRITE and CREATE on
        those it owns, WRITE on those it writes, READ on its consumer group (READ and WRITE imply DESCRIBE). A
        trailing ``*`` is a name prefix."""

        def cell(items: Iterable[object]) -> str:
            return "<br>".join(f"`{item}`" for item in items) or "—"

        lines = [
            "| principal | is | reads | owns: writes and creates | writes (created by their owner) | group |",
            "|---|---|---|---|---|---|",
        ]
        for p in self.principals:
            if p.super_user:
                lines.append(f"| `{p.name}` | {p.role} | all (super user) | all | all | any |")
                continue
            role = f"{p.role} (development only)" if p.development_only else p.role
            lines.append(
                f"| `{p.name}` | {role} | {cell(p.reads)} | {cell(p.owns)} | {cell(p.writes)} | {cell(p.groups)} |"
            )
        return "\n".join(lines) + "\n"


def access_table(sites: Sequence[str], *, loader: bool = False) -> AccessTable:
    """Every principal of a network of ``sites``: the admin, each site's services, the network role's two, the
    privacy auditor, and (``loader``, make run only) the demo loader that publishes the synthetic cohort."""
    for site in sites:
        if not _SITE.fullmatch(site) or site == "network":
            raise ValueError(f"not a site name: {site!r}")
    network_topics = Topics(NETWORK_TOPIC_PREFIX, prefixed=True)
    principals = [
        Principal(ADMIN, "the broker itself and the operator who applies this table", super_user=True),
        *(_site_service(site, service) for site in sites for service in SITE_SERVICE_READS),
        Principal(
            NETWORK,
            "outcomes@network",
            reads=(network_topics,),
            owns=(Topics(NETWORK_DEAD_LETTER),),
            groups=(group_id("outcomes", "network"),),
        ),
        # The aggregates delivered to the network admin's endpoints: what outcomes@network reads, nothing more.
        Principal(
            NETWORK_WEBHOOKS,
            "webhooks@network",
            reads=(network_topics,),
            owns=(Topics(NETWORK_WEBHOOKS_DEAD_LETTER),),
            groups=(group_id("webhooks", "network"),),
        ),
        # Reads every version that ever crossed, as the threat model's reader would; by assignment, no group.
        Principal(AUDITOR, "the privacy auditor (shared/privacy)", reads=(network_topics,)),
    ]
    if loader:
        principals.append(
            Principal(
                LOADER,
                "make run's synthetic cohort (deploy/synthetic.py)",
                # Writes only: the services' own topics, which they create; it reads nothing.
                writes=tuple(Topics(site_topic(site, s)) for site in sites for s in LOADED_SERVICES),
                development_only=True,
            )
        )
    return AccessTable(tuple(principals))


def password_variable(principal: str) -> str:
    """The environment variable that holds a principal's password for docker-compose.yml (in ``.env``)."""
    return "KAFKA_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", principal.upper())
