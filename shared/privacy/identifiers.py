"""A scan of what crosses to the network for the identifiers HIPAA's Safe Harbor method removes.

45 CFR 164.514(b)(2)(i) lists 18 kinds of identifiers of the individual (or of relatives, employers or household
members) that must be removed for data to count as de-identified: (A) names; (B) geographic subdivisions smaller
than a state, ZIP codes included; (C) all elements of dates (except year) directly related to an individual, and
ages over 89; (D) telephone numbers; (E) fax numbers; (F) e-mail addresses; (G) Social Security numbers;
(H) medical record numbers; (I) health plan beneficiary numbers; (J) account numbers; (K) certificate/license
numbers; (L) vehicle identifiers; (M) device identifiers; (N) URLs; (O) IP addresses; (P) biometric identifiers;
(Q) full-face photographs; (R) any other unique identifying number, characteristic or code.

Two ways in: a field whose name says what it holds (``birth_date``, ``mrn``), and a string that looks like one
(a UUID is how kapnet names a patient or any record, so one on the network is (R); a full date is (C)).

What the network may carry, and the scan lets through:
- a month, ``YYYY-MM`` (the month of a cohort), and a FHIR Period that is exactly one calendar month;
- a timestamp on a release boundary: midnight UTC of a day, 00:00:00 with no fraction (a release is stamped with
  its period, never a finer time: services/outcomes/service/publication.py);
- by name: the ``ce_id`` header (a fresh id of the event, not of a person) and ``traceparent`` (W3C trace context);
- URLs of the standards and of kapnet's own canonical resources (``allowed_urls``);
- ``name`` inside a FHIR resource that is not a person (a Group's or a Measure's title).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from functools import cache, lru_cache
from urllib.parse import unquote_plus


class IdentifierKind(StrEnum):
    """The 18 Safe Harbor kinds, 45 CFR 164.514(b)(2)(i)(A)-(R)."""

    name = "name"  # (A)
    geographic = "geographic"  # (B) street, city, county, ZIP code
    date = "date"  # (C) a full date, or a time finer than a release boundary
    phone = "phone"  # (D)
    fax = "fax"  # (E)
    email = "email"  # (F)
    ssn = "ssn"  # (G)
    medical_record_number = "medical_record_number"  # (H)
    health_plan_number = "health_plan_number"  # (I)
    account_number = "account_number"  # (J)
    license_number = "license_number"  # (K)
    vehicle_identifier = "vehicle_identifier"  # (L)
    device_identifier = "device_identifier"  # (M)
    url = "url"  # (N)
    ip_address = "ip_address"  # (O)
    biometric = "biometric"  # (P)
    photograph = "photograph"  # (Q)
    unique_id = "unique_id"  # (R) a patient or record id


@dataclass(frozen=True, slots=True)
class IdentifierFinding:
    kind: IdentifierKind
    path: str  # where: "$.instruments[0].notes", "header ce_subject", "key"
    why: str  # what gave it away (a field's name, or the pattern), never the value itself
    excerpt: str  # the match, masked: enough to find it, not enough to read it


# --- field names -------------------------------------------------------------------------------------------------

_FIELDS: dict[IdentifierKind, frozenset[str]] = {
    IdentifierKind.name: frozenset(
        {"name", "first_name", "last_name", "given_name", "family_name", "full_name", "maiden_name", "middle_name"}
        | {"given", "family", "patient_name", "display_name", "preferred_name", "nickname", "surname"}
    ),
    IdentifierKind.geographic: frozenset(
        {"address", "street", "street_address", "address_line", "line", "city", "county", "town", "district"}
        | {"zip", "zip_code", "zipcode", "postal_code", "postcode", "geocode", "latitude", "longitude", "geo"}
    ),
    IdentifierKind.date: frozenset(
        {"birth_date", "birthdate", "date_of_birth", "dob", "birthday", "death_date", "date_of_death"}
        | {"deceased", "deceased_date_time", "admission_date", "admitted_at", "discharge_date", "discharged_at"}
        | {"registered_at", "administered_at", "occurred_at", "taken_at", "scheduled_at", "first_dose_at"}
    ),
    IdentifierKind.phone: frozenset({"phone", "phone_number", "telephone", "mobile", "cell_phone", "telecom"}),
    IdentifierKind.fax: frozenset({"fax", "fax_number"}),
    IdentifierKind.email: frozenset({"email", "email_address", "e_mail"}),
    IdentifierKind.ssn: frozenset({"ssn", "social_security_number", "social_security"}),
    IdentifierKind.medical_record_number: frozenset({"mrn", "medical_record_number", "chart_number"}),
    IdentifierKind.health_plan_number: frozenset(
        {"member_id", "subscriber_id", "beneficiary_id", "health_plan_id", "policy_number", "insurance_id"}
        | {"group_number", "medicaid_id", "medicare_id"}
    ),
    IdentifierKind.account_number: frozenset({"account_number", "account_id", "bank_account", "card_number"}),
    IdentifierKind.license_number: frozenset(
        {"license_number", "licence_number", "drivers_license", "certificate_number", "passport_number"}
    ),
    IdentifierKind.vehicle_identifier: frozenset({"vin", "license_plate", "vehicle_id", "plate_number"}),
    IdentifierKind.device_identifier: frozenset({"device_id", "serial_number", "udi", "imei", "mac_address"}),
    IdentifierKind.url: frozenset({"homepage", "website", "profile_url"}),
    IdentifierKind.ip_address: frozenset({"ip", "ip_address", "client_ip", "remote_addr", "remote_address"}),
    IdentifierKind.biometric: frozenset({"fingerprint", "voiceprint", "retina_scan", "biometric", "face_id"}),
    IdentifierKind.photograph: frozenset({"photo", "photograph", "image", "face_image", "picture", "avatar"}),
    IdentifierKind.unique_id: frozenset(
        {"patient", "patient_id", "person_id", "subject_id", "course_id", "session_id", "referral_id"}
        | {"invoice_id", "claim_id", "encounter_id", "appointment_id", "assessment_id", "adverse_event_id"}
        | {"barrier_id", "user_id", "clinician_id", "therapist_id", "record_id", "external_id"}
    ),
}
_FIELD_KIND: dict[str, IdentifierKind] = {name: kind for kind, names in _FIELDS.items() for name in names}
_NAME = IdentifierKind.name
# Resources whose "name" is a label, not a person's.
_PERSONS = frozenset({"Patient", "Person", "Practitioner", "RelatedPerson"})
# Headers allowed whatever they hold.
ALLOWED_HEADERS = frozenset({"ce_id", "traceparent"})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@cache
def field_kind(name: str) -> IdentifierKind | None:
    """The kind of identifier a field of this name holds, if any (``birthDate``, ``birth-date``, ``patient_id``)."""
    key = _CAMEL.sub("_", name).lower().replace("-", "_").replace(" ", "_").lstrip("_")
    found = _FIELD_KIND.get(key)
    if found is not None:
        return found
    if key.startswith("patient") or key.endswith("_ssn") or key.endswith("_mrn"):
        return IdentifierKind.unique_id if key.startswith("patient") else _FIELD_KIND[key.rpartition("_")[2]]
    for suffix in ("_email", "_phone", "_address", "_zip", "_fax"):
        if key.endswith(suffix):
            return _FIELD_KIND[suffix[1:]]
    return None


# --- patterns ----------------------------------------------------------------------------------------------------

_TIMESTAMP = re.compile(
    r"(?<!\d)(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?\s?(Z|[+-]\d{2}:?\d{2})?(?![\d:])",
    re.IGNORECASE,
)
_DATE = re.compile(r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})(?![\d-])")
_US_DATE = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?![\d/])")
_URL = re.compile(r"\b(?:https?|ftp)://[^\s\"'<>]+|\bwww\.[^\s\"'<>]+", re.IGNORECASE)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_UUID = re.compile(
    r"(?<![0-9a-f-])(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})(?![0-9a-f-])",
    re.IGNORECASE,
)
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_PHONE = re.compile(
    r"(?<![\w.+-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w.-])"
    r"|(?<![\w.+-])\+\d{1,3}(?:[\s.-]?\d{2,4}){2,4}(?![\w.-])"
    r"|(?<![\w.+-])\d{10}(?![\w.-])"
)
_IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")
_IPV6 = re.compile(
    r"(?<![\w:])(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}(?![\w:])"
    r"|(?<![\w:])(?:[0-9a-f]{1,4}:){1,6}:(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?(?![\w:])",
    re.IGNORECASE,
)
# A ZIP code on its own (the whole string), or after a state's two letters in an address.
_ZIP_ALONE = re.compile(r"\d{5}(?:-\d{4})?")
_ZIP_IN_ADDRESS = re.compile(r"\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b")
_MRN = re.compile(r"\bMRN[\s:#-]*[A-Z0-9-]{3,}", re.IGNORECASE)

# Canonical URLs that name standards and kapnet's own definitions, never a person.
DEFAULT_ALLOWED_URLS: tuple[str, ...] = (
    "http://hl7.org/fhir/",
    "https://hl7.org/fhir/",
    "http://terminology.hl7.org/",
    "http://unitsofmeasure.org",
    "http://loinc.org",
    "http://snomed.info/",
    "http://www.w3.org/",  # XML namespaces: a FHIR narrative is <div xmlns="http://www.w3.org/1999/xhtml">
    "https://kapnet.example/fhir/",
)


_NESTED_URLS = 3


def _allowed_prefix(url: str, allowed_urls: tuple[str, ...]) -> str | None:
    """The allowed prefix ``url`` begins with, ending where its host name ends: "http://loinc.org" allows
    "http://loinc.org/44249-1" and "(http://loinc.org)." in a sentence, not "http://loinc.org.people.example/jane"."""
    for prefix in allowed_urls:
        if not url.startswith(prefix):
            continue
        after = url[len(prefix) : len(prefix) + 2]
        # A letter, digit, "-", "_", "@" (userinfo: the host is what follows) or "." and a letter goes on naming a host.
        host_goes_on = bool(after) and (
            after[0].isalnum() or after[0] in "-_@" or (after[:1] == "." and after[1:].isalnum())
        )
        if prefix.endswith("/") or not host_goes_on:
            return prefix
    return None


def _mask(text: str) -> str:
    return text if len(text) <= 4 else f"{text[:2]}…{text[-1]}({len(text)})"


def is_release_boundary(moment: datetime) -> bool:
    """Midnight UTC of a day, to the second: the only time a network record may carry."""
    try:
        utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    except OverflowError:  # 9999-12-31T23:59-01:00 is past datetime's range in UTC: no boundary, not a crash
        return False
    return (utc.hour, utc.minute, utc.second, utc.microsecond) == (0, 0, 0, 0)


def _zone(text: str | None) -> timezone:
    if text is None or text.upper() == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _timestamp_on_boundary(match: re.Match[str]) -> bool:
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if fraction is not None:  # a boundary is written to the second
        return False
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=_zone(zone))
    except ValueError:
        return False
    return is_release_boundary(moment)


def _real_date(year: str, month: str, day: str) -> bool:
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


_Hit = tuple[IdentifierKind, str, str]  # kind, why, the match masked
# Whatever a pattern below matches has a digit, an "@", or a URL's "//" or "www.": most strings have none.
_MAYBE = re.compile(r"[\d@]|//|www\.", re.IGNORECASE)


def scan_text(text: str, path: str, allowed_urls: Collection[str] = DEFAULT_ALLOWED_URLS) -> list[IdentifierFinding]:
    """Identifiers a string gives away by its look."""
    return [IdentifierFinding(kind, path, why, excerpt) for kind, why, excerpt in _hits(text, tuple(allowed_urls))]


# No pattern here matches across a "<" or a ">", and every look-around reads one as it reads a string's end: text
# with them (a FHIR narrative's XHTML, "<0.5 mg/kg") is judged piece by piece between them, to the same hits.
_PIECE_EDGE = re.compile(r"[<>]")


@lru_cache(maxsize=1 << 16)
def _hits(text: str, allowed_urls: tuple[str, ...]) -> tuple[_Hit, ...]:
    # Cached: the figures of every cohort repeat the same few strings (measures, bands, months).
    if not _MAYBE.search(text):
        return ()
    if "<" in text or ">" in text:
        # Each narrative is unique, but its cells and phrases repeat from one report to the next (1.9 ms a
        # narrative judged whole, most of an audit of the network's MeasureReports): the pieces are cached.
        return tuple(hit for piece in _PIECE_EDGE.split(text) for hit in _piece_hits(piece, allowed_urls))
    found = list(_piece_hits(text, allowed_urls))
    if _ZIP_ALONE.fullmatch(text.strip()):  # the whole string, never a piece: "<td>12345</td>" is a count
        found.append((IdentifierKind.geographic, "a ZIP code", _mask(text.strip())))
    return tuple(found)


@lru_cache(maxsize=1 << 16)
def _piece_hits(text: str, allowed_urls: tuple[str, ...]) -> tuple[_Hit, ...]:
    if not _MAYBE.search(text):
        return ()
    found: list[_Hit] = []

    def hit(kind: IdentifierKind, why: str, match: str) -> None:
        found.append((kind, why, _mask(match)))

    def cut(pattern: re.Pattern[str], rest: str, judge: Callable[[re.Match[str]], None]) -> str:
        # One pass: each match judged and cut out, so that its digits are not read again as a phone number or a
        # ZIP code. Each pattern is tried only where a character it needs is there (most pieces have none).
        def judged(match: re.Match[str]) -> str:
            judge(match)
            return " "

        return pattern.sub(judged, rest)

    def timestamp(match: re.Match[str]) -> None:
        if not _timestamp_on_boundary(match):
            hit(IdentifierKind.date, "a time that is not a release boundary (midnight UTC)", match.group(0))

    def full_date(match: re.Match[str]) -> None:
        if _real_date(*match.groups()):
            hit(IdentifierKind.date, "a full date", match.group(0))

    def marked(kind: IdentifierKind, why: str) -> Callable[[re.Match[str]], None]:
        return lambda match: hit(kind, why, match.group(0))

    def url(match: re.Match[str]) -> None:
        found_url = match.group(0)
        canonical = _allowed_prefix(found_url, allowed_urls)
        if canonical is None:
            hit(IdentifierKind.url, "a URL", found_url)
            return
        if found_url.count("://") > _NESTED_URLS:  # no canonical reference nests URLs; the reading below recurses
            hit(IdentifierKind.url, "URLs nested in a URL", found_url)
            return
        # Only the canonical prefix is let through: what follows it (a path, a query) is read like any other text,
        # decoded as a URL's query is ("jane%40example.com", "555+123+4567"), so "http://hl7.org/fhir/<a patient's
        # id or e-mail>" is still caught.
        found.extend(_piece_hits(unquote_plus(found_url[len(canonical) :]), allowed_urls))

    rest = text
    if "//" in rest or "www." in rest.lower():
        rest = cut(_URL, rest, url)
    if ":" in rest:
        rest = cut(_TIMESTAMP, rest, timestamp)
    if "@" in rest:
        rest = cut(_EMAIL, rest, marked(IdentifierKind.email, "an e-mail address"))
    rest = cut(_UUID, rest, marked(IdentifierKind.unique_id, "a UUID: a patient's or a record's id"))
    before_dates = rest
    if "-" in rest:
        rest = cut(_DATE, rest, full_date)
    if "/" in before_dates:
        for match in _US_DATE.finditer(before_dates):  # read before the ISO dates were cut, as always
            month, day, _year = match.groups()
            if 1 <= int(month) <= 12 and 1 <= int(day) <= 31:
                hit(IdentifierKind.date, "a full date", match.group(0))
        rest = _US_DATE.sub(" ", rest)
    if "-" in rest:
        rest = cut(_SSN, rest, marked(IdentifierKind.ssn, "a Social Security number"))
    if "." in rest:
        rest = cut(_IPV4, rest, marked(IdentifierKind.ip_address, "an IPv4 address"))
    if ":" in rest:
        for match in _IPV6.finditer(rest):
            if any(c.isalpha() for c in match.group(0)) or match.group(0).count(":") >= 3:
                hit(IdentifierKind.ip_address, "an IPv6 address", match.group(0))
    rest = cut(_PHONE, rest, marked(IdentifierKind.phone, "a telephone or fax number"))
    for match in _ZIP_IN_ADDRESS.finditer(rest):
        hit(IdentifierKind.geographic, "a ZIP code in an address", match.group(0))
    if "mrn" in rest.lower():
        for match in _MRN.finditer(rest):
            hit(IdentifierKind.medical_record_number, "a medical record number", match.group(0))
    return tuple(found)


def _month_period(value: Mapping[str, object]) -> bool:
    """A FHIR Period of exactly one calendar month (how a MeasureReport gives a cohort's month)."""
    start, end = value.get("start"), value.get("end")
    if not isinstance(start, str) or not isinstance(end, str):
        return False
    first, last = _DATE.fullmatch(start), _DATE.fullmatch(end)
    if first is None or last is None or start[:7] != end[:7] or not _real_date(*first.groups()):
        return False
    year, month = int(start[:4]), int(start[5:7])
    return start.endswith("-01") and int(end[8:]) == calendar.monthrange(year, month)[1]


_TIME_FIELDS = ("_at", "_time", "timestamp", "_date")


def _epoch_off_boundary(key: str, number: float) -> bool:
    """An epoch number under a time-like name (seconds or milliseconds) that is not a boundary."""
    if not key.lower().endswith(_TIME_FIELDS):
        return False
    seconds = number / 1000 if number > 10**11 else number
    return 10**8 < seconds < 10**10 and seconds % 86_400 != 0


# Where a value sits in a JSON tree, as its path is built only when something is found there (most values never need
# one): the root's path, or (its parent's place, a key or an index).
JsonPlace = str | tuple["JsonPlace", str | int]


def json_path(where: JsonPlace) -> str:
    """``$.entry[3].resource`` for a place."""
    steps: list[str] = []
    while isinstance(where, tuple):
        where, step = where
        steps.append(f"[{step}]" if isinstance(step, int) else f".{step}")
    return where + "".join(reversed(steps))


def scan_json(
    value: object, path: str = "$", allowed_urls: Collection[str] = DEFAULT_ALLOWED_URLS
) -> list[IdentifierFinding]:
    """Every identifier in a JSON value (as ``json.loads`` gives it): by field name and by look."""
    allowed = tuple(allowed_urls)
    found: list[IdentifierFinding] = []
    # A network MeasureReport bundle holds a million values under a few dozen keys: each key is judged once.
    keys: dict[str, tuple[IdentifierKind | None, bool]] = {}

    def look(text: str, where: JsonPlace) -> None:
        hits = _hits(text, allowed)
        if hits:
            at = json_path(where)
            found.extend(IdentifierFinding(kind, at, why, excerpt) for kind, why, excerpt in hits)

    # (value, where it is, the FHIR resource type it is inside, whether it is a month Period's start or end)
    stack: list[tuple[object, JsonPlace, str | None, bool]] = [(value, path, None, False)]
    while stack:
        item, where, resource, in_month = stack.pop()
        if isinstance(item, str):
            if not in_month:
                look(item, where)
        elif isinstance(item, list):
            for i, v in enumerate(item):
                if isinstance(v, str):
                    look(v, (where, i))
                elif isinstance(v, list | dict):
                    stack.append((v, (where, i), resource, False))
        elif isinstance(item, dict):
            kind_of = item.get("resourceType")
            here = kind_of if isinstance(kind_of, str) else resource
            month = "start" in item and _month_period(item)
            for key, v in item.items():
                key_text = str(key)
                judged = keys.get(key_text)
                if judged is None:
                    judged = keys[key_text] = (field_kind(key_text), bool(_hits(key_text, allowed)))
                kind, key_has_hits = judged
                if kind is _NAME and here is not None and here not in _PERSONS:
                    kind = None
                if kind is not None and v not in (None, "", [], {}):
                    why = f"a field named {key_text!r}"
                    found.append(IdentifierFinding(kind, json_path((where, key_text)), why, _mask(str(v))))
                if key_has_hits:
                    look(key_text, f"{json_path(where)}{{key}}")
                if isinstance(v, str):
                    if not (month and key_text in ("start", "end")):
                        look(v, (where, key_text))
                elif isinstance(v, list | dict):
                    stack.append((v, (where, key_text), here, False))
                elif isinstance(v, int | float) and not isinstance(v, bool) and _epoch_off_boundary(key_text, v):
                    why = "an epoch time off a boundary"
                    found.append(IdentifierFinding(IdentifierKind.date, json_path((where, key_text)), why, str(v)))
    return found


_JSON_STRING = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_EPOCH_FIELD = re.compile(rb'(?:_at|_time|timestamp|_date)"\s*:\s*\d', re.IGNORECASE)


def may_identify(raw: bytes, allowed_urls: Collection[str] = DEFAULT_ALLOWED_URLS) -> bool:
    """Whether ``scan_json`` of this JSON text could find anything: False lets a caller skip the walk of its tree
    (every string in it, keys too, is clean of patterns and no key names an identifier). A fast test on the raw
    text, for the many records whose strings are the same few words: each string is judged once."""
    allowed = tuple(allowed_urls)
    clean = _CLEAN_TOKENS.setdefault(allowed, set())
    for token in set(_JSON_STRING.findall(raw)) - clean:
        if b"\\" in token:
            return True  # an escape: read it properly
        text = token.decode("utf-8", errors="replace")
        if field_kind(text) is not None or _hits(text, allowed):
            return True
        if len(clean) > 200_000:
            clean.clear()
        clean.add(token)
    return _EPOCH_FIELD.search(raw) is not None


_CLEAN_TOKENS: dict[tuple[str, ...], set[bytes]] = {}


def scan_headers(
    headers: Iterable[tuple[str, bytes]], allowed_urls: Collection[str] = DEFAULT_ALLOWED_URLS
) -> list[IdentifierFinding]:
    """Kafka headers: each value is read as text and scanned, except those allowed by name."""
    found: list[IdentifierFinding] = []
    for name, raw in headers:
        if name in ALLOWED_HEADERS:
            continue
        kind = field_kind(name.removeprefix("ce_"))
        if kind is not None:
            found.append(IdentifierFinding(kind, f"header {name}", f"a header named {name!r}", _mask(str(raw))))
        found += scan_text(raw.decode("utf-8", errors="replace"), f"header {name}", allowed_urls)
    return found
