"""Every service's /asyncapi.json, as the HTTP route serves it, passes the official AsyncAPI parser
(@asyncapi/parser, pinned in deploy/tools/asyncapi and installed by ``make prerequisites``) without errors.

Nothing here is skipped: without Node.js or the installed parser the tests fail and say what to run."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from services.billing.app import create_app as create_billing
from services.intake.app import create_app as create_intake
from services.outcomes.app import create_app as create_outcomes
from services.sessions.app import create_app as create_sessions
from shared.settings import ServiceSettings
from tests.harness import ROOT, app_in_process

TOOL = ROOT / "deploy" / "tools" / "asyncapi"
VALIDATOR = TOOL / "validate.mjs"
PARSER = "@asyncapi/parser"
HOW_TO_FIX = "run `make prerequisites` (it runs `npm ci` in deploy/tools/asyncapi)"

SERVICES: dict[str, tuple[Callable[[ServiceSettings], FastAPI], dict[str, Any]]] = {
    "intake@north": (create_intake, {"service": "intake", "site": "north"}),
    "sessions@north": (create_sessions, {"service": "sessions", "site": "north"}),
    "billing@north": (create_billing, {"service": "billing", "site": "north"}),
    "outcomes@north": (create_outcomes, {"service": "outcomes", "site": "north"}),
    "outcomes@network": (create_outcomes, {"service": "outcomes", "role": "network", "network_sites": ["north"]}),
}
# A document the parser must refuse, so that a validator which passes everything cannot go unnoticed.
BROKEN = "broken-control"


def node_and_pinned_parser() -> str:
    """The node executable, once it is sure the parser pinned in package.json is the one installed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"Node.js (`node`) is not on PATH: install Node.js 20, then {HOW_TO_FIX}", pytrace=False)
    pinned = json.loads((TOOL / "package.json").read_text())["dependencies"][PARSER]
    installed_manifest = TOOL / "node_modules" / PARSER / "package.json"
    if not installed_manifest.is_file():
        pytest.fail(f"{PARSER} is not installed in {TOOL}: {HOW_TO_FIX}", pytrace=False)
    installed = json.loads(installed_manifest.read_text())["version"]
    if installed != pinned:
        pytest.fail(f"{PARSER} {installed} is installed but {pinned} is pinned: {HOW_TO_FIX}", pytrace=False)
    return node


def broken(document: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(document))
    operation = next(iter(copy["operations"].values()))
    operation["channel"] = {"$ref": "#/channels/no-such-channel"}
    return copy


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each service's /asyncapi.json, exactly as its HTTP route serves it."""
    var_dir = tmp_path_factory.mktemp("asyncapi-services")
    documents: dict[str, str] = {}
    for name, (create_app, options) in SERVICES.items():
        # No broker: the document is generated from the event registry, not from Kafka.
        settings = ServiceSettings(
            **options, var_dir=var_dir, kafka_bootstrap_servers="127.0.0.1:1", kafka_timeout_seconds=1
        )
        async with app_in_process(create_app(settings)) as client:
            response = await client.get("/asyncapi.json")
        assert response.status_code == 200, f"{name}: GET /asyncapi.json -> {response.status_code}"
        documents[name] = response.text
    return documents


@pytest.fixture(scope="module")
def reports(served: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The parser's report on each served document, from one run of the validator over all of them."""
    node = node_and_pinned_parser()
    workdir = tmp_path_factory.mktemp("asyncapi")
    files = {name: workdir / f"{name}.json" for name in [*served, BROKEN]}
    for name, text in served.items():
        files[name].write_text(text)
    files[BROKEN].write_text(json.dumps(broken(json.loads(served["intake@north"]))))

    run = subprocess.run(
        [node, str(VALIDATOR), "--json", *(str(path) for path in files.values())],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"the validator printed no report (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
    assert [entry["source"] for entry in report] == [str(path) for path in files.values()], run.stderr
    assert run.returncode == (1 if any(entry["errors"] for entry in report) else 0), run.stderr
    return dict(zip(files, report, strict=True))


def described(report: dict[str, Any], *severities: str) -> list[str]:
    return [
        f"{d['severity']} {d['path']}: {d['message']} [{d['code']}]"
        for d in report["diagnostics"]
        if d["severity"] in severities
    ]


@pytest.mark.parametrize("name", list(SERVICES))
def test_the_served_asyncapi_document_passes_the_official_parser(reports: dict[str, dict[str, Any]], name: str) -> None:
    report = reports[name]
    warnings = described(report, "warning")
    for line in [*warnings, *described(report, "info", "hint")]:
        print(f"{name}: {line}")
    errors = described(report, "error")
    assert report["errors"] == len(errors) == 0, f"{name}: {len(errors)} error(s):\n" + "\n".join(errors)
    assert report["warnings"] == len(warnings)


def test_the_validator_reports_errors_it_is_given(reports: dict[str, dict[str, Any]]) -> None:
    errors = described(reports[BROKEN], "error")
    assert reports[BROKEN]["errors"] == len(errors) > 0
    assert any("#/channels/no-such-channel" in line for line in errors), errors
