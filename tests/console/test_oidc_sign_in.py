"""Signing in to the console at a real OpenID Connect issuer (panva's oidc-provider, run from
deploy/tools/oidc-issuer): the authorization code flow with PKCE in Debian's Chromium, the issuer's JWT access
token accepted by the console and by the site's services alike, and a callback the console did not start refused."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from deploy import local_http
from deploy.processes import ROOT
from tests.browser import accessible, shot
from tests.harness import free_port, running, service_process, wait_until

pytestmark = pytest.mark.broker

ISSUER_SCRIPT = ROOT / "deploy" / "tools" / "oidc-issuer" / "issuer.mjs"


@pytest.fixture
def console_behind_an_issuer(kafka: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    auth = {
        "KAPNET_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "KAPNET_SITE": "north",
        "KAPNET_AUTH_MODE": "oidc",
        "KAPNET_AUTH_ISSUER": issuer,
        "KAPNET_AUTH_JWKS_URL": f"{issuer}/jwks",
    }
    intake = service_process("intake", tmp_path, **auth)
    sessions = service_process("sessions", tmp_path, **auth)
    urls = {"KAPNET_INTAKE_URL": intake.url, "KAPNET_SESSIONS_URL": sessions.url}
    console = service_process("console", tmp_path, **auth, **urls, KAPNET_OIDC_CLIENT_ID="kapnet-console")
    log = (tmp_path / "issuer.log").open("w")
    command = ["node", str(ISSUER_SCRIPT), str(port), f"{console.url}/sign-in/callback", "north", "front_desk"]
    node = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _answers(f"{issuer}/.well-known/openid-configuration"), timeout=30, what="the issuer")
        with running(intake, sessions, console):
            yield console.url
    finally:
        node.terminate()
        node.wait(timeout=10)
        log.close()


def _answers(url: str) -> bool:
    try:
        return local_http.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_user_signs_in_at_the_issuer_and_the_services_accept_its_token(
    browser: Browser, console_behind_an_issuer: str
) -> None:
    base = console_behind_an_issuer
    page = browser.new_page()
    page.goto(f"{base}/sign-in")
    assert accessible(page, base) == []
    page.get_by_role("link", name="Sign in with your organisation's account").click()
    # The issuer's own login page (oidc-provider's development interactions): any user name signs in.
    page.locator("input[name=login]").fill("amina")
    page.locator("input[name=password]").fill("any")
    page.locator("button[type=submit]").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Good day, OIDC amina")
    shot(page, "console-signed-in-at-the-oidc-issuer")
    # The token is the issuer's, and intake accepts it too: the search reaches intake with it.
    page.goto(f"{base}/patients?name=Nobody")
    expect(page.get_by_role("heading", level=1)).to_have_text("Patients")
    expect(page.get_by_role("alert")).to_have_count(0)


def test_a_callback_the_console_did_not_start_is_refused(browser: Browser, console_behind_an_issuer: str) -> None:
    reply = local_http.get(f"{console_behind_an_issuer}/sign-in/callback", params={"code": "stolen", "state": "guess"})
    assert reply.status_code == 400 and "not started here" in reply.text
    denied = local_http.get(f"{console_behind_an_issuer}/sign-in/callback", params={"error": "access_denied"})
    assert denied.status_code == 401 and "did not sign you in" in denied.text
