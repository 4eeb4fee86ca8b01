"""P5 footprint: the resident memory of every process `make run` starts, at idle and under load.

    python -m bench.footprint [--idle-seconds 150] [--load-seconds 20] [--rate 50] [--json PATH]

Starts the whole local network as `make run` does (`python -m deploy.local_stack`, with its demo data) on ports
of its own and a temporary var/ folder, waits for it to say ready and then ``--idle-seconds`` more (the consumers
take in the demo history), and samples every process's VmRSS once a second for 10 s (a service's processes added
together: the outcomes service's solver child counts with it): the idle figure is each service's largest sample.
Then registrations go to north's intake at ``--rate`` per second for ``--load-seconds`` while sampling goes on:
the load figure is each service's largest sample during it. The network's total is given
twice: the sum of RSS (each process's own figure, shared libraries counted in every process) and the sum of PSS
(proportional set size: each shared page divided among the processes mapping it, the machine's memory counted once).

Baseline, measured in the same run: a bare FastAPI app under uvicorn (one route, nothing imported beyond them),
after serving one request. Each service is printed with its ratio to it. Figures only.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.report import print_figures
from deploy import local_http
from deploy.kafka.launcher import free_port
from deploy.local_stack import SYNTHETIC_PATIENTS, dev_tokens, planned_services
from shared.freed_memory import allocator_environment

ROOT = Path(__file__).resolve().parent.parent
PORT_BASE = 18000
KAFKA_PORT = 19392
BARE_APP = (
    "import fastapi, uvicorn, sys\n"
    "app = fastapi.FastAPI()\n"
    "@app.get('/')\n"
    "def root() -> dict[str, str]:\n"
    "    return {'ok': 'yes'}\n"
    "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')\n"
)


def kernel_figure_mb(path: Path, field: str) -> float:
    """A ``Field:  N kB`` line of a /proc file, in MB; 0 when the process is gone."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int) -> float:
    return kernel_figure_mb(Path(f"/proc/{pid}/status"), "VmRSS")


def pss_mb(pid: int) -> float:
    """Proportional set size: private pages, and each shared page (libpython, the wheels' .so files) divided among
    the processes that map it, so that a sum over processes counts the machine's memory once."""
    return kernel_figure_mb(Path(f"/proc/{pid}/smaps_rollup"), "Pss")


def children(root: int) -> list[int]:
    """Every process below ``root``, however deep (the services run in sessions of their own)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, parent in parents.items() if parent == pid]
        found += kids
        frontier += kids
    return found


def label(pid: int) -> str | None:
    try:
        environ = dict(
            item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item
        )
        cmdline = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return None
    if "java" in cmdline[0]:
        return "kafka (JVM)"
    service = environ.get("KAPNET_SERVICE")
    if service is None:
        return None
    where = "network" if environ.get("KAPNET_ROLE") == "network" else environ.get("KAPNET_SITE", "?")
    return f"{service}@{where}"


class Sampler:
    """Once a second, each labelled process's RSS and PSS; ``peak()`` and ``peak_pss()`` give the largest since the
    last ``reset()``."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peaks: dict[str, float] = {}
        self.pss_peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            # A service's figure is all its processes together: a child inherits its environment, so the outcomes
            # service's suppression solver (shared/privacy/suppression_process.py) counts with it while it runs.
            rss: dict[str, float] = {}
            pss: dict[str, float] = {}
            for pid in children(self.root):
                name = label(pid)
                if name is not None:
                    rss[name] = rss.get(name, 0.0) + rss_mb(pid)
                    pss[name] = pss.get(name, 0.0) + pss_mb(pid)
            for name in rss:
                self.peaks[name] = max(self.peaks.get(name, 0.0), rss[name])
                self.pss_peaks[name] = max(self.pss_peaks.get(name, 0.0), pss[name])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def reset(self) -> None:
        self.peaks = {}
        self.pss_peaks = {}

    def peak(self) -> dict[str, float]:
        return dict(sorted(self.peaks.items()))

    def peak_pss(self) -> dict[str, float]:
        return dict(sorted(self.pss_peaks.items()))


def bare_app_rss() -> float:
    port = free_port()
    # Started as make run starts a service (shared/freed_memory.py's allocator), for a like-for-like baseline.
    environment = {**os.environ, **allocator_environment()}
    process = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)], env=environment)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                local_http.get(f"http://127.0.0.1:{port}/", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        time.sleep(1.0)
        return rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def local_network(var_dir: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deploy.local_stack",
            "--var-dir",
            str(var_dir),
            "--port-base",
            str(PORT_BASE),
            "--kafka-port",
            str(KAFKA_PORT),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == "KAPNET_READY":
                break
        else:
            raise RuntimeError(f"the local network did not start (exit {process.wait()})")
        # Keep reading its output, or it blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in process.stdout or []], daemon=True).start()
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def register_at(url: str, token: str, rate: float, seconds: float) -> int:
    done = 0
    started = time.perf_counter()
    with local_http.client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for n in range(int(rate * seconds)):
            time.sleep(max(0.0, started + n / rate - time.perf_counter()))
            body = {"given_name": "Foot", "family_name": f"Print{n}", "birth_date": "1975-05-05", "sex": "other"}
            done += client.post("/patients", json=body).status_code == 201
    return done


def measure(idle_seconds: float, load_seconds: float, rate: float) -> dict[str, object]:
    baseline = bare_app_rss()
    with tempfile.TemporaryDirectory() as tmp, local_network(Path(tmp) / "var") as stack:
        sampler = Sampler(stack.pid)
        sampler.start()
        try:
            time.sleep(idle_seconds)
            sampler.reset()
            time.sleep(10)
            idle, idle_pss = sampler.peak(), sampler.peak_pss()
            # What the demo data takes on disk, per service and site (SQLite files, WAL included).
            databases = {
                f"{path.stem}@{path.parent.name}": sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*"))
                for path in sorted((Path(tmp) / "var").glob("*/*.db"))
            }
            sampler.reset()
            token = dev_tokens(Path(tmp) / "var")["north", "front_desk"]
            intake = f"http://127.0.0.1:{planned_services(PORT_BASE)['intake@north']}"
            registered = register_at(intake, token, rate, load_seconds)
            time.sleep(2)
            loaded, loaded_pss = sampler.peak(), sampler.peak_pss()
        finally:
            sampler.stop()

    def python(figures: dict[str, float]) -> float:
        return max((v for k, v in figures.items() if not k.startswith("kafka")), default=0.0)

    return {
        "baseline_bare_fastapi_mb": round(baseline, 1),
        "idle_mb": {k: round(v, 1) for k, v in idle.items()},
        "load_mb": {k: round(v, 1) for k, v in loaded.items()},
        "idle_total_mb": round(sum(idle.values()), 1),
        "load_total_mb": round(sum(loaded.values()), 1),
        # The machine's memory the network holds, shared pages counted once (RSS counts them in every process).
        "idle_pss_mb": {k: round(v, 1) for k, v in idle_pss.items()},
        "idle_pss_total_mb": round(sum(idle_pss.values()), 1),
        "load_pss_total_mb": round(sum(loaded_pss.values()), 1),
        "idle_largest_python_mb": round(python(idle), 1),
        "idle_largest_python_ratio_to_baseline": round(python(idle) / baseline, 2),
        "registered_under_load": registered,
        "demo_patients": SYNTHETIC_PATIENTS,
        "database_bytes": databases,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.footprint", description=__doc__)
    # 60 s was too few: outcomes@north was still judging the demo history on its beat (248 MB; 162 MB at 150 s).
    parser.add_argument("--idle-seconds", type=float, default=150.0)
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures = measure(args.idle_seconds, args.load_seconds, args.rate)
    print_figures(figures, args.json)


if __name__ == "__main__":
    main()
