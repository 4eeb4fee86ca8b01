"""A service process gives memory freed after a peak back to the system (shared/freed_memory.py), measured on a
real interpreter started with the environment make run's services get."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from deploy.processes import ServiceProcess
from shared.freed_memory import allocator_environment

# A peak as outcomes' beat makes one: many small objects at once, a few of which outlive it, spread among the
# rest (each would keep a pymalloc arena alive). Resident sizes in MB, from /proc; the process waits up to 20 s
# for the allocator's background thread, and says how long it took.
PEAK = textwrap.dedent(
    """
    import json, time

    def resident_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    before = resident_mb()
    held = [{"course": n, "scores": (n, n + 1, str(n))} for n in range(600_000)]
    survivors = held[::500]
    peak = resident_mb()
    del held
    freed_at = time.monotonic()
    while resident_mb() - before > (peak - before) / 10 and time.monotonic() - freed_at < 20:
        time.sleep(0.2)
    print(json.dumps({"before": before, "peak": peak, "settled": resident_mb(),
                      "seconds": round(time.monotonic() - freed_at, 1), "survivors": len(survivors)}))
    """
)


def run_peak(environment: dict[str, str]) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONMALLOC", "LD_PRELOAD", "MALLOC_CONF")}
    done = subprocess.run([sys.executable, "-c", PEAK], env=env | environment, capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr, done.stderr  # a library that cannot be preloaded says so here
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def test_memory_freed_after_a_peak_goes_back_to_the_system() -> None:
    environment = allocator_environment()
    assert environment, "jemalloc is not installed: make install puts Debian's libjemalloc2 in"
    figures = run_peak(environment)
    grown = figures["peak"] - figures["before"]
    assert grown > 100, figures  # the peak is real: well over 100 MB of objects
    # Nine tenths of what the peak took is given back, survivors and all, with no call from the service.
    assert figures["settled"] - figures["before"] < grown / 10, figures


def test_make_runs_services_start_on_that_allocator(tmp_path: Path) -> None:
    process = ServiceProcess("intake", 1, {"KAPNET_SITE": "north"}, tmp_path / "intake.log")
    assert allocator_environment().items() <= process.env.items()
