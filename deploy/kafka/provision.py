"""Applies the access table (deploy/kafka/access.py) to a broker: a SCRAM-SHA-512 credential for every principal,
and exactly the table's ACLs (a grant no longer in the table is deleted: the broker keeps none the docs do not show).

aiokafka's admin client has no ACL or SCRAM calls, so this speaks those four requests of Kafka's admin protocol
(CreateAcls, DescribeAcls, DeleteAcls v1 and AlterUserScramCredentials v0) through aiokafka's connection, as the
super user. Idempotent: run it on every start (make run) or as a one-shot job (docker-compose.yml).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka.client import AIOKafkaClient
from aiokafka.conn import create_conn
from aiokafka.errors import for_code
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DeleteAclsRequest_v1,
    DescribeAclsRequest_v1,
)
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)
from pydantic import SecretStr

from deploy.kafka.access import AccessTable, Acl, Operation, Pattern, Resource
from shared.bus.kafka import KafkaAccess

log = logging.getLogger(__name__)

SCRAM_SHA_512 = 2  # Kafka's ScramMechanism code
# Kafka accepts 4096-16384 for SHA-512; each login costs the client (and the broker) this many HMACs.
SCRAM_ITERATIONS = 8192
_ANY, _ALLOW, _ALL_HOSTS = 1, 3, "*"

# One ACL as the broker reports it: (principal, resource type, pattern type, name, operation, host, permission).
Binding = tuple[str, int, int, str, int, str, int]


class ProvisionError(RuntimeError):
    pass


# -- AlterUserScramCredentials v0 (KIP-554): a flexible version, which aiokafka does not define.


class _AlterScramResponse(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _AlterScramRequestV0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _AlterScramResponse
    SCHEMA = Schema(
        ("deletions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields))),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _AlterScram(Request[_AlterScramRequestV0]):
    API_KEY = 51

    def __init__(self, upsertions: list[tuple[str, int, int, bytes, bytes, dict[int, bytes]]]) -> None:
        self.upsertions = upsertions

    def build(self, request_struct_class: type[_AlterScramRequestV0]) -> _AlterScramRequestV0:
        return request_struct_class([], self.upsertions, {})


def scram_upsertion(user: str, password: str) -> tuple[str, int, int, bytes, bytes, dict[int, bytes]]:
    """What the broker stores: a random salt and SaltedPassword = Hi(password, salt, i) (RFC 5802), never the
    password itself."""
    salt = secrets.token_bytes(32)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, SCRAM_ITERATIONS)
    return (user, SCRAM_SHA_512, SCRAM_ITERATIONS, salt, salted, {})


# -- ACLs: aiokafka defines the v1 structures but builds one binding per request; these send many at once.


class _CreateAcls(Request[CreateAclsRequest_v1]):
    API_KEY = 30

    def __init__(self, bindings: list[Binding]) -> None:
        self.bindings = bindings

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(
            [(rt, name, pt, who, host, op, perm) for who, rt, pt, name, op, host, perm in self.bindings]
        )


class _DeleteAcls(Request[DeleteAclsRequest_v1]):
    API_KEY = 31

    def __init__(self, bindings: list[Binding]) -> None:
        self.bindings = bindings

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> DeleteAclsRequest_v1:
        return request_struct_class(
            [(rt, name, pt, who, host, op, perm) for who, rt, pt, name, op, host, perm in self.bindings]
        )


class _DescribeAllAcls(Request[DescribeAclsRequest_v1]):
    API_KEY = 29

    def build(self, request_struct_class: type[DescribeAclsRequest_v1]) -> DescribeAclsRequest_v1:
        return request_struct_class(_ANY, None, _ANY, None, None, _ANY, _ANY)


def binding(acl: Acl) -> Binding:
    return (
        acl.kafka_principal,
        acl.resource.value,
        acl.pattern.value,
        acl.name,
        acl.operation.value,
        _ALL_HOSTS,
        _ALLOW,
    )


def describe(found: Binding) -> str:
    who, rt, pt, name, op, host, perm = found
    try:
        what = f"{Operation(op).name} {Resource(rt).name.lower()} {name}{'*' if pt == Pattern.PREFIXED.value else ''}"
    except ValueError:
        what = f"operation {op} on resource type {rt} {name!r} (pattern {pt})"
    return f"{who} {'ALLOW' if perm == _ALLOW else f'permission {perm}'} {what} from {host}"


def _raise_for(code: int, message: str | None, what: str) -> None:
    if code:
        raise ProvisionError(f"{what}: {for_code(code).__name__}: {message or ''}".rstrip(": "))


@dataclass(frozen=True)
class Applied:
    users: int
    created: list[str]
    deleted: list[str]

    def __str__(self) -> str:
        return f"{self.users} SCRAM credentials set, {len(self.created)} ACLs created, {len(self.deleted)} deleted"


class Provisioner:
    """An admin connection to one broker, as the super user."""

    def __init__(self, admin: KafkaAccess, timeout_seconds: float = 15.0) -> None:
        self.admin = admin
        self.timeout_seconds = timeout_seconds
        self._client = AIOKafkaClient(**admin.client_kwargs(), request_timeout_ms=int(timeout_seconds * 1000))

    async def __aenter__(self) -> Provisioner:
        try:
            await asyncio.wait_for(self._client.bootstrap(), self.timeout_seconds)
        except BaseException:
            await asyncio.wait_for(self._client.close(), self.timeout_seconds)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.wait_for(self._client.close(), self.timeout_seconds)

    async def _send(self, request: Request[Any]) -> Any:
        # Any broker will do: in KRaft it forwards these to the controller.
        node = self._client.get_random_node()
        return await asyncio.wait_for(self._client.send(node, request), self.timeout_seconds)

    async def set_passwords(self, passwords: Mapping[str, str]) -> None:
        if not passwords:
            return
        response = await self._send(_AlterScram([scram_upsertion(u, p) for u, p in sorted(passwords.items())]))
        for user, code, message, _tags in response.results:
            _raise_for(code, message, f"SCRAM credential of {user}")

    async def acls(self) -> set[Binding]:
        response = await self._send(_DescribeAllAcls())
        _raise_for(response.error_code, response.error_message, "describing ACLs")
        return {
            (who, rt, pt, name, op, host, perm)
            for rt, name, pt, entries in response.resources
            for who, host, op, perm in entries
        }

    async def apply(self, table: AccessTable, passwords: Mapping[str, str]) -> Applied:
        """SCRAM credentials for the table's users (the passwords given), then its ACLs and no others."""
        missing = sorted(set(table.scram_users()) - set(passwords))
        if missing:
            raise ProvisionError(f"no password for {missing}")
        await self.set_passwords({user: passwords[user] for user in table.scram_users()})
        wanted = {binding(acl) for acl in table.acls()}
        present = await self.acls()
        stale, new = sorted(present - wanted), sorted(wanted - present)
        # New grants first: a grant that changes shape (a prefix for a name, say) never leaves a gap in between.
        if new:
            response = await self._send(_CreateAcls(new))
            for code, message in response.creation_responses:
                _raise_for(code, message, "creating ACLs")
        if stale:
            response = await self._send(_DeleteAcls(stale))
            for code, message, _matching in response.filter_responses:
                _raise_for(code, message, "deleting ACLs")
        # The broker answers once the controller has the change; wait until the broker's own authorizer has it too.
        deadline = asyncio.get_running_loop().time() + self.timeout_seconds
        while (present := await self.acls()) != wanted:
            if asyncio.get_running_loop().time() > deadline:
                raise ProvisionError(f"the broker's ACLs did not become the table's: {sorted(present ^ wanted)}")
            await asyncio.sleep(0.1)
        applied = Applied(len(table.scram_users()), [describe(b) for b in new], [describe(b) for b in stale])
        for line in applied.deleted:
            log.info("ACL deleted (not in the table): %s", line)
        return applied


async def can_log_in(access: KafkaAccess, timeout_seconds: float = 5.0) -> bool:
    """Whether the broker accepts this principal's credentials now (a new SCRAM credential takes a moment)."""
    host, _, port = access.bootstrap_servers.split(",")[0].rpartition(":")
    kwargs = access.security_kwargs()
    try:
        conn = await asyncio.wait_for(
            create_conn(
                host,
                int(port),
                security_protocol=kwargs["security_protocol"],
                sasl_mechanism=kwargs.get("sasl_mechanism"),
                sasl_plain_username=kwargs.get("sasl_plain_username"),
                sasl_plain_password=kwargs.get("sasl_plain_password"),
                ssl_context=kwargs.get("ssl_context"),
                request_timeout_ms=int(timeout_seconds * 1000),
            ),
            timeout_seconds,
        )
    except Exception:
        return False
    conn.close()
    return True


async def provision(
    admin: KafkaAccess,
    table: AccessTable,
    passwords: Mapping[str, str],
    *,
    client_listener: str | None = None,
    timeout_seconds: float = 30.0,
) -> Applied:
    """Apply ``table`` as ``admin``. With ``client_listener`` (the services' SASL_PLAINTEXT address), also wait until
    every principal can log in there, so nothing started next is refused for a credential still on its way."""
    async with Provisioner(admin, timeout_seconds) as provisioner:
        applied = await provisioner.apply(table, passwords)
    if client_listener is not None:
        deadline = asyncio.get_running_loop().time() + timeout_seconds
        for user in table.scram_users():
            access = KafkaAccess(
                client_listener,
                security_protocol="SASL_PLAINTEXT",
                username=user,
                password=SecretStr(passwords[user]),
            )
            while not await can_log_in(access):
                if asyncio.get_running_loop().time() > deadline:
                    raise ProvisionError(f"{user} cannot log in at {client_listener}")
                await asyncio.sleep(0.1)
    return applied
