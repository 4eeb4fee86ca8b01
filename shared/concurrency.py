"""Optimistic concurrency over HTTP: ETags from a record's version, and If-Match (RFC 9110 section 13.1.1)."""

from __future__ import annotations

import re

from shared.errors import PreconditionRequired, StaleVersion


def etag(version: int) -> str:
    return f'W/"{version}"'


def expected_version(if_match: str | None) -> int:
    """The version the caller last saw, from If-Match (RFC 9110 section 13.1.1)."""
    if if_match is None:
        raise PreconditionRequired("send If-Match with the ETag of the record you are changing")
    found = re.fullmatch(r'\s*(?:W/)?"(\d+)"\s*', if_match)
    if found is None:
        raise StaleVersion(f"If-Match {if_match!r} is not an ETag of this record")
    return int(found.group(1))
