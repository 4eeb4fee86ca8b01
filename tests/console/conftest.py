"""A site's services and its console as real processes on the real broker, and Debian's Chromium to drive it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from deploy import local_http
from deploy.demo_data import DEMO_PRICES, NO_FLAGS
from deploy.local_stack import BILLING_RULES
from shared.auth.tokens import mint_dev_token
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.harness import running, service_process


@dataclass(frozen=True)
class SiteUnderTest:
    site: str
    url: str  # the console's
    keys: Path
    services: dict[str, str]  # each service's URL
    dashboard: str = ""  # the network dashboard's (the console in the network role), where the network runs

    def token(self, role: str) -> str:
        if role == "network_admin":
            return mint_dev_token(self.keys, site="network", roles=[role])
        return mint_dev_token(self.keys, site=self.site, roles=[role])

    def api(self, service: str, method: str, path: str, role: str, body: object = None) -> Any:
        reply = local_http.request(
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


def site_stack(
    kafka: str, workdir: Path, services: tuple[str, ...], with_network: bool = False
) -> Iterator[SiteUnderTest]:
    """The site's services, then its console calling them; the site's consent document published by its admin,
    and where billing runs, its self-pay prices (make run's demo clinic's). ``with_network``: the network's outcomes
    service and its dashboard too, the site releasing on every beat (development) as in make run."""
    site = f"c{uuid.uuid4().hex[:6]}"
    common = {
        "KAPNET_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "KAPNET_SITE": site,
        "KAPNET_BILLING_RULES": json.dumps(BILLING_RULES["north"]),
        "KAPNET_RELEASE_PERIOD": "beat",
        "KAPNET_AGGREGATE_PUBLISH_INTERVAL_SECONDS": "1",
    }
    started = {name: service_process(name, workdir, **common) for name in services}
    if with_network:
        network_env = {k: v for k, v in common.items() if k != "KAPNET_SITE"}  # the network belongs to no site
        network_env |= {"KAPNET_ROLE": "network", "KAPNET_NETWORK_SITES": json.dumps([site])}
        started["network"] = service_process("outcomes", workdir, **network_env)
    with running(*started.values()):
        urls = {f"KAPNET_{name.upper()}_URL": p.url for name, p in started.items()}
        console = service_process("console", workdir, **common, **urls)
        consoles = [console]
        if with_network:
            dashboard_env = {"KAPNET_ROLE": "network", "KAPNET_NETWORK_URL": started["network"].url}
            consoles.append(service_process("console", workdir, **dashboard_env))
        with running(*consoles):
            stack = SiteUnderTest(
                site,
                console.url,
                workdir / "var" / "auth",
                {name: p.url for name, p in started.items()},
                consoles[1].url if with_network else "",
            )
            stack.api("intake", "POST", "/consent-documents", "site_admin", CONSENT_DOCUMENT)
            if "billing" in services:
                for service, dollars in DEMO_PRICES.items():
                    price = {"service": service, "amount": {"cents": dollars * 100}, "valid_from": "2025-01-01"}
                    stack.api("billing", "POST", "/prices", "site_admin", price)
            yield stack


@pytest.fixture(scope="session")
def clinic(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteUnderTest]:
    """One clinic with every site service, shared by the browser tests of a day's work."""
    services = ("intake", "sessions", "outcomes", "billing")
    yield from site_stack(kafka, tmp_path_factory.mktemp("clinic"), services, with_network=True)


def a_screened_consented_patient(clinic: SiteUnderTest, given: str, family: str, **coverage: object) -> str:
    """Registration, screening and consent through intake's API: the front desk's part is tested on its own."""
    registration: dict[str, object] = {"given_name": given, "family_name": family, "birth_date": "1979-11-23"}
    registration |= {"sex": "female", **({"coverage": coverage} if coverage else {})}
    patient = clinic.api("intake", "POST", "/patients", "front_desk", registration)
    base = f"/patients/{patient['id']}"
    clinic.api("intake", "POST", f"{base}/screenings", "clinician", NO_FLAGS)
    [document] = clinic.api("intake", "GET", "/consent-documents", "front_desk")
    consent = {
        "document_id": document["id"],
        "witnessed_by": "Grace Hopper",
        "informed_off_label_use": True,
        "informed_adverse_reactions": True,
        "informed_no_long_term_data": True,
        "informed_expected_cost": True,
    }
    clinic.api("intake", "POST", f"{base}/consents", "front_desk", consent)
    return str(patient["id"])


def retried(call: Callable[[], Any], within: float = 30.0) -> Any:
    """A call the site's services refuse until they have heard from one another on the broker (sessions learns
    eligibility and consent from intake's events, billing courses from sessions')."""
    deadline = time.monotonic() + within
    while True:
        try:
            return call()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def a_planned_course(clinic: SiteUnderTest, patient_id: str, route: str = "iv_infusion") -> dict[str, Any]:
    plan = {
        "patient_id": patient_id,
        "indication": "treatment_resistant_depression",
        "route": route,
        "planned_dosing_sessions": 6,
        "dosing_sessions_per_week": 2,
        "planned_integration_sessions": 3,
    }
    course: dict[str, Any] = retried(lambda: clinic.api("sessions", "POST", "/courses", "clinician", plan))
    return course
