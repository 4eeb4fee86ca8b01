"""The `kapnet` command line: each command calls the code the services run, checked from the outside (a token the
services verify, signatures Standard Webhooks' library verifies, status read from real services)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from deploy.cli import app
from deploy.synthetic import caught_up, record_counts
from shared.auth.guard import build_verifier
from shared.auth.tokens import mint_dev_token
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


def test_webhooks_audience_prints_what_the_subscriber_guide_shows() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "subscribing.md").read_text()
    for flags in ([], ["--network"]):
        printed = runner.invoke(app, ["webhooks", "audience", *flags])
        assert printed.exit_code == 0 and printed.output.strip() in guide
    site = runner.invoke(app, ["webhooks", "audience"]).output
    # A billing endpoint gets a completed session without its dose.
    assert "`dose_mg`: clinician, therapist;" in site


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


def _rows(database: Path, *tables: str) -> dict[str, int]:
    with sqlite3.connect(database) as connection:
        return {t: connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


@pytest.mark.broker
def test_seed_publishes_the_cohort_and_replay_rebuilds_outcomes_from_it(kafka: str, tmp_path: Path) -> None:
    site = f"cli{uuid.uuid4().hex[:6]}"
    seeded = runner.invoke(app, ["seed", "--patients", "6", "--sites", site, "--bootstrap-servers", kafka])
    assert seeded.exit_code == 0, seeded.output
    assert "publishing events" in seeded.output and "synthetic cohort:" in seeded.output
    topics = [f"kapnet.{site}.{service}.v1" for service in ("intake", "sessions", "billing")]
    held = asyncio.run(record_counts(kafka, topics))
    assert all(held[t] > 0 for t in topics), held
    again = runner.invoke(app, ["seed", "--patients", "6", "--sites", site, "--bootstrap-servers", kafka])
    assert again.exit_code == 2 and held == asyncio.run(record_counts(kafka, topics))  # refused, nothing added

    env = {"KAPNET_VAR_DIR": str(tmp_path / "var"), "KAPNET_KAFKA_BOOTSTRAP_SERVERS": kafka, "KAPNET_SITE": site}
    outcomes = service_process("outcomes", tmp_path, **env)
    database = tmp_path / "var" / site / "outcomes.db"
    tables = ("outcome_patient", "outcome_course", "outcome_dose", "outcome_measurement", "registration")
    with running(outcomes):
        wait_until(lambda: _rows(database, "outcome_patient")["outcome_patient"] == 6, timeout=90, what="patients")
        assert caught_up([outcomes.url], 90, print), "outcomes' consumer still lags"
        built = _rows(database, *tables)
        assert built["outcome_patient"] == 6 and built["outcome_measurement"] > 6, built
        beside = runner.invoke(app, ["replay", "outcomes", "--site", site], env=env)
        assert beside.exit_code == 1 and "stop the service first" in beside.output
    # The service is stopped; its group has no member once the broker notices (at once: it left the group).
    replayed = runner.invoke(app, ["replay", "outcomes", "--site", site], env=env)
    assert replayed.exit_code == 0, replayed.output
    assert f"outcomes@{site}" in replayed.output and "records read again" in replayed.output
    assert _rows(database, *tables) == built
    nothing = runner.invoke(app, ["replay", "intake", "--site", site], env=env)
    assert nothing.exit_code == 2 and "no projection" in nothing.output


@pytest.mark.broker
def test_webhooks_commands_manage_an_endpoint_through_the_api(kafka: str, tmp_path: Path) -> None:
    site = f"cli{uuid.uuid4().hex[:6]}"
    hooks = service_process("webhooks", tmp_path, KAPNET_KAFKA_BOOTSTRAP_SERVERS=kafka, KAPNET_SITE=site)
    token = mint_dev_token(tmp_path / "var" / "auth", site=site, roles=["site_admin", "billing"])
    with running(hooks):
        given = ["--url", hooks.url, "--token", token]
        kinds = runner.invoke(app, ["webhooks", "event-types", "--role", "billing", *given])
        assert kinds.exit_code == 0 and "org.kapnet.intake.patient.registered.v1" in kinds.output
        registered = runner.invoke(
            app,
            ["webhooks", "register", "https://crm.example.org/kapnet", "--role", "billing",
             "--event-type", "org.kapnet.intake.patient.registered.v1", *given],
        )  # fmt: skip
        assert registered.exit_code == 0, registered.output
        created = json.loads(registered.output)
        endpoint, secret = created["endpoint"]["id"], created["secret"]
        assert secret.startswith("whsec_")
        listed = runner.invoke(app, ["webhooks", "list", "--json", *given])
        assert [e["id"] for e in json.loads(listed.output)] == [endpoint]
        paused = runner.invoke(app, ["webhooks", "pause", endpoint, *given])
        assert paused.exit_code == 0 and json.loads(paused.output)["status"] == "paused"
        resumed = runner.invoke(app, ["webhooks", "resume", endpoint, *given])
        assert json.loads(resumed.output)["status"] == "active"
        rotated = runner.invoke(app, ["webhooks", "rotate", endpoint, *given])
        assert rotated.exit_code == 0 and json.loads(rotated.output)["secret"] not in ("", secret)
        log = runner.invoke(app, ["webhooks", "deliveries", endpoint, "--json", *given])
        assert log.exit_code == 0 and json.loads(log.output) == []
        replayed = runner.invoke(app, ["webhooks", "replay", endpoint, *given])
        assert replayed.exit_code == 0 and "queued again: 0" in replayed.output
        # The API's refusal, in its own words: a clinical event for the billing role.
        refused = runner.invoke(
            app,
            ["webhooks", "register", "https://crm.example.org/kapnet", "--role", "billing",
             "--event-type", "org.kapnet.sessions.dose.administered.v1", *given],
        )  # fmt: skip
        assert refused.exit_code == 1 and "refused (4" in refused.output
        deleted = runner.invoke(app, ["webhooks", "delete", endpoint, *given])
        assert deleted.exit_code == 0, deleted.output
        assert json.loads(runner.invoke(app, ["webhooks", "list", "--json", *given]).output) == []
        stranger = runner.invoke(app, ["webhooks", "list", "--url", hooks.url, "--token", "not-a-token"])
        assert stranger.exit_code == 1 and "refused (401)" in stranger.output
