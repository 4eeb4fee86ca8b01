"""A billing clerk's part in the site console, in Debian's Chromium: the course's coverage as billing determined
it, a Good Faith Estimate requested and issued from the site's prices (45 CFR 149.610), and an access barrier
recorded when the patient defers care for its cost. Real intake, sessions and billing on the real broker; axe-core
finds no serious violation. Screenshots are saved under var/screenshots/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.browser import accessible, shot
from tests.console.conftest import SiteUnderTest, a_planned_course, a_screened_consented_patient, retried

pytestmark = pytest.mark.broker


def test_a_billing_clerk_issues_an_estimate_and_records_an_access_barrier(
    browser: Browser, clinic: SiteUnderTest
) -> None:
    base = clinic.url
    patient_id = a_screened_consented_patient(clinic, "Ida", "Wells", self_pay=True)
    course = a_planned_course(clinic, patient_id)
    # Billing learns of the course from sessions' events and determines its coverage.
    retried(lambda: clinic.api("billing", "GET", f"/courses/{course['id']}/coverage", "billing"))

    page = browser.new_page()
    page.goto(f"{base}/sign-in?token={clinic.token('billing')}")
    page.goto(f"{base}/patients/{patient_id}")
    # Billing sees the account, never the clinical record: no screening, assessments or session charts offered.
    for clinical in ("Screen for eligibility", "Enter an assessment", "Outcome chart", "Session chart"):
        assert page.get_by_role("link", name=clinical).count() == 0, clinical
    page.get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Billing")
    expect(page.locator("section[aria-labelledby=coverage]")).to_contain_text("chose to pay for themselves")
    assert accessible(page, base) == []

    estimate = page.locator("form#estimates")
    estimate.get_by_label("Course id").select_option(course["id"])
    estimate.get_by_role("button").click()
    expect(page.get_by_role("status")).to_have_text("Estimate requested.")
    expect(page.locator("dl.facts")).to_contain_text("due")
    page.get_by_role("button", name="Issue the estimate").click()
    expect(page.get_by_role("status")).to_have_text("Estimate issued.")
    expect(page.locator("dd.total")).to_contain_text("$")
    expect(page.locator("section[aria-labelledby=items] tbody tr").first).to_be_visible()
    shot(page, "console-billing-estimate-issued")
    assert accessible(page, base) == []

    page.get_by_role("link", name="Back to billing").click()
    barrier = page.locator("form#access-barriers")
    barrier.get_by_label("Course id").select_option(course["id"])
    barrier.get_by_label("Reason").select_option("high_out_of_pocket")
    barrier.get_by_label("Outcome").select_option("deferred")
    barrier.get_by_label("Note").fill("Will start after the next paycheck; asked about the sliding scale.")
    barrier.get_by_role("button").click()
    expect(page.get_by_role("status")).to_have_text("Access barrier recorded.")
    expect(page.locator("section[aria-labelledby=barriers]")).to_contain_text("high out of pocket, deferred")
    shot(page, "console-billing-access-barrier")
    assert accessible(page, base) == []

    # A refusal from billing is shown beside the answers: a payment of nothing is not a payment.
    payment = page.locator("form#payments")
    payment.get_by_label("Cents").fill("0")
    payment.get_by_label("Method").select_option(index=1)
    payment.get_by_role("button").click()
    expect(page.locator("form#payments .problem").first).to_be_visible()
    expect(page.get_by_role("alert").first).to_contain_text("Not saved")
