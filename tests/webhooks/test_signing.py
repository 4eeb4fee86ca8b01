"""Our webhook signatures, checked by Standard Webhooks' own Python library, as a receiver would check them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.webhooks.signing import WebhookRefused, WebhookSecret, signed_headers, verify

BODY = json.dumps({"type": "dev.kapnet.billing.estimate.issued.v1", "data": {"estimate_id": "e1"}}).encode()


def test_the_standard_library_verifies_our_signature() -> None:
    secret = WebhookSecret.new()
    headers = signed_headers([secret], "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", datetime.now(UTC), BODY)
    assert Webhook(str(secret)).verify(BODY, headers) == json.loads(BODY)


def test_we_sign_as_the_standard_library_signs() -> None:
    secret = WebhookSecret.new()
    sent_at = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    theirs = Webhook(str(secret)).sign("msg_1", sent_at, BODY.decode())
    assert signed_headers([secret], "msg_1", sent_at, BODY)["webhook-signature"] == theirs


def test_during_a_rotation_either_secret_verifies() -> None:
    old, new = WebhookSecret.new(), WebhookSecret.new()
    headers = signed_headers([old, new], "msg_2", datetime.now(UTC), BODY)
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        Webhook(str(secret)).verify(BODY, headers)


def test_a_bad_signature_a_changed_body_and_a_stale_timestamp_are_refused_by_the_standard_library() -> None:
    secret, other = WebhookSecret.new(), WebhookSecret.new()
    headers = signed_headers([secret], "msg_3", datetime.now(UTC), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(str(other)).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(str(secret)).verify(BODY.replace(b"e1", b"e2"), headers)
    stale = signed_headers([secret], "msg_3", datetime.now(UTC) - timedelta(minutes=6), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(str(secret)).verify(BODY, stale)


def test_our_verify_agrees_with_the_standard_library() -> None:
    secret, now = WebhookSecret.new(), datetime.now(UTC)
    theirs = Webhook(str(secret))
    headers = {
        "webhook-id": "msg_4",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": theirs.sign("msg_4", now, BODY.decode()),
    }
    verify(secret, headers, BODY, now)
    with pytest.raises(WebhookRefused, match="no signature"):
        verify(WebhookSecret.new(), headers, BODY, now)
    with pytest.raises(WebhookRefused, match="5 minutes"):
        verify(secret, headers, BODY, now + timedelta(minutes=6))


def test_a_secret_reads_back_and_never_shows_in_a_repr() -> None:
    secret = WebhookSecret.new()
    assert WebhookSecret.parse(str(secret)) == secret and str(secret).startswith("whsec_")
    assert "whsec" not in repr(secret)
    with pytest.raises(ValueError, match="24 to 64 bytes"):
        WebhookSecret(b"short")
    with pytest.raises(ValueError, match="base64"):
        WebhookSecret.parse("whsec_not base64!")
