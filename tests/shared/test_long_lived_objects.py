"""A started service puts what it made for its life out of the garbage collector's reach (shared/app.py serve),
so that a full collection walks only what the work makes. Run in a fresh interpreter: freezing pytest's own
objects would reach every later test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SERVICE_STARTED = textwrap.dedent(
    """
    import gc, json, weakref
    from services.outcomes.app import create_app
    from shared.app import freeze_long_lived_objects
    from shared.settings import ServiceSettings

    app = create_app(ServiceSettings(service="outcomes", site="north"))

    class Cycle:
        pass

    garbage = Cycle()
    garbage.me = garbage
    gone = weakref.ref(garbage)
    del garbage
    tracked_before = len(gc.get_objects())
    freeze_long_lived_objects()
    print(json.dumps({"tracked_before": tracked_before, "tracked_after": len(gc.get_objects()),
                      "frozen": gc.get_freeze_count(), "garbage_freed": gone() is None, "app_kept": app is not None}))
    """
)


def test_a_started_service_leaves_a_full_collection_only_what_its_work_makes() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    ran = subprocess.run(
        [sys.executable, "-c", SERVICE_STARTED], capture_output=True, text=True, cwd=root, env=env, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    assert seen["garbage_freed"], "garbage made before the freeze must be collected first, not frozen for good"
    assert seen["tracked_before"] > 50_000  # the imports, the app, its routes and schemas
    assert seen["frozen"] >= seen["tracked_before"] - 1_000
    assert seen["tracked_after"] < 1_000
