"""Event envelope and registry. Importing this package registers every event type."""

from shared.events import billing, intake, outcomes, sessions
from shared.events.envelope import CloudEvent, EnvelopeError, from_kafka, to_kafka
from shared.events.registry import (
    NETWORK_TOPIC_PREFIX,
    DomainEvent,
    InvalidEventData,
    UnknownEventType,
    asyncapi_document,
    decode,
    event_types,
    json_schemas,
    model_for,
    network_topic,
    registered,
    topic_for,
)

__all__ = [
    "NETWORK_TOPIC_PREFIX",
    "CloudEvent",
    "DomainEvent",
    "EnvelopeError",
    "InvalidEventData",
    "UnknownEventType",
    "asyncapi_document",
    "billing",
    "decode",
    "event_types",
    "from_kafka",
    "intake",
    "json_schemas",
    "model_for",
    "network_topic",
    "outcomes",
    "registered",
    "sessions",
    "to_kafka",
    "topic_for",
]
