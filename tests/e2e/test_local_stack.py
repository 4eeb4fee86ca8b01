"""``make run``'s launcher: everything comes up with demo data, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from deploy import local_http
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, accessible
from tests.harness import ROOT, wait_until

pytestmark = pytest.mark.broker


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def free_kafka_port() -> int:
    """A port whose next two are free too: the broker takes three (services, controller, admin). Below the
    ephemeral range, so no client's outgoing connection holds one of them when the broker binds it."""
    for _ in range(50):
        port = random.randrange(30000, 32700)
        if all(port_free(p) for p in (port, port + 1, port + 2)):
            return port
    raise RuntimeError("no free ports for Kafka")


def free_port_base() -> int:
    for _ in range(50):
        base = random.randrange(10000, 30000, 1000)  # below the ephemeral range other tests draw from
        ports = [base + 100 * s + n for s in (1, 2) for n in range(1, 5)] + [base + 300]
        if all(port_free(p) for p in ports):
            return base
    raise RuntimeError("no free port range")


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return [pid for pid in found if pid != os.getpid()]


def service_pids(var_dir: Path, service: str, site: str) -> list[int]:
    """The pids of one service of the stack, told apart by their environment (the command line is the same)."""
    wanted = {f"KAPNET_VAR_DIR={var_dir}", f"KAPNET_SERVICE={service}", f"KAPNET_SITE={site}"}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environment = set((entry / "environ").read_bytes().decode(errors="replace").split("\0"))
            except OSError:
                continue
            if wanted <= environment and b"services." in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


class Console:
    """The launcher's output, read line by line on a thread, so a test can wait for a line with a deadline."""

    def __init__(self, stack: subprocess.Popen[str]) -> None:
        assert stack.stdout is not None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        stdout = stack.stdout

        def pump() -> None:
            for line in stdout:
                self.lines.put(line)
            self.lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def until(self, text: str, within: float) -> str:
        """The lines up to the first that says ``text``."""
        deadline = time.monotonic() + within
        said: list[str] = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            if line is None:
                break
            said.append(line)
            self.output.append(line)
            if text in line:
                return "".join(said)
        raise TimeoutError(f"the console did not say {text!r} within {within}s: {''.join(said)}")


def healthy(url: str) -> bool:
    try:
        return local_http.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def polled(condition: Callable[[], bool]) -> Callable[[], bool]:
    """A wait's condition that counts a reply timed out as "not yet". While the network's outcomes service takes
    in the synthetic cohort, one of its replies has been seen to take over 5 s (SQLite's one connection a process,
    held by the consumer's batch, is the likely cause): the wait still bounds how long it may take."""

    def attempt() -> bool:
        try:
            return condition()
        except httpx.TimeoutException:
            return False

    return attempt


def desk_link(printed: str, console: str, role: str = "front_desk") -> str:
    """A role's sign-in link to a console, as make run prints it."""
    [link] = [
        line.split()[-1]
        for line in printed.splitlines()
        if line.strip().startswith(role) and line.split()[-1].startswith(f"{console}sign-in?")
    ]
    return link


def chart_in_a_browser(sign_in: str) -> dict[str, Any]:
    """The dashboard in Debian's Chromium: how many bars its chart drew, and axe-core's serious violations."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(sign_in)
            page.wait_for_function("() => window.Chart && Chart.getChart('rates-chart')")
            # Bars with a height: response rates that stand over shown counts (a suppressed one is a gap).
            bars = page.evaluate(
                "() => Chart.getChart('rates-chart').data.datasets[0].data.filter(v => v !== null).length"
            )
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "dashboard-network-outcomes.png"), full_page=True)
            serious = accessible(page, sign_in.split("/sign-in")[0])
            return {"bars": bars, "serious": serious}
        finally:
            browser.close()


@pytest.mark.timeout(900)  # the whole stack, the synthetic cohort through it, and the privacy audit of it
def test_make_run_starts_everything_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    base = free_port_base()
    var_dir = tmp_path / "stack-var"
    kafka_port = free_kafka_port()
    stack = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deploy.local_stack",
            "--var-dir",
            str(var_dir),
            "--kafka-port",
            str(kafka_port),
            "--port-base",
            str(base),
            "--publish-interval",
            # Each beat judges every course of the synthetic cohort: a shorter one only competes with the consumers.
            "5",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    console = Console(stack)
    output = console.output
    auditor: subprocess.Popen[str] | None = None
    try:
        console.until("KAPNET_READY", within=180)
        printed = "".join(output)
        urls = [word for word in printed.split() if word.startswith("http://") and word.endswith("/docs")]
        assert len(urls) == 12  # five services at each of two sites, and the network's outcomes and webhooks
        for url in urls:
            assert local_http.get(url, timeout=5).status_code == 200
        assert {f"http://127.0.0.1:{base + port}/docs" for port in (101, 105, 205, 300, 320)} <= set(urls)
        # Each site's console, with a ready sign-in link per role: the front desk's opens the console's home page.
        links = [w for w in printed.split() if "/sign-in?token=" in w]
        assert len(links) == 11, links  # five roles at each of two sites, and the network admin's dashboard
        desk = desk_link(printed, f"http://127.0.0.1:{base + 100}/")
        with local_http.client(follow_redirects=True, timeout=10) as browser:
            home = browser.get(desk)
            assert home.status_code == 200 and "Register a patient" in home.text, home.text

        network = f"http://127.0.0.1:{base + 300}/aggregates"

        tokens = dict(
            line.strip().split(": ", 1) for line in output if line.startswith("  ") and "@" in line and ": ey" in line
        )
        assert len(tokens) == 11  # five roles at each of two sites, and the network admin
        admin = {"Authorization": f"Bearer {tokens['network_admin@network']}"}
        assert local_http.get(network, timeout=5).status_code == 401
        front_desk = {"Authorization": f"Bearer {tokens['front_desk@north']}"}
        assert local_http.get(network, headers=front_desk, timeout=5).status_code == 403

        def by_site() -> dict[str, int]:
            # A suppressed total counts as 0 here: the wait below wants both sites shown.
            return {
                a["site"]: a["total"]["count"] or 0 for a in local_http.get(network, headers=admin, timeout=5).json()
            }

        # The demo patients (14 at north through the APIs) and the synthetic cohort's registrations, all shown.
        wait_until(
            polled(lambda: by_site().get("north", 0) > 14 and by_site().get("south", 0) > 10),
            timeout=400,
            what="both sites' aggregates of the demo patients",
        )

        def cohort_outcomes(**params: str) -> list[dict[str, Any]]:
            """Every page of the network's cohort outcomes: each reply's Link header names the next."""
            cohorts: list[dict[str, Any]] = []
            reply = local_http.get(
                f"http://127.0.0.1:{base + 300}/cohort-outcomes", params=params, headers=admin, timeout=10
            )
            while True:
                cohorts.extend(reply.json())
                following = reply.links.get("next")
                if following is None:
                    return cohorts
                reply = local_http.get(f"http://127.0.0.1:{base + 300}{following['url']}", headers=admin, timeout=10)

        # The synthetic cohort's outcomes reach the network with figures shown (11 or more) for both sites.
        def shown_cohorts() -> set[str]:
            # Courses: the one count of a cohort no complement hides, so the check holds whatever day --end is.
            return {c["site"] for c in cohort_outcomes() if (c["courses"]["count"] or 0) >= 11}

        wait_until(
            polled(lambda: shown_cohorts() == {"north", "south"}), timeout=400, what="unsuppressed cohort outcomes"
        )

        def shown_responders() -> set[str]:
            return {
                c["site"]
                for c in cohort_outcomes(cut="all")
                for i in c["instruments"]
                # What the chart needs: a response count over a shown whole. A cohort's "with a result" can be
                # suppressed while its responders are shown (the release's protection against differencing).
                if i["instrument"] == "phq9" and (i["responded"]["count"] or 0) >= 11 and i["with_result"]["count"]
            }

        # The demo's cohorts are dense enough (deploy/local_stack.py) for response rates over shown counts.
        wait_until(polled(lambda: bool(shown_responders())), timeout=300, what="a PHQ-9 response count shown")
        assert processes_mentioning(str(var_dir))

        # The privacy auditor, as the network's read-only principal: every version on the network topics and
        # every reply of the network API, with no finding.
        passwords = json.loads((var_dir / "kafka" / "credentials.json").read_text())
        # Started now and read at the end: its linear programs take a minute, while the checks below need little.
        auditor = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shared.privacy",
                "audit",
                "--bootstrap-servers",
                f"127.0.0.1:{kafka_port}",
                "--sites",
                "north,south",
                "--network-url",
                f"http://127.0.0.1:{base + 300}",
                "--token",
                tokens["network_admin@network"],
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "KAPNET_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAPNET_KAFKA_SASL_USERNAME": "network-auditor",
                "KAPNET_KAFKA_SASL_PASSWORD": passwords["network-auditor"],
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        # The network dashboard shows those figures: a table with shown counts and suppressed ones (never a number),
        # response and remission charted in a real browser, and the table as CSV.
        dashboard = desk_link(printed, f"http://127.0.0.1:{base + 310}/", role="network_admin")
        with local_http.client(follow_redirects=True, timeout=20) as browser:
            page = browser.get(dashboard)
            assert page.status_code == 200 and "Network outcomes" in page.text, page.text
            assert "suppressed" in page.text and "north" in page.text and "south" in page.text
            exported = browser.get(f"http://127.0.0.1:{base + 310}/dashboard.csv")
            assert exported.headers["content-type"].startswith("text/csv")
            lines = exported.text.splitlines()
            assert lines[0].startswith("site,indication,route,period,courses") and len(lines) > 2
        drawn = chart_in_a_browser(dashboard)
        assert drawn["bars"] > 0 and drawn["serious"] == [], drawn

        # A service that dies is started again; the console says so, and the network goes on.
        [intake] = service_pids(var_dir, "intake", "north")
        os.kill(intake, signal.SIGKILL)
        said = console.until("intake@north restarted", within=60)
        assert "intake@north exited with code -9; restarting it in 1 s" in said, said
        wait_until(lambda: healthy(f"http://127.0.0.1:{base + 101}/healthz"), timeout=60, what="intake@north back")
        assert service_pids(var_dir, "intake", "north") != [intake]

        # The auditor's verdict: nothing identifying, no count 1-10 shown, no release that breaks the rules, and no
        # suppressed cell that the linear programs over every version narrow to fewer than 11 values.
        audited, complaints = auditor.communicate(timeout=600)
        print(audited)
        assert auditor.returncode == 0 and "records read" in audited, audited + complaints
        assert "CLEAN" in audited, audited
    finally:
        if auditor is not None and auditor.poll() is None:
            auditor.kill()
            auditor.wait()
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(90)
        except subprocess.TimeoutExpired:
            stack.kill()
            raise
    assert stack.returncode == 0, "".join(output)
    wait_until(lambda: not processes_mentioning(str(var_dir)), timeout=20, what="every child to be gone")
    ports = [base + 100 * s + n for s in (1, 2) for n in range(1, 5)] + [base + 300]
    assert all(port_free(p) for p in ports)
