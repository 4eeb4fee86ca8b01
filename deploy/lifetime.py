"""Child processes that end with the process that started them, even when it is killed outright."""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A ``preexec_fn``: on Linux the child gets SIGTERM when its parent dies, so a launcher or test run that is
    SIGKILLed leaves no broker or service behind. The "parent" is the thread that started the child, so start
    children from a thread that lives as long as they should (the main thread, as everything here does)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
