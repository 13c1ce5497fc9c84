"""The server's heap: freed memory goes back to the system once the process is quiet."""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import pytest

from sessionscope.heap import QuietTrim, trim_free_heap


def _anon_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise AssertionError("no RssAnon")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_trim_hands_freed_heap_back_to_the_system() -> None:
    """Blocks freed under a block still in use stay resident until the trim."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, count = 64 * 1024, 3_200  # 200 MiB, each block below malloc's mmap threshold
    blocks = [libc.malloc(size) for _ in range(count)]
    for block in blocks:
        ctypes.memset(block, 1, size)
    pinned = libc.malloc(size)  # keeps the heap's top in use
    for block in blocks:
        libc.free(block)
    before = _anon_kb()
    assert trim_free_heap()
    after = _anon_kb()
    libc.free(pinned)
    assert before - after > 150 * 1024, (before, after)


def test_quiet_trim_trims_once_after_work_and_never_while_busy() -> None:
    clock = [0.0]
    trims: list[float] = []

    def trim() -> bool:
        trims.append(clock[0])
        return True

    trimmer = QuietTrim(every_s=2.0, quiet_share=0.05, work_s=0.2, cpu=lambda: clock[0], trim=trim)
    trimmer.start()
    trimmer.stop()  # ticks are driven by hand below

    def interval(cpu_s: float) -> None:
        clock[0] += cpu_s
        trimmer.tick()

    interval(0.01)  # quiet, no work yet
    assert trims == []
    for _ in range(5):  # busy: 1.5 s of CPU in each 2 s
        interval(1.5)
    assert trims == []
    interval(0.05)  # the first quiet interval after work trims
    assert trimmer.trims == 1
    for _ in range(10):  # and not again while it stays quiet
        interval(0.01)
    assert trimmer.trims == 1
    interval(0.15)  # a little work (below work_s) is not a burst
    interval(0.0)
    assert trimmer.trims == 1
    interval(0.5)
    interval(0.0)
    assert trimmer.trims == 2
