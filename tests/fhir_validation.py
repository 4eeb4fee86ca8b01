"""Validation of FHIR R4 output for every service's tests: fhir.resources' R4B models (identical to R4 for the
resources we emit; the R4-only releases need pydantic 1), plus the required value sets and invariants the
models do not check, and a generated narrative on every resource (dom-6). HL7's own validator runs over every
resource type served in tests/test_fhir_hl7_validator.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

REQUIRED_CODES: dict[tuple[str, ...], frozenset[str]] = {
    ("Patient", "gender"): frozenset({"male", "female", "other", "unknown"}),
    ("Patient", "name", "use"): frozenset({"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"}),
    ("Patient", "identifier", "use"): frozenset({"usual", "official", "temp", "secondary", "old"}),
    ("Patient", "telecom", "system"): frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"}),
    ("Patient", "contact", "telecom", "system"): frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"}),
    ("Observation", "status"): frozenset(
        {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
    ),
    ("Consent", "status"): frozenset({"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}),
    ("Consent", "provision", "type"): frozenset({"deny", "permit"}),
    ("CodeSystem", "status"): frozenset({"draft", "active", "retired", "unknown"}),
    ("CodeSystem", "content"): frozenset({"not-present", "example", "fragment", "complete", "supplement"}),
    ("Bundle", "type"): frozenset(
        {"document", "message", "transaction", "transaction-response", "batch", "batch-response", "history"}
        | {"searchset", "collection"}
    ),
    ("Bundle", "entry", "search", "mode"): frozenset({"match", "include", "outcome"}),
    ("OperationOutcome", "issue", "severity"): frozenset({"fatal", "error", "warning", "information"}),
    ("OperationOutcome", "issue", "code"): frozenset({"invalid", "not-found", "forbidden", "exception", "processing"}),
}


def values(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if not path:
        yield node
        return
    if isinstance(node, list):
        for item in node:
            yield from values(item, path)
    elif isinstance(node, dict) and path[0] in node:
        yield from values(node[path[0]], path[1:])


def _no_empty_elements(node: Any, where: str) -> None:
    assert node not in ("", [], {}), f"FHIR forbids the empty element {where}"
    if isinstance(node, dict):
        for key, value in node.items():
            _no_empty_elements(value, f"{where}.{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            _no_empty_elements(value, f"{where}[{n}]")


def codings(concept: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in concept.get("coding", [])}


def assert_valid_r4(resource: dict[str, Any]) -> None:
    kind = resource["resourceType"]
    get_fhir_model_class(kind).model_validate(resource)  # raises pydantic.ValidationError
    _no_empty_elements(resource, kind)
    if kind != "Bundle":
        # dom-6: a resource should have a narrative; ours is generated from its elements, in XHTML (txt-1).
        assert resource.get("text", {}).get("status") == "generated", f"{kind} has no generated narrative (dom-6)"
        assert resource["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">'), "txt-1"
        assert resource["text"]["div"].endswith("</div>"), "txt-1"
    for (resource_type, *path), allowed in REQUIRED_CODES.items():
        if resource_type == kind:
            for value in values(resource, tuple(path)):
                assert value in allowed, f"{kind}.{'.'.join(path)} = {value!r} is not in the required value set"
    if kind == "Patient":
        # pat-1: a contact names a person, a telecom, an address or an organization.
        for contact in resource.get("contact", []):
            assert {"name", "telecom", "address", "organization"} & contact.keys(), "pat-1"
    if kind == "Observation":
        # obs-7: a component with a value never repeats the Observation's own code.
        for component in resource.get("component", []):
            assert not codings(component["code"]) & codings(resource["code"]), "obs-7"
        assert "dataAbsentReason" not in resource, "obs-6: there is always a value"
    if kind == "Consent":
        assert "policy" in resource or "policyRule" in resource, "ppc-1"
        assert "patient" in resource, "ppc-2..5: a treatment consent names its patient"
        assert "sourceAttachment" not in resource or "sourceReference" not in resource, "source[x] is one element"
    if kind == "CodeSystem":
        codes = [c["code"] for c in resource["concept"]]
        assert len(codes) == len(set(codes)), "csd-1: codes are unique"
        assert resource.get("count") == len(codes) and resource["content"] == "complete"
        assert all(c.get("display") and c.get("definition") for c in resource["concept"])
    if kind == "Bundle":
        full_urls = [e["fullUrl"] for e in resource.get("entry", [])]
        assert len(full_urls) == len(set(full_urls)), "bdl-7"
        assert resource["type"] == "searchset" or "total" not in resource, "bdl-1"
        for entry in resource.get("entry", []):
            assert_valid_r4(entry["resource"])
