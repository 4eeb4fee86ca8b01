"""Schemathesis over every service's OpenAPI (tests/api_fuzzing.py), bounded to a few generated requests per
operation so the suite stays quick: no 5xx, every status documented, the documented content type and schema.
`python -m tests.api_fuzzing --examples 60` runs thousands more outside the suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api_fuzzing import fuzz, seed, services

pytestmark = pytest.mark.broker

EXAMPLES_PER_OPERATION = 8


def test_no_service_answers_an_error_its_openapi_does_not_describe(kafka: str, tmp_path: Path) -> None:
    with services(tmp_path, kafka) as targets:
        real = seed(tmp_path, targets)
        report = {}
        for target in targets:
            outcome = fuzz(target, tmp_path / "var" / "auth", real, EXAMPLES_PER_OPERATION)
            report[target.name] = outcome
            assert outcome.cases > 0, target.name
    failures = [f"{name}: {failure}" for name, outcome in report.items() for failure in outcome.failures]
    assert not failures, "\n\n".join(failures[:10])
    server_errors = {name: sum(n for code, n in o.statuses.items() if code >= 500) for name, o in report.items()}
    assert set(server_errors.values()) == {0}, server_errors
