"""What recording every served answer costs the API: P50/P95 latency with and without it.

    python -m workbench.devtools.record_overhead [--requests 200] [--model tiny-glm]

Serves the model in this process behind the real API, sends the same sequential chat
completions twice (recording on, then off, then on again, to see the noise), and prints
each pass's P50 and P95 end-to-end latency as the client saw it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import httpx

from workbench.api.app import create_api
from workbench.api.server import ServerThread
from workbench.config import engine_preset
from workbench.service.workbench import Workbench


def one_pass(url: str, n: int) -> list[float]:
    body = {"model": "base", "max_tokens": 8, "temperature": 0, "lang": "en", "region": "EU",
            "messages": [{"role": "user", "content": "Where is my order? It has not arrived."}]}
    out = []
    with httpx.Client(timeout=120) as client:
        for i in range(n):
            t0 = time.perf_counter()
            client.post(url + "/v1/chat/completions", json={**body, "user": f"u{i}"}).raise_for_status()
            out.append((time.perf_counter() - t0) * 1000.0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--model", default="tiny-glm")
    args = ap.parse_args(argv)
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="record-overhead-"))
    wb = Workbench.start(model=args.model, adapters=[], engine_config=engine_preset("interactive"))
    server = ServerThread(create_api(wb))
    url = server.start()
    record = wb.recorder.record
    try:
        one_pass(url, 10)  # warm-up
        results = {}
        for label, on in (("recording on", True), ("recording off", False), ("recording on again", True)):
            wb.recorder.record = record if on else (lambda served: None)
            ms = sorted(one_pass(url, args.requests))
            results[label] = {"p50_ms": round(statistics.median(ms), 2),
                              "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2)}
            wb.recorder.flush(60)
    finally:
        server.stop()
        wb.close()
    print(json.dumps({"model": args.model, "requests": args.requests, **results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
