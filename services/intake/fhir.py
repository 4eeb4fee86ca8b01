"""Intake's records as FHIR R4 (4.0.1) resources: pure functions from our models to plain JSON dicts.

No FHIR library at run time: the service emits dicts, and the tests validate them with a FHIR model library.
Every element here exists in R4 with the same shape in R4B; none is R5-only (R5 reshaped Consent entirely).
FHIR forbids empty elements ({} or []), so an element without a value is left out, never sent empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from services.intake.models import Assessment, Consent, ConsentDocument, Patient
from shared.fhir import (
    ACT_CODE_SYSTEM,
    OBSERVATION_CATEGORY_SYSTEM,
    code_system,
    coding,
    concept,
    drop_empty,
    fhir_date,
    fhir_datetime,
    kapnet_code_system_url,
    kapnet_coding,
    narrative,
    reference,
    staff,
)
from shared.instruments import (
    INSTRUMENT_VERSIONS,
    LOINC_SYSTEM,
    SPECS,
    InstrumentLoinc,
    LoincCode,
    Severity,
    gad7,
    parse_instrument,
    pcl5,
    phq9,
    usable_loinc,
)
from shared.instruments.pcl5 import CLUSTER_ITEMS
from shared.instruments.scoring import Instrument

# HL7 terminology (terminology.hl7.org) used below.
IDENTIFIER_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
CONTACT_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0131"
CONSENT_SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
LANGUAGE_SYSTEM = "urn:ietf:bcp:47"
# LOINC 59284-0, listed in R4's consent-category value set.
CONSENT_DOCUMENT = LoincCode("59284-0", "Consent Document")

# kapnet's own code systems, for what LOINC gives no confirmed code: the PCL-5 (its LOINC codes are not
# verified, see shared/instruments/loinc.py), PCL-5 clusters and cutoff, and the severity bands. Each is a FHIR
# CodeSystem that intake serves (CODE_SYSTEMS, at GET /fhir/CodeSystem/{id}); the system is its canonical URL.
KAPNET_ASSESSMENT_SYSTEM = kapnet_code_system_url("assessment")
KAPNET_SEVERITY_SYSTEM = kapnet_code_system_url("severity")

INSTRUMENT_NAMES: dict[Instrument, str] = {
    Instrument.phq9: "PHQ-9",
    Instrument.gad7: "GAD-7",
    Instrument.pcl5: "PCL-5",
}
PCL5_CLUSTER_NAMES: dict[str, str] = {
    "B": "intrusion",
    "C": "avoidance",
    "D": "negative alterations in cognitions and mood",
    "E": "alterations in arousal and reactivity",
}


# --- CodeSystems --------------------------------------------------------------------------------------------------


def _assessment_concepts() -> list[tuple[str, str, str]]:
    """Every code of the assessment CodeSystem: each instrument's total and items (used while its LOINC codes
    are unverified), and the PCL-5's cluster scores, provisional diagnosis and cutoff."""
    concepts = []
    for instrument, name in INSTRUMENT_NAMES.items():
        spec = SPECS[instrument]
        concepts.append(
            (
                f"{instrument.value}-total",
                f"{name} total score",
                f"The total score of the {INSTRUMENT_VERSIONS[instrument]}: the sum of its "
                f"{spec.item_count} item ratings, 0-{spec.max_total}.",
            )
        )
        concepts.extend(
            (
                f"{instrument.value}-item-{number}",
                f"{name} item {number}",
                f"The patient's rating of item {number} of the {name}, {spec.item_min}-{spec.item_max}.",
            )
            for number in range(1, spec.item_count + 1)
        )
    name = INSTRUMENT_NAMES[Instrument.pcl5]
    for cluster, items in CLUSTER_ITEMS.items():
        concepts.append(
            (
                f"pcl5-cluster-{cluster}",
                _cluster_display(cluster),
                f"The sum of the ratings of {name} items {items.start}-{items.stop - 1}, DSM-5 symptom cluster "
                f"{cluster} ({PCL5_CLUSTER_NAMES[cluster]}).",
            )
        )
    rule = ", ".join(f"{count} {cluster}" for cluster, count in pcl5.CLUSTER_MINIMUM.items())
    concepts += [
        (
            "pcl5-provisional-ptsd",
            f"{name} provisional PTSD by the DSM-5 cluster rule",
            f"Whether the answers meet the DSM-5 rule for a provisional PTSD diagnosis: at least {rule} items rated "
            f"{pcl5.ENDORSED_AT} (moderately) or higher (National Center for PTSD, Using the PCL-5).",
        ),
        (
            "pcl5-cutoff",
            f"{name} cutoff used by this site",
            f"The {name} total at or above which the site takes PTSD to be probable, a per-site setting (the "
            f"National Center for PTSD suggests 31-33; {pcl5.DEFAULT_CUTOFF} unless the site sets another).",
        ),
        (
            "pcl5-at-or-above-cutoff",
            f"{name} total at or above the cutoff",
            f"Whether the {name} total is at or above the site's cutoff.",
        ),
    ]
    return concepts


def _cluster_display(cluster: str) -> str:
    items = CLUSTER_ITEMS[cluster]
    name = INSTRUMENT_NAMES[Instrument.pcl5]
    return f"{name} cluster {cluster} ({PCL5_CLUSTER_NAMES[cluster]}, items {items.start}-{items.stop - 1}) severity"


SEVERITY_DISPLAY: dict[Severity, str] = {
    Severity.minimal: "Minimal",
    Severity.mild: "Mild",
    Severity.moderate: "Moderate",
    Severity.moderately_severe: "Moderately severe",
    Severity.severe: "Severe",
}


def _severity_concepts() -> list[tuple[str, str, str]]:
    """The severity bands, each defined by the totals it covers on the instruments that have it."""
    ranges: dict[Severity, list[str]] = {severity: [] for severity in Severity}
    for instrument, bands in ((Instrument.phq9, phq9.SEVERITY_BANDS), (Instrument.gad7, gad7.SEVERITY_BANDS)):
        tops = [lowest - 1 for lowest, _ in bands[1:]] + [SPECS[instrument].max_total]
        for (lowest, severity), top in zip(bands, tops, strict=True):
            ranges[severity].append(f"{INSTRUMENT_NAMES[instrument]} total {lowest}-{top}")
    display = {
        severity: SEVERITY_DISPLAY.get(severity, severity.value.replace("_", " ").capitalize()) for severity in Severity
    }
    return [
        (
            severity.value,
            display[severity],
            f"{display[severity]} symptoms: a {' or a '.join(ranges[severity])} "
            "(Kroenke et al. 2001; Spitzer et al. 2006).",
        )
        for severity in Severity
        if ranges[severity]
    ]


ASSESSMENT_CODE_SYSTEM = code_system(
    "assessment",
    name="KapnetAssessment",
    title="kapnet assessment codes",
    description=(
        "Codes of the scores of validated instruments (PHQ-9, GAD-7, PCL-5) for which no LOINC code has been "
        "confirmed: an instrument's total and items while its LOINC codes are unverified, and the PCL-5's cluster "
        "scores, provisional diagnosis and cutoff."
    ),
    concepts=_assessment_concepts(),
)
SEVERITY_CODE_SYSTEM = code_system(
    "severity",
    name="KapnetSeverity",
    title="kapnet severity bands",
    description="The published severity bands of the PHQ-9 and GAD-7 totals, as Observation.interpretation.",
    concepts=_severity_concepts(),
)
# The CodeSystems intake serves, by id.
CODE_SYSTEMS: dict[str, dict[str, Any]] = {cs["id"]: cs for cs in (ASSESSMENT_CODE_SYSTEM, SEVERITY_CODE_SYSTEM)}


def mrn_system(site: str) -> str:
    """The identifier system of a site's medical record numbers: an MRN is unique within its site only."""
    return f"urn:kapnet:{site}:mrn"


# --- Patient --------------------------------------------------------------------------------------------------


def patient_resource(patient: Patient, site: str) -> dict[str, Any]:
    """A FHIR R4 Patient: the MRN under the site's identifier system, legal and preferred names, contact
    details, the emergency contact and the preferred language. meta.versionId is our record version (the ETag)."""
    names: list[dict[str, Any]] = [
        {
            "use": "official",
            "text": f"{patient.given_name} {patient.family_name}",
            "family": patient.family_name,
            "given": [patient.given_name],
        }
    ]
    if patient.preferred_name:
        # The name the patient prefers to be called by; the legal family name is not repeated here.
        names.append({"use": "usual", "given": [patient.preferred_name]})
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "meta": {"versionId": str(patient.version)},
        "text": narrative(_patient_lines(patient, site)),
        "identifier": [
            {
                "use": "usual",
                "type": concept(
                    coding(IDENTIFIER_TYPE_SYSTEM, "MR", "Medical record number"), text="Medical record number"
                ),
                "system": mrn_system(site),
                "value": patient.mrn,
            }
        ],
        "active": patient.active,
        "name": names,
        "telecom": _telecom(patient.contact or {}),
        # Our sex values are FHIR's AdministrativeGender codes (services/intake/domain.py AdministrativeSex).
        "gender": patient.sex,
        "birthDate": fhir_date(patient.birth_date),
        "address": [_address(patient.address)] if patient.address else None,
        "contact": [_emergency_contact(patient.emergency_contact)] if patient.emergency_contact else None,
        "communication": [
            {
                "language": concept(coding(LANGUAGE_SYSTEM, patient.preferred_language)),
                "preferred": True,
            }
        ],
    }
    return drop_empty(resource)


def _patient_lines(patient: Patient, site: str) -> list[str]:
    name = f"{patient.given_name} {patient.family_name}"
    if patient.preferred_name:
        name += f" (prefers {patient.preferred_name})"
    contact = patient.contact or {}
    lines = [
        f"{name}, {patient.sex}, born {fhir_date(patient.birth_date)}."
        + ("" if patient.active else " Inactive record."),
        f"Medical record number {patient.mrn} at site {site}.",
        f"Phone {contact['phone']}" if contact.get("phone") else "",
        f"Email {contact['email']}" if contact.get("email") else "",
    ]
    if patient.address:
        address = _address(patient.address)
        parts = [*address.get("line", []), *(address.get(k) for k in ("city", "state", "postalCode", "country"))]
        lines.append("Address: " + ", ".join(str(part) for part in parts if part))
    emergency = patient.emergency_contact
    if emergency:
        who = str(emergency.get("name") or "unnamed")
        if emergency.get("relationship"):
            who += f" ({emergency['relationship']})"
        if emergency.get("phone"):
            who += f", phone {emergency['phone']}"
        lines.append(f"Emergency contact: {who}")
    lines.append(f"Preferred language: {patient.preferred_language}")
    return lines


def _telecom(contact: dict[str, Any]) -> list[dict[str, str]]:
    points = []
    if contact.get("phone"):
        points.append({"system": "phone", "value": str(contact["phone"])})
    if contact.get("email"):
        points.append({"system": "email", "value": str(contact["email"])})
    return points


def _address(address: dict[str, Any]) -> dict[str, Any]:
    return drop_empty(
        {
            "line": [line for line in (address.get("line1"), address.get("line2")) if line],
            "city": address.get("city"),
            "state": address.get("region"),
            "postalCode": address.get("postal_code"),
            # ISO 3166-1 alpha-2, which FHIR's Address.country recommends.
            "country": address.get("country"),
        }
    )


def _emergency_contact(contact: dict[str, Any]) -> dict[str, Any]:
    relationship = [concept(coding(CONTACT_ROLE_SYSTEM, "C", "Emergency Contact"))]
    if contact.get("relationship"):
        # Free text as the patient gave it ("friend", "mother"): no code is guessed for it.
        relationship.append(concept(text=str(contact["relationship"])))
    return drop_empty(
        {
            "relationship": relationship,
            "name": {"text": str(contact["name"])} if contact.get("name") else None,
            "telecom": [{"system": "phone", "value": str(contact["phone"])}] if contact.get("phone") else None,
        }
    )


# --- Observation ------------------------------------------------------------------------------------------------


def observation_resource(assessment: Assessment) -> dict[str, Any]:
    """One FHIR R4 Observation per completed form: the total as the value, one component per item answer,
    and for the PCL-5 the cluster scores, the cutoff and the provisional-diagnosis result."""
    instrument = parse_instrument(assessment.instrument)
    name = INSTRUMENT_NAMES[instrument]
    loinc = usable_loinc(instrument)
    if loinc is not None and loinc.total is not None:
        code = concept(coding(LOINC_SYSTEM, loinc.total.code, loinc.total.display), text=f"{name} total score")
    else:
        # PCL-5: LOINC 101698-9 is not verified (shared/instruments/loinc.py), so the total carries a kapnet
        # code and its text only, until the LOINC codes are confirmed and marked verified there.
        code = concept(kapnet_coding(ASSESSMENT_CODE_SYSTEM, f"{instrument.value}-total"), text=f"{name} total score")
    components = [*_item_components(instrument, name, loinc, assessment.answers), *_score_components(assessment)]
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(assessment.id),
        "status": "final",
        "category": [concept(coding(OBSERVATION_CATEGORY_SYSTEM, "survey", "Survey"))],
        "code": code,
        "subject": reference("Patient", assessment.patient_id),
        "effectiveDateTime": fhir_datetime(assessment.administered_at),
        # Who gave the form and recorded the answers: a member of staff.
        "performer": [staff(assessment.recorded_by)],
        "valueInteger": assessment.total,
        # The severity band of the PHQ-9 and GAD-7 (the PCL-5 has none): a categorical reading of the total.
        "interpretation": (
            [concept(kapnet_coding(SEVERITY_CODE_SYSTEM, assessment.severity), text=assessment.severity)]
            if assessment.severity
            else None
        ),
        # The published version the form was scored by, kept with every assessment.
        "method": {"text": assessment.instrument_version},
        "component": components,
    }
    resource["text"] = narrative(
        [
            f"{name} total score {assessment.total}"
            + (f" ({assessment.severity.replace('_', ' ')})" if assessment.severity else "")
            + f", administered {fhir_datetime(assessment.administered_at)} by {assessment.recorded_by}.",
            f"Scored as {assessment.instrument_version}.",
        ],
        header=("Measure", "Value"),
        table=[(c["code"]["text"], _value_text(c)) for c in components],
    )
    return drop_empty(resource)


def _value_text(component: dict[str, Any]) -> str:
    if "valueBoolean" in component:
        return "yes" if component["valueBoolean"] else "no"
    return str(component["valueInteger"])


def observation_resources(assessments: Iterable[Assessment]) -> list[dict[str, Any]]:
    return [observation_resource(a) for a in assessments]


def _item_components(
    instrument: Instrument, name: str, loinc: InstrumentLoinc | None, answers: Sequence[int]
) -> list[dict[str, Any]]:
    items = loinc.items if loinc is not None else None
    components = []
    for number, answer in enumerate(answers, start=1):
        if items is not None and number <= len(items):
            item_code = coding(LOINC_SYSTEM, items[number - 1].code, items[number - 1].display)
        else:
            # No confirmed LOINC item code (PCL-5): the answer still goes out, under a kapnet code.
            item_code = kapnet_coding(ASSESSMENT_CODE_SYSTEM, f"{instrument.value}-item-{number}")
        components.append({"code": concept(item_code, text=f"{name} item {number}"), "valueInteger": int(answer)})
    return components


def _score_components(assessment: Assessment) -> list[dict[str, Any]]:
    def kapnet(code: str) -> dict[str, Any]:
        """A score kapnet codes: a code of the assessment CodeSystem, which must define it."""
        found = kapnet_coding(ASSESSMENT_CODE_SYSTEM, code)
        return concept(found, text=found["display"])

    prefix = assessment.instrument
    components: list[dict[str, Any]] = []
    for cluster, score in sorted((assessment.clusters or {}).items()):
        components.append({"code": kapnet(f"{prefix}-cluster-{cluster}"), "valueInteger": int(score)})
    if assessment.provisional_ptsd is not None:
        components.append({"code": kapnet(f"{prefix}-provisional-ptsd"), "valueBoolean": assessment.provisional_ptsd})
    if assessment.cutoff is not None:
        components.append({"code": kapnet(f"{prefix}-cutoff"), "valueInteger": assessment.cutoff})
    if assessment.at_or_above_cutoff is not None:
        components.append(
            {"code": kapnet(f"{prefix}-at-or-above-cutoff"), "valueBoolean": assessment.at_or_above_cutoff}
        )
    return components


# --- Consent ----------------------------------------------------------------------------------------------------


def consent_resource(consent: Consent, document: ConsentDocument | None, site: str | None = None) -> dict[str, Any]:
    """A FHIR R4 Consent to treatment: active while signed, inactive once withdrawn (the provision's period then
    ends at the withdrawal). The signed document is named, with its version, in sourceAttachment.

    R4 has no element for the witness or the disclosures the patient confirmed, so they are in the narrative.
    """
    withdrawn = consent.withdrawn_at is not None
    version = document.version if document is not None else consent.document_version
    title = f"{document.title} (version {version})" if document is not None else f"Consent document version {version}"
    period = {"start": fhir_datetime(consent.signed_at)}
    if consent.withdrawn_at is not None:
        period["end"] = fhir_datetime(consent.withdrawn_at)
    source: dict[str, Any] = {"contentType": "text/plain", "title": title}
    if document is not None:
        source["creation"] = fhir_datetime(document.created_at)
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": str(consent.id),
        "text": narrative(_consent_lines(consent, title)),
        "status": "inactive" if withdrawn else "active",
        "scope": concept(coding(CONSENT_SCOPE_SYSTEM, "treatment", "Treatment")),
        "category": [concept(coding(LOINC_SYSTEM, CONSENT_DOCUMENT.code, CONSENT_DOCUMENT.display))],
        "patient": reference("Patient", consent.patient_id),
        "dateTime": fhir_datetime(consent.signed_at),
        # The grantor: the patient who signed.
        "performer": [reference("Patient", consent.patient_id)],
        # The custodian: the site, named by identifier (intake serves no Organization resource).
        "organization": (
            [{"identifier": {"system": "urn:kapnet:site", "value": site}, "display": f"kapnet site {site}"}]
            if site
            else None
        ),
        "sourceAttachment": source,
        # Opt-in to what the signed document describes (as in R4's own consent examples).
        "policyRule": concept(coding(ACT_CODE_SYSTEM, "OPTIN", "opt-in"), text=title),
        "provision": {
            "type": "permit",
            "period": period,
            "purpose": [coding(ACT_REASON_SYSTEM, "TREAT", "treatment")],
        },
    }
    return drop_empty(resource)


def _consent_lines(consent: Consent, title: str) -> list[str]:
    told = [
        text
        for flag, text in (
            (consent.informed_off_label_use, "that ketamine is used off-label for this treatment"),
            (consent.informed_adverse_reactions, "of the adverse reactions"),
            (consent.informed_no_long_term_data, "that long-term data are lacking"),
            (consent.informed_expected_cost, "of the expected cost"),
        )
        if flag
    ]
    lines = [
        f"Consent to treatment under {title}, signed {fhir_datetime(consent.signed_at)}, "
        f"witnessed by {consent.witnessed_by}.",
    ]
    if told:
        lines.append("The patient confirmed being told " + "; ".join(told) + ".")
    if consent.expected_cost_note:
        lines.append(f"Expected cost: {consent.expected_cost_note}")
    if consent.withdrawn_at is not None:
        reason = f": {consent.withdrawal_reason}" if consent.withdrawal_reason else ""
        lines.append(f"Withdrawn {fhir_datetime(consent.withdrawn_at)}{reason}")
    return lines
