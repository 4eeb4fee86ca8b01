"""``kapnet``: the command line for people who run a kapnet network (installed by ``make install``).

    kapnet token --site north --role clinician      a development token
    kapnet status                                   every service's health, readiness and consumer lag
    kapnet privacy audit --sites north,south ...    the privacy auditor (shared/privacy)
    kapnet webhooks sign | verify                   Standard Webhooks signatures, for a receiver's developer

Each command calls the code the services run; none holds a rule of its own.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from deploy.local_stack import planned_services
from shared.auth.permissions import Role
from shared.auth.tokens import mint_dev_token
from shared.privacy.__main__ import main as privacy_main
from shared.webhooks.signing import WebhookRefused, WebhookSecret, signed_headers, verify

app = typer.Typer(help="kapnet's command line: tokens, status, the privacy audit, webhook signatures.")
privacy = typer.Typer(help="The privacy boundary: the auditor of what the network sees.", no_args_is_help=True)
webhooks = typer.Typer(help="Standard Webhooks signatures, as kapnet signs its deliveries.", no_args_is_help=True)
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
    with httpx.Client(timeout=5) as client, Progress(transient=True, console=out) as progress:
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
