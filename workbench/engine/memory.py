"""Give freed key/value buffers back to the OS, so a process's memory follows its batch.

The running batch's keys/values are a few large tensors per layer that are replaced as rows
join and leave and as buffers grow, each a little longer than the last. Past a few steps
glibc's malloc serves such blocks from its heap (it raises its mmap threshold to the size of
every mmapped block freed, up to 32 MiB), where freed blocks of the old sizes cannot hold the
new, longer ones and stay resident. Measured on the embedded default, 16 multilingual-support
items on two variants (8 rows of ~900 tokens): the process peaked at 3,080 MiB with at most
470 MiB of live keys/values, and stayed near 2.9 GiB while the batch shrank.

``give_back`` (glibc's ``malloc_trim``) returns the free pages of every arena to the OS; the
engine calls it where its big buffers go: when the slot pool is resized or released. Between
those points malloc keeps its free blocks for the next allocations of the same sizes, which is
what a step needs: a prefill allocates and frees activations of several MiB per layer, and
served by ``mmap`` (a fixed threshold below their size) each of them is page-faulted in afresh.
That made a 16-row prefill twice as slow (655 against 1,290 ms with the threshold fixed at
512 KiB, one run each), so the threshold is left to glibc unless ``mmap_threshold_kib`` asks.

Both act only where the C library is glibc.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import platform

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
_applied: int | None = None


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError as exc:
        log.info("no C library to call: %s", exc)
        return None


def give_back() -> bool:
    """Return the free pages of malloc's heap to the OS; False where not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def fix_mmap_threshold(kib: int) -> bool:
    """Serve blocks of ``kib`` KiB and more with mmap from now on; False where not glibc
    (or ``kib`` is 0: leave malloc as it is)."""
    global _applied
    libc = _glibc() if kib > 0 else None
    if libc is None:
        return False
    if _applied == kib:
        return True
    ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(kib * 1024)))
    if ok:
        _applied = kib
    return ok
