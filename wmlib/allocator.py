"""glibc's malloc, told to reuse the memory a training or planning loop frees.

A compiled CEM rollout at PlaNet's size allocates and frees buffers of about a megabyte 120
times per planned action. With glibc's defaults, a buffer above 128 KiB is mapped fresh from
the operating system and unmapped when freed (or the heap's top is trimmed back), so every
step pays page faults on new, zeroed pages; glibc raises these thresholds by itself only after
a large enough buffer has been freed, so the speed of a run depended on what it happened to
allocate first (measured on a 2-core CPU with AMX: 209 ms per planned action from a fresh
process, 174 ms once an earlier large free had raised them). `keep_freed_memory` sets both
thresholds once, as ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` would; the cost
is that up to ``trim_mb`` of freed memory stays with the process instead of going back to the
operating system. ``import wmlib`` calls it; ``WMLIB_MALLOC=default`` keeps glibc's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from glibc's malloc.h


def keep_freed_memory(mmap_mb: int = 32, trim_mb: int = 256) -> bool:
    """Serve buffers below ``mmap_mb`` from malloc's heap and keep up to ``trim_mb`` of freed heap
    for reuse. Returns whether glibc took the settings (False off glibc, e.g. on macOS or musl,
    and with ``WMLIB_MALLOC=default``)."""
    if os.environ.get("WMLIB_MALLOC", "").strip().lower() == "default":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_mb << 20)) and bool(
        mallopt(M_TRIM_THRESHOLD, trim_mb << 20))
