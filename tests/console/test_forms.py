"""The console's forms are made from a service's own request schema, and read back into its request body."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from services.console.forms import FieldKind, SchemaReader, read_answers, without
from services.console.site_apis import _field_of
from services.intake.app import create_app
from shared.settings import ServiceSettings


def intake_openapi() -> dict[str, object]:
    app = create_app(ServiceSettings(service="intake", site="north", database_url="sqlite+aiosqlite:///:memory:"))
    return app.openapi()


def test_the_screening_form_asks_every_question_and_answers_none_for_the_user() -> None:
    reader = SchemaReader(intake_openapi())
    sections = reader.sections(reader.request_schema("post", "/patients/{patient_id}/screenings"))
    fields = {f.name: f for s in sections for f in s.fields}
    pregnant = fields["pregnant"]
    assert pregnant.kind is FieldKind.yes_no and pregnant.required and pregnant.default is None
    # Only when bipolar disorder is answered yes: optional, so it may stay unanswered.
    assert fields["mood_stabiliser"].kind is FieldKind.yes_no and not fields["mood_stabiliser"].required
    systolic = fields["systolic_mmhg"]
    assert systolic.kind is FieldKind.whole_number and systolic.minimum is not None and systolic.maximum is not None
    assert fields["bmi_kg_m2"].kind is FieldKind.number
    assert "aneurysmal" in fields["aneurysmal_vascular_disease_or_avm"].help


def test_registration_reads_back_nested_parts_and_leaves_out_what_was_not_entered() -> None:
    reader = SchemaReader(intake_openapi())
    sections = reader.sections(reader.request_schema("post", "/patients"))
    titles = [s.title for s in sections]
    assert "Address" in titles and "Coverage" in titles
    fields = {f.name: f for s in sections for f in s.fields}
    assert fields["sex"].kind is FieldKind.choice and "female" in fields["sex"].options
    assert fields["birth_date"].kind is FieldKind.date
    body = read_answers(
        sections,
        {
            "given_name": ["Ada"],
            "family_name": ["Lovelace"],
            "birth_date": ["1985-12-10"],
            "sex": ["female"],
            "address.line1": [""],
            "coverage.self_pay": ["no"],
            "coverage.payer": ["Aetna"],
        },
    )
    # An optional part left wholly empty is left out (the service's default applies); a part begun is sent as it
    # is, for the service to say what it still needs.
    assert body == {
        "given_name": "Ada",
        "family_name": "Lovelace",
        "birth_date": "1985-12-10",
        "sex": "female",
        "coverage": {"self_pay": False, "payer": "Aetna"},
    }


def test_a_refused_field_is_named_as_the_form_names_it() -> None:
    assert _field_of("/body/address/line1") == "address.line1"
    assert _field_of("/body/pregnant") == "pregnant"
    assert _field_of("") == ""


def sessions_openapi() -> dict[str, object]:
    from services.sessions.app import create_app as sessions_app

    settings = ServiceSettings(service="sessions", site="north", database_url="sqlite+aiosqlite:///:memory:")
    return sessions_app(settings).openapi()


def test_a_rems_form_asks_only_what_the_record_lacks_and_a_list_of_words_is_one_per_line() -> None:
    reader = SchemaReader(sessions_openapi())
    schema = reader.request_schema("put", "/sessions/{session_id}/rems-form")
    assert "bp_at_40_minutes" in schema["x-filled-by-service"]  # sessions says what it fills from the record
    asked = without(reader.sections(schema), *schema["x-filled-by-service"])
    names = {f.name for s in asked for f in s.fields}
    assert "concomitant_medications" in names and "dose_mg" not in names
    assert not any(n.startswith("bp_before_dosing") or n.startswith("bp_at_40_minutes") for n in names)
    medicines = next(f for s in asked for f in s.fields if f.name == "concomitant_medications")
    assert medicines.kind is FieldKind.lines
    body = read_answers(asked, {"concomitant_medications": ["sertraline 100 mg\n\n  lisinopril 10 mg \n"]})
    assert body["concomitant_medications"] == ["sertraline 100 mg", "lisinopril 10 mg"]


def test_a_time_typed_is_the_sites_wall_clock_sent_with_its_offset() -> None:
    reader = SchemaReader(sessions_openapi())
    sections = reader.sections(reader.request_schema("post", "/sessions/{session_id}/vitals"))
    body = read_answers(
        sections, {"taken_at": ["2026-07-01T09:30"], "spo2_percent": ["97"]}, ZoneInfo("America/New_York")
    )
    assert body == {"taken_at": "2026-07-01T09:30:00-04:00", "spo2_percent": 97}
