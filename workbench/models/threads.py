"""Run model-building work on a thread of its own, so the engine's worker is the only thread
that keeps an OpenMP pool.

libgomp gives each thread that starts a parallel region a pool of its own, and once more
threads are pooled than there are CPUs its workers stop spinning between regions and sleep
instead. A decode step is hundreds of short regions, so a step run on the engine's worker
after the main thread had loaded the model (and so kept a pool) took 80 ms against 52 ms
(SmolLM2-135M, bf16, 16 rows, 2 cores; measured). A thread's pool goes when the thread
ends: loading the weights and casting them on a short-lived thread leaves the worker the
only pooled thread.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def on_own_thread(fn: Callable[[], T], name: str = "model-build") -> T:
    """``fn()`` run on a fresh thread that ends with it; its result, or its exception raised here."""
    box: dict[str, object] = {}

    def body() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # re-raised on the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=body, name=name)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]
