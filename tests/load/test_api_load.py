"""Load and fault tests on loopback: 64 concurrent streams, a queue-full burst, a client that
disconnects, and a hot-swap while 16 streams run. Bounded: each test ends in seconds."""
from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field

import httpx
import numpy as np
from apihelp import ADMIN, ask, serve_tiny

from workbench.config import EngineConfig
from workbench.models.catalog import load_model

PROMPTS = ["Where is my order?", "¿Dónde está mi pedido?", "我想退货。", "Refund in 7 days?"]


@dataclass
class Streamed:
    """One streamed response as the client saw it."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[dict] = field(default_factory=list)
    done_markers: int = 0
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return "".join(c["choices"][0]["delta"].get("content", "") for c in self.chunks if c.get("choices"))

    @property
    def finish(self) -> list[str]:
        return [c["choices"][0]["finish_reason"] for c in self.chunks
                if c.get("choices") and c["choices"][0].get("finish_reason")]

    @property
    def usage(self) -> dict | None:
        return self.chunks[-1].get("usage") if self.chunks else None


async def stream_one(client: httpx.AsyncClient, url: str, body: dict, headers: dict | None = None) -> Streamed:
    t0 = time.monotonic()
    async with client.stream("POST", url + "/v1/chat/completions", json=body, headers=headers) as r:
        out = Streamed(r.status_code, dict(r.headers))
        async for line in r.aiter_lines():
            if line == "data: [DONE]":
                out.done_markers += 1
            elif line.startswith("data: "):
                out.chunks.append(json.loads(line[6:]))
            elif line and r.status_code == 200:
                raise AssertionError(f"unexpected SSE line {line!r}")
        if r.status_code != 200:
            out.chunks.append(json.loads(await r.aread() or b"{}"))
    out.seconds = time.monotonic() - t0
    return out


def body_for(i: int, model: str = "base", tokens: int = 16, **extra) -> dict:
    """Greedy: on the tiny model PROMPTS[0] runs past 300 tokens before any EOS, so it is the
    long-running request of the fault tests."""
    return {"model": model, "messages": ask(PROMPTS[i % len(PROMPTS)]), "max_tokens": tokens,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}, **extra}


def finished_requests(wb) -> dict:
    """request_id -> engine Request, for every request that ends from now on."""
    seen: dict = {}
    wb.engine.add_listener(lambda req: seen.__setitem__(req.request_id, req))
    return seen


def wait_until(cond, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_64_concurrent_streams_complete_once_in_order(tmp_home, tiny_loaded, make_adapter, capsys) -> None:
    with serve_tiny(tiny_loaded, make_adapter) as s:
        seen = finished_requests(s.wb)
        tok = s.wb.loaded.tokenizer

        async def run() -> list[Streamed]:
            limits = httpx.Limits(max_connections=64)
            async with httpx.AsyncClient(timeout=120, limits=limits) as client:
                models = ["base", "a1"]
                return await asyncio.gather(*(stream_one(client, s.url, body_for(i, models[i % 2],
                                                                                 ignore_eos=True))
                                              for i in range(64)))

        t0 = time.monotonic()
        results = asyncio.run(run())
        wall = time.monotonic() - t0
        assert [r.status for r in results] == [200] * 64
        ids = [r.headers["x-request-id"] for r in results]
        assert len(set(ids)) == 64  # each request served once
        assert wait_until(lambda: all(i in seen for i in ids))
        for r, rid in zip(results, ids):
            req = seen[rid]
            assert r.done_markers == 1 and r.finish == ["length"]
            assert r.usage["completion_tokens"] == len(req.output_token_ids) == 16
            # Concatenated deltas are exactly the generated tokens: none missing, doubled or reordered.
            assert r.text == tok.decode(req.output_token_ids, skip_special_tokens=True)
            assert {c["model"] for c in r.chunks} == {r.headers["x-workbench-adapter"]}
        p95 = float(np.percentile([r.seconds for r in results], 95))
        with capsys.disabled():
            print(f"\n[load] 64 streams x 16 tokens, concurrency 64: errors 0, wall {wall:.2f} s, "
                  f"P95 {p95:.2f} s, P50 {np.percentile([r.seconds for r in results], 50):.2f} s")


def test_queue_full_burst_gets_503_at_once_then_serves(tmp_home, tiny_loaded, make_adapter) -> None:
    small = EngineConfig(max_batch_size=1, max_wait_ms=1.0, max_queue=2, min_prefix_tokens=4)
    with serve_tiny(tiny_loaded, make_adapter, config=small) as s:
        stop = threading.Event()

        def hog() -> None:  # keeps the only batch slot busy until told to stop
            with httpx.stream("POST", s.v1 + "/chat/completions", json=body_for(0, tokens=1000),
                              timeout=60) as r:
                for _ in r.iter_lines():
                    if stop.is_set():
                        return

        hogs = [threading.Thread(target=hog, daemon=True) for _ in range(3)]  # 1 running + 2 queued
        for t in hogs:
            t.start()
        assert wait_until(lambda: s.wb.engine.snapshot().waiting == 2)

        def burst() -> list[httpx.Response]:
            async def go():
                async with httpx.AsyncClient(timeout=30) as c:
                    return await asyncio.gather(*(c.post(s.v1 + "/chat/completions",
                                                         json={**body_for(i), "stream": False})
                                                  for i in range(12)))
            return asyncio.run(go())

        t0 = time.monotonic()
        responses = burst()
        elapsed = time.monotonic() - t0
        stop.set()
        assert [r.status_code for r in responses] == [503] * 12
        assert elapsed < 5.0  # refused at the door, not after waiting
        assert all(r.headers["retry-after"] == "1" for r in responses)
        assert responses[0].json()["error"]["type"] == "service_unavailable_error"
        for t in hogs:
            t.join(30)
        assert wait_until(lambda: s.wb.engine.snapshot().waiting == 0 and s.wb.engine.snapshot().running == 0)
        ok = httpx.post(s.v1 + "/chat/completions", json={**body_for(1), "stream": False}, timeout=60)
        assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] >= 1


def test_client_disconnect_cancels_request(tmp_home, tiny_loaded, make_adapter) -> None:
    with serve_tiny(tiny_loaded, make_adapter) as s:
        seen = finished_requests(s.wb)
        with httpx.stream("POST", s.v1 + "/chat/completions", json=body_for(0, "a1", tokens=1000),
                          timeout=60) as r:
            rid = r.headers["x-request-id"]
            lines = r.iter_lines()
            for _ in range(4):
                next(lines)
        # Leaving the block closed the connection after a few chunks.
        assert wait_until(lambda: rid in seen)
        req = seen[rid]
        assert req.finish_reason == "cancelled" and len(req.output_token_ids) < 1000
        assert wait_until(lambda: s.wb.engine.snapshot().running == 0)
        metrics = httpx.get(s.url + "/metrics").text
        model = s.wb.loaded.model_id
        assert (f'workbench:client_disconnects_total{{adapter="a1",adapter_version="v1",'
                f'model_name="{model}"}} 1.0') in metrics
        assert 'finished_reason="abort"' in metrics
        # Its slot is free: the next request runs at once.
        ok = httpx.post(s.v1 + "/chat/completions", json={**body_for(1), "stream": False}, timeout=60)
        assert ok.status_code == 200


def test_hot_swap_during_16_streams(tmp_home, tiny_loaded, make_adapter) -> None:
    with serve_tiny(tiny_loaded, make_adapter) as s:
        # Made on a separate base: making one on the served model would strip its adapters.
        make_adapter(load_model("tiny-glm"), "a1", "v2", seed=9, root=s.wb.registry.root)
        seen = finished_requests(s.wb)
        swap_window: list[float] = []
        real_replace = s.wb.engine.replace_adapter

        def timed_replace(*args, **kwargs):  # when the weights really change
            swap_window.append(time.monotonic())
            try:
                return real_replace(*args, **kwargs)
            finally:
                swap_window.append(time.monotonic())

        s.wb.engine.replace_adapter = timed_replace
        admin = {"Authorization": f"Bearer {ADMIN}"}

        async def run():
            async with httpx.AsyncClient(timeout=120) as client:
                first = [asyncio.create_task(stream_one(client, s.url, body_for(0, "a1", tokens=32)))
                         for i in range(16)]
                await asyncio.to_thread(wait_until, lambda: s.wb.engine.snapshot().running >= 8)
                swap = asyncio.create_task(client.post(
                    s.v1 + "/load_lora_adapter", json={"lora_name": "a1", "lora_path": "a1/v2"},
                    headers=admin))
                # Requests sent once the swap has closed the gate for a1 must get the new version.
                await asyncio.to_thread(
                    wait_until, lambda: "a1" in s.wb._gate.closed or len(swap_window) == 2)
                later = [asyncio.create_task(stream_one(client, s.url, body_for(i, "a1", tokens=8)))
                         for i in range(4)]
                return await asyncio.gather(*first), await swap, await asyncio.gather(*later)

        first, swap, later = asyncio.run(run())
        assert swap.status_code == 200, swap.text
        assert swap.headers["x-workbench-adapter"] == "a1@v2"
        assert len(swap_window) == 2
        t_start, t_end = swap_window
        assert wait_until(lambda: all(r.headers["x-request-id"] in seen for r in [*first, *later]))
        for r in [*first, *later]:
            assert r.status == 200 and r.finish and r.done_markers == 1  # none failed
            named = r.headers["x-workbench-adapter"]
            assert {c["model"] for c in r.chunks} == {named}
            req = seen[r.headers["x-request-id"]]
            times = req.metrics.token_times
            if named == "a1@v1":  # every token before the weights changed
                assert times[-1] < t_start
            else:  # every token after
                assert named == "a1@v2" and times[0] > t_end
        assert {r.headers["x-workbench-adapter"] for r in first} == {"a1@v1"}
        assert {r.headers["x-workbench-adapter"] for r in later} == {"a1@v2"}
