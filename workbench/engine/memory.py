"""Give freed key/value buffers back to the OS, so a process's memory follows its batch.

The running batch's keys/values are a few large tensors per layer that are replaced as rows
join and leave and as buffers grow, each a little longer than the last. glibc's malloc serves
large blocks with ``mmap`` (and unmaps them on free) only above a threshold that it raises to
the size of every mmapped block freed, up to 32 MiB; past a few steps the KV tensors land on
the heap instead, where freed blocks of the old sizes cannot hold the new, longer ones and
stay resident. Measured on the embedded default, 16 multilingual-support items on two
variants (8 rows of ~900 tokens): the process peaked at 3,080 MiB with at most 470 MiB of live
keys/values, and stayed near 2.9 GiB while the batch shrank; with the threshold fixed at
1 MiB, the same run peaked at 2,049 MiB and followed the batch down. The default is 512 KiB
(``EngineConfig.mmap_threshold_kib``): the blocks a decode step allocates and frees each time
are mostly smaller, so it adds few page faults to a step.

Fixing the threshold (``mallopt(M_MMAP_THRESHOLD, ...)``, the same as the environment's
``MALLOC_MMAP_THRESHOLD_``) also turns off glibc's raising of it. It is process-wide, so it is
set once, by the engine's start, and only where the C library is glibc.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
_applied: int | None = None


def fix_mmap_threshold(kib: int) -> bool:
    """Serve blocks of ``kib`` KiB and more with mmap from now on; False where not glibc
    (or ``kib`` is 0: leave malloc as it is)."""
    global _applied
    if kib <= 0 or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if _applied == kib:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(kib * 1024)))
    except (OSError, AttributeError) as exc:
        log.info("malloc threshold left as it is: %s", exc)
        return False
    if ok:
        _applied = kib
    return ok
