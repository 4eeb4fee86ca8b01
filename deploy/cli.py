"""``kapnet``: the command line for people who run a kapnet network (installed by ``make install``).

    kapnet token --site north --role clinician      a development token
    kapnet status                                   every service's health, readiness and consumer lag
    kapnet seed --patients 500                      the synthetic cohort (deploy/synthetic.py), onto the topics
    kapnet replay --site north outcomes             rebuild a service's projections from its topics (shared/replay.py)
    kapnet privacy audit --sites north,south ...    the privacy auditor (shared/privacy)
    kapnet webhooks list | register | pause | resume | delete | rotate | deliveries | replay | audience
                                                    a site's (or the network's) webhook endpoints, through its API
    kapnet webhooks sign | verify                   Standard Webhooks signatures, for a receiver's developer

Each command calls the code the services run; none holds a rule of its own.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from deploy import local_http, synthetic
from deploy.local_stack import planned_services
from shared.auth.permissions import Role
from shared.auth.tokens import mint_dev_token
from shared.events.audience import audience_table
from shared.privacy.__main__ import main as privacy_main
from shared.replay import NothingToRebuild, ServiceRunning, rebuild_projections
from shared.settings import ServiceSettings
from shared.webhooks.signing import WebhookRefused, WebhookSecret, signed_headers, verify

app = typer.Typer(help="kapnet's command line: tokens, status, seed, replay, the privacy audit, webhooks.")
privacy = typer.Typer(help="The privacy boundary: the auditor of what the network sees.", no_args_is_help=True)
webhooks = typer.Typer(
    help="Webhook endpoints through the webhooks service's API, and Standard Webhooks signatures.",
    no_args_is_help=True,
)
app.add_typer(privacy, name="privacy")
app.add_typer(webhooks, name="webhooks")
out = Console()


def _var_dir() -> Path:
    return Path(os.environ.get("KAPNET_VAR_DIR", "var"))


@app.command()
def token(
    site: Annotated[str, typer.Option(help="the site, or 'network' for a network administrator")],
    role: Annotated[list[Role], typer.Option(help="a role; repeat for several")],
    sub: Annotated[str | None, typer.Option(help="the user's id (default dev-<role>-<site>)")] = None,
    name: Annotated[str | None, typer.Option(help="the user's display name")] = None,
    hours: Annotated[float, typer.Option(min=0.01, max=24 * 7)] = 12.0,
    key_dir: Annotated[Path | None, typer.Option(help="the development key (default $KAPNET_VAR_DIR/auth)")] = None,
) -> None:
    """A development token the services trust (signed with the development key; never in production)."""
    roles = [r.value for r in role]
    print(mint_dev_token(key_dir or _var_dir() / "auth", site=site, roles=roles, sub=sub, name=name, hours=hours))


def _service_status(client: httpx.Client, name: str, url: str) -> dict[str, Any]:
    try:
        health = client.get(f"{url}/healthz")
        ready = client.get(f"{url}/readyz")
    except httpx.HTTPError as exc:
        return {"name": name, "url": url, "health": f"unreachable ({type(exc).__name__})", "ready": False}
    found: dict[str, Any] = {"name": name, "url": url, "health": "ok" if health.status_code == 200 else "failing"}
    if ready.status_code == 404:  # the consoles keep no database and read no topic: alive is ready
        found |= {"ready": health.status_code == 200, "checks": {}, "consumers": []}
        return found
    body = ready.json() if ready.headers.get("content-type", "").startswith("application/json") else {}
    found |= {
        "ready": ready.status_code == 200,
        "checks": body.get("checks", {}),
        "consumers": body.get("consumers", []),
    }
    return found


@app.command()
def status(
    port_base: Annotated[int, typer.Option(help="the local network's port base (make run's is 8000)")] = 8000,
    service: Annotated[
        list[str] | None, typer.Option(help="NAME=URL instead of the local network's plan; repeat for several")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Every service's health and readiness, and each consumer's lag (records behind the topic's end). Exits 1
    when one is not ready."""
    if service:
        targets = dict(item.split("=", 1) for item in service)
    else:
        targets = {name: f"http://127.0.0.1:{port}" for name, port in planned_services(port_base).items()}
    with local_http.client(timeout=5) as client, Progress(transient=True, console=out) as progress:
        asking = progress.add_task("asking each service", total=len(targets))
        found = []
        for name, url in targets.items():
            found.append(_service_status(client, name, url))
            progress.advance(asking)
    if as_json:
        print(json.dumps(found, indent=2))
    else:
        table = Table("service", "health", "ready", "consumers (lag)", title="kapnet status")
        for one in found:
            consumers = ", ".join(f"{c['name']} ({c['lag']})" for c in one.get("consumers", [])) or "-"
            problems = [f"{k}: {v}" for k, v in one.get("checks", {}).items() if v != "ok"]
            ready = "yes" if one["ready"] else "no" + (f" ({'; '.join(problems)})" if problems else "")
            table.add_row(one["name"], one["health"], ready, consumers)
        out.print(table)
    if not all(one["ready"] for one in found):
        raise typer.Exit(1)


@contextmanager
def progress_bar(what: str) -> Iterator[Any]:
    """A progress bar and the ``progress(done, total)`` callback that moves it."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=out) as bar:
        task = bar.add_task(what, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress


@app.command()
def seed(
    patients: Annotated[int, typer.Option(min=1, help="invented patients over all the sites")] = 200,
    sites: Annotated[str, typer.Option(help="comma-separated site names")] = "north,south",
    random_seed: Annotated[int, typer.Option("--seed", help="the same seed gives the same events")] = 1,
    end: Annotated[str | None, typer.Option(help="YYYY-MM-DD: every event happens before it")] = None,
    bootstrap_servers: Annotated[
        str, typer.Option(envvar="KAPNET_KAFKA_BOOTSTRAP_SERVERS", help="a development broker (PLAINTEXT)")
    ] = "127.0.0.1:9092",
    wait_for: Annotated[
        list[str] | None, typer.Option(help="a service URL to wait for until its consumers caught up; repeat")
    ] = None,
    force: Annotated[bool, typer.Option(help="publish even onto site topics that already hold records")] = False,
) -> None:
    """The synthetic cohort (deploy/synthetic.py): months of invented history, published as the services' events.
    Development only: refused when KAPNET_ENVIRONMENT is production, or onto topics that hold records unless
    --force."""
    argv = ["--patients", str(patients), "--site-names", sites, "--seed", str(random_seed)]
    argv += [
        "--bootstrap-servers",
        bootstrap_servers,
        *(["--end", end] if end else []),
        *(["--force"] if force else []),
    ]
    if wait_for:
        argv += ["--wait-for", *wait_for]
    with progress_bar("publishing events") as progress:
        try:
            code = synthetic.main(argv, progress=progress)
        except SystemExit as refused:  # argparse's refusal: its message is already on stderr
            code = refused.code if isinstance(refused.code, int) else 2
    raise typer.Exit(code)


@app.command()
def replay(
    service: Annotated[str, typer.Argument(help="the service whose projections to rebuild, e.g. outcomes")],
    site: Annotated[str | None, typer.Option(help="the site (omit with --network)")] = None,
    network: Annotated[bool, typer.Option("--network", help="the network role's projections")] = False,
) -> None:
    """Rebuild a service's projections from its topics, with the service stopped: forget them and its inbox, then
    read every record again through the handlers the service runs. Its database and broker come from the same
    KAPNET_* settings the service starts with."""
    overrides: dict[str, Any] = {"service": service, "role": "network" if network else "site"}
    if site:
        overrides["site"] = site
    try:
        settings = ServiceSettings(**overrides)
    except ValueError as invalid:
        out.print(f"[red]refused:[/red] {invalid}")
        raise typer.Exit(2) from None
    module = importlib.import_module(f"services.{settings.service}.app")
    definition_for = getattr(module, "definition_for", None)
    if definition_for is None:
        out.print(f"[red]refused:[/red] {settings.service} keeps no projection to rebuild")
        raise typer.Exit(2)
    with progress_bar(f"replaying into {settings.instance}") as progress:
        try:
            report = asyncio.run(rebuild_projections(settings, definition_for(settings), progress))
        except (ServiceRunning, NothingToRebuild) as refused:
            out.print(f"[red]refused:[/red] {refused}")
            raise typer.Exit(1) from None
    out.print(
        f"{report.consumer}: {report.rows_forgotten} rows of {len(report.tables)} tables forgotten; "
        f"{report.records_read} records read again, {report.processed} taken in, {report.dead_lettered} dead-lettered"
    )


@privacy.command("audit")
def privacy_audit(
    sites: Annotated[str | None, typer.Option(help="comma-separated site names (default KAPNET_NETWORK_SITES)")] = None,
    bootstrap_servers: Annotated[str | None, typer.Option(help="the broker (default from KAPNET_* settings)")] = None,
    network_url: Annotated[str | None, typer.Option(help="the network API, to audit its replies too")] = None,
    token: Annotated[str | None, typer.Option(help="a network administrator's token for the API")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the broker and the API")] = 60.0,
) -> None:
    """Everything the network has seen, every version, against the release rules: exits 1 on any finding."""
    argv = ["audit", "--timeout", str(timeout)]
    for flag, value in (
        ("--sites", sites),
        ("--bootstrap-servers", bootstrap_servers),
        ("--network-url", network_url),
        ("--token", token),
    ):
        if value:
            argv += [flag, value]
    raise typer.Exit(privacy_main(argv))


NORTH_WEBHOOKS = "http://127.0.0.1:8105"  # make run's north site
WebhooksUrl = Annotated[
    str, typer.Option("--url", envvar="KAPNET_WEBHOOKS_URL", help="the webhooks service (make run: north's)")
]
AdminToken = Annotated[
    str, typer.Option(envvar="KAPNET_TOKEN", help="a site admin's token (network admin's on the network)")
]
EndpointId = Annotated[str, typer.Argument(help="the endpoint's id")]


def _call(method: str, url: str, path: str, token: str, **kwargs: Any) -> Any:
    """One call to the webhooks API; its refusal (the API's own message) ends the command with 1."""
    try:
        reply = local_http.request(
            method,
            f"{url.rstrip('/')}/webhooks{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=15,
            **kwargs,
        )
    except httpx.HTTPError as exc:
        out.print(f"[red]unreachable:[/red] {url} ({type(exc).__name__})")
        raise typer.Exit(1) from None
    if reply.status_code >= 400:
        try:
            detail = reply.json().get("detail", reply.text)
        except ValueError:
            detail = reply.text
        out.print(f"[red]refused ({reply.status_code}):[/red] {detail}")
        raise typer.Exit(1)
    return reply.json() if reply.content else None


def _endpoints_table(found: list[dict[str, Any]]) -> None:
    table = Table("id", "status", "role", "url", "event types", "failures", title="webhook endpoints")
    for one in found:
        table.add_row(
            one["id"], one["status"], one["role"], one["url"], "\n".join(one["event_types"]),
            str(one["consecutive_failures"]),
        )  # fmt: skip
    out.print(table)


@webhooks.command("list")
def webhooks_list(
    url: WebhooksUrl = NORTH_WEBHOOKS,
    token: AdminToken = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every endpoint not deleted."""
    found = _call("GET", url, "/endpoints", token)
    if as_json:
        print(json.dumps(found, indent=2))
    else:
        _endpoints_table(found)


@webhooks.command("event-types")
def webhooks_event_types(
    role: Annotated[Role, typer.Option(help="whose view the endpoint receives")],
    url: WebhooksUrl = NORTH_WEBHOOKS,
    token: AdminToken = "",
) -> None:
    """The event types an endpoint registered for ROLE may receive."""
    for ce_type in _call("GET", url, "/event-types", token, params={"role": role.value}):
        print(ce_type)


@webhooks.command("audience")
def webhooks_audience(
    network: Annotated[bool, typer.Option("--network", help="the aggregates, on the network")] = False,
) -> None:
    """Who may receive each event type, and the fields only some roles see, as Markdown (docs/subscribing.md)."""
    print(audience_table("network" if network else "site"))


@webhooks.command("register")
def webhooks_register(
    endpoint_url: Annotated[str, typer.Argument(help="the receiver's URL (https)")],
    role: Annotated[Role, typer.Option(help="whose view of each event it receives; you must hold the role")],
    event_type: Annotated[list[str], typer.Option(help="a CloudEvents type; repeat for several")],
    description: Annotated[str | None, typer.Option()] = None,
    url: WebhooksUrl = NORTH_WEBHOOKS,
    token: AdminToken = "",
) -> None:
    """Register an endpoint. Prints it and its signing secret: the secret is shown this once."""
    body = {"url": endpoint_url, "role": role.value, "event_types": event_type, "description": description}
    print(json.dumps(_call("POST", url, "/endpoints", token, json=body), indent=2))


def _endpoint_action(method: str, suffix: str, endpoint_id: str, url: str, token: str) -> None:
    found = _call(method, url, f"/endpoints/{endpoint_id}{suffix}", token)
    if found is not None:
        print(json.dumps(found, indent=2))


@webhooks.command("pause")
def webhooks_pause(endpoint_id: EndpointId, url: WebhooksUrl = NORTH_WEBHOOKS, token: AdminToken = "") -> None:
    """Hold its deliveries: they wait, in order, until it is resumed."""
    _endpoint_action("POST", "/pause", endpoint_id, url, token)


@webhooks.command("resume")
def webhooks_resume(endpoint_id: EndpointId, url: WebhooksUrl = NORTH_WEBHOOKS, token: AdminToken = "") -> None:
    """Send again, after a pause or after it was disabled for repeated failures."""
    _endpoint_action("POST", "/resume", endpoint_id, url, token)


@webhooks.command("delete")
def webhooks_delete(endpoint_id: EndpointId, url: WebhooksUrl = NORTH_WEBHOOKS, token: AdminToken = "") -> None:
    """Delete it: nothing more is queued, and what waited is cancelled."""
    _endpoint_action("DELETE", "", endpoint_id, url, token)
    out.print(f"deleted {endpoint_id}")


@webhooks.command("rotate")
def webhooks_rotate(endpoint_id: EndpointId, url: WebhooksUrl = NORTH_WEBHOOKS, token: AdminToken = "") -> None:
    """A new signing secret, shown this once; the old one still signs for 24 hours."""
    _endpoint_action("POST", "/secret/rotate", endpoint_id, url, token)


@webhooks.command("deliveries")
def webhooks_deliveries(
    endpoint_id: EndpointId,
    status_: Annotated[str | None, typer.Option("--status", help="pending, delivered, failed or cancelled")] = None,
    url: WebhooksUrl = NORTH_WEBHOOKS,
    token: AdminToken = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The delivery log, in queue order, every page of it."""
    found: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"after": found[-1]["sequence"] if found else 0, "limit": 500}
        if status_:
            params["status"] = status_
        page = _call("GET", url, f"/endpoints/{endpoint_id}/deliveries", token, params=params)
        found += page
        if len(page) < 500:
            break
    if as_json:
        print(json.dumps(found, indent=2))
        return
    table = Table("webhook-id", "event type", "status", "attempts", "last answer", title=f"deliveries of {endpoint_id}")
    for one in found:
        answer = one["last_error"] or (str(one["last_response_status"]) if one["last_response_status"] else "-")
        table.add_row(one["message_id"], one["event_type"], one["status"], str(one["attempts"]), answer)
    out.print(table)


@webhooks.command("replay")
def webhooks_replay(
    endpoint_id: EndpointId,
    message_id: Annotated[
        str | None, typer.Argument(help="one delivery's webhook-id; omit for every failed one")
    ] = None,
    url: WebhooksUrl = NORTH_WEBHOOKS,
    token: AdminToken = "",
) -> None:
    """Queue a failed delivery again with the same webhook-id, or every failed one of the endpoint."""
    path = f"/endpoints/{endpoint_id}/" + (f"deliveries/{message_id}/replay" if message_id else "replay-failed")
    queued = _call("POST", url, path, token)
    out.print(f"queued again: {len(queued) if isinstance(queued, list) else 1}")


@webhooks.command("sign")
def webhooks_sign(
    secret: Annotated[str, typer.Option(help="the endpoint's secret, whsec_...; repeat during a rotation")],
    body: Annotated[Path, typer.Argument(help="the delivery's body, a file", exists=True, dir_okay=False)],
    message_id: Annotated[str, typer.Option(help="the webhook-id")] = "msg_example",
) -> None:
    """The headers kapnet would send with this body: to test a receiver."""
    headers = signed_headers([WebhookSecret.parse(secret)], message_id, datetime.now(UTC), body.read_bytes())
    print(json.dumps(headers, indent=2))


@webhooks.command("verify")
def webhooks_verify(
    secret: Annotated[str, typer.Option(help="the endpoint's secret, whsec_...")],
    headers: Annotated[Path, typer.Argument(help="the delivery's headers, a JSON object", exists=True)],
    body: Annotated[Path, typer.Argument(help="the delivery's body, as received", exists=True)],
) -> None:
    """Whether a delivery's signature and timestamp verify, as a receiver checks them."""
    try:
        verify(WebhookSecret.parse(secret), json.loads(headers.read_text()), body.read_bytes(), datetime.now(UTC))
    except WebhookRefused as refused:
        out.print(f"[red]not verified:[/red] {refused}")
        raise typer.Exit(1) from None
    out.print("verified")


if __name__ == "__main__":
    app()
