import json
from datetime import UTC, datetime

import pytest

from shared.events.envelope import CloudEvent, EnvelopeError, from_kafka, to_kafka


def test_binary_mode_round_trip_keeps_every_attribute() -> None:
    event = CloudEvent(
        type="org.kapnet.intake.patient.registered.v1",
        source="/kapnet/north/intake",
        subject="patients/1",
        data={"patient_id": "1", "n": 2},
        time=datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
        extensions={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )
    headers, value = to_kafka(event)
    names = dict(headers)
    assert names["ce_specversion"] == b"1.0"
    assert names["ce_type"] == b"org.kapnet.intake.patient.registered.v1"
    assert names["ce_time"] == b"2026-11-27T10:00:00Z"
    assert names["content-type"] == b"application/json"
    assert json.loads(value) == {"patient_id": "1", "n": 2}
    assert from_kafka(headers, value) == event


def test_structured_mode_is_read_too() -> None:
    body = {"specversion": "1.0", "id": "e1", "source": "/x", "type": "t", "data": {"a": 1}}
    event = from_kafka([("content-type", b"application/cloudevents+json")], json.dumps(body).encode())
    assert (event.id, event.type, event.data) == ("e1", "t", {"a": 1})


@pytest.mark.parametrize(
    ("headers", "value", "complaint"),
    [
        ([], b"{}", "missing CloudEvents headers"),
        ([("ce_specversion", b"0.3"), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"t")], b"{}", "specversion"),
        ([("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"t")], b"not json", "JSON"),
        ([("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"t")], b"[1]", "object"),
        ([("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"t")], None, "no value"),
    ],
)
def test_unreadable_records_are_poison(headers: list[tuple[str, bytes]], value: bytes | None, complaint: str) -> None:
    with pytest.raises(EnvelopeError, match=complaint):
        from_kafka(headers, value)
