"""Schemathesis over every service's OpenAPI, against real service processes with a real broker and seeded data.

Each operation gets generated requests (Hypothesis) sent with a token of a role the permission table allows for
it, and, half the time, the ids of real records in its path, so the route's logic runs rather than stopping at a
404. Checks: no 5xx, every status documented, the documented content type, and the documented response schema.

In the suite: `tests/test_api_fuzzing.py`, a few examples per operation. Outside it, many more:

    .venv/bin/python -m tests.api_fuzzing --examples 25      # prints the figures per service
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from deploy import local_http
from deploy.kafka.launcher import KafkaNode, free_port
from deploy.processes import ServiceProcess
from shared.auth.permissions import PERMISSION_TABLE, Permission, Role
from shared.auth.tokens import mint_dev_token
from tests.harness import TEST_BROKER_JVM, running, service_process, wait_until

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SITE = "fuzz"


@dataclass
class Target:
    name: str
    process: ServiceProcess
    site: str


@dataclass
class Outcome:
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _roles_for(permission: str | None) -> list[Role]:
    if permission is None:
        return [Role.clinician]
    return sorted(PERMISSION_TABLE[Permission(permission)], key=lambda r: r.value)


@contextmanager
def services(workdir: Path, bootstrap: str) -> Iterator[list[Target]]:
    env = {
        "KAPNET_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAPNET_KAFKA_TIMEOUT_SECONDS": "3",
        "KAPNET_OUTBOX_POLL_INTERVAL_SECONDS": "0.3",
        "KAPNET_LOG_LEVEL": "warning",
    }
    site_env = {**env, "KAPNET_SITE": SITE, "KAPNET_RELEASE_PERIOD": "beat"}
    targets = [
        Target(f"{name}@{SITE}", service_process(name, workdir, **site_env), SITE)
        for name in ("intake", "sessions", "billing", "outcomes")
    ]
    network = service_process("outcomes", workdir, **env, KAPNET_ROLE="network", KAPNET_NETWORK_SITES=f'["{SITE}"]')
    targets.append(Target("outcomes@network", network, "network"))
    with running(*(t.process for t in targets)):
        yield targets


def seed(workdir: Path, targets: list[Target]) -> dict[str, str]:
    """Real records, made through the APIs, whose ids go into half the generated paths."""
    keys = workdir / "var" / "auth"
    url = {t.name.split("@")[0]: t.process.url for t in targets if t.site == SITE}

    def as_(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_dev_token(keys, site=SITE, roles=[role])}"}

    def post(base: str, path: str, role: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = local_http.post(f"{base}{path}", json=body, headers=as_(role), timeout=10)
        assert reply.is_success, f"{path}: {reply.status_code} {reply.text}"
        result: dict[str, Any] = reply.json()
        return result

    from tests.intake.test_consent_and_screening_api import NO_FLAGS

    intake = url["intake"]
    patient = post(
        intake,
        "/patients",
        "front_desk",
        {"given_name": "Fuzz", "family_name": "Case", "birth_date": "1980-02-03", "sex": "other"},
    )
    document = post(
        intake,
        "/consent-documents",
        "site_admin",
        {"version": "f1", "title": "Consent", "text": "Off-label ketamine. " * 20, "effective_date": "2026-01-01"},
    )
    screening = post(intake, f"/patients/{patient['id']}/screenings", "clinician", NO_FLAGS)
    consent = post(
        intake,
        f"/patients/{patient['id']}/consents",
        "front_desk",
        {
            "document_id": document["id"],
            "witnessed_by": "Nurse",
            "informed_off_label_use": True,
            "informed_adverse_reactions": True,
            "informed_no_long_term_data": True,
            "informed_expected_cost": True,
        },
    )
    assessment = post(
        intake, f"/patients/{patient['id']}/assessments", "clinician", {"instrument": "phq9", "answers": [1] * 8 + [1]}
    )
    flag = assessment["safety_flag"]
    post(
        intake,
        f"/patients/{patient['id']}/safety-flags/{flag['id']}/acknowledge",
        "clinician",
        {"note": "Assessed: no plan or intent."},
    )

    sessions = url["sessions"]
    body = {
        "patient_id": patient["id"],
        "indication": "treatment_resistant_depression",
        "route": "iv_infusion",
        "planned_dosing_sessions": 6,
        "dosing_sessions_per_week": 2,
        "planned_integration_sessions": 2,
    }

    def planned() -> bool:
        return (
            local_http.post(f"{sessions}/courses", json=body, headers=as_("clinician"), timeout=10).status_code == 201
        )

    wait_until(planned, timeout=60, what="sessions to learn the patient from intake")
    course = local_http.get(
        f"{sessions}/patients/{patient['id']}/courses", headers=as_("clinician"), timeout=10
    ).json()[0]
    start = time.time() + 3 * 86400
    booked = post(
        sessions,
        f"/courses/{course['id']}/sessions",
        "front_desk",
        {
            "starts_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
            "duration_minutes": 120,
            "room": "F1",
            "clinician": "c",
            "therapist": "t",
        },
    )
    return {
        "patient_id": patient["id"],
        "document_id": str(document["id"]),
        "screening_id": screening["id"],
        "consent_id": consent["id"],
        "flag_id": flag["id"],
        "course_id": course["id"],
        "session_id": booked["id"],
    }


def fuzz(target: Target, keys: Path, real: dict[str, str], examples: int) -> Outcome:
    schema = schemathesis.openapi.from_url(f"{target.process.url}/openapi.json")
    outcome = Outcome()
    tokens = {
        role: mint_dev_token(keys, site="network" if role is Role.network_admin else target.site, roles=[role.value])
        for role in Role
    }
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        permission = operation.definition.raw.get("x-kapnet-permission")
        role = Role.network_admin if target.site == "network" else _roles_for(permission)[0]
        _exercise(operation, target.process.url, {"Authorization": f"Bearer {tokens[role]}"}, real, examples, outcome)
    return outcome


def _exercise(
    operation: Any, base_url: str, headers: dict[str, str], real: dict[str, str], examples: int, outcome: Outcome
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), use_real=st.booleans())
    def run(case: Any, use_real: bool) -> None:
        if use_real:
            for name in case.path_parameters or {}:
                if name in real:
                    case.path_parameters[name] = real[name]
        outcome.cases += 1
        response = case.call(base_url=base_url, headers=headers)
        outcome.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except BaseException as exc:  # schemathesis reports failures as an exception group
            if isinstance(exc, KeyboardInterrupt):
                raise
            outcome.failures.append(f"{operation.label} -> {response.status_code}: {str(exc)[:700]}")

    run()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.api_fuzzing", description=__doc__)
    parser.add_argument("--examples", type=int, default=25, help="generated requests per operation")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp") / f"kapnet-fuzz-{uuid.uuid4().hex[:6]}")
    parser.add_argument("--only", nargs="*", help="service names to fuzz, e.g. billing@fuzz (default: all)")
    args = parser.parse_args()
    with ExitStack() as stack:
        node = stack.enter_context(KafkaNode(args.workdir / "kafka", port=free_port(), jvm_options=TEST_BROKER_JVM))
        targets = stack.enter_context(services(args.workdir, node.bootstrap_servers))
        real = seed(args.workdir, targets)
        report = {}
        for target in targets:
            if args.only and target.name not in args.only:
                continue
            began = time.monotonic()
            outcome = fuzz(target, args.workdir / "var" / "auth", real, args.examples)
            report[target.name] = {
                "cases": outcome.cases,
                "seconds": round(time.monotonic() - began, 1),
                "statuses": dict(sorted(outcome.statuses.items())),
                "server_errors": sum(n for code, n in outcome.statuses.items() if code >= 500),
                "failures": len(outcome.failures),
            }
            for failure in outcome.failures[:20]:
                print(f"{target.name} FAILED {failure}\n")
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
