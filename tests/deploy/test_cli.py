"""The `kapnet` command line: each command calls the code the services run, checked from the outside (a token the
services verify, signatures Standard Webhooks' library verifies, status read from real services)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from deploy.cli import app
from shared.auth.guard import build_verifier
from shared.settings import ServiceSettings
from shared.webhooks.signing import WebhookSecret
from tests.harness import running, service_process, wait_until

runner = CliRunner()


def test_token_mints_what_the_services_verify(tmp_path: Path) -> None:
    keys = tmp_path / "auth"
    done = runner.invoke(app, ["token", "--site", "north", "--role", "clinician", "--key-dir", str(keys)])
    assert done.exit_code == 0, done.output
    # The services' own verifier, reading the development key where the token was minted with it.
    verifier = build_verifier(ServiceSettings(service="intake", site="north", var_dir=tmp_path))
    principal = asyncio.run(verifier.verify(done.output.strip()))
    assert (principal.site, [r.value for r in principal.roles]) == ("north", ["clinician"])
    refused = runner.invoke(app, ["token", "--site", "north", "--role", "janitor", "--key-dir", str(keys)])
    assert refused.exit_code == 2 and "janitor" in refused.output


def test_webhooks_sign_is_verified_by_the_standard_library_and_by_verify(tmp_path: Path) -> None:
    secret = str(WebhookSecret.new())
    body = tmp_path / "body.json"
    body.write_text('{"type": "dev.kapnet.test", "data": {}}')
    signed = runner.invoke(app, ["webhooks", "sign", "--secret", secret, str(body), "--message-id", "msg_9"])
    assert signed.exit_code == 0, signed.output
    headers = json.loads(signed.output)
    Webhook(secret).verify(body.read_bytes(), headers)
    (tmp_path / "headers.json").write_text(signed.output)
    checked = runner.invoke(app, ["webhooks", "verify", "--secret", secret, str(tmp_path / "headers.json"), str(body)])
    assert checked.exit_code == 0 and "verified" in checked.output
    other = str(WebhookSecret.new())
    refused = runner.invoke(app, ["webhooks", "verify", "--secret", other, str(tmp_path / "headers.json"), str(body)])
    assert refused.exit_code == 1 and "no signature matches" in refused.output


@pytest.mark.broker
def test_status_reads_health_readiness_and_consumer_lag_from_the_services(kafka: str, tmp_path: Path) -> None:
    sessions = service_process("sessions", tmp_path, KAPNET_KAFKA_BOOTSTRAP_SERVERS=kafka, KAPNET_SITE="cli")
    with running(sessions):
        targets = ["--service", f"sessions@cli={sessions.url}"]
        # Ready once its consumers have joined their group and caught up.
        wait_until(lambda: runner.invoke(app, ["status", *targets]).exit_code == 0, timeout=60, what="ready")
        up = runner.invoke(app, ["status", *targets, "--json"])
        assert up.exit_code == 0, up.output
        [found] = json.loads(up.output)
        assert found["health"] == "ok" and found["ready"] is True
        assert found["consumers"] and all(c["lag"] == 0 for c in found["consumers"] if c["lag"] is not None)
        table = runner.invoke(app, ["status", *targets])
        assert table.exit_code == 0 and "sessions@cli" in table.output
    down = runner.invoke(app, ["status", "--service", f"sessions@cli={sessions.url}"])
    assert down.exit_code == 1 and "unreachable" in down.output


@pytest.mark.broker
def test_privacy_audit_runs_the_auditor_and_says_when_it_cannot_read(kafka: str) -> None:
    # A site that never published: the auditor cannot read its network topic, and says so (exit 2, not "clean").
    missing = runner.invoke(
        app, ["privacy", "audit", "--sites", "nosuchsite", "--bootstrap-servers", kafka, "--timeout", "5"]
    )
    assert missing.exit_code == 2, missing.output
