"""`wmlib.allocator`: after ``import wmlib``, a freed 8 MB buffer stays with the process for
reuse (glibc's default maps it fresh and returns it to the system at every free)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import ctypes, ctypes.util, os
import wmlib  # noqa: F401  (tunes malloc unless WMLIB_MALLOC=default)
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * page
size = 8 << 20
p = libc.malloc(size)
ctypes.memset(p, 1, size)  # touch every page
before = rss()
libc.free(p)
print((before - rss()) / size)  # the fraction of the buffer handed back to the system
"""


def returned_fraction(env: dict) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc (Linux)")
def test_import_keeps_freed_buffers_for_reuse():
    import os

    from wmlib.allocator import keep_freed_memory

    if not keep_freed_memory():
        pytest.skip("not glibc, or glibc's defaults asked for")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    assert returned_fraction(env) < 0.1  # kept
    assert returned_fraction({**env, "WMLIB_MALLOC": "default"}) > 0.9  # glibc's default


def test_opting_out_changes_nothing(monkeypatch):
    from wmlib.allocator import keep_freed_memory

    monkeypatch.setenv("WMLIB_MALLOC", "default")
    assert keep_freed_memory() is False
