"""The privacy audit (shared/privacy/audit.py): known-bad inputs are each found, a clean one passes; and the
command line reads a real broker's network topics."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import get_args

import pytest
from aiokafka import AIOKafkaProducer

from services.outcomes.domain.network_view import totals
from services.outcomes.fhir.measure_reports import measure_reports
from shared.bus.kafka import TopicSpec, ensure_topics
from shared.events.billing import AccessBarrierReason
from shared.events.envelope import CloudEvent, kafka_timestamp_ms, to_kafka
from shared.events.outcomes import (
    AdverseEventFigures,
    AggregateCell,
    BarrierFigures,
    CohortAggregatePublished,
    CohortOutcomesPublished,
    InstrumentFigures,
    ReleasedCount,
)
from shared.events.registry import DomainEvent, network_topic
from shared.fhir import searchset
from shared.privacy.__main__ import main
from shared.privacy.audit import (
    ApiReply,
    FindingKind,
    NetworkRecord,
    audit_records,
    read_network_records,
    shown_from_json,
)
from shared.privacy.cells import cells_of
from shared.privacy.identifiers import DEFAULT_ALLOWED_URLS
from shared.privacy.inference import shown_version
from shared.treatment import AdverseEventType, Indication, Route
from tests.shared.test_unreadable_records import NameAsBytes, header_names_written_as_given

BOUNDARY = datetime(2025, 3, 4, tzinfo=UTC)
NEXT_DAY = datetime(2025, 3, 5, tzinfo=UTC)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
INSTRUMENTS = ("phq9", "gad7", "pcl5")
Counts = Mapping[str, int | None]


def figures(
    cut: str = "all",
    value: str = "all",
    counts: Counts | None = None,
    *,
    site: str = "north",
    at: datetime = BOUNDARY,
) -> CohortOutcomesPublished:
    """A cohort as a site would publish it: the counts given (None: suppressed), every other count 0."""
    given = counts or {}

    def released(measure: str) -> ReleasedCount:
        n = given.get(measure, 0)
        return ReleasedCount(suppressed=True) if n is None else ReleasedCount(count=n)

    return CohortOutcomesPublished(
        site=site,
        indication=Indication.depression,
        route=Route.iv_infusion,
        period="2025-03",
        cut=cut,
        cut_value=value,
        definition="response>=50%;phq9<5;gad7<5;pcl5<33",
        courses=released("courses"),
        started=released("started"),
        completed=released("completed"),
        dropped_out=released("dropped_out"),
        instruments=[
            InstrumentFigures(
                instrument=i,
                with_result=released(f"{i}.with_result"),
                responded=released(f"{i}.responded"),
                remitted=released(f"{i}.remitted"),
            )
            for i in INSTRUMENTS
        ],
        adverse_events=[
            AdverseEventFigures(
                type=t,
                courses=released(f"adverse.{t.value}.courses"),
                serious_courses=released(f"adverse.{t.value}.serious"),
            )
            for t in AdverseEventType
        ],
        barriers=[
            BarrierFigures(reason=r, courses=released(f"barrier.{r}.courses")) for r in get_args(AccessBarrierReason)
        ],
        generated_at=at,
    )


def record(
    event: DomainEvent,
    offset: int,
    *,
    patch: Callable[[dict[str, object]], None] | None = None,
    time: datetime | None = None,
) -> NetworkRecord:
    """A network topic's record of the event, as the outbox relay writes it (Kafka timestamp = ce_time)."""
    data = json.loads(event.model_dump_json())
    if patch is not None:
        patch(data)
    envelope = CloudEvent(
        type=type(event).ce_type(),
        source="/kapnet/north/outcomes",
        data=data,
        time=time or event.envelope_time() or BOUNDARY,
        dataschema=f"urn:{type(event).ce_type()}",
        extensions={"traceparent": TRACEPARENT},
    )
    headers, value = to_kafka(envelope)
    stamp = kafka_timestamp_ms((name, raw.decode()) for name, raw in headers)
    return NetworkRecord(
        network_topic("north"), 0, offset, stamp, event.partition_key().encode(), value, tuple(headers)
    )


def records(*events: DomainEvent) -> list[NetworkRecord]:
    return [record(e, n) for n, e in enumerate(events)]


# A clean release: the prior-trials cut hides two cells, so neither is had by subtraction.
CLEAN = (
    figures(counts={"courses": 42, "started": 30}),
    figures("prior_trials", "0", {"courses": 25, "started": 18}),
    figures("prior_trials", "1", {"courses": None, "started": None}),
    figures("prior_trials", "2", {"courses": None, "started": None}),
)


def kinds(findings: object) -> set[FindingKind]:
    assert isinstance(findings, tuple)
    return {f.kind for f in findings}


def test_a_clean_release_passes() -> None:
    report = audit_records(records(*CLEAN))
    assert report.clean, report.render()
    assert (report.records, report.versions) == (4, 1)
    assert report.suppressed == 4 and report.cells > 0
    assert "CLEAN" in report.render()


def test_a_shown_count_from_1_to_10_is_found() -> None:
    def three(data: dict[str, object]) -> None:
        data["courses"] = {"count": 3, "suppressed": False}

    bad = [*records(*CLEAN[:3]), record(CLEAN[3], 3, patch=three)]
    report = audit_records(bad)
    [found] = [f for f in report.findings if f.kind is FindingKind.small_count]
    assert (found.where, found.path) == (bad[3].where, "$.courses.count")
    assert "FAILED" in report.render()


def test_a_patient_id_is_found() -> None:
    def patient(data: dict[str, object]) -> None:
        data["patient_id"] = str(uuid.uuid4())

    report = audit_records([*records(*CLEAN[1:]), record(CLEAN[0], 3, patch=patient)])
    paths = {f.path for f in report.findings if f.kind is FindingKind.identifier}
    assert "$.patient_id" in paths, report.render()


def test_a_time_that_is_not_a_release_boundary_is_found_everywhere_it_shows() -> None:
    at = datetime(2025, 3, 4, 14, 3, tzinfo=UTC)
    late = figures(counts={"courses": 42, "started": 30}, at=at)
    report = audit_records([record(late, 0), *[record(f, n + 1) for n, f in enumerate(CLEAN[1:])]])
    paths = {f.path for f in report.findings if f.kind is FindingKind.identifier}
    assert {"$.generated_at", "header ce_time", "timestamp"} <= paths, report.render()


def test_a_leak_by_subtraction_across_cuts_is_found() -> None:
    leaky = (
        figures(counts={"courses": 42}),
        figures("prior_trials", "0", {"courses": 25}),
        figures("prior_trials", "1", {"courses": None}),
        figures("prior_trials", "2", {"courses": 14}),
    )
    report = audit_records(records(*leaky))
    [leak] = [f for f in report.findings if f.kind is FindingKind.leak]
    assert leak.cell is not None and (leak.cell.cut_value, leak.cell.measure) == ("1", "courses")
    assert (leak.low, leak.high, leak.version) == (3, 3, 0)
    assert "3..3" in report.render()


def test_a_leak_across_releases_is_found() -> None:
    # Started was shown as 25 the day before; hidden now beside 33 courses, it is 25..33.
    first = figures(counts={"courses": 30, "started": 25})
    second = figures(counts={"courses": 33, "started": None}, at=NEXT_DAY)
    report = audit_records(records(first, second))
    assert report.versions == 2
    [leak] = [f for f in report.findings if f.kind is FindingKind.leak]
    assert (leak.low, leak.high, leak.version) == (25, 33, 1)


def test_two_releases_under_one_stamp_are_told_apart_by_a_repeated_cohort() -> None:
    first = figures(counts={"courses": 30, "started": 25})
    second = figures(counts={"courses": 33, "started": None})
    report = audit_records(records(first, second))
    assert report.versions == 2
    assert FindingKind.leak in kinds(report.findings)


def test_releases_that_share_a_stamp_are_told_apart_by_their_number() -> None:
    # Development's beat: every release of a day carries the day's boundary. The second release hides an age
    # band and the whole cohort's courses; without its number, its first record would be read as part of the
    # first release (no cohort repeats yet), beside a whole cohort of 0: a hidden cell pinned to 0..0.
    first = figures(counts={"courses": 0})
    second = [
        figures("age_band", "45-54", {"courses": None}).model_copy(update={"release": 2}),
        figures(counts={"courses": None}).model_copy(update={"release": 2}),
    ]
    report = audit_records(records(first, *second))
    assert report.clean and report.versions == 2, report.render()
    unnumbered = [f.model_copy(update={"release": 1}) for f in second]
    assert FindingKind.leak in kinds(audit_records(records(first, *unnumbered)).findings)


def test_partitions_are_read_in_the_order_of_their_releases() -> None:
    # One group's cuts on two partitions, two days. Read one partition after the other, the second day's 45
    # courses would sit beside the first day's prior-trials cut (30 + 0 + 0): a contradiction that is not there.
    day_one = [
        figures(counts={"courses": 30}),
        *(figures("prior_trials", v, {"courses": n}) for v, n in (("0", 30), ("1", 0), ("2", 0))),
    ]
    day_two = [
        figures(counts={"courses": 45}, at=NEXT_DAY),
        figures("prior_trials", "0", {"courses": 45}, at=NEXT_DAY),
    ]
    first = [record(day_one[0], 0), record(day_two[0], 1)]
    second = [record(f, n) for n, f in enumerate([*day_one[1:], day_two[1]])]
    on_two = [*first, *(dataclasses.replace(r, partition=1) for r in second)]
    report = audit_records(on_two)
    assert report.clean and report.versions == 2, report.render()


def test_figures_that_break_the_release_rules_are_reported() -> None:
    first = figures(counts={"courses": 30, "started": 25})
    second = figures(counts={"courses": 30, "started": 12}, at=NEXT_DAY)  # started never falls
    report = audit_records(records(first, second))
    assert FindingKind.contradiction in kinds(report.findings), report.render()


def test_the_older_registrations_aggregate_is_audited_too() -> None:
    aggregate = CohortAggregatePublished(
        site="north",
        cohort="registrations",
        measure="patients_registered",
        cells=[AggregateCell(period="2025-01", count=30), AggregateCell(period="2025-02", count=4)],
        total=AggregateCell(period="all", suppressed=True),
        generated_at=BOUNDARY,
    )
    report = audit_records(records(aggregate))
    assert [f.path for f in report.findings if f.kind is FindingKind.small_count] == ["$.cells[1].count"]


def test_an_unreadable_record_is_a_finding() -> None:
    broken = NetworkRecord(network_topic("north"), 0, 0, 0, None, b"not json", ())
    assert kinds(audit_records([broken]).findings) == {FindingKind.unreadable}
    nested = NetworkRecord(network_topic("north"), 0, 1, 0, None, b"[" * 100_000, ())  # deeper than the parser goes
    assert kinds(audit_records([nested]).findings) == {FindingKind.unreadable}


def test_records_that_crashed_the_audit_are_findings() -> None:
    """An integer past Python's 4,300 digits (a ValueError, not a JSONDecodeError) and a time the datetime range
    cannot hold in UTC (an OverflowError from astimezone, in a value or a header) raised out of the audit, which
    then failed for good on every run: the records are kept for ever."""
    huge = NetworkRecord(network_topic("north"), 0, 0, 0, None, b'{"n":' + b"1" * 5000 + b"}", ())
    assert kinds(audit_records([huge]).findings) == {FindingKind.unreadable}
    edge = "9999-12-31T23:59:59-23:59"  # after 9999-12-31 in UTC
    late = NetworkRecord(network_topic("north"), 0, 1, 0, None, json.dumps({"at": edge}).encode(), (("x", b"1"),))
    dated = NetworkRecord(network_topic("north"), 0, 2, 0, None, b"{}", (("x-when", edge.encode()),))
    for weird in (late, dated):
        assert FindingKind.identifier in kinds(audit_records([weird]).findings)


@pytest.mark.parametrize("count", [10**30, -(10**30), 10**400])
def test_a_count_past_any_cohort_is_a_finding_not_a_crash(count: int) -> None:
    """A shown count too large for the solver (HiGHS refused 10**30 with a RuntimeError; 10**400 is past a float,
    an OverflowError) stopped every audit after the record, which the network topics keep for ever."""

    def huge(data: dict[str, object]) -> None:
        data["courses"] = {"count": count, "suppressed": False}

    report = audit_records([record(CLEAN[0], 0, patch=huge), *[record(f, n + 1) for n, f in enumerate(CLEAN[1:])]])
    assert FindingKind.unreadable in kinds(report.findings)


def test_the_audit_reads_cells_as_the_model_does() -> None:
    for cohort in CLEAN:
        key, cells = shown_from_json(json.loads(cohort.model_dump_json()))
        assert key == cohort.cohort_key
        assert cells == shown_version(cells_of(cohort))


def test_api_replies_are_scanned() -> None:
    network = "http://127.0.0.1:8080"
    summed = totals(list(CLEAN[:1])).model_dump(mode="json")
    reports = [r for cohort in CLEAN for r in measure_reports(cohort)]
    bundle = searchset(reports, base=f"{network}/fhir", self_url=f"{network}/fhir/MeasureReport?site=north")
    clean = audit_records(
        [],
        [ApiReply("GET /cohort-outcomes/totals", summed), ApiReply("GET /fhir/MeasureReport?site=north", bundle)],
        allowed_urls=(*DEFAULT_ALLOWED_URLS, network),
    )
    assert clean.clean, clean.render()
    summed["courses"]["sum_of_shown"] = 4
    bad = audit_records([], [ApiReply("GET /cohort-outcomes/totals", summed)])
    assert [f.path for f in bad.findings] == ["$.courses.sum_of_shown"]


# --- a real broker -------------------------------------------------------------------------------------------------


@pytest.mark.broker
async def test_the_command_line_reads_every_version_on_the_network_topics(kafka: str) -> None:
    site = f"audit{uuid.uuid4().hex[:6]}"
    topic = network_topic(site)
    # Kept for ever, as the network topics are: the records are stamped with days long past.
    await ensure_topics(kafka, [TopicSpec(topic, partitions=1, config={"retention.ms": "-1"})], 10)
    leaky = (
        figures(counts={"courses": 42}, site=site),
        figures("prior_trials", "0", {"courses": 25}, site=site),
        figures("prior_trials", "1", {"courses": None}, site=site),
        figures("prior_trials", "2", {"courses": None}, site=site),
        # The next day's release shows the cohort again, its third value too, and keeps the second hidden.
        figures(counts={"courses": 50}, site=site, at=NEXT_DAY),
        figures("prior_trials", "0", {"courses": 30}, site=site, at=NEXT_DAY),
        figures("prior_trials", "2", {"courses": 17}, site=site, at=NEXT_DAY),
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=True)
    await producer.start()
    try:
        for event in leaky:
            made = record(event, 0)
            await producer.send_and_wait(
                topic, made.value, key=made.key, headers=list(made.headers), timestamp_ms=made.timestamp_ms
            )
    finally:
        await producer.stop()

    read = await read_network_records(kafka, [site], timeout_seconds=30)
    assert [r.offset for r in read] == list(range(len(leaky)))
    report = audit_records(read)
    assert report.versions == 2
    leaks = [f for f in report.findings if f.kind is FindingKind.leak]
    assert [(f.version, f.low, f.high) for f in leaks] == [(1, 3, 3)], report.render()

    code = await asyncio.to_thread(main, ["audit", "--bootstrap-servers", kafka, "--sites", site, "--workers", "1"])
    assert code == 1
    missing = await asyncio.to_thread(main, ["audit", "--bootstrap-servers", kafka, "--sites", "nosuchsite"])
    assert missing == 2


@pytest.mark.broker
async def test_a_header_without_a_value_does_not_stop_the_reader(kafka: str) -> None:
    """Kafka allows a header with a null value; bytes(None) raised TypeError out of read_network_records, and the
    audit failed for good on the record. It counts as absent, as in the consumer."""
    site = f"audit{uuid.uuid4().hex[:6]}"
    topic = network_topic(site)
    await ensure_topics(kafka, [TopicSpec(topic, partitions=1, config={"retention.ms": "-1"})], 10)
    made = record(figures(counts={"courses": 42}, site=site), 0)
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=True)
    await producer.start()
    try:
        headers = [*made.headers, ("x-empty", None)]
        await producer.send_and_wait(topic, made.value, key=made.key, headers=headers, timestamp_ms=made.timestamp_ms)
    finally:
        await producer.stop()
    [read] = await read_network_records(kafka, [site], timeout_seconds=30)
    assert read.headers == made.headers
    assert audit_records([read]).clean


@pytest.mark.broker
async def test_a_record_the_client_cannot_parse_is_a_finding_and_the_audit_goes_on(kafka: str) -> None:
    """A header name that is not UTF-8: aiokafka raised while it parsed the fetch, on every audit, since the topics
    keep every record. The record is an unreadable finding, named by offset, and the records after it are read."""
    site = f"audit{uuid.uuid4().hex[:6]}"
    topic = network_topic(site)
    await ensure_topics(kafka, [TopicSpec(topic, partitions=1, config={"retention.ms": "-1"})], 10)
    made = record(figures(counts={"courses": 42}, site=site), 0)
    with header_names_written_as_given():
        producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=True)
        await producer.start()
        try:
            for headers in (list(made.headers), [*made.headers, (NameAsBytes("x"), b"1")], list(made.headers)):
                await producer.send_and_wait(
                    topic, made.value, key=made.key, headers=headers, timestamp_ms=made.timestamp_ms
                )
        finally:
            await producer.stop()
    read = await read_network_records(kafka, [site], timeout_seconds=30)
    assert [(r.offset, r.unparsed is None) for r in read] == [(0, True), (1, False), (2, True)]
    [finding] = audit_records(read).findings
    assert finding.kind is FindingKind.unreadable and finding.where == f"{topic}[0]@1"
    assert "offsets 1 to 1 cannot be parsed: UnicodeDecodeError" in finding.detail
