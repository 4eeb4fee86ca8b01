"""The pure rules of webhook delivery: the retry schedule, the lifecycles of a delivery and an endpoint, what an
endpoint may be, and what a role's endpoint is sent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest

from services.webhooks.app import dispatch_settings
from services.webhooks.domain.deliveries import AttemptResult, Delivery, DeliveryStatus, RetrySchedule, message_body
from services.webhooks.domain.endpoints import Endpoint, EndpointEntry, EndpointStatus, check_endpoint_url
from shared.auth.permissions import Role
from shared.errors import Conflict, NotPermitted, RuleRefused
from shared.events.audience import audience_table, may_receive, receivable_types, view_for
from shared.events.intake import PatientRegistered
from shared.events.registry import event_types
from shared.events.sessions import DoseAdministered, SessionCompleted
from shared.settings import ServiceSettings

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
REGISTERED = PatientRegistered.ce_type()


def failed_at(at: datetime, status: int | None = 503) -> AttemptResult:
    return AttemptResult(attempted_at=at, response_status=status, error=None if status else "no answer", duration_ms=5)


def test_the_production_schedule_retries_for_at_least_a_day_with_growing_waits() -> None:
    schedule = dispatch_settings(ServiceSettings(site="north")).schedule
    delivery = Delivery.queue(uuid.uuid4(), "e1", REGISTERED, "p1", NOW)
    at, waits = NOW, []
    while delivery.status is DeliveryStatus.pending:
        delivery = delivery.attempted(failed_at(at), schedule)
        if delivery.status is DeliveryStatus.pending:
            waits.append(delivery.next_attempt_at - at)
            at = delivery.next_attempt_at
    assert delivery.status is DeliveryStatus.failed
    assert at - NOW >= timedelta(hours=24)
    assert waits[:4] == [timedelta(seconds=s) for s in (5, 10, 20, 40)]
    assert max(waits) == timedelta(hours=1) and waits == sorted(waits)
    print(f"\nproduction schedule: {delivery.attempts} attempts over {(at - NOW) / timedelta(hours=1):.1f} h")


def test_production_refuses_a_retry_window_under_a_day() -> None:
    with pytest.raises(ValueError, match="at least a day"):
        ServiceSettings(
            site="north",
            environment="production",
            database_url="postgresql://db/x",
            auth_mode="oidc",
            auth_jwks_url="https://issuer/jwks",
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="u",
            kafka_sasl_password="p",
            webhook_retry_window_seconds=3600,
        )


def test_a_2xx_delivers_and_anything_else_is_retried() -> None:
    schedule = RetrySchedule(base_seconds=1, cap_seconds=10, window_seconds=100)
    queued = Delivery.queue(uuid.uuid4(), "e1", REGISTERED, "p1", NOW)
    redirected = queued.attempted(failed_at(NOW, 302), schedule)
    assert redirected.status is DeliveryStatus.pending and redirected.next_attempt_at == NOW + timedelta(seconds=1)
    delivered = redirected.attempted(failed_at(NOW + timedelta(seconds=1), 200), schedule)
    assert delivered.status is DeliveryStatus.delivered and delivered.attempts == 2
    with pytest.raises(Conflict):
        delivered.replay(NOW)


def test_a_failed_delivery_replays_with_its_webhook_id_and_a_fresh_window() -> None:
    schedule = RetrySchedule(base_seconds=1, cap_seconds=1, window_seconds=1)
    queued = Delivery.queue(uuid.uuid4(), "e1", REGISTERED, "p1", NOW)
    failed = queued.attempted(failed_at(NOW), schedule).attempted(failed_at(NOW + timedelta(seconds=1)), schedule)
    assert failed.status is DeliveryStatus.failed
    replayed = failed.replay(NOW + timedelta(hours=2))
    assert replayed.status is DeliveryStatus.pending and replayed.message_id == queued.message_id
    assert replayed.attempts == 0 and replayed.first_attempt_at is None


def test_the_body_is_the_standard_webhooks_payload() -> None:
    body = message_body(REGISTERED, NOW, {"patient_id": "p1"})
    assert (
        body
        == b'{"type":"' + REGISTERED.encode() + b'","timestamp":"2026-12-03T09:00:00+00:00","data":{"patient_id":"p1"}}'
    )


def an_endpoint(role: Role = Role.billing, roles: frozenset[Role] | None = None) -> Endpoint:
    return Endpoint.register(
        EndpointEntry(url="https://billing.example.org/hooks", role=role, event_types=[REGISTERED]),
        registrant_roles=roles if roles is not None else frozenset({Role.site_admin, role}),
        scope="site",
        plain_http_allowed=False,
        by="admin",
        now=NOW,
    )


def test_an_endpoint_is_paused_resumed_disabled_and_deleted_by_its_rules() -> None:
    endpoint = an_endpoint()
    assert endpoint.sends and endpoint.wants(REGISTERED)
    paused = endpoint.pause(NOW)
    assert not paused.sends and paused.wants(REGISTERED)  # still queued while paused: nothing lost
    with pytest.raises(Conflict):
        paused.pause(NOW)
    once = paused.resume(NOW).delivery_failed(2, NOW)
    assert once.status is EndpointStatus.active and once.consecutive_failures == 1
    assert once.delivery_arrived().consecutive_failures == 0
    disabled = once.delivery_failed(2, NOW)
    assert disabled.status is EndpointStatus.disabled and disabled.wants(REGISTERED)
    deleted = disabled.resume(NOW).delete(NOW)
    assert not deleted.wants(REGISTERED)
    with pytest.raises(Conflict):
        deleted.resume(NOW)


def test_an_endpoint_acts_only_as_a_role_its_registrant_holds() -> None:
    with pytest.raises(NotPermitted):
        an_endpoint(Role.clinician, roles=frozenset({Role.site_admin}))
    with pytest.raises(RuleRefused, match=r"dose\.administered"):
        Endpoint.register(
            EndpointEntry(url="https://x.example.org/h", role=Role.billing, event_types=[DoseAdministered.ce_type()]),
            registrant_roles=frozenset({Role.site_admin, Role.billing}),
            scope="site",
            plain_http_allowed=False,
            by="admin",
            now=NOW,
        )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://billing.example.org/hooks", "https"),
        ("https://u:p@billing.example.org/hooks", "credentials"),
        ("https://10.0.0.7/hooks", "private"),
        ("https://127.0.0.1:9/hooks", "private"),
        ("billing.example.org/hooks", "absolute"),
        ("https://billing.example.org/hooks#x", "fragment"),
    ],
)
def test_an_endpoint_url_outside_development_is_public_https(url: str, reason: str) -> None:
    with pytest.raises(RuleRefused, match=reason):
        check_endpoint_url(url, plain_http_allowed=False)
    assert check_endpoint_url("https://billing.example.org/hooks", plain_http_allowed=False)


def test_every_event_type_names_who_may_read_it() -> None:
    for ce_type, model in event_types().items():
        assert hasattr(model, "audience"), ce_type
        assert set(model.restricted) <= set(model.model_fields), ce_type


def test_billing_sees_that_a_session_happened_not_its_dose() -> None:
    event = SessionCompleted(
        patient_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        course_id=uuid.uuid4(),
        route="intramuscular",
        dose_mg=50.0,
        dose_mg_per_kg=0.7,
        observation_minutes=90,
        modalities=["integration"],
        dissociation_score=20,
        dissociation_scale="CADSS",
        discharged_at=NOW,
    )
    billing, clinician = view_for(event, Role.billing), view_for(event, Role.clinician)
    assert "dose_mg" not in billing and "modalities" not in billing and billing["observation_minutes"] == 90
    assert clinician["dose_mg"] == 50.0 and clinician["dissociation_score"] == 20
    assert not may_receive(DoseAdministered, Role.billing) and not may_receive(DoseAdministered, Role.front_desk)
    with pytest.raises(PermissionError):
        view_for(event, Role.network_admin)
    assert receivable_types(Role.network_admin, "site") == []
    assert receivable_types(Role.billing, "network") == []


@pytest.mark.parametrize("scope", ["site", "network"])
def test_the_subscriber_guide_shows_who_receives_what_as_the_code_decides(scope: Literal["site", "network"]) -> None:
    guide = (Path(__file__).parents[2] / "docs" / "subscribing.md").read_text()
    assert audience_table(scope) in guide, "docs/subscribing.md: paste `kapnet webhooks audience [--network]` again"
