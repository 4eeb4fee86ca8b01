"""Complementary suppression (``shared.privacy.inference.protect``) in a process of its own.

HiGHS and numpy are about 18 MB that a site's outcomes service needs only while it prepares a release: once a day
in production (``release_period`` "day"), every beat in make run while data come in. Imported into the service,
they stayed for its whole life (issue 15, P5: 111 MB by PSS at idle, against 94 for the network's outcomes service,
which never solves). Here the solver runs in a child started when a release first needs it, which exits after
``idle_seconds`` without work, or when the service goes (its end of the pipe closes). The solver's CPU also leaves
the service's GIL: on a thread it held back the event loop that serves the site's API and consumes its topics.

A plain child on two pipes (``python -m shared.privacy.suppression_process``), not multiprocessing: that would keep
a resource tracker process (7 MB) beside the service for good. Requests and answers are pickles between two
processes of the same program, length-prefixed."""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from shared.privacy.cells import CandidateCell, CellId

if TYPE_CHECKING:
    from shared.privacy.inference import Version

# A group to make safe: its candidate cells, and every version of it already released, in order.
Group = tuple[Mapping[CellId, CandidateCell], "Sequence[Version]"]
# Per group: the further cells to hide, or why the group cannot be made safe (a message crosses a process whole).
Protection = frozenset[CellId] | str

ROOT = Path(__file__).resolve().parents[2]
_LENGTH = struct.Struct(">Q")
_LARGEST_MESSAGE = 1 << 30  # a site's whole release history is a few MB


class SolverUnavailable(RuntimeError):
    """The solver's process died or failed: this release is not made; the beat tries again."""


def _send(stream: IO[bytes], message: object) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(body)) + body)
    stream.flush()


def _receive(stream: IO[bytes], within: float | None = None) -> object:
    if within is not None and not select.select([stream], [], [], within)[0]:
        raise TimeoutError(f"no answer within {within:.0f} s")
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("the other end closed")
    (length,) = _LENGTH.unpack(head)
    if length > _LARGEST_MESSAGE:
        raise ValueError(f"a message of {length} bytes: the pipe is out of step")
    body = stream.read(length)
    if len(body) < length:
        raise EOFError("the other end closed mid-message")
    return pickle.loads(body)


def protect_each(groups: Sequence[Group]) -> list[Protection]:
    """``protect`` for each group: the child's work."""
    from shared.privacy.inference import ReleaseRefused, protect

    answers: list[Protection] = []
    for candidate, published in groups:
        try:
            answers.append(protect(candidate, published))
        except ReleaseRefused as refusal:
            answers.append(str(refusal))
    return answers


def _serve_requests(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The child's loop: a list of groups in, ("ok", protections) or ("error", why) out, until the input closes."""
    while True:
        try:
            groups = _receive(requests)
        except EOFError:
            return
        try:
            _send(answers, ("ok", protect_each(cast("Sequence[Group]", groups))))
        except Exception as exc:  # the parent says so and fails the release; the child goes on
            _send(answers, ("error", f"{type(exc).__name__}: {exc}"))


def main() -> None:
    """The child: answers on a private copy of its stdout, whose descriptor 1 goes to stderr from here on, so that a
    library's stray print cannot put the pipe out of step."""
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _serve_requests(sys.stdin.buffer, answers)


class SuppressionProcess:
    """The solver's child for one service process: blocking calls from a worker thread, one at a time.

    ``answer_within``: a release the solver has not answered by then is not made (the child is killed and the next
    call starts another), so a hung solver cannot hold the beat, which also writes the follow-ups, for good."""

    def __init__(self, idle_seconds: float, answer_within: float = 300.0, command: Sequence[str] | None = None) -> None:
        self.idle_seconds = idle_seconds
        self.answer_within = answer_within
        self.command = list(command or [sys.executable, "-m", "shared.privacy.suppression_process"])
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._idle_timer: threading.Timer | None = None

    @property
    def running(self) -> bool:
        with self._lock:
            return self._child is not None

    def protect_each(self, groups: Sequence[Group]) -> list[Protection]:
        """Each group's cells to hide, or the reason it is refused, in the order given."""
        if not groups:
            return []
        with self._lock:
            self._cancel_idle_timer()
            try:
                child = self._child or self._start()
            except OSError as exc:  # no process to be had (a limit on processes, no memory)
                raise SolverUnavailable(f"the suppression solver's process did not start: {exc!r}") from exc
            assert child.stdin is not None and child.stdout is not None
            try:
                _send(child.stdin, list(groups))
                reply = _receive(child.stdout, within=self.answer_within)
                status, found = cast("tuple[str, Any]", reply)
            except Exception as exc:
                # Died (killed, out of memory), hung, or the pipe out of step: whatever it was, this child is not
                # asked again; the next call starts another.
                self._end(child, kill=True)
                raise SolverUnavailable(f"the suppression solver's process failed: {exc!r}") from exc
            timer = threading.Timer(self.idle_seconds, self._stop_if_idle, args=(child,))
            timer.daemon = True
            self._idle_timer = timer
            timer.start()
        if status != "ok":
            raise SolverUnavailable(f"the suppression solver failed: {found}")
        answers: list[Protection] = found
        return answers

    def _start(self) -> subprocess.Popen[bytes]:
        self._child = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        return self._child

    def _end(self, child: subprocess.Popen[bytes], *, kill: bool = False) -> None:
        """With the lock held: close its input (it exits at the end of its loop), or kill it; then reap it."""
        if self._child is child:
            self._child = None
        if kill:
            child.kill()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                # A dead child's input refuses the bytes still buffered (BrokenPipeError): they go with it.
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def _stop_if_idle(self, child: subprocess.Popen[bytes]) -> None:
        with self._lock:
            # Only the timer armed last: one that fired while a call held the lock has been replaced meanwhile.
            if self._child is child and self._idle_timer is threading.current_thread():
                self._idle_timer = None
                self._end(child)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def stop(self) -> None:
        with self._lock:
            self._cancel_idle_timer()
            if self._child is not None:
                self._end(self._child)


if __name__ == "__main__":
    main()
