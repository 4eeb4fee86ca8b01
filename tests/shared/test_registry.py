import uuid
from datetime import UTC, date, datetime

import pytest

from shared.events import (
    CloudEvent,
    InvalidEventData,
    UnknownEventType,
    asyncapi_document,
    decode,
    event_types,
    json_schemas,
    topic_for,
)
from shared.events.intake import PatientRegistered
from shared.events.outcomes import CohortAggregatePublished


def test_every_event_type_is_versioned_and_has_a_schema() -> None:
    schemas = json_schemas()
    assert set(schemas) == set(event_types())
    for ce_type, schema in schemas.items():
        assert ce_type.startswith("org.kapnet.") and ce_type.rsplit(".", 1)[1].startswith("v")
        assert schema["type"] == "object" and schema["properties"]


def test_topics_follow_the_design() -> None:
    assert topic_for(PatientRegistered, "north") == "kapnet.north.intake.v1"
    # One network topic per site, so the broker can let each site write its own and no other.
    assert topic_for(CohortAggregatePublished, "north") == "kapnet.network.north.aggregates.v1"
    for model in (PatientRegistered, CohortAggregatePublished):
        with pytest.raises(ValueError):
            topic_for(model, None)


def test_decode_tolerates_unknown_fields_and_rejects_bad_data() -> None:
    data = {
        "patient_id": str(uuid.uuid4()),
        "site": "north",
        "mrn": "N-1",
        "birth_date": "1980-01-02",
        "sex": "female",
        "registered_at": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
        "added_in_a_later_release": True,
    }
    event = decode(CloudEvent(type=PatientRegistered.ce_type(), source="/s", data=data))
    assert isinstance(event, PatientRegistered) and event.birth_date == date(1980, 1, 2)
    with pytest.raises(InvalidEventData):
        decode(CloudEvent(type=PatientRegistered.ce_type(), source="/s", data={"site": "north"}))
    with pytest.raises(UnknownEventType):
        decode(CloudEvent(type="org.kapnet.nobody.nothing.v1", source="/s", data={}))


def test_asyncapi_document_describes_each_producers_channel() -> None:
    document = asyncapi_document("intake")
    assert document["asyncapi"] == "3.0.0"
    assert document["channels"]["intake-site"]["address"] == "kapnet.{site}.intake.v1"
    messages = document["components"]["messages"]
    intake_types = {t for t in event_types() if t.startswith("org.kapnet.intake.")}
    assert {m["name"] for m in messages.values()} == intake_types
    assert PatientRegistered.ce_type() in intake_types
    network = asyncapi_document("outcomes")["channels"]["network-aggregates"]
    assert network["address"] == "kapnet.network.{site}.aggregates.v1"
    # Every release kept: the auditor reads every version that ever crossed.
    assert network["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"] == ["delete"]


def test_assessment_recorded_v1_is_still_read_and_upgrades_to_v2() -> None:
    """v2 spells the PHQ-9 severity in snake_case; what v1 put on a topic is still decoded, and reads as v2."""
    from shared.events.intake import AssessmentRecorded, AssessmentRecordedV1
    from shared.events.registry import decode
    from shared.instruments.scoring import Severity

    data = {
        "patient_id": "6f1c0d1e-6a4e-4a53-9a53-2b1f1d2c3e4f",
        "assessment_id": "7f1c0d1e-6a4e-4a53-9a53-2b1f1d2c3e4f",
        "instrument": "phq9",
        "instrument_version": "PHQ-9",
        "total": 17,
        "severity": "moderately severe",
        "context": "baseline",
        "administered_at": "2026-03-04T10:00:00Z",
    }
    old = decode(CloudEvent(type="org.kapnet.intake.assessment.recorded.v1", source="/t", data=data))
    assert isinstance(old, AssessmentRecordedV1)
    current = old.upgraded()
    assert isinstance(current, AssessmentRecorded) and current.severity is Severity.moderately_severe
    assert AssessmentRecorded.ce_type() == "org.kapnet.intake.assessment.recorded.v2"
    schema = json_schemas()[AssessmentRecorded.ce_type()]
    assert "moderately_severe" in str(schema) and "moderately severe" not in str(schema)
