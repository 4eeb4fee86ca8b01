"""The one registry of event types: each is a versioned pydantic model.

A consumer looks the CloudEvents ``type`` up here to get the model; subscribers read the JSON Schemas and the
AsyncAPI 3 document generated from the same models, so the contract and the code cannot drift apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.auth.permissions import Permission
from shared.events.envelope import CloudEvent

TYPE_PREFIX = "org.kapnet"
SITE_CHANNEL = "kapnet.{site}.{service}.v1"
# One network topic per site, so the broker can let each site's outcomes write its own and no other (ACLs by
# literal topic name), and the network read them all by the prefix ``kapnet.network.``.
NETWORK_CHANNEL = "kapnet.network.{site}.aggregates.v1"
NETWORK_TOPIC_PREFIX = "kapnet.network."


def network_topic(site: str) -> str:
    """The topic a site's de-identified aggregates cross the privacy boundary on."""
    return NETWORK_CHANNEL.format(site=site)


class UnknownEventType(LookupError):
    pass


class InvalidEventData(ValueError):
    pass


class DomainEvent(BaseModel):
    """Base of every event. Unknown fields are ignored so producers may add fields without breaking readers;
    a breaking change is a new ``event_version`` (a new model), never an edit of this one."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: ClassVar[str]
    producer: ClassVar[str]
    event_version: ClassVar[int] = 1
    # "site": on the producing site's topic, may carry PHI. "network": crosses the privacy boundary.
    scope: ClassVar[Literal["site", "network"]] = "site"
    summary: ClassVar[str] = ""
    # An older version still registered so consumers can read what is already on a topic; nobody produces it.
    superseded: ClassVar[bool] = False
    # Who may read it outside its consumers (a webhook endpoint, a subscriber): the permission a role needs to
    # receive it at all, and the fields that need a further one (shared/events/audience.py applies both).
    audience: ClassVar[Permission]
    restricted: ClassVar[Mapping[str, Permission]] = {}

    @classmethod
    def ce_type(cls) -> str:
        return f"{TYPE_PREFIX}.{cls.producer}.{cls.name}.v{cls.event_version}"

    def partition_key(self) -> str:
        """Site topics keep per-patient order; the network topic keeps each site and cohort group's order."""
        raise NotImplementedError

    def subject(self) -> str | None:
        return None

    def envelope_time(self) -> datetime | None:
        """The time its CloudEvent (and Kafka record) carries; None: when it was written. A network event gives
        its release period's boundary instead, so no time on the network dates a single patient's visit."""
        return None


class PatientEvent(DomainEvent):
    """An event about one patient: keyed by patient id, so a patient's events keep their order on a site topic."""

    patient_id: uuid.UUID

    def partition_key(self) -> str:
        return str(self.patient_id)

    def subject(self) -> str:
        return f"patients/{self.patient_id}"


_REGISTRY: dict[str, type[DomainEvent]] = {}
_Model = TypeVar("_Model", bound=type[DomainEvent])


def registered(model: _Model) -> _Model:
    ce_type = model.ce_type()
    if ce_type in _REGISTRY and _REGISTRY[ce_type] is not model:
        raise ValueError(f"event type {ce_type} registered twice")
    _REGISTRY[ce_type] = model
    return model


def event_types(*, produced_only: bool = False) -> dict[str, type[DomainEvent]]:
    """Every registered type; with ``produced_only``, without the superseded versions nobody sends any more."""
    return {t: m for t, m in _REGISTRY.items() if not (produced_only and m.superseded)}


def model_for(ce_type: str) -> type[DomainEvent]:
    try:
        return _REGISTRY[ce_type]
    except KeyError:
        raise UnknownEventType(ce_type) from None


def decode(event: CloudEvent) -> DomainEvent:
    model = model_for(event.type)
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        raise InvalidEventData(f"{event.type}: {exc.errors(include_url=False)}") from None


def foreign_aggregate(topic: str, event: DomainEvent) -> str | None:
    """Why a network event read from ``topic`` is refused, or None: it must name the site whose topic it came on
    (the broker lets each site write only its own network topic; this stops it writing in another's name)."""
    site = getattr(event, "site", None)
    if event.scope != "network" or (isinstance(site, str) and topic == network_topic(site)):
        return None
    return f"an aggregate naming site {site!r} came on {topic}: a site publishes only its own"


@cache  # a few models and sites; asked once per event written
def topic_for(model: type[DomainEvent], site: str | None) -> str:
    if not site:
        raise ValueError(f"{model.ce_type()} is published by a site and needs its site")
    if model.scope == "network":
        return network_topic(site)
    return SITE_CHANNEL.format(site=site, service=model.producer)


def json_schemas() -> dict[str, dict[str, Any]]:
    return {ce_type: _schema(model) for ce_type, model in sorted(_REGISTRY.items())}


def _schema(model: type[DomainEvent]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization")
    schema["$id"] = f"urn:{model.ce_type()}"
    schema["description"] = model.summary or (model.__doc__ or "").strip()
    return schema


def asyncapi_document(producer: str | None = None) -> dict[str, Any]:
    """AsyncAPI 3.0 document of the channels ``producer`` sends on (all producers when None).

    A payload's nested schemas go into components.schemas and are referred to there: a "#/$defs/X" inside a
    message would resolve against the document's root, where the AsyncAPI parser finds nothing."""
    models = [m for m in _REGISTRY.values() if producer is None or m.producer == producer]
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"CloudEventHeaders": _CLOUD_EVENT_HEADERS}
    for model in sorted(models, key=lambda m: m.ce_type()):
        channel_id = "network-aggregates" if model.scope == "network" else f"{model.producer}-site"
        if channel_id not in channels:
            channels[channel_id] = _channel(model)
            operations[f"send-{channel_id}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "messages": [],
            }
        message_id = model.ce_type().replace(".", "-")
        messages[message_id] = {
            "name": model.ce_type(),
            "title": model.name,
            "summary": model.summary or (model.__doc__ or "").strip(),
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
            "payload": _component_schema(model, schemas),
            "bindings": {"kafka": {"key": {"type": "string"}, "bindingVersion": "0.5.0"}},
        }
        channels[channel_id]["messages"][message_id] = {"$ref": f"#/components/messages/{message_id}"}
        operations[f"send-{channel_id}"]["messages"].append({"$ref": f"#/channels/{channel_id}/messages/{message_id}"})
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"kapnet {producer or 'all services'} events",
            "version": "1.0.0",
            "description": "CloudEvents 1.0 in Kafka binary content mode: attributes as ce_* headers, "
            "JSON data as the value, W3C traceparent as a header.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _component_schema(model: type[DomainEvent], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        if schemas.setdefault(name, definition) != definition:
            raise ValueError(f"two event types define the schema {name} differently")
    # No $id here: a strict JSON Schema tool would resolve the payload's $refs against it, not the document.
    schema["description"] = model.summary or (model.__doc__ or "").strip()
    return schema


def _channel(model: type[DomainEvent]) -> dict[str, Any]:
    if model.scope == "network":
        return {
            "address": NETWORK_CHANNEL,
            "description": "One topic per site: every released version of each (site, cohort) aggregate, kept "
            "(not compacted) so that an auditor reads all that ever crossed. No patient-level data.",
            "parameters": {"site": {"description": "the publishing site's short name, e.g. north"}},
            "messages": {},
            "bindings": {
                "kafka": {
                    "topicConfiguration": {"cleanup.policy": ["delete"], "retention.ms": -1},
                    "bindingVersion": "0.5.0",
                }
            },
        }
    return {
        "address": SITE_CHANNEL.replace("{service}", model.producer),
        "description": f"Records of {model.producer} at one site, keyed by patient id. May carry PHI: "
        "never leaves the site.",
        "parameters": {"site": {"description": "the site's short name, e.g. north"}},
        "messages": {},
    }


_CLOUD_EVENT_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "content-type"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string"},
        "ce_source": {"type": "string"},
        "ce_type": {"type": "string"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string"},
        "content-type": {"type": "string"},
        "traceparent": {"type": "string", "description": "W3C trace context of the producing span"},
    },
}
