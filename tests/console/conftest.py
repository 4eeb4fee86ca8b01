"""A site's services and its console as real processes on the real broker, and Debian's Chromium to drive it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from shared.auth.tokens import mint_dev_token
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.harness import running, service_process


@dataclass(frozen=True)
class SiteUnderTest:
    site: str
    url: str  # the console's
    keys: Path
    services: dict[str, str]  # each service's URL

    def token(self, role: str) -> str:
        return mint_dev_token(self.keys, site=self.site, roles=[role])

    def api(self, service: str, method: str, path: str, role: str, body: object = None) -> Any:
        reply = httpx.request(
            method,
            f"{self.services[service]}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token(role)}"},
            timeout=10,
        )
        assert reply.status_code < 300, reply.text
        return reply.json()


CONSENT_DOCUMENT = {
    "version": "2026.1",
    "title": "Consent to ketamine-assisted psychotherapy",
    "text": "Ketamine is used off-label for depression. " * 4,
    "effective_date": "2026-01-01",
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


def site_stack(kafka: str, workdir: Path, services: tuple[str, ...]) -> Iterator[SiteUnderTest]:
    """The site's services, then its console calling them; the site's consent document published by its admin."""
    site = f"c{uuid.uuid4().hex[:6]}"
    common = {"KAPNET_KAFKA_BOOTSTRAP_SERVERS": kafka, "KAPNET_SITE": site}
    started = {name: service_process(name, workdir, **common) for name in services}
    with running(*started.values()):
        urls = {f"KAPNET_{name.upper()}_URL": p.url for name, p in started.items()}
        console = service_process("console", workdir, **common, **urls)
        with running(console):
            stack = SiteUnderTest(
                site, console.url, workdir / "var" / "auth", {name: p.url for name, p in started.items()}
            )
            stack.api("intake", "POST", "/consent-documents", "site_admin", CONSENT_DOCUMENT)
            yield stack
