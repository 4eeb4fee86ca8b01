import json
import uuid
from datetime import UTC, datetime

import pytest

from shared.events.envelope import CloudEvent, EnvelopeError, from_kafka, new_event_id, to_kafka


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


READABLE = [("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"t")]


def test_deeply_nested_data_is_poison_not_a_crash() -> None:
    """A record of nested brackets overflowed the standard library's parser with a RecursionError, which stopped
    the consumer on that record for good; it must be an EnvelopeError, which dead-letters it."""
    with pytest.raises(EnvelopeError, match="JSON"):
        from_kafka(READABLE, b"[" * 100_000)
    with pytest.raises(EnvelopeError, match="JSON"):
        from_kafka(READABLE, b'{"a":' * 100_000)


def test_a_header_without_a_value_counts_as_absent() -> None:
    """Kafka allows a header with a null value; reading it must not crash the consumer either."""
    assert from_kafka([*READABLE, ("traceparent", None)], b"{}").extensions == {}
    with pytest.raises(EnvelopeError, match="ce_id"):
        from_kafka([READABLE[0], ("ce_id", None), *READABLE[2:]], b"{}")


@pytest.mark.parametrize(
    ("value", "data"),
    [
        (
            b'{"a":1,"b":[1.5,-0.0,1e400,null,true],"c":"\\u00e9"}',
            {"a": 1, "b": [1.5, -0.0, float("inf"), None, True], "c": "é"},
        ),
        (b'{"n":123456789012345678901234567890}', {"n": 123456789012345678901234567890}),
        (b'{"a":1,"a":2}', {"a": 2}),
        # Documents the faster parser refuses and the standard library reads, read as before:
        (b'\xef\xbb\xbf{"a":1}', {"a": 1}),
        (b'{"s":"\\ud800"}', {"s": "\ud800"}),
        (b'{"a":' * 300 + b"1" + b"}" * 300, json.loads(b'{"a":' * 300 + b"1" + b"}" * 300)),
    ],
)
def test_data_is_read_as_the_standard_library_reads_it(value: bytes, data: dict[str, object]) -> None:
    assert from_kafka(READABLE, value).data == data


def test_a_new_event_id_is_a_random_uuid_as_uuid4_writes_it() -> None:
    ids = [new_event_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:1000]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text  # lower-case hex in 8-4-4-4-12 groups
    # Every bit but the six fixed ones varies: a stuck bit would show as a column of one value.
    ints = [uuid.UUID(text).int for text in ids]
    fixed = {bit for bit in range(128) if len({(n >> bit) & 1 for n in ints}) == 1}
    assert fixed == {76, 77, 78, 79, 62, 63}


STRUCTURED = [("content-type", b"application/cloudevents+json")]


@pytest.mark.parametrize(
    ("headers", "value"),
    [
        # An integer longer than Python converts (4,300 digits): a ValueError from both parsers, not a JSONDecodeError.
        (READABLE, b'{"n":' + b"1" * 5000 + b"}"),
        (READABLE, b'\xef\xbb\xbf{"n":' + b"1" * 5000 + b"}"),
        (STRUCTURED, b'{"id":' + b"1" * 5000 + b',"source":"s","type":"t"}'),
        # A structured event's attributes of the wrong JSON type: an int or a list has no ``replace``.
        (STRUCTURED, b'{"id":"1","source":"s","type":"t","time":5}'),
        (STRUCTURED, b'{"id":null,"source":"s","type":"t"}'),
        (STRUCTURED, b'{"id":"1","source":"s","type":"t","time":["2026-01-01"]}'),
    ],
)
def test_data_of_the_wrong_shape_is_poison_not_a_crash(headers: list[tuple[str, bytes]], value: bytes) -> None:
    """Each of these raised something other than an EnvelopeError (ValueError, AttributeError), which the consumer
    does not dead-letter: it restarted into the same record for good."""
    with pytest.raises(EnvelopeError):
        from_kafka(headers, value)
