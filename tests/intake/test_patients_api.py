"""Patients through the API: the full record, search, optimistic concurrency, deactivation."""

from __future__ import annotations

import json

from services.intake.models import Patient
from tests.intake.conftest import ADA, Intake

FULL = {
    **ADA,
    "preferred_name": "Addie",
    "contact": {"phone": "+44 20 7946 0000", "email": "ada@example.org"},
    "address": {"line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
    "emergency_contact": {"name": "Mary Somerville", "relationship": "friend", "phone": "+44 20 7946 0001"},
    "preferred_language": "en-GB",
    "referral_source": "psychiatrist",
    "referral_detail": "Dr Babbage, treatment-resistant depression",
    "coverage": {"payer": "Acme Health", "plan": "Gold", "member_id": "AC-123456"},
}


async def test_the_full_record_is_kept_and_contact_details_stay_in_intake(intake: Intake) -> None:
    patient = await intake.register(**FULL)
    reply = await intake.client.get(f"/patients/{patient['id']}", headers=intake.as_("therapist"))
    assert reply.status_code == 200
    read = reply.json()
    for field in ("preferred_name", "contact", "emergency_contact", "referral_source", "coverage"):
        assert read[field] == {**FULL[field], "self_pay": False} if field == "coverage" else FULL[field]
    assert read["address"]["line2"] is None and read["consented"] is False
    assert reply.headers["etag"] == 'W/"1"'
    [event] = await intake.events("patient.registered.v1")
    data = json.loads(event.payload)
    assert data["coverage"] == {"self_pay": False, "payer": "Acme Health", "plan": "Gold", "member_id": "AC-123456"}
    # The name goes to billing (an estimate and a claim name the patient), on the site's own topic only; contact
    # details, the address and the emergency contact stay in intake.
    assert (data["given_name"], data["family_name"]) == (FULL["given_name"], FULL["family_name"])
    # The phone numbers as written and as digits only: a bare "7946" also turned up in an event's timestamp.
    for private in ("ada@example.org", "Square", "Mary Somerville", "7946 000", "7946000"):
        assert private not in event.payload.decode(), f"{private} left intake"


async def test_search_by_name_birth_date_or_mrn_with_pages(intake: Intake) -> None:
    for n, family in enumerate(["Lovelace", "Loveday", "Byron", "Lovell"]):
        await intake.register(family_name=family, birth_date=f"198{n}-01-01", mrn=f"S-{n}")
    search = intake.as_("front_desk")
    found = (await intake.client.get("/patients", params={"name": "LOVE"}, headers=search)).json()
    assert [p["family_name"] for p in found["patients"]] == ["Loveday", "Lovelace", "Lovell"]
    assert found["total"] == 3
    page = (
        await intake.client.get("/patients", params={"name": "love", "limit": 2, "offset": 2}, headers=search)
    ).json()
    assert [p["family_name"] for p in page["patients"]] == ["Lovell"] and page["total"] == 3
    by_dob = (await intake.client.get("/patients", params={"birth_date": "1982-01-01"}, headers=search)).json()
    assert [p["family_name"] for p in by_dob["patients"]] == ["Byron"]
    by_mrn = (await intake.client.get("/patients", params={"mrn": "S-3"}, headers=search)).json()
    assert [p["family_name"] for p in by_mrn["patients"]] == ["Lovell"]
    assert (await intake.client.get("/patients", params={"limit": 0}, headers=search)).status_code == 422


async def test_an_update_needs_the_current_etag(intake: Intake) -> None:
    patient = await intake.register()
    url, desk = f"/patients/{patient['id']}", intake.as_("front_desk")
    missing = await intake.client.patch(url, json={"preferred_name": "Ada L"}, headers=desk)
    assert missing.status_code == 428
    first = await intake.client.patch(url, json={"preferred_name": "Ada L"}, headers={**desk, "If-Match": 'W/"1"'})
    assert first.status_code == 200 and first.headers["etag"] == 'W/"2"'
    stale = await intake.client.patch(url, json={"preferred_name": "A"}, headers={**desk, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert (await intake.client.get(url, headers=desk)).json()["preferred_name"] == "Ada L"
    [event] = await intake.events("patient.updated.v1")
    assert json.loads(event.payload)["changed"] == ["preferred_name"]


async def test_bad_updates_are_422_and_change_nothing(intake: Intake) -> None:
    patient = await intake.register()
    url, desk = f"/patients/{patient['id']}", {**intake.as_("front_desk"), "If-Match": 'W/"1"'}
    for body in (
        {},
        {"birth_date": "2999-01-01"},
        {"sex": None},
        {"mrn": "NEW-1"},
        {"coverage": {"payer": "X"}},
        {"contact": None},
        {"referral_source": None},
        {"preferred_language": "en-" + "abcdefgh-" * 3 + "x"},
    ):
        reply = await intake.client.patch(url, json=body, headers=desk)
        assert reply.status_code == 422, body
    assert (await intake.client.get(url, headers=desk)).headers["etag"] == 'W/"1"'
    assert await intake.events("patient.updated.v1") == []


async def test_deactivation_instead_of_deletion(intake: Intake) -> None:
    patient = await intake.register()
    url, desk = f"/patients/{patient['id']}", intake.as_("front_desk")
    assert (await intake.client.delete(url, headers=desk)).status_code == 405
    reply = await intake.client.post(f"{url}/deactivate", json={"reason": "moved away"}, headers=desk)
    assert reply.status_code == 200 and reply.json()["active"] is False
    assert (await intake.client.post(f"{url}/deactivate", json={"reason": "again"}, headers=desk)).status_code == 409
    assert (await intake.client.get("/patients", headers=desk)).json()["total"] == 0
    everyone = await intake.client.get("/patients", params={"include_inactive": True}, headers=desk)
    assert everyone.json()["total"] == 1
    assert await intake.count(Patient) == 1
    assert len(await intake.events("patient.deactivated.v1")) == 1
