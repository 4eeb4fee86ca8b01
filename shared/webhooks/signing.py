"""Signing webhook deliveries as the Standard Webhooks specification (standardwebhooks.com, spec v1) says, so that a
receiver can check them with that project's libraries.

- Headers: ``webhook-id`` (the message's id, the same on every retry: the receiver's key for exactly once),
  ``webhook-timestamp`` (integer seconds since the epoch) and ``webhook-signature``: space-separated
  ``v1,<base64 HMAC-SHA256>`` signatures of ``{id}.{timestamp}.{body}``.
- Secrets: ``whsec_`` and the base64 of 24 to 64 random bytes; the key is the decoded bytes.
- Rotation: while an endpoint has an old and a new secret, each delivery carries a signature with each, so the
  receiver may switch at its own pace (the specification's "multiple signatures").
- A receiver refuses a timestamp more than 5 minutes from its clock (replay), as the reference libraries do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
TOLERANCE = timedelta(minutes=5)


class WebhookRefused(ValueError):
    """A delivery that does not verify: no valid signature, or a timestamp outside the tolerance."""


@dataclass(frozen=True)
class WebhookSecret:
    key: bytes

    def __post_init__(self) -> None:
        if not 24 <= len(self.key) <= 64:
            raise ValueError("a webhook secret is 24 to 64 bytes (Standard Webhooks)")

    @classmethod
    def new(cls) -> WebhookSecret:
        return cls(secrets.token_bytes(32))

    @classmethod
    def parse(cls, text: str) -> WebhookSecret:
        try:
            return cls(base64.b64decode(text.removeprefix(SECRET_PREFIX), validate=True))
        except ValueError:
            raise ValueError("a webhook secret is whsec_ followed by base64") from None

    def __str__(self) -> str:
        return SECRET_PREFIX + base64.b64encode(self.key).decode("ascii")

    def __repr__(self) -> str:
        return "WebhookSecret(<hidden>)"  # never in a log

    def signature(self, message_id: str, timestamp: int, body: bytes) -> str:
        signed = f"{message_id}.{timestamp}.".encode() + body
        digest = hmac.new(self.key, signed, hashlib.sha256).digest()
        return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signed_headers(active: Sequence[WebhookSecret], message_id: str, sent_at: datetime, body: bytes) -> dict[str, str]:
    """The three headers of one delivery attempt, signed with every active secret of the endpoint."""
    if not active:
        raise ValueError("an endpoint without a secret cannot be delivered to")
    timestamp = int(sent_at.timestamp())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(s.signature(message_id, timestamp, body) for s in active),
    }


def verify(secret: WebhookSecret, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    """What a receiver does (the reference libraries' rule): raises WebhookRefused unless one signature matches
    and the timestamp is within 5 minutes of ``now``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        message_id, timestamp = lowered["webhook-id"], int(lowered["webhook-timestamp"])
        given = lowered["webhook-signature"].split()
    except (KeyError, ValueError):
        raise WebhookRefused("missing or malformed webhook headers") from None
    if abs(now.timestamp() - timestamp) > TOLERANCE.total_seconds():
        raise WebhookRefused("the timestamp is more than 5 minutes from now")
    expected = secret.signature(message_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in given):
        raise WebhookRefused("no signature matches")
