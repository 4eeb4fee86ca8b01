"""Giving freed memory back to the system, so a service's resident size follows what it holds, not its peak.

Python's own small-object allocator (pymalloc) returns an arena of 1 MiB only when every object in it is free. A
service that briefly holds much (outcomes' beat judges a site's whole history at once) ends with arenas that each
keep a few survivors: on make run's outcomes@north, 146 arenas (153 MB) held 59 MB of objects, and the process
sat at 250 MB. Started on jemalloc (``PYTHONMALLOC=malloc`` and ``LD_PRELOAD``), with a background thread that
gives back pages unused for a second, it sits at 160 MB. glibc's malloc with a periodic ``malloc_trim`` did
nearly as well (172 MB) but cost 15-25 % more CPU per event in bench/pipeline.py; jemalloc measured the same as
pymalloc there.
"""

from __future__ import annotations

import ctypes.util
from functools import cache

# background_thread: pages are given back while the service idles (otherwise only when it next allocates);
# dirty_decay_ms / muzzy_decay_ms: after a second unused, at once to the system; narenas: two arenas, not four
# per core (the services have a handful of threads).
JEMALLOC_SETTINGS = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2"


@cache
def allocator_environment() -> dict[str, str]:
    """What a service process is started with (deploy/processes.py for make run; deploy/Dockerfile sets the same
    for the images): read by the interpreter and the dynamic loader at start-up, so a process cannot set it for
    itself. Empty, and Python keeps its own allocator, where jemalloc is not installed (``make install`` installs
    Debian's libjemalloc2)."""
    library = ctypes.util.find_library("jemalloc")
    if library is None:
        return {}
    return {"PYTHONMALLOC": "malloc", "LD_PRELOAD": library, "MALLOC_CONF": JEMALLOC_SETTINGS}
