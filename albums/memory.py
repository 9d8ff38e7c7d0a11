"""Fewer malloc arenas: memory that does not grow with the threads a sync keeps in flight.

glibc gives each thread that allocates while another holds the lock an arena of its own,
up to 8 per core, and keeps freed memory in each. With up to ALBUMS_SYNC_WORKERS (64)
requests in flight (albums.sync.bucket.concurrency) the peak of a first sync grew by 30-40
MiB for nothing: 500 albums x 20 photos, 112 MiB with 10 threads, 153 MiB with 64;
camera-size files, 118 and 149 MiB. With two arenas, 113 MiB and no slower (bench/run.py,
sizes-2mb: 3.66 s against 3.84 s). An explicit MALLOC_ARENA_MAX is left as set; elsewhere
than glibc this does nothing.
"""

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # glibc's mallopt() parameter
ARENAS = 2


def limit_malloc_arenas() -> bool:
    """Ask glibc for at most ARENAS arenas; whether it was asked."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_ARENA_MAX, ARENAS))
    except (OSError, AttributeError, TypeError):  # no libc found, or not glibc
        return False
