"""How a long-running process keeps its memory: start-up's objects out of the garbage collector's
sight, and few malloc arenas.


glibc gives each thread that meets contention an arena of its own (up to eight per core), and memory
freed in an arena stays in the process. An export runs a planner, a sender, two page readers and the
buyers' upserts on threads of their own, each allocating pages and batches in turn: with two arenas
its peak RSS was about 4 MB lower (the same as MALLOC_ARENA_MAX=2 in its environment), at no cost in
speed that the export benchmark could tell."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

MALLOC_ARENAS = 2
# The youngest generation's threshold of a settled process (Python's default is 700).
SETTLED_GC_THRESHOLD = 20_000
_M_ARENA_MAX = -8  # glibc's mallopt() parameter number for the arena limit


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for threads started from now on; whether it applied (False on a C
    library without mallopt, such as macOS's or musl's)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(_M_ARENA_MAX, arenas) == 1


def settle_process() -> None:
    """Before a long-running process takes work: what start-up made lives as long as the process, so
    it is moved out of the collector's sight, the youngest generation is collected less often, and
    the threads started from now on share few malloc arenas. Full collections scanning start-up's
    objects were the webhook receiver's p99 (111 ms -> 22-28 ms at 1,000 deliveries a second,
    `benchmarks/webhook_ingest.py --rate 1000 --workers external`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(SETTLED_GC_THRESHOLD, 50, 100)
    limit_malloc_arenas()


def is_settled() -> bool:
    """Whether the collector is off or settled already (a worker's, or a caller that froze it)."""
    return not gc.isenabled() or gc.get_threshold()[0] >= SETTLED_GC_THRESHOLD or gc.get_freeze_count() > 0
