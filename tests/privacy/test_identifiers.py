"""The Safe Harbor scan (shared/privacy/identifiers.py): each kind of identifier is caught, by a field's name or by
its look, and what the network may carry (event ids, trace context, months, release boundaries, the FHIR and
network API documents as they are) passes."""

from __future__ import annotations

import uuid

import pytest

from services.outcomes.domain.network_view import totals, trend
from services.outcomes.fhir.measure_reports import measure_reports
from shared.privacy.identifiers import (
    IdentifierKind,
    field_kind,
    is_release_boundary,
    scan_headers,
    scan_json,
    scan_text,
)
from tests.privacy.test_audit import CLEAN, TRACEPARENT, figures

K = IdentifierKind


@pytest.mark.parametrize(
    ("field", "kind"),
    [
        ("name", K.name),
        ("familyName", K.name),
        ("address", K.geographic),
        ("zip", K.geographic),
        ("postal_code", K.geographic),
        ("birth_date", K.date),
        ("birthDate", K.date),
        ("dob", K.date),
        ("phone", K.phone),
        ("fax", K.fax),
        ("email", K.email),
        ("contact_email", K.email),
        ("ssn", K.ssn),
        ("mrn", K.medical_record_number),
        ("member_id", K.health_plan_number),
        ("account_number", K.account_number),
        ("license_number", K.license_number),
        ("vin", K.vehicle_identifier),
        ("device_id", K.device_identifier),
        ("ip_address", K.ip_address),
        ("fingerprint", K.biometric),
        ("photo", K.photograph),
        ("patient_id", K.unique_id),
        ("patientId", K.unique_id),
        ("course_id", K.unique_id),
    ],
)
def test_a_field_is_known_by_its_name(field: str, kind: IdentifierKind) -> None:
    assert field_kind(field) is kind
    value = "Q7-VALUE-42"
    [found] = [f for f in scan_json({field: value}) if f.path == f"$.{field}"]
    assert found.kind is kind
    assert value not in found.why and value not in found.excerpt


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # Fixed, not drawn: a test's id must be the same in every collection (pytest-xdist compares them).
        ("c2005981-1c82-4d67-b2a1-4a03bc8780ab", K.unique_id),
        ("5494b556cf61452d92e20c806df64dca", K.unique_id),
        ("write to jane.doe@example.com", K.email),
        ("call (555) 123-4567", K.phone),
        ("fax 555.123.4567", K.phone),
        ("+44 20 7946 0958", K.phone),
        ("SSN 123-45-6789", K.ssn),
        ("02139", K.geographic),
        ("Cambridge, MA 02139-4307", K.geographic),
        ("from 192.168.10.7", K.ip_address),
        ("via 2001:db8::8a2e:370:7334", K.ip_address),
        ("see https://social.example/people/jane", K.url),
        # Glued to a canonical prefix: the prefix is allowed, what follows it is read like any text.
        ("http://hl7.org/fhir/Patient/c2005981-1c82-4d67-b2a1-4a03bc8780ab", K.unique_id),
        ("https://kapnet.example/fhir/jane.doe@example.com", K.email),
        ("http://loinc.org/123-45-6789", K.ssn),
        ("http://www.w3.org/1999/xhtml/1987-06-05", K.date),
        ("http://hl7.org/fhir/https://social.example/people/jane", K.url),
        ("http://loinc.org.social.example/people/jane", K.url),  # a canonical host's name is not a prefix of another
        ("http://loinc.org@social.example/people/jane", K.url),  # the host is what follows the "@"
        # Decoded as a query is: what a search link echoing a request would carry.
        ("https://kapnet.example/fhir/Patient?email=jane.doe%40example.com", K.email),
        ("https://kapnet.example/fhir/Patient/c2005981%2D1c82%2D4d67%2Db2a1%2D4a03bc8780ab", K.unique_id),
        ("http://hl7.org/fhir/Patient?birthdate=1987%2D06%2D05", K.date),
        ("http://hl7.org/fhir/Patient?phone=555+123+4567", K.phone),
        # Nested past any canonical use: flagged, not read to the end.
        pytest.param("http://hl7.org/fhir/" * 1000, K.url, id="a thousand nested canonical URLs"),
        ("born 1987-06-05", K.date),
        ("seen 6/5/1987", K.date),
        ("at 2025-03-04T14:03:00Z", K.date),
        ("at 2025-03-04T00:00:00.000Z", K.date),  # a boundary is written to the second, with no fraction
        ("at 2025-03-04T00:00:00-05:00", K.date),  # midnight in New York is 05:00 UTC
        ("MRN: A-10442", K.medical_record_number),
    ],
)
def test_a_string_is_known_by_its_look(text: str, kind: IdentifierKind) -> None:
    assert kind in {f.kind for f in scan_text(text, "$")}, scan_text(text, "$")


@pytest.mark.parametrize(
    "text",
    [
        "2025-03",
        "2025-03-04T00:00:00Z",
        "2025-03-04T00:00:00+00:00",
        "north|depression|iv_infusion|2025-03|prior_trials|3+",
        "response>=50%;phq9<5;gad7<5;pcl5<33",
        "<0.5 mg/kg",
        "1-<2/week",
        "http://terminology.hl7.org/CodeSystem/measure-population",
        "https://kapnet.example/fhir/Measure/response-phq9|1",
        "http://loinc.org/44249-1",
        "http://unitsofmeasure.org",
        "(see http://unitsofmeasure.org).",
        "http://loinc.org, http://snomed.info/sct",
        '<div xmlns="http://www.w3.org/1999/xhtml">',
        "org.kapnet.outcomes.cohort_outcomes.published.v1",
        "a3f09c21b7d45e6f8a90",  # a cohort's short id (network_view.cohort_id), not a UUID
    ],
)
def test_what_the_network_may_carry_passes(text: str) -> None:
    assert scan_text(text, "$") == []


def test_release_boundaries_are_midnight_utc_to_the_second() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    assert is_release_boundary(datetime(2025, 3, 4, tzinfo=UTC))
    assert not is_release_boundary(datetime(2025, 3, 4, 0, 0, 1, tzinfo=UTC))
    assert not is_release_boundary(datetime(2025, 3, 4, tzinfo=timezone(timedelta(hours=-5))))


def test_the_event_id_and_trace_context_are_allowed_by_name() -> None:
    headers = [
        ("ce_id", str(uuid.uuid4()).encode()),
        ("traceparent", TRACEPARENT.encode()),
        ("ce_time", b"2025-03-04T00:00:00Z"),
        ("ce_type", b"org.kapnet.outcomes.cohort_outcomes.published.v1"),
        ("content-type", b"application/json"),
    ]
    assert scan_headers(headers) == []
    patient = f"patients/{uuid.uuid4()}".encode()
    found = scan_headers([*headers, ("ce_subject", patient), ("ce_time", b"2025-03-04T09:15:00Z")])
    assert {(f.path, f.kind) for f in found} == {("header ce_subject", K.unique_id), ("header ce_time", K.date)}


def test_an_epoch_time_under_a_time_field_is_held_to_the_boundary() -> None:
    assert scan_json({"released_at": 1741046400}) == []  # 2025-03-04T00:00:00Z
    [found] = scan_json({"released_at": 1741097000})
    assert found.kind is K.date


def test_a_month_as_a_fhir_period_passes_and_other_dates_do_not() -> None:
    assert scan_json({"period": {"start": "2025-03-01", "end": "2025-03-31"}}) == []
    week = scan_json({"period": {"start": "2025-03-03", "end": "2025-03-09"}})
    assert {(f.path, f.kind) for f in week} == {("$.period.start", K.date), ("$.period.end", K.date)}


def test_a_name_is_a_label_in_a_resource_that_is_not_a_person() -> None:
    assert scan_json({"resourceType": "Group", "name": "Courses for depression at site north"}) == []
    found = scan_json({"resourceType": "Patient", "name": [{"family": "Doe"}]})
    assert {(f.path, f.kind) for f in found} == {("$.name", K.name), ("$.name[0].family", K.name)}


def test_the_published_figures_and_the_network_documents_pass() -> None:
    cohorts = [*CLEAN, figures("payer", "insured", {"courses": 11})]
    for cohort in cohorts:
        assert scan_json(cohort.model_dump(mode="json")) == []
        for report in measure_reports(cohort):
            assert scan_json(report) == [], report["id"]
    assert scan_json(totals(list(CLEAN[:1])).model_dump(mode="json")) == []
    assert scan_json([p.model_dump(mode="json") for p in trend(list(CLEAN[:1]))]) == []


def test_findings_never_repeat_the_value() -> None:
    ssn = "123-45-6789"
    [found] = scan_text(f"SSN {ssn}", "$.note")
    assert ssn not in found.excerpt and found.path == "$.note"


def test_a_narrative_is_read_between_its_tags_and_a_count_in_a_cell_is_not_a_zip_code() -> None:
    div = (
        '<div xmlns="http://www.w3.org/1999/xhtml"><p>Call (555) 123-4567 or jane.doe@example.com, seen 6/5/1987.'
        "</p><table><tr><td>Initial Population</td><td>12345</td></tr></table><p>SSN 123-45-6789</p></div>"
    )
    found = scan_json({"resourceType": "MeasureReport", "text": {"div": div}})
    assert {f.kind for f in found} == {K.phone, K.email, K.date, K.ssn}, found
    assert {f.path for f in found} == {"$.text.div"}
    assert [f.kind for f in scan_text("02139", "$")] == [K.geographic]  # a ZIP code is the whole string, not a cell


def test_text_read_piece_by_piece_between_angle_brackets_finds_what_the_whole_would() -> None:
    # What makes the narrative fast (identifiers._hits) must not change what is found: no pattern matches across a
    # "<" or ">", and each look-around reads one as a string's end. Checked against the whole read at once.
    import random

    from shared.privacy import identifiers

    atoms = [
        "<td>", "</td>", "<p>", ">=", "<5", " ", "-", "/", ":", ".", "@", "+1 ", "(555) ", "123-4567", "555.123.4567",
        "MA 02139", "2025-03-04", "2025-03-04T14:03:00Z", "2025-03-04T00:00:00Z", "6/5/1987", "123-45-6789", "12:30",
        "192.168.1.7", "2001:db8::1", "jane@example.com", "https://x.example/a", "http://hl7.org/fhir/x", "www.a.org",
        "MRN: A-10442", "45-54", "12", "3368fd8fb81298222627", "0b1a2c3d4e5f60718293a4b5c6d7e8f9", "T", "Z", "abc",
    ]  # fmt: skip
    allowed = identifiers.DEFAULT_ALLOWED_URLS
    rng = random.Random(7)
    for _ in range(20_000):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(2, 8)))
        if "<" not in text and ">" not in text:
            continue
        whole = identifiers._piece_hits(text, allowed)  # the whole string as one piece
        assert sorted(identifiers._hits(text, allowed)) == sorted(whole), text
