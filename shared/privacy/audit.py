"""The privacy audit of everything that crossed to the network, as a reader who kept all of it would see it.

It reads every record of every site's network topic from the first offset to the end (every version, not only the
latest), and optionally the network API's replies, and fails on:

- a Safe Harbor identifier, a patient or record id, or an exact date or time (identifiers.py): in a payload, a
  header, a key, or a Kafka record timestamp that is not a release boundary;
- a shown count from 1 to 10, in an event or an API reply;
- a leak: a suppressed cell that linear programming over every version of every cut of every site pins to fewer
  than 11 values (inference.py);
- figures that no true values can explain under the release rules (then nothing is concluded about them).

``audit_records`` is the whole judgement and needs no broker; ``read_network_records`` and ``fetch_api_replies``
only fetch.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shared.events.outcomes import CohortAggregatePublished, ReleasedCount
from shared.events.registry import network_topic
from shared.privacy.cells import ALL, CellId, cells_of_aggregate
from shared.privacy.identifiers import (
    DEFAULT_ALLOWED_URLS,
    JsonPlace,
    json_path,
    may_identify,
    scan_headers,
    scan_json,
    scan_text,
)
from shared.privacy.inference import SMALLEST_SHOWN, Shown, SumBound, infer_shown, shown_version

if TYPE_CHECKING:
    import httpx  # the pure audit needs no HTTP client

DAY_MS = 86_400_000
COHORT_OUTCOMES_TYPE = "org.kapnet.outcomes.cohort_outcomes.published.v1"
COHORT_AGGREGATE_TYPE = "org.kapnet.outcomes.cohort_aggregate.published.v1"
# JSON fields that carry a count of courses or patients (ReleasedCount and AggregateCell's ``count``, a network
# total's ``sum_of_shown``, a FHIR MeasureReport population's ``count``).
COUNT_FIELDS = frozenset({"count", "sum_of_shown"})
# No cohort counts more courses than this, and the solver reads counts as floats exact up to 2**53 (HiGHS refused
# 10**30 and -10**30; 10**400 is past a float): a larger one either way is unreadable, not a crash of every audit
# after its record.
LARGEST_COUNT = 2**53


def kafka_client_options(sites: Sequence[str]) -> dict[str, object]:
    """The aiokafka options that authenticate the auditor: from the settings (KAPNET_KAFKA_SECURITY_PROTOCOL,
    KAPNET_KAFKA_SASL_USERNAME, ...), as a reader on the network side of the boundary (the ``network-auditor``
    principal reads the network topics and nothing else)."""
    from shared.bus.kafka import KafkaAccess
    from shared.settings import ServiceSettings

    reader = ServiceSettings(service="outcomes", role="network", network_sites=list(sites))
    return KafkaAccess.from_settings(reader).security_kwargs()


@dataclass(frozen=True, slots=True)
class NetworkRecord:
    """One Kafka record of a network topic, as read."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    # Not read: the Kafka client could not parse the record (shared/bus/unreadable.py); why, and up to which offset.
    unparsed: str | None = None

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True, slots=True)
class ApiReply:
    """One reply of the network API: what was asked, and the JSON it answered."""

    request: str  # "GET /cohort-outcomes/totals?cut=payer&cut_value=insured"
    body: object


class FindingKind(StrEnum):
    identifier = "identifier"
    small_count = "small_count"
    leak = "leak"
    contradiction = "contradiction"
    unreadable = "unreadable"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    where: str  # a record (topic[partition]@offset), an API request, or a version of the topics
    path: str  # within it: a JSON path, a header, "timestamp"; or the cell
    detail: str
    cell: CellId | None = None
    version: int | None = None
    low: int | None = None
    high: int | None = None

    def __str__(self) -> str:
        return f"{self.kind.value:<13} {self.where} {self.path}: {self.detail}"


@dataclass(frozen=True, slots=True)
class AuditReport:
    records: int
    api_replies: int
    versions: int
    cells: int  # cell-versions the reader holds
    suppressed: int
    components: int
    lp_solves: int
    seconds: float
    findings: tuple[Finding, ...]

    @property
    def clean(self) -> bool:
        return not self.findings

    def render(self, limit: int = 200) -> str:
        lines = [
            "kapnet privacy audit",
            f"  records read   {self.records}",
            f"  API replies    {self.api_replies}",
            f"  versions       {self.versions}",
            f"  cells          {self.cells} (cell-versions)",
            f"  suppressed     {self.suppressed}",
            f"  components     {self.components}",
            f"  LP solves      {self.lp_solves}",
            f"  seconds        {self.seconds:.2f}",
            f"  findings       {len(self.findings)}",
        ]
        counts: dict[FindingKind, int] = defaultdict(int)
        for finding in self.findings:
            counts[finding.kind] += 1
        lines += [f"    {kind.value}: {n}" for kind, n in sorted(counts.items())]
        lines += [f"  {finding}" for finding in self.findings[:limit]]
        if len(self.findings) > limit:
            lines.append(f"  ... and {len(self.findings) - limit} more")
        lines.append("CLEAN" if self.clean else "FAILED")
        return "\n".join(lines)


# --- reading one record -----------------------------------------------------------------------------------------


# A shown count from 1 to 10 in raw JSON: when a record has none (nearly always), its tree need not be walked.
_SMALL_IN_RAW = re.compile(rb'"(?:count|sum_of_shown)"\s*:\s*(?:[1-9]|10)\s*[,}\]]')


def small_counts(value: object, path: str = "$") -> list[tuple[str, int]]:
    """Every count from 1 to 10 a JSON value shows, with its path."""
    found: list[tuple[str, int]] = []
    stack: list[tuple[object, JsonPlace]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            for key, v in item.items():
                if isinstance(v, dict | list):
                    stack.append((v, (where, key)))
                elif key in COUNT_FIELDS and isinstance(v, int) and not isinstance(v, bool) and 0 < v < SMALLEST_SHOWN:
                    found.append((json_path((where, key)), v))
        elif isinstance(item, list):
            stack.extend((v, (where, i)) for i, v in enumerate(item) if isinstance(v, dict | list))
    return found


def _text(data: Mapping[str, object], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"no {key}")
    return value


def _listed(data: Mapping[str, object], key: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{key} is not a list of objects")
    return value


def shown_from_json(data: Mapping[str, object]) -> tuple[str, dict[CellId, Shown]]:
    """The cohort's key and its cells as a reader sees them (shown count, or None) of a CohortOutcomesPublished as
    sent: ``cells_of`` without the model's validation, which would refuse the very counts the audit looks for.
    Raises ValueError if it is not one."""
    site, indication, route = _text(data, "site"), _text(data, "indication"), _text(data, "route")
    period, cut, cut_value = _text(data, "period"), _text(data, "cut"), _text(data, "cut_value")
    found: dict[CellId, Shown] = {}

    def put(measure: str, value: object) -> None:
        found[CellId(site, indication, route, period, cut, cut_value, measure)] = _count_of(value, measure)

    for measure in ("courses", "started", "completed", "dropped_out"):
        put(measure, data.get(measure))
    for instrument in _listed(data, "instruments"):
        name = str(instrument.get("instrument"))
        for measure in ("with_result", "responded", "remitted"):
            put(f"{name}.{measure}", instrument.get(measure))
    for adverse in _listed(data, "adverse_events"):
        put(f"adverse.{adverse.get('type')}.courses", adverse.get("courses"))
        put(f"adverse.{adverse.get('type')}.serious", adverse.get("serious_courses"))
    for barrier in _listed(data, "barriers"):
        put(f"barrier.{barrier.get('reason')}.courses", barrier.get("courses"))
    return "|".join((site, indication, route, period, cut, cut_value)), found


def _count_of(value: object, measure: str) -> Shown:
    if not isinstance(value, dict):
        raise ValueError(f"{measure} is not a count")
    count = value.get("count")
    if count is None or value.get("suppressed"):
        return None
    if not isinstance(count, int) or isinstance(count, bool):
        raise ValueError(f"{measure} is not a count")
    return count


def aggregate_cells_from_json(data: Mapping[str, object]) -> tuple[str, dict[CellId, ReleasedCount]]:
    """The key and cells of a CohortAggregatePublished as sent."""
    # AggregateCell does not refuse a shown 1-10, so the model reads what was sent.
    figures = CohortAggregatePublished.model_validate(data)
    return f"{figures.site}|{figures.cohort}", cells_of_aggregate(figures)


@dataclass(slots=True)
class _Read:
    record: NetworkRecord
    stamp: str
    release: int  # which release of its stamp's period (the event's ``release``)
    key: str
    cells: dict[CellId, Shown]


def _judge_record(record: NetworkRecord, allowed_urls: Collection[str], findings: list[Finding]) -> _Read | None:
    where = record.where
    if record.unparsed is not None:
        findings.append(Finding(FindingKind.unreadable, where, "record", record.unparsed))
        return None
    findings.extend(
        Finding(FindingKind.identifier, where, f.path, f"{f.kind.value}: {f.why} ({f.excerpt})")
        for f in scan_headers(record.headers, allowed_urls)
    )
    if record.key is not None:
        findings.extend(
            Finding(FindingKind.identifier, where, "key", f"{f.kind.value}: {f.why} ({f.excerpt})")
            for f in scan_text(record.key.decode("utf-8", errors="replace"), "key", allowed_urls)
        )
    if record.timestamp_ms is not None and record.timestamp_ms % DAY_MS != 0:
        findings.append(
            Finding(FindingKind.identifier, where, "timestamp", "date: a record time that is not midnight UTC")
        )
    try:
        data = json.loads(record.value) if record.value is not None else None
    # RecursionError: deeply nested brackets; ValueError beyond the decode errors: an integer past 4,300 digits.
    except (ValueError, RecursionError):
        findings.append(Finding(FindingKind.unreadable, where, "value", "not JSON"))
        return None
    if may_identify(record.value or b"", allowed_urls):
        findings.extend(
            Finding(FindingKind.identifier, where, f.path, f"{f.kind.value}: {f.why} ({f.excerpt})")
            for f in scan_json(data, "$", allowed_urls)
        )
    if _SMALL_IN_RAW.search(record.value or b""):
        findings.extend(
            Finding(FindingKind.small_count, where, path, f"a count of {n} is shown") for path, n in small_counts(data)
        )
    if not isinstance(data, dict):
        findings.append(Finding(FindingKind.unreadable, where, "value", "not a JSON object"))
        return None
    ce_type = dict(record.headers).get("ce_type", b"").decode("utf-8", errors="replace")
    try:
        if ce_type == COHORT_AGGREGATE_TYPE or (not ce_type and "cohort" in data and "cells" in data):
            key, aggregate = aggregate_cells_from_json(data)
            cells = shown_version(aggregate)
        else:
            key, cells = shown_from_json(data)
    except ValueError as exc:  # pydantic's ValidationError is one
        findings.append(Finding(FindingKind.unreadable, where, "value", f"not a cohort's figures: {exc}"[:200]))
        return None
    if any(count is not None and abs(count) > LARGEST_COUNT for count in cells.values()):
        findings.append(Finding(FindingKind.unreadable, where, "value", f"a count past ±{LARGEST_COUNT}"))
        return None
    stamp = str(data.get("generated_at", dict(record.headers).get("ce_time", b"")))
    number = data.get("release", 1)
    return _Read(record, stamp, number if isinstance(number, int) else 1, key, cells)


def _versions(reads: Iterable[_Read]) -> tuple[list[dict[CellId, Shown]], list[str]]:
    """The releases on each topic, in order: a release is the records of one stamp (its period's boundary) and
    release number (several releases may share a stamp in development's beat period); a record of a cohort
    already in the current release starts the next one all the same. A topic's partitions are merged by the
    time and number each record carries, as a reader would: reading them one after another would put one
    partition's last release before another's first."""
    by_topic: dict[str, list[_Read]] = defaultdict(list)
    for read in reads:
        by_topic[read.record.topic].append(read)
    versions: list[dict[CellId, Shown]] = []
    origins: list[str] = []
    for topic, stream in sorted(by_topic.items()):
        stream.sort(key=lambda r: (r.record.timestamp_ms or 0, r.stamp, r.release, r.record.partition, r.record.offset))
        current: dict[CellId, Shown] = {}
        keys: set[str] = set()
        stamp: tuple[str, int] | None = None
        records: list[str] = []
        for read in stream:
            if keys and ((read.stamp, read.release) != stamp or read.key in keys):
                versions.append(current)
                origins.append(_origin(topic, stamp, records))
                current, keys, records = {}, set(), []
            current.update(read.cells)
            keys.add(read.key)
            stamp = (read.stamp, read.release)
            records.append(f"{read.record.partition}@{read.record.offset}")
        versions.append(current)
        origins.append(_origin(topic, stamp, records))
    return versions, origins


def _origin(topic: str, stamp: tuple[str, int] | None, records: list[str]) -> str:
    shown = ", ".join(records[:3]) + (f" and {len(records) - 3} more" if len(records) > 3 else "")
    when, number = stamp or ("?", 0)
    return f"{topic} release {number} of {when} ({shown})"


def audit_records(
    records: Iterable[NetworkRecord],
    replies: Iterable[ApiReply] = (),
    *,
    extra: Sequence[SumBound] = (),
    allowed_urls: Collection[str] = DEFAULT_ALLOWED_URLS,
    workers: int = 1,
) -> AuditReport:
    """Judge everything a network reader has: the records of the network topics (every version) and the API's
    replies. Pure: no broker, no network."""
    started = time.perf_counter()
    findings: list[Finding] = []
    reads: list[_Read] = []
    count = 0
    for record in records:
        count += 1
        read = _judge_record(record, allowed_urls, findings)
        if read is not None:
            reads.append(read)
    answered = 0
    for reply in replies:
        answered += 1
        findings.extend(
            Finding(FindingKind.identifier, reply.request, f.path, f"{f.kind.value}: {f.why} ({f.excerpt})")
            for f in scan_json(reply.body, "$", allowed_urls)
        )
        findings.extend(
            Finding(FindingKind.small_count, reply.request, path, f"a count of {n} is shown")
            for path, n in small_counts(reply.body)
        )
    versions, origins = _versions(reads)
    inference = infer_shown(versions, extra, workers=workers)
    for leak in inference.leaks:
        findings.append(
            Finding(
                FindingKind.leak,
                origins[leak.version],
                str(leak.cell),
                f"suppressed, but a reader of every version pins it to {leak.low}..{leak.high}",
                leak.cell,
                leak.version,
                leak.low,
                leak.high,
            )
        )
    for contradiction in inference.contradictions:
        cells = ", ".join(str(c) for c in contradiction.cells[:4])
        findings.append(
            Finding(
                FindingKind.contradiction,
                origins[contradiction.version] if contradiction.version < len(origins) else "extra bounds",
                cells,
                f"no true values fit what was shown ({contradiction.why})",
                contradiction.cells[0] if contradiction.cells else None,
                contradiction.version,
            )
        )
    stats = inference.stats
    return AuditReport(
        records=count,
        api_replies=answered,
        versions=len(versions),
        cells=stats.cells,
        suppressed=stats.suppressed,
        components=stats.components,
        lp_solves=stats.lp_solves,
        seconds=time.perf_counter() - started,
        findings=tuple(findings),
    )


# --- fetching ---------------------------------------------------------------------------------------------------


class TopicMissing(LookupError):
    pass


# Records a fetch returns at most: also how far past a fetch's start an unreadable record is looked for.
_FETCH_RECORDS = 500


async def read_network_records(
    bootstrap_servers: str,
    sites: Sequence[str],
    *,
    client_options: Mapping[str, object] | None = None,
    timeout_seconds: float = 60.0,
) -> list[NetworkRecord]:
    """Every record of the sites' network topics, from their first offset to the end offsets at the start.
    ``client_options`` are extra AIOKafkaConsumer arguments (SASL, TLS), over ``kafka_client_options()``."""
    from aiokafka import AIOKafkaConsumer  # the pure audit needs no Kafka client

    from shared.bus.kafka import read_from_start, start_with_timeout, stop_quietly
    from shared.bus.unreadable import fetch_past_unreadable

    options: dict[str, Any] = {**kafka_client_options(sites), **(client_options or {})}
    topics = [network_topic(site) for site in sites]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,  # no group, no commits: the audit leaves no trace on the broker; it is given every partition
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=max(int(timeout_seconds * 1000), 40000),
        **options,
    )
    await start_with_timeout(consumer, timeout_seconds)
    try:
        existing = await asyncio.wait_for(consumer.topics(), timeout_seconds)
        missing = [t for t in topics if t not in existing]
        if missing:
            raise TopicMissing(f"no such topic: {', '.join(missing)}")
        # Subscribed only once they are known to exist: a start with an unknown topic waits for it.
        spans = await read_from_start(consumer, topics, timeout_seconds)
        ends = {tp: end for tp, (_, end) in spans.items()}
        deadline = asyncio.get_running_loop().time() + timeout_seconds
        remaining = {tp for tp, (first, end) in spans.items() if end > first}
        records: list[NetworkRecord] = []
        while remaining:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no progress on {sorted(str(tp) for tp in remaining)} for {timeout_seconds}s")
            # The topics keep every record: one the client cannot parse failed every later audit. Found by offset,
            # it is a finding, and the audit goes on after it.
            batches, stretch = await fetch_past_unreadable(
                consumer, remaining, timeout_ms=1000, max_records=_FETCH_RECORDS
            )
            if batches:  # a long history takes as long as it takes; only a stall times out
                deadline = asyncio.get_running_loop().time() + timeout_seconds
            for tp, batch in batches.items():
                records.extend(
                    NetworkRecord(
                        m.topic,
                        m.partition,
                        m.offset,
                        m.timestamp,
                        m.key,
                        m.value,
                        # A header with a null value (Kafka allows it; bytes(None) raised) says nothing.
                        tuple((name, bytes(value)) for name, value in m.headers if value is not None),
                    )
                    for m in batch
                    if m.offset < ends[tp]
                )
            if stretch is not None:  # after the readable records before it: each partition in offset order
                tp = stretch.partition
                why = stretch.described[:300]
                records.append(NetworkRecord(tp.topic, tp.partition, stretch.first, None, None, None, (), why))
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await stop_quietly(consumer, timeout_seconds)


@dataclass(slots=True)
class ApiFetch:
    replies: list[ApiReply] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # requests that got no JSON (an endpoint absent, say)


async def fetch_api_replies(
    network_url: str,
    token: str,
    *,
    timeout_seconds: float = 60.0,
    page_size: int = 1000,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ApiFetch:
    """What the network API answers a reader: every page of the cohorts (``page_size`` a page, at most 2,000),
    the totals and trends (overall, by site, by each cut value seen, over the whole range of months), the older
    aggregates, and the FHIR Measures and every page of MeasureReports (``page_size`` a page). ``transport``: an
    app in the same process, for tests."""
    import httpx

    fetched = ApiFetch()
    async with httpx.AsyncClient(
        base_url=network_url.rstrip("/"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout_seconds,
        transport=transport,
    ) as client:

        async def get_page(path: str, params: Mapping[str, str] | None = None) -> tuple[object, str | None]:
            """The reply's body, and the next page its Link header names (RFC 8288), if any."""
            request = client.build_request("GET", path, params=params)
            label = f"GET {request.url.raw_path.decode()}"
            response = await client.send(request)
            if response.status_code != 200:
                fetched.failures.append(f"{label}: HTTP {response.status_code}")
                return None, None
            body: object = response.json()
            fetched.replies.append(ApiReply(label, body))
            following = response.links.get("next")
            return body, None if following is None else following["url"]

        async def get(path: str, params: Mapping[str, str] | None = None) -> object:
            return (await get_page(path, params))[0]

        # Every page of the cohorts: each one is a reply the audit reads.
        listed: list[dict[str, Any]] = []
        page, following = await get_page("/cohort-outcomes", {"limit": str(page_size)})
        while True:
            if isinstance(page, list):
                listed.extend(c for c in page if isinstance(c, dict))
            if following is None:
                break
            page, following = await get_page(following)
        sites = sorted({str(c.get("site")) for c in listed})
        periods = sorted({str(c.get("period")) for c in listed})
        cut_values = sorted({(str(c.get("cut")), str(c.get("cut_value"))) for c in listed if c.get("cut") != ALL})
        await get("/cohort-outcomes/totals")
        await get("/cohort-outcomes/trend")
        for site in sites:
            await get("/cohort-outcomes/totals", {"site": site})
            await get("/cohort-outcomes/trend", {"site": site})
        for cut, value in cut_values:
            await get("/cohort-outcomes/totals", {"cut": cut, "cut_value": value})
        if periods:
            await get("/cohort-outcomes/totals", {"from": periods[0], "to": periods[-1]})
        await get("/aggregates")
        await get("/fhir/Measure")
        for site in sites:
            # Every page of the search, by the Bundle's own next links (opaque to a client, as FHIR has it).
            page = await get("/fhir/MeasureReport", {"site": site, "_count": str(page_size)})
            seen: set[str] = set()
            while (following := _next_link(page)) is not None and following not in seen:
                seen.add(following)
                page = await get(following)
    return fetched


def _next_link(bundle: object) -> str | None:
    links = bundle.get("link") if isinstance(bundle, dict) else None
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return str(link["url"])
    return None
