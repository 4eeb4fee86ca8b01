"""A clinician's day in the site console, in Debian's Chromium: a PHQ-9 entered item by item with its score shown
as it is typed, a course planned, a dosing session booked and charted at the chair (pre-dose checks, the dose
calculator, a vitals alert that takes the focus, what discharge waits for, discharge), and the outcome chart with
the response and remission lines. The chart is driven by the keyboard alone. Real intake,
sessions and outcomes on the real broker; axe-core finds no serious violation on any page. Screenshots are saved
under var/screenshots/."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser import accessible, shot
from tests.console.conftest import SiteUnderTest, a_planned_course, a_screened_consented_patient

pytestmark = pytest.mark.broker

NOW = datetime.now(UTC)


def at(minutes_ago: float) -> str:
    """A time as the date-and-time input takes it: the site's wall clock (the test site's zone is UTC)."""
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M")


# --- the keyboard alone -------------------------------------------------------------------------------------------


def _focused(page: Page, target: Locator) -> bool:
    return bool(target.evaluate("el => el === document.activeElement"))


def tab_to(page: Page, target: Locator, limit: int = 400) -> None:
    """Press Tab until ``target`` has the focus, as a keyboard user moves through the page."""
    for _ in range(limit):
        if _focused(page, target):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {target}")


def type_into(page: Page, target: Locator, text: str) -> None:
    tab_to(page, target)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def type_time(page: Page, target: Locator, moment: datetime) -> None:
    """A date-and-time input by the keyboard, as Chromium's en-US fields take it: month, day, year, then the
    hour, minutes and AM or PM."""
    tab_to(page, target)
    page.keyboard.type(moment.strftime("%m%d%Y"))
    page.keyboard.press("ArrowRight")
    page.keyboard.type(moment.strftime("%I%M") + moment.strftime("%p")[0])
    expect(target).to_have_value(moment.strftime("%Y-%m-%dT%H:%M"))


def pick(page: Page, target: Locator, option: str) -> None:
    """A select by the keyboard: typing an option's first letters chooses it."""
    tab_to(page, target)
    page.keyboard.type(option)
    expect(target).to_have_value(option)


def choose(page: Page, form: Locator, name: str, value: str) -> None:
    """A radio group by the keyboard: Tab into it, Space to pick the first, arrows to move to the one wanted."""
    group = form.locator(f"input[type=radio][name='{name}']")
    for _ in range(400):
        if page.evaluate(f"document.activeElement && document.activeElement.name === '{name}'"):
            break
        page.keyboard.press("Tab")
    if not any(r.is_checked() for r in group.all()):
        page.keyboard.press("Space")
    wanted = form.locator(f"input[type=radio][name='{name}'][value='{value}']")
    for _ in range(group.count()):
        if wanted.is_checked():
            return
        page.keyboard.press("ArrowDown")
    assert wanted.is_checked(), f"{name}={value} could not be chosen by the keyboard"


def press_save(page: Page, form: Locator) -> None:
    tab_to(page, form.get_by_role("button"))
    page.keyboard.press("Enter")


# --- the test -----------------------------------------------------------------------------------------------------


def test_a_clinician_plans_and_charts_a_dosing_session_to_discharge(browser: Browser, clinic: SiteUnderTest) -> None:
    base, patient_id = clinic.url, a_screened_consented_patient(clinic, "Mary", "Seacole")
    page = browser.new_page(locale="en-US")  # the keyboard's way through a date-and-time field is the locale's
    page.goto(f"{base}/sign-in?token={clinic.token('clinician')}")
    page.goto(f"{base}/patients/{patient_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Seacole, Mary")

    # The baseline PHQ-9, item by item: the score and its band follow each answer (shared/instruments scores it).
    page.get_by_role("link", name="Enter an assessment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("PHQ-9 (depression)")
    assert accessible(page, base) == []
    answers = [3, 3, 3, 3, 2, 2, 1, 1, 0]  # 18: moderately severe, 15-19 (Kroenke et al. 2001)
    for item, rating in enumerate(answers[:4], start=1):
        page.locator(f"input[name='item-{item}'][value='{rating}']").check()
    expect(page.locator("#score-so-far")).to_have_text("4 of 9 answered: 12 so far, at least moderate")
    for item, rating in enumerate(answers[4:], start=5):
        page.locator(f"input[name='item-{item}'][value='{rating}']").check()
    expect(page.locator("#score-so-far")).to_have_text("Total 18: moderately severe")
    shot(page, "console-clinician-phq9-as-typed")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Assessment saved.")
    expect(page.locator("section[aria-labelledby=measures] table")).to_contain_text("moderately severe")

    # A course, planned once sessions has heard from intake that the patient is eligible and consented.
    page.get_by_role("link", name="Plan a course").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Plan a course")
    assert accessible(page, base) == []
    page.locator("#f-indication").select_option("treatment_resistant_depression")
    page.get_by_label("Route").select_option("iv_infusion")
    page.get_by_label("Planned dosing sessions").fill("6")
    page.get_by_label("Dosing sessions per week").fill("2")
    page.get_by_label("Planned integration sessions").fill("3")
    deadline = time.monotonic() + 30
    while True:
        page.get_by_role("button", name="Save").click()
        if page.get_by_role("status").filter(has_text="Course planned.").count():
            break
        assert time.monotonic() < deadline, page.locator(".refusal").inner_text()
        time.sleep(0.5)

    page.get_by_role("link", name="Book a dosing session").click()
    page.get_by_label("Starts at").fill(at(140))
    page.get_by_label("Duration minutes").fill("240")
    page.get_by_label("Room").fill("Chair 2")
    page.get_by_label("Clinician").fill("dr-k")
    page.get_by_label("Therapist").fill("th-t")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Session booked.")

    # The day's schedule lists the session; the clinician opens its chart from there.
    page.goto(f"{base}/schedule?day={(NOW - timedelta(minutes=140)).date()}")
    expect(page.locator("table")).to_contain_text("Chair 2")
    assert accessible(page, base) == []
    page.get_by_role("link", name="Seacole, Mary").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Session chart")
    assert accessible(page, base) == []

    # The chart by the keyboard alone, from the pre-dose checks to signing.
    pre = page.locator("form#pre-dose-checks")
    type_into(page, pre.get_by_label("Value"), "80")
    pick(page, pre.get_by_label("Unit"), "kg")
    type_time(page, pre.get_by_label("Taken at"), NOW - timedelta(minutes=130))
    for label, value in (
        ("Systolic mmhg", "128"),
        ("Diastolic mmhg", "82"),
        ("Heart rate bpm", "72"),
        ("Spo2 percent", "98"),
        ("Respiratory rate per min", "14"),
    ):
        type_into(page, pre.get_by_label(label), value)
    for name, value in (
        ("fasting", "yes"),
        ("takes_benzodiazepines", "no"),
        ("takes_stimulants", "no"),
        ("takes_maois", "no"),
        ("takes_opioids", "no"),
        ("escort_arranged", "yes"),
    ):
        choose(page, pre, name, value)
    press_save(page, pre)
    expect(page.get_by_role("status")).to_have_text("Pre-dose checks recorded.")

    # The calculator asks sessions to work the dose out from the pre-dose weight, as recording it will.
    calculator = page.get_by_label("mg/kg", exact=True)
    type_into(page, calculator, "0.9")
    page.keyboard.press("Enter")
    expect(page.locator("output.calculation")).to_contain_text("72 mg for 80 kg")
    expect(page.locator("output.calculation")).to_contain_text("maximum of 0.75 mg/kg")
    type_into(page, page.get_by_label("mg/kg", exact=True), "3")
    page.keyboard.press("Enter")
    expect(page.locator("output.calculation")).to_contain_text("No override can accept this dose.")
    type_into(page, page.get_by_label("mg/kg", exact=True), "0.5")
    page.keyboard.press("Enter")
    expect(page.locator("output.calculation")).to_contain_text("40 mg for 80 kg (0.5 mg/kg)")
    expect(page.locator("output.calculation")).to_contain_text("Within the site's range.")
    dose = page.locator("form#dose")
    expect(dose.get_by_label("Mg per kg")).to_have_value("0.5")
    type_into(page, dose.get_by_label("Lot number"), "KET-2291")
    type_time(page, dose.get_by_label("Administration start"), NOW - timedelta(minutes=110))
    type_time(page, dose.get_by_label("Administration end"), NOW - timedelta(minutes=70))
    press_save(page, dose)
    expect(page.get_by_role("status")).to_have_text("Dose recorded.")

    vitals = page.locator("form#vitals")
    type_time(page, vitals.get_by_label("Taken at"), NOW - timedelta(minutes=65))
    type_into(page, vitals.get_by_label("Spo2 percent"), "90")
    press_save(page, vitals)
    # The alert cannot be missed: at the top of the chart, announced, and holding the focus.
    alert = page.locator("#vitals-alert")
    expect(alert).to_contain_text("SpO2 90 %")
    expect(alert).to_be_focused()
    expect(page.locator("section.waits")).to_contain_text("SpO2")
    shot(page, "console-bedside-vitals-alert")
    assert accessible(page, base) == []

    # A full set of vital signs, the sedation and dissociation check, discharge.
    vitals = page.locator("form#vitals")
    for label, value in (
        ("Systolic mmhg", "132"),
        ("Diastolic mmhg", "84"),
        ("Heart rate bpm", "76"),
        ("Spo2 percent", "97"),
        ("Respiratory rate per min", "14"),
    ):
        type_into(page, vitals.get_by_label(label), value)
    press_save(page, vitals)
    expect(page.get_by_role("status")).to_have_text("Vitals recorded.")
    expect(page.locator("#vitals-alert")).to_have_count(0)

    check = page.locator("form#dissociation")
    type_into(page, check.get_by_label("Moaa s"), "5")
    choose(page, check, "dissociation_present", "no")
    choose(page, check, "respiratory_depression_present", "no")
    press_save(page, check)
    expect(page.get_by_role("status")).to_have_text("Check recorded.")
    expect(page.locator("section.waits")).to_contain_text("Nothing: the discharge criteria are met.")

    discharge = page.locator("form#discharge")
    choose(page, discharge, "escort_present", "yes")
    press_save(page, discharge)
    expect(page.get_by_role("status")).to_have_text("Discharged.")
    expect(page.locator("dl.facts")).to_contain_text("completed")
    sign = page.get_by_role("button", name="Sign the record")
    tab_to(page, sign)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Record signed.")
    shot(page, "console-bedside-discharged")
    assert accessible(page, base) == []


def a_dosed_patient_with_scores(clinic: SiteUnderTest) -> str:
    """A baseline PHQ-9 of 18, a dose after it, and a PHQ-9 of 6 in the course, through the services' APIs: each
    score is timed by the service as it is saved, so the dose is given now (the chart test above is backdated)."""
    patient_id = a_screened_consented_patient(clinic, "Florence", "Nightingale")
    measures = f"/patients/{patient_id}/assessments"
    clinic.api("intake", "POST", measures, "clinician", {"instrument": "phq9", "answers": [3, 3, 3, 3, 2, 2, 1, 1, 0]})
    course = a_planned_course(clinic, patient_id)
    now = datetime.now(UTC)
    booking = {
        "starts_at": (now - timedelta(minutes=10)).isoformat(),
        "duration_minutes": 240,
        "room": "Chair 3",
        "clinician": "dr-n",
        "therapist": "th-n",
    }
    session = clinic.api("sessions", "POST", f"/courses/{course['id']}/sessions", "clinician", booking)
    pre_dose = {
        "weight": {"value": 70, "unit": "kg"},
        "vitals": {"taken_at": (now - timedelta(minutes=5)).isoformat(), "systolic_mmhg": 124, "diastolic_mmhg": 80},
        "fasting": True,
        "takes_benzodiazepines": False,
        "takes_stimulants": False,
        "takes_maois": False,
        "takes_opioids": False,
        "escort_arranged": True,
    }
    chart = f"/sessions/{session['id']}"
    clinic.api("sessions", "POST", f"{chart}/pre-dose-checks", "clinician", pre_dose)
    dose = {"mg_per_kg": 0.5, "lot_number": "KET-2292", "administration_start": datetime.now(UTC).isoformat()}
    clinic.api("sessions", "POST", f"{chart}/dose", "clinician", dose)
    in_course = {"instrument": "phq9", "answers": [1, 1, 1, 1, 1, 1, 0, 0, 0], "context": "in_course"}
    clinic.api("sessions", "POST", measures, "clinician", in_course)
    return patient_id


def test_the_outcome_chart_draws_the_scores_with_the_response_and_remission_lines(
    browser: Browser, clinic: SiteUnderTest
) -> None:
    base, patient_id = clinic.url, a_dosed_patient_with_scores(clinic)
    page = browser.new_page()
    page.goto(f"{base}/sign-in?token={clinic.token('clinician')}")
    deadline = time.monotonic() + 30
    while True:  # outcomes hears of the scores and the dose from the broker
        page.goto(f"{base}/patients/{patient_id}/outcomes")
        if page.get_by_text("Responded").count():
            break
        assert time.monotonic() < deadline, page.locator("main").inner_text()
        time.sleep(0.5)
    phq9 = page.locator("section.outcome").filter(has_text="PHQ9")
    expect(phq9).to_contain_text("Baseline 18; response at or below 9; remission below 5")  # ACNP 2006; Kroenke 2001
    expect(phq9.locator("tbody tr")).to_have_count(2)
    drawn = "c => Chart.getChart(c).data.datasets.map(d => d.label + ':' + d.data[0])"
    assert phq9.locator("canvas").evaluate(drawn) == ["PHQ9:18", "Response (at or below):9", "Remission (below):5"]
    shot(page, "console-clinician-outcome-chart")
    assert accessible(page, base) == []


def an_esketamine_session_discharged(clinic: SiteUnderTest) -> str:
    """Esketamine at 56 mg (two devices), monitored and discharged, through sessions' API (times backdated)."""
    patient_id = a_screened_consented_patient(clinic, "Rosalind", "Franklin")
    course = a_planned_course(clinic, patient_id, route="intranasal_esketamine")

    def ago(minutes: int) -> str:
        return (NOW - timedelta(minutes=minutes)).isoformat()

    booking = {
        "starts_at": ago(140),
        "duration_minutes": 240,
        "room": "Chair 4",
        "clinician": "dr-e",
        "therapist": "th-e",
    }
    session = clinic.api("sessions", "POST", f"/courses/{course['id']}/sessions", "clinician", booking)
    chart = f"/sessions/{session['id']}"
    full_set = {"heart_rate_bpm": 74, "spo2_percent": 97, "respiratory_rate_per_min": 14}
    pre_dose = {
        "weight": {"value": 70, "unit": "kg"},
        "vitals": {"taken_at": ago(130), "systolic_mmhg": 128, "diastolic_mmhg": 82, **full_set},
        "fasting": True,
        "takes_benzodiazepines": False,
        "takes_stimulants": False,
        "takes_maois": False,
        "takes_opioids": False,
        "escort_arranged": True,
    }
    steps: list[tuple[str, dict[str, object]]] = [
        ("pre-dose-checks", pre_dose),
        (
            "dose",
            {
                "dose_mg": 56,
                "lot_number": "SPR-1",
                "administration_start": ago(125),
                "device_times": [ago(125), ago(120)],
            },
        ),
        ("vitals", {"taken_at": ago(85), "systolic_mmhg": 138, "diastolic_mmhg": 88}),  # the label's 40 minutes
        (
            "dissociation",
            {
                "assessed_at": ago(80),
                "moaa_s": 4,
                "dissociation_present": True,
                "respiratory_depression_present": False,
            },
        ),
        ("vitals", {"taken_at": ago(3), "systolic_mmhg": 132, "diastolic_mmhg": 84, **full_set}),
        (
            "dissociation",
            {
                "assessed_at": ago(2),
                "moaa_s": 5,
                "dissociation_present": False,
                "respiratory_depression_present": False,
            },
        ),
        ("discharge", {"escort_present": True}),
    ]
    for step, body in steps:
        clinic.api("sessions", "POST", f"{chart}/{step}", "clinician", body)
    return str(session["id"])


def test_a_rems_form_due_is_completed_from_the_record_and_marked_submitted(
    browser: Browser, clinic: SiteUnderTest
) -> None:
    base, session_id = clinic.url, an_esketamine_session_discharged(clinic)
    page = browser.new_page()
    page.goto(f"{base}/sign-in?token={clinic.token('clinician')}")
    page.get_by_role("link", name="REMS forms due").click()
    due = page.locator("tbody tr").filter(has_text="Franklin, Rosalind")
    expect(due).to_contain_text("due")
    assert accessible(page, base) == []
    due.get_by_role("link").click()
    form = page.locator("form#rems-form")
    expect(page.locator("dl[aria-label='Filled from the record']")).to_contain_text("56 mg, lot SPR-1")
    form.get_by_label("Concomitant medications").fill("sertraline 100 mg\nlisinopril 10 mg")
    form.get_by_label("Minutes until ready to leave").fill("110")
    form.get_by_role("button").click()
    expect(page.get_by_role("status")).to_have_text("REMS form saved.")
    shot(page, "console-rems-form-completed")
    assert accessible(page, base) == []
    page.get_by_role("button", name="Mark the REMS form submitted").click()
    expect(page.get_by_role("status")).to_have_text("REMS form marked submitted.")
    saved = clinic.api("sessions", "GET", f"/sessions/{session_id}", "clinician")
    assert saved["rems_form"]["concomitant_medications"] == ["sertraline 100 mg", "lisinopril 10 mg"]
    page.goto(f"{base}/rems-forms")
    expect(page.locator("tbody tr").filter(has_text="Franklin, Rosalind")).to_have_count(0)
