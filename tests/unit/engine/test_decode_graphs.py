"""The capturable decode step: stacked adapters, the persistent slot pool, bucketed graphs.

The CPU cannot capture a CUDA graph, so the capture itself is stood in for by a fake graph
that replays by running the recorded step again on its own buffers: what a real replay
does, reading only what was copied into those buffers. Everything else (stacks, pool,
buckets, masks, the fall-backs) runs as on a GPU.
"""
from __future__ import annotations

import random

import pytest
import torch
from peft import LoraConfig, get_peft_model

from greedy_match import assert_row_near_greedy
from workbench.config import EngineConfig
from workbench.engine import BASE_ADAPTER, Engine, RequestStatus, SamplingParams
from workbench.engine import capture as capture_mod
from workbench.engine.capture import resolve_mode
from workbench.engine.slots import Joining, SlotBatch, SlotPool
from workbench.engine.stacked_lora import StackedLora
from workbench.errors import AdapterError, UnknownNameError
from workbench.models.catalog import load_model

QUESTIONS = ["Where is my order? It has not arrived.", "我的订单在哪里？我想退货。",
             "¿Puedo devolver unos zapatos después de 20 días?", "أين طلبي؟"]
LONG = SamplingParams(ignore_eos=True)


def msgs(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are a support agent."}, {"role": "user", "content": text}]


@pytest.fixture
def adapters(make_adapter):
    """Two random adapters, made on a twin so the served model is untouched."""
    twin = load_model("tiny-glm")
    a1 = make_adapter(twin, "a1", seed=1)
    a2 = make_adapter(twin, "a2", seed=2)
    return {"a1": a1, "a2": a2}


def _wait(reqs) -> None:
    for r in reqs:
        assert r.done_event.wait(60) and r.status is RequestStatus.FINISHED, r.error


def _check(engine: Engine, req, adapter: str, penalty: float = 1.0) -> None:
    banned = sorted(engine.runner.eos_ids) if req.sampling.ignore_eos else ()
    assert_row_near_greedy(engine.runner.model, engine.loaded.tokenizer, req.messages,
                           req.output_token_ids, adapter, penalty, banned, label=req.request_id)


def _mixed_run(engine: Engine) -> list:
    """Rows of three variants and two samplers, one joining mid-decode."""
    first = engine.submit(msgs(QUESTIONS[0]), "a1", LONG, max_new_tokens=30)
    while len(first.output_token_ids) < 4 and not first.done_event.is_set():
        first.done_event.wait(0.005)
    rest = [engine.submit(msgs(QUESTIONS[1]), None, LONG, 12),
            engine.submit(msgs(QUESTIONS[2]), "a2", SamplingParams(repetition_penalty=1.3), 12),
            engine.submit(msgs(QUESTIONS[3]), "a1", SamplingParams(temperature=0.9, seed=3), 12)]
    _wait([first, *rest])
    return [first, *rest]


def test_static_decode_serves_each_row_its_own_adapter_as_rows_join_and_leave(tiny_loaded, adapters) -> None:
    with Engine(tiny_loaded, EngineConfig(max_batch_size=4, max_wait_ms=0, decode_graphs="static")) as engine:
        for name, path in adapters.items():
            engine.load_adapter(name, path)
        first, base, a2, _ = _mixed_run(engine)
        assert a2.metrics.batch_size >= 2  # it really decoded next to other rows
        _check(engine, first, "a1")
        _check(engine, base, BASE_ADAPTER)
        _check(engine, a2, "a2", 1.3)
        stats = engine.runner.static.stats
        assert stats.eager_steps > 0 and stats.replays == 0 and stats.graphs >= 2  # several buckets
        with pytest.raises(AssertionError, match="wrong adapter"):  # the rule sees a swapped adapter
            _check(engine, a2, "a1", 1.3)


class FakeGraph:
    """Stands in for a CUDA graph: replay re-runs the recorded step into the same output."""

    def __init__(self, fn, out: torch.Tensor) -> None:
        self.fn, self.out = fn, out

    def replay(self) -> None:
        self.out.copy_(self.fn())


def _fake_capture(graph, mempool) -> None:
    graph.logits = graph.fn()
    graph.cuda_graph = FakeGraph(graph.fn, graph.logits)


def test_one_capture_per_bucket_and_recapture_after_an_adapter_change(tiny_loaded, adapters, monkeypatch) -> None:
    monkeypatch.setattr(capture_mod._Graph, "capture", _fake_capture)
    monkeypatch.setattr(capture_mod, "graph_pool", lambda device: object())
    with Engine(tiny_loaded, EngineConfig(max_batch_size=4, max_wait_ms=0, decode_graphs="cuda")) as engine:
        engine.load_adapter("a1", adapters["a1"])
        stats = engine.runner.static.stats
        reqs = [engine.submit(msgs(q), a, LONG, 16) for q, a in zip(QUESTIONS[:2], ["a1", None])]
        _wait(reqs)
        for r, a in zip(reqs, ["a1", BASE_ADAPTER]):
            _check(engine, r, a)
        steps = engine.stats.steps
        assert stats.replays == steps and stats.eager_steps == 0  # every step replayed a graph
        # One per bucket seen and pool size (the pool grows as rows join), not one per step.
        assert stats.graphs <= 2 and stats.captures <= stats.graphs + engine.runner.pool.generation - 1
        assert stats.captures < steps / 2
        before = stats.captures
        engine.load_adapter("a2", adapters["a2"])
        assert stats.graphs == 0  # graphs over the old stacks are gone
        late = engine.submit(msgs(QUESTIONS[2]), "a2", LONG, 8)
        _wait([late])
        _check(engine, late, "a2")
        assert stats.captures > before


def test_a_hot_swap_restacks_so_rows_decode_with_the_new_weights(tiny_loaded, adapters) -> None:
    with Engine(tiny_loaded, EngineConfig(max_batch_size=2, max_wait_ms=0, decode_graphs="static")) as engine:
        for name, path in adapters.items():
            engine.load_adapter(name, path)
        _wait([engine.submit(msgs(QUESTIONS[0]), "a1", LONG, 8)])  # stacks built on the old weights
        engine.replace_adapter("a2", adapters["a1"], adapters["a2"])  # a2 now serves a1's weights
        late = [engine.submit(msgs(q), "a2", LONG, 24) for q in QUESTIONS]
        _wait(late)
        for req in late:
            _check(engine, req, "a2")  # judged by PEFT on the weights "a2" names now


def test_a_capture_that_fails_falls_back_to_eager_and_says_why(tiny_loaded, monkeypatch) -> None:
    def broken(graph, mempool) -> None:
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(capture_mod._Graph, "capture", broken)
    monkeypatch.setattr(capture_mod, "graph_pool", lambda device: object())
    with Engine(tiny_loaded, EngineConfig(max_batch_size=2, max_wait_ms=0, decode_graphs="cuda")) as engine:
        req = engine.submit(msgs(QUESTIONS[0]), None, LONG, 10)
        _wait([req])
        _check(engine, req, BASE_ADAPTER)
        stats = engine.runner.static.stats
        assert stats.mode == "static" and "not permitted" in stats.fallback
        assert stats.captures == 0 and stats.eager_steps == engine.stats.steps


def test_cuda_graphs_asked_for_on_the_cpu_serve_every_row_and_say_why(tiny_loaded) -> None:
    with Engine(tiny_loaded, EngineConfig(max_batch_size=2, max_wait_ms=0, decode_graphs="cuda")) as engine:
        reqs = [engine.submit(msgs(q), None, LONG, 6) for q in QUESTIONS[:2]]
        _wait(reqs)
        for r in reqs:
            _check(engine, r, BASE_ADAPTER)
        stats = engine.runner.static.stats
        assert stats.mode == "static" and "need the model on a CUDA device" in stats.fallback
        assert "capture failed: RuntimeError: CUDA graphs need" in engine.snapshot().decode


def test_an_adapter_that_cannot_be_stacked_is_refused_at_load(tiny_loaded, adapters, tmp_path) -> None:
    twin = load_model("tiny-glm")
    dora = get_peft_model(twin.model, LoraConfig(r=4, target_modules=["q_proj"], use_dora=True,
                                                 init_lora_weights=False))
    dora.save_pretrained(tmp_path / "dora")
    with Engine(tiny_loaded, EngineConfig(max_batch_size=2, max_wait_ms=0, decode_graphs="static")) as engine:
        engine.load_adapter("a1", adapters["a1"])
        with pytest.raises(AdapterError, match="cannot be served: .*DoRA"):
            engine.load_adapter("d", tmp_path / "dora")
        assert engine.adapters == ["a1"]  # what was served before, still served
        req = engine.submit(msgs(QUESTIONS[0]), "a1", LONG, 8)
        _wait([req])
        _check(engine, req, "a1")


def test_stacked_deltas_equal_peft_routing_with_mixed_ranks_and_targets(tiny_loaded) -> None:
    model = get_peft_model(tiny_loaded.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                         init_lora_weights=False), adapter_name="a1")
    model.add_adapter("a2", LoraConfig(r=8, lora_alpha=4, target_modules=["q_proj", "o_proj"],
                                       init_lora_weights=False))
    model.eval()
    stacks = StackedLora.build(model, ["a1", "a2"])
    assert isinstance(stacks, StackedLora) and {layer.rank for layer in stacks.layers} == {4, 8}
    keys = ["a2", BASE_ADAPTER, "a1", "a2"]
    ids = torch.randint(0, 200, (4, 7))
    with torch.inference_mode():
        ref = model(input_ids=ids, adapter_names=keys).logits
        with stacks.routed(stacks.onehot(keys, 4)):  # PEFT's own LoRA is off inside
            got = model(input_ids=ids).logits
        with stacks.routed(None):  # every row base: no hook, PEFT's LoRA off
            assert not any(m._forward_hooks for m in model.modules())
            bare = model(input_ids=ids).logits
        after = model(input_ids=ids).logits  # and on again after: the active adapter, a1
        with model.disable_adapter():
            plain = model(input_ids=ids).logits
        torch.testing.assert_close(after[2], ref[2])
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    assert (ref[0] - plain[0]).abs().max() > 1e-2  # the adapters really change the rows
    torch.testing.assert_close(got[1], plain[1])  # the base row gets no delta
    torch.testing.assert_close(bare, plain)
    assert not any(m._forward_hooks for m in model.modules())  # hooks gone after the block


def test_dora_is_not_stacked(tiny_loaded) -> None:
    model = get_peft_model(tiny_loaded.model, LoraConfig(r=4, target_modules=["q_proj"], use_dora=True))
    reason = StackedLora.build(model, ["default"])
    assert isinstance(reason, str) and "DoRA" in reason


def _layers(rows: int, length: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(rows, 2, length, 4, generator=g), torch.randn(rows, 2, length, 4, generator=g))
            for _ in range(2)]


def _joining(rows: int, length: int, seed: int) -> Joining:
    """Prefilled rows: random keys/values, each row's first columns holes (left padding)."""
    mask = torch.ones(rows, length, dtype=torch.long)
    for b in range(rows):
        mask[b, :random.Random(seed + b).randrange(length // 2 + 1)] = 0
    names = [f"r{seed}-{b}" for b in range(rows)]
    return Joining.select(names, _layers(rows, length, seed), mask, list(range(rows)), list(range(rows)))


def _real_columns(batch: SlotBatch, b: int) -> list[torch.Tensor]:
    """Row b's keys and values at its real tokens, oldest first: [H, n, D] per layer and tensor."""
    w = batch.length
    real = batch.mask[b].bool()
    return [t[b, :, :w][:, real] for kv in batch.pool.layers() for t in kv]


def test_slot_batch_keeps_every_rows_history_through_joins_leaves_growth_and_shrinking() -> None:
    pool = SlotPool()
    slots = SlotBatch(pool)
    # What each row must hold: its real keys/values per layer and tensor, oldest first.
    ref: dict[str, list[torch.Tensor]] = {}
    rng = random.Random(0)
    shapes = set()
    for step in range(60):
        if step % 5 == 0 and (len(slots) < 6 or step == 20):  # rows join, one longer than all
            n, length = rng.randint(1, 2), 600 if step == 20 else rng.choice([5, 40, 12])
            joined = _joining(n, length, step)
            for b, name in enumerate(joined.rows):
                real = joined.mask[b].bool()
                ref[name] = [t[b][:, real].clone() for kv in joined.layers for t in kv]
            slots.extend(joined)
        elif step % 3 == 0 and len(slots) > 1:  # rows leave
            index = sorted(rng.sample(range(len(slots)), rng.randint(1, len(slots) - 1)))
            slots.keep(index)
        else:  # a decode step writes one column for every row
            slots.make_room()
            col = slots.length
            k = torch.randn(len(slots), 2, 1, 4)
            for pk, pv in pool.layers():
                pk[:len(slots), :, col:col + 1] = k
                pv[:len(slots), :, col:col + 1] = -k
            slots.advance()
            for b, name in enumerate(slots.rows):
                ref[name] = [torch.cat([t, k[b] * (1 if i % 2 == 0 else -1)], dim=1)
                             for i, t in enumerate(ref[name])]
        shapes.add((pool.rows, pool.columns))
        assert torch.equal(slots.next_pos, slots.mask.sum(-1))
        for b, name in enumerate(slots.rows):
            for got, want in zip(_real_columns(slots, b), ref[name], strict=True):
                assert torch.equal(got, want), f"step {step}, row {b}"
    columns = {c for _, c in shapes}
    assert max(columns) >= 512 and len({r for r, _ in shapes}) >= 2  # it grew, in rows and columns
    assert pool.rows < max(r for r, _ in shapes) or pool.columns < max(columns)  # and gave back


def test_the_environment_sets_the_mode_and_a_bad_one_is_refused_before_serving(tiny_loaded, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_DECODE_GRAPHS", "static")
    assert EngineConfig().decode_graphs == "static"
    monkeypatch.setenv("WORKBENCH_DECODE_GRAPHS", "graphs")
    with pytest.raises(UnknownNameError, match="decode graphs mode.*'graphs'.*cuda"):
        Engine(tiny_loaded, EngineConfig())


def test_modes_resolve_by_device_and_unknown_names_are_refused() -> None:
    assert resolve_mode("auto", "cpu") == "off"
    assert resolve_mode("auto", "cuda") == "cuda"
    assert resolve_mode("static", "cpu") == "static"
    with pytest.raises(UnknownNameError, match="static"):
        resolve_mode("statik", "cpu")


def _continuous_cases() -> list:
    import test_engine_continuous as cont

    return [cont.test_row_that_stops_early_closes_its_stream_first,
            cont.test_cancelled_row_frees_its_slot_for_the_next_request,
            cont.test_interactive_request_takes_a_batch_rows_slot_and_the_row_resumes,
            cont.test_short_request_joins_a_long_decode_within_three_steps]


@pytest.mark.parametrize("case", _continuous_cases(), ids=lambda f: f.__name__[5:])
def test_continuous_batching_behaves_the_same_in_the_slot_pool(case, tiny_loaded, monkeypatch) -> None:
    from workbench.engine import runner as runner_mod

    built = []
    real = runner_mod.StaticDecoder

    def static_decoder(mode: str, pool: SlotPool):
        built.append(real("static", pool))
        return built[-1]

    monkeypatch.setattr(runner_mod, "resolve_mode", lambda mode, device: "static")
    monkeypatch.setattr(runner_mod, "StaticDecoder", static_decoder)
    case(tiny_loaded)
    assert built and all(d.stats.eager_steps > 0 for d in built)  # the steps ran in the pool


def test_the_monitor_says_how_decode_steps_run(tiny_loaded, monkeypatch) -> None:
    from types import SimpleNamespace

    from workbench.telemetry.collector import LiveGauges
    from workbench.ui import monitor_tab
    from workbench.ui.monitor_tab import live_markdown

    monkeypatch.setattr(monitor_tab, "_canaries", lambda wb: [])  # no routes here

    with Engine(tiny_loaded, EngineConfig(max_batch_size=2, decode_graphs="static")) as engine:
        _wait([engine.submit(msgs(QUESTIONS[0]), None, LONG, 4)])
        assert engine.snapshot().decode == "bucketed, eager (1 bucket)"
    with Engine(tiny_loaded, EngineConfig(max_batch_size=2, decode_graphs="off")) as engine:
        assert engine.snapshot().decode == "eager"

    def page(decode: str) -> str:
        live = LiveGauges(0, 0, (), 2**20, None, None, decode)
        wb = SimpleNamespace(telemetry=SimpleNamespace(live=lambda: live), variant_label=str)
        return live_markdown(wb)

    assert "decode steps: CUDA graphs (3 captured)" in page("CUDA graphs (3 captured)")
    assert "decode steps" not in page("eager")


def test_the_pool_holds_memory_only_while_rows_run(tiny_loaded) -> None:
    import time

    with Engine(tiny_loaded, EngineConfig(max_batch_size=3, max_wait_ms=0, decode_graphs="off")) as engine:
        pool = engine.runner.pool
        reqs = [engine.submit(msgs(q), None, LONG, 6) for q in QUESTIONS[:3]]
        seen = 0
        while not all(r.done_event.is_set() for r in reqs):
            seen = max(seen, pool.rows)
            time.sleep(0.001)
        _wait(reqs)
        deadline = time.monotonic() + 5
        while pool.keys and time.monotonic() < deadline:  # the worker drops it after the last row
            time.sleep(0.01)
        assert 1 <= seen <= 4  # slots for the rows that ran
        assert pool.keys == [] and pool.rows == 0
