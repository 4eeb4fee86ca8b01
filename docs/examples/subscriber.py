"""A subscriber to a kapnet site's events that uses only aiokafka and the published JSON Schemas.

    python docs/examples/subscriber.py --bootstrap kafka.north.example:9092 --site north --service intake \
        --schemas https://intake.north.example/events/schemas --group crm-sync@north \
        --username crm-sync --password-file /run/secrets/kafka --cafile /etc/ssl/kapnet-ca.pem

It reads one service's topic (``kapnet.<site>.<service>.v1``) in its own consumer group, checks each record's
CloudEvents headers and validates its data against the schema published for its ``ce_type``, hands it on, and only
then commits the offset: a crash re-reads what was not handled, so a handler must drop an ``ce_id`` it already has.
docs/subscribing.md says what each part means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from aiokafka import AIOKafkaConsumer, TopicPartition


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    source: str
    subject: str | None
    time: str | None
    key: str | None
    data: dict[str, Any]


class NotAnEvent(ValueError):
    """A record that is not a kapnet CloudEvent or whose data does not match its schema."""


def load_schemas(url: str) -> dict[str, dict[str, Any]]:
    """The service's published JSON Schemas, by CloudEvents type (GET <service>/events/schemas)."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        schemas: dict[str, dict[str, Any]] = json.load(reply)
    return schemas


def read_event(headers: list[tuple[str, bytes]], key: bytes | None, value: bytes, schemas: dict[str, Any]) -> Event:
    """A record in CloudEvents' Kafka binary mode: attributes in ce_* headers, the data as the JSON value."""
    attributes = {name: raw.decode() for name, raw in headers}
    if attributes.get("ce_specversion") != "1.0":
        raise NotAnEvent("not a CloudEvents 1.0 record")
    ce_type = attributes.get("ce_type", "")
    schema = schemas.get(ce_type)
    if schema is None:
        # A type newer than this subscriber's schemas: fetch them again rather than guess at its fields.
        raise NotAnEvent(f"no published schema for {ce_type!r}")
    data = json.loads(value)
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        raise NotAnEvent(f"{ce_type}: {exc.message}") from None
    return Event(
        id=attributes["ce_id"],
        type=ce_type,
        source=attributes["ce_source"],
        subject=attributes.get("ce_subject"),
        time=attributes.get("ce_time"),
        key=key.decode() if key is not None else None,
        data=data,
    )


async def subscribe(
    consumer: AIOKafkaConsumer,
    schemas: dict[str, Any],
    handle: Callable[[Event], Awaitable[None]],
    refused: Callable[[str], None],
    *,
    stop_after: int | None = None,
) -> int:
    """Handle records in order, committing each partition's offset after its records are handled."""
    handled = 0
    while stop_after is None or handled < stop_after:
        batches = await consumer.getmany(timeout_ms=1000)
        for partition, records in batches.items():
            for record in records:
                try:
                    event = read_event(list(record.headers), record.key, record.value or b"", schemas)
                except NotAnEvent as exc:
                    refused(f"{partition.topic}:{partition.partition}@{record.offset}: {exc}")
                else:
                    await handle(event)
                    handled += 1
            await consumer.commit({TopicPartition(partition.topic, partition.partition): records[-1].offset + 1})
    return handled


def consumer_for(args: argparse.Namespace) -> AIOKafkaConsumer:
    security: dict[str, Any] = {}
    if args.username:
        password = Path(args.password_file).read_text().strip() if args.password_file else ""
        security = {
            "security_protocol": "SASL_SSL" if args.cafile else "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": args.username,
            "sasl_plain_password": password,
        }
        if args.cafile:
            security["ssl_context"] = ssl.create_default_context(cafile=args.cafile)
    return AIOKafkaConsumer(
        f"kapnet.{args.site}.{args.service}.v1",
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        **security,
    )


async def run(args: argparse.Namespace) -> int:
    schemas = load_schemas(args.schemas)
    consumer = consumer_for(args)

    async def show(event: Event) -> None:
        print(json.dumps({"id": event.id, "type": event.type, "key": event.key, "data": event.data}), flush=True)

    await consumer.start()
    try:
        return await subscribe(
            consumer, schemas, show, lambda why: print(f"refused {why}", file=sys.stderr), stop_after=args.max
        )
    finally:
        await consumer.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--site", required=True)
    parser.add_argument("--service", required=True, choices=["intake", "sessions", "billing", "outcomes"])
    parser.add_argument("--schemas", required=True, help="the service's /events/schemas URL")
    parser.add_argument("--group", required=True, help="your consumer group, as granted to your principal")
    parser.add_argument("--username", help="your SCRAM principal (none: an unauthenticated development broker)")
    parser.add_argument("--password-file")
    parser.add_argument("--cafile", help="the CA of the broker's certificate (SASL_SSL)")
    parser.add_argument("--max", type=int, help="stop after this many events")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
