"""The site console in a real browser (Debian's Chromium, driven by Playwright): a front desk registers a patient
and a clinician screens them through the pages, which call the real intake service; every page passes axe-core
with no serious violation. Screenshots are saved under var/screenshots/."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import accessible, shot
from tests.console.conftest import SiteUnderTest, site_stack

pytestmark = pytest.mark.broker


@pytest.fixture
def site_console(kafka: str, tmp_path: Path) -> Iterator[SiteUnderTest]:
    yield from site_stack(kafka, tmp_path, ("intake", "sessions"))


def answer_screening(page: Page, yes: set[str]) -> None:
    for group in page.locator("fieldset.yes-no").all():
        name = group.locator("input[type=radio]").first.get_attribute("name") or ""
        if group.locator("input[value='']").count():
            continue  # optional: left unanswered
        group.locator(f"input[value='{'yes' if name in yes else 'no'}']").check()
    page.get_by_label("Systolic mmhg").fill("122")
    page.get_by_label("Diastolic mmhg").fill("78")
    page.get_by_label("Bmi kg m2").fill("24.5")


def test_a_front_desk_registers_a_patient_and_a_clinician_screens_them(
    browser: Browser, site_console: SiteUnderTest
) -> None:
    base = site_console.url
    page = browser.new_page()
    page.goto(f"{base}/sign-in?token={site_console.token('front_desk')}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Good day")
    assert accessible(page, base) == []

    page.get_by_role("link", name="Register a patient").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Register a patient")
    assert accessible(page, base) == []
    page.get_by_label("Given name").fill("Ada")
    page.get_by_label("Family name").fill("Lovelace")
    page.get_by_label("Birth date").fill("1985-12-10")
    page.get_by_label("Sex").select_option("female")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Registered.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Lovelace, Ada")
    shot(page, "console-front-desk-registered")
    assert accessible(page, base) == []

    # The front desk records the patient's signed, witnessed consent; the document is chosen, not typed.
    page.get_by_role("link", name="Record consent").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Informed consent")
    assert accessible(page, base) == []
    page.get_by_label("Document id").select_option(index=1)  # the one document: index 0 is "Choose…"
    page.get_by_label("Witnessed by").fill("Grace Hopper")
    for disclosure in page.locator("fieldset.yes-no").all():
        disclosure.locator("input[value='yes']").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Consent recorded.")
    expect(page.locator("dl.facts")).to_contain_text("Consented")
    shot(page, "console-front-desk-consent-recorded")

    # Screening is clinical in the permission table (shared/auth/permissions.py): the front desk is not offered it,
    # and a clinician screens the patient the front desk registered.
    assert page.get_by_role("link", name="Screen for eligibility").count() == 0
    patient_url = page.url.split("?")[0]
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{base}/sign-in?token={site_console.token('clinician')}")
    page.goto(patient_url)
    page.get_by_role("link", name="Screen for eligibility").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Eligibility screening")
    assert accessible(page, base) == []
    page.get_by_role("button", name="Save").click()  # nothing answered: the service says what is missing
    expect(page.get_by_role("alert").first).to_contain_text("Not saved")
    shot(page, "console-clinician-screening-refused")
    answer_screening(page, yes={"takes_benzodiazepines"})
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Screening result")
    outcome = page.locator(".outcome").inner_text()
    assert outcome in ("Eligible", "Needs a clinician's medical review"), outcome
    expect(page.get_by_text("benzodiazepine", exact=False).first).to_be_visible()
    shot(page, "console-clinician-screening-result")
    assert accessible(page, base) == []

    # A refusal from a service is a message on a page that keeps its navigation, never a broken page.
    page.goto(f"{base}/patients/{uuid.uuid4()}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not done")
    expect(page.get_by_role("alert")).to_have_text("no such patient at this site")  # intake's own words
    expect(page.get_by_role("link", name="Patients")).to_be_visible()
    assert accessible(page, base) == []
