"""Complementary suppression in its own process (shared/privacy/suppression_process.py): the same answers as in
process, a refusal comes back as its reason, the child stops when idle and a dead one is replaced. (That no service
loads numpy or HiGHS to start: tests/shared/test_migrations.py.)"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from shared.privacy.cells import CandidateCell, CellId
from shared.privacy.inference import ReleaseRefused, protect
from shared.privacy.suppression_process import SolverUnavailable, SuppressionProcess


def cell(cut: str = "all", value: str = "all", measure: str = "courses") -> CellId:
    return CellId("north", "depression", "iv_infusion", "2025-03", cut, value, measure)


# The prior-trials example of tests/privacy/test_inference.py: 42 = 25 + hidden + 14, so the hidden 3 is had by
# subtraction unless one more cell is hidden.
SUBTRACTED = {
    cell(): CandidateCell(raw=42, suppressed=False),
    cell("prior_trials", "0"): CandidateCell(raw=25, suppressed=False),
    cell("prior_trials", "1"): CandidateCell(raw=3, suppressed=True),
    cell("prior_trials", "2"): CandidateCell(raw=14, suppressed=False),
}
# A shown 0 beside a hidden 0: nothing can be hidden to cover it, so the release is refused.
PINNED_ZERO = {
    cell(): CandidateCell(raw=20, suppressed=False),
    cell(measure="started"): CandidateCell(raw=20, suppressed=False),
    cell(measure="phq9.with_result"): CandidateCell(raw=0, suppressed=False),
    cell(measure="phq9.responded"): CandidateCell(raw=0, suppressed=True),
}


def child_pids() -> set[int]:
    """This process's living children, from /proc (a zombie not yet reaped is not living)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except OSError:
                continue
            if int(parent) == os.getpid() and state != "Z":
                found.add(int(entry.name))
    return found


def test_the_child_answers_as_protect_does_and_gives_a_refusals_reason() -> None:
    solver = SuppressionProcess(idle_seconds=30)
    try:
        hide, refused = solver.protect_each([(SUBTRACTED, []), (PINNED_ZERO, [])])
        assert hide == protect(SUBTRACTED) == {cell("prior_trials", "2")}
        with pytest.raises(ReleaseRefused) as in_process:
            protect(PINNED_ZERO)
        assert refused == str(in_process.value)
        # A failure in the child fails that call with its reason; the same child answers the next.
        with pytest.raises(SolverUnavailable, match="AttributeError"):
            solver.protect_each([("not cells", [])])  # type: ignore[list-item]
        assert solver.protect_each([(SUBTRACTED, [])]) == [{cell("prior_trials", "2")}]
    finally:
        solver.stop()
    assert not solver.running


def test_the_child_stops_when_idle_and_a_killed_one_is_replaced() -> None:
    solver = SuppressionProcess(idle_seconds=0.5)
    before = child_pids()
    try:
        solver.protect_each([(SUBTRACTED, [])])
        [child] = child_pids() - before
        os.kill(child, signal.SIGKILL)
        # Dead for sure (a zombie: its pipes closed), so that the request meets a broken pipe, as under load.
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}/stat").read_text().split(") ")[1][0] != "Z":
            assert time.monotonic() < deadline, "the killed child did not die"
            time.sleep(0.01)
        with pytest.raises(SolverUnavailable):
            solver.protect_each([(SUBTRACTED, [])])
        assert solver.protect_each([(SUBTRACTED, [])]) == [{cell("prior_trials", "2")}]
        assert solver.running
        deadline = time.monotonic() + 30
        while solver.running or child_pids() - before:
            assert time.monotonic() < deadline, "the idle child did not stop"
            time.sleep(0.1)
    finally:
        solver.stop()


def test_a_hung_child_fails_the_call_in_time_and_is_replaced() -> None:
    # A child's first answer includes its start (the solver's imports): over a second on a busy machine, which
    # failed this test under a 1 s limit. The short limit is for the running child that hangs.
    solver = SuppressionProcess(idle_seconds=30, answer_within=60.0)
    before = child_pids()
    try:
        solver.protect_each([(SUBTRACTED, [])])
        [child] = child_pids() - before
        os.kill(child, signal.SIGSTOP)  # as a solver stuck in a loop would look from here
        solver.answer_within = 1.0
        started = time.monotonic()
        with pytest.raises(SolverUnavailable, match="TimeoutError"):
            solver.protect_each([(SUBTRACTED, [])])
        assert time.monotonic() - started < 10
        assert child not in child_pids()  # killed and reaped
        solver.answer_within = 60.0  # another child starts
        assert solver.protect_each([(SUBTRACTED, [])]) == [{cell("prior_trials", "2")}]
    finally:
        solver.stop()


def test_a_stray_print_in_the_child_does_not_put_the_pipe_out_of_step() -> None:
    # A library that prints to stdout while solving: the child's answers go on a descriptor of their own.
    printing = (
        "import shared.privacy.suppression_process as process\n"
        "solve = process.protect_each\n"
        "process.protect_each = lambda groups: (print('HiGHS says hello'), solve(groups))[1]\n"
        "process.main()\n"
    )
    solver = SuppressionProcess(idle_seconds=30, command=[sys.executable, "-c", printing])
    try:
        for _ in range(3):
            assert solver.protect_each([(SUBTRACTED, [])]) == [{cell("prior_trials", "2")}]
    finally:
        solver.stop()
