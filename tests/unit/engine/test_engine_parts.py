"""The engine's parts alone: incremental text, stop strings, per-row sampling, the running
batch's cache surgery, and the open-loop arrival trace."""
from __future__ import annotations

import random

import torch

from workbench.engine.packing import positions_of
from workbench.engine.request import SamplingParams
from workbench.engine.sampling import RowSampler, sample_rows
from workbench.engine.slots import Joining, SlotBatch, SlotPool
from workbench.engine.streaming import TextStream
from workbench.models.tiny import build_tokenizer


def test_incremental_text_equals_a_full_decode_without_redecoding_everything() -> None:
    tok = build_tokenizer()
    rng = random.Random(0)
    calls = {"n": 0}
    real = tok.decode

    def counting(ids, **kw):
        calls["n"] += len(ids)
        return real(ids, **kw)

    tok.decode = counting
    for trial in range(20):
        ids = [rng.randrange(len(tok)) for _ in range(60)]
        stream = TextStream(tok)
        text = "".join(stream.push(i) for i in ids) + stream.flush()
        assert text == real(ids, skip_special_tokens=True), trial
    # A window of a few ids per step, not the whole row: far below 60 * 61 / 2 per answer.
    assert calls["n"] / 20 < 60 * 12


def test_stop_string_is_held_back_then_cut() -> None:
    tok = build_tokenizer()
    ids = tok("Returns within 14 days. Refund in 7 days.", add_special_tokens=False)["input_ids"]
    stream = TextStream(tok, stop=("Refund",))
    shown = ""
    for i in ids:
        shown += stream.push(i)
        assert "Ref" not in shown  # never shows the start of a stop string it then cuts
        if stream.stopped:
            break
    shown += stream.flush()
    assert stream.stopped and shown == "Returns within 14 days. " == stream.text


def test_row_sampling_settings_are_per_row() -> None:
    logits = torch.tensor([[1.0, 3.0, 2.9, 0.0], [1.0, 3.0, 2.9, 0.0], [0.0, 1.0, 5.0, 0.0]])
    greedy = RowSampler(SamplingParams(), [], {3}, None, "cpu")
    penalised = RowSampler(SamplingParams(repetition_penalty=2.0), [1], {3}, None, "cpu")
    no_eos = RowSampler(SamplingParams(ignore_eos=True), [], {2}, None, "cpu")
    assert sample_rows(logits.clone(), [greedy, penalised, no_eos]) == [1, 2, 1]


def test_eos_is_masked_only_on_ignore_eos_rows_whatever_their_eos_set() -> None:
    logits = torch.tensor([[0.0, 9.0, 1.0, 2.0]] * 4)  # [4, V]: token 1 wins unless masked
    rows = [RowSampler(SamplingParams(ignore_eos=True), [], {1}, None, "cpu"),
            RowSampler(SamplingParams(), [], {1}, None, "cpu"),
            RowSampler(SamplingParams(ignore_eos=True), [], {1, 3}, None, "cpu"),
            RowSampler(SamplingParams(ignore_eos=True), [], {2}, None, "cpu")]
    assert sample_rows(logits.clone(), rows) == [3, 1, 2, 1]


def test_sampled_rows_follow_their_own_seed() -> None:
    logits = torch.randn(1, 50)
    params = SamplingParams(temperature=1.0, top_p=0.95, seed=7)
    draws = [[sample_rows(logits.clone(), [RowSampler(params, [], set(), None, "cpu")])[0]
              for _ in range(1)] for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]
    one = RowSampler(params, [], set(), None, "cpu")
    seq = [sample_rows(logits.clone(), [one])[0] for _ in range(20)]
    assert len(set(seq)) > 1  # it samples, and the generator advances
    top = RowSampler(SamplingParams(temperature=1.0, top_p=1e-6, seed=1), [], set(), None, "cpu")
    assert {sample_rows(logits.clone(), [top])[0] for _ in range(10)} == {int(logits.argmax())}


def _joining(lengths: list[int], fill: float, first: int = 0) -> Joining:
    """Prefilled rows of these lengths (left-padded), every real key/value ``fill``."""
    L = max(lengths)
    mask = torch.zeros(len(lengths), L, dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, L - n:] = 1
    k = torch.full((len(lengths), 1, L, 4), fill) * mask[:, None, :, None]  # [B, 1, L, 4]
    rows = list(range(first, first + len(lengths)))
    return Joining.select(rows, [(k.clone(), k.clone())], mask, [0] * len(lengths), list(range(len(lengths))))


def test_running_batch_join_and_leave_keep_rows_aligned_and_compact() -> None:
    pool = SlotPool()
    running = SlotBatch(pool)
    running.extend(_joining([3, 5], 1.0))
    assert pool.rows == 2 and pool.columns == 256  # slots on demand, not the largest batch
    running.extend(_joining([7], 2.0, first=2))  # longer newcomer: the running rows shift right
    assert running.length == 7 and running.mask.sum(-1).tolist() == [3, 5, 7]
    keys = pool.keys[0]
    assert keys[2, 0, :7, 0].tolist() == [2.0] * 7 and keys[0, 0, :4, 0].tolist() == [0.0] * 4
    assert keys[0, 0, 4:7, 0].tolist() == [1.0] * 3 and pool.rows == 4
    running.keep([0, 1])  # the long row leaves
    assert running.rows == [0, 1] and running.next_pos.tolist() == [3, 5]
    running.make_room()
    step = running.step_inputs()
    assert step["attention_mask"].shape == (2, 8) and step["position_ids"].tolist() == [[3], [5]]
    assert step["cache"].layers[0].keys.shape == (2, 1, 8, 4)  # exact shapes, no bucket


def test_the_pool_grows_with_rows_and_lengths_and_shrinks_when_rows_leave() -> None:
    pool = SlotPool()
    running = SlotBatch(pool)
    running.extend(_joining([300] * 9, 1.0))
    assert (pool.rows, pool.columns) == (16, 512)
    gen = pool.generation
    running.keep([0])  # one short-lived row left: the pool is 16 times too many slots
    assert (pool.rows, pool.columns) == (1, 512) and pool.generation == gen + 1
    assert pool.keys[0][0, 0, :300, 0].tolist() == [1.0] * 300  # what it held came along


def test_positions_skip_holes() -> None:
    mask = torch.tensor([[1, 1, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1]])
    assert positions_of(mask).tolist() == [[0, 1, 1, 1, 2, 3], [0, 0, 0, 0, 1, 2]]


def test_arrival_trace_is_seeded_poisson_with_varied_lengths() -> None:
    from workbench.bench.open_loop import OUTPUT_LENGTHS, arrival_trace

    trace = arrival_trace(400, 2.0, ["__base__", "a1", "a2"], seed=3)
    assert trace == arrival_trace(400, 2.0, ["__base__", "a1", "a2"], seed=3)
    gaps = [b.at - a.at for a, b in zip(trace, trace[1:])]
    assert 0.4 < sum(gaps) / len(gaps) < 0.6 and min(gaps) >= 0
    assert {a.max_new_tokens for a in trace} == set(OUTPUT_LENGTHS)
    assert sum(a.variant == "__base__" for a in trace) == 200
    assert {a.variant for a in trace} == {"__base__", "a1", "a2"}


def test_bench_warm_up_caches_every_system_prompt_for_every_variant(workbench) -> None:
    from workbench.bench.closed_loop import bench_prompts, warm_prefixes

    prompts = bench_prompts(40)
    systems = {p[0]["content"] for p in prompts}
    variants = ["__base__", *workbench.engine.adapters]
    assert len(systems) > 1 and len(variants) == 3
    assert len(workbench.engine.runner.prefixes) == 0
    assert warm_prefixes(workbench, prompts, variants) == len(systems) * len(variants)
    assert len(workbench.engine.runner.prefixes) == len(systems) * len(variants)
    # A pass that follows finds its prefixes cached: no prompt pays for its system prompt.
    before = workbench.engine.stats.cached_tokens
    workbench.engine.generate(prompts[-1], variants[-1], 2)
    assert workbench.engine.stats.cached_tokens > before
