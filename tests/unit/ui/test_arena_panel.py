"""The blind arena panel on the tiny GLM: random sides, one vote per round, names after it."""
from __future__ import annotations

import random
from collections import Counter

import gradio as gr
import pytest

from workbench.engine import BASE_ADAPTER
from workbench.errors import InputError
from workbench.eval.arena import ArenaStore
from workbench.domain.pii import mask_pii
from workbench.service.workbench import Workbench
from workbench.ui.arena_panel import (build_arena_leaderboard, build_arena_panel, draw_pair,
                                      leaderboard_view, record_vote, start_round)


def test_pairs_are_two_variants_on_random_sides() -> None:
    rng = random.Random(0)
    seen = Counter(draw_pair(["__base__", "a1", "a2"], rng) for _ in range(600))
    assert all(a != b for a, b in seen)
    assert len(seen) == 6 and min(seen.values()) > 60  # every ordered pair, roughly evenly
    with pytest.raises(InputError, match="two loaded variants"):
        draw_pair(["__base__"], rng)


def test_a_round_votes_once_and_reveals_names(workbench: Workbench) -> None:
    store = ArenaStore()
    rnd = start_round(workbench, "Order #4821937: can I return it?", "en", "GB", True, 6, 0.0,
                      1.0, rng=random.Random(1))
    assert {rnd.variant_a, rnd.variant_b} <= set(workbench.variants)
    assert rnd.variant_a != rnd.variant_b
    with pytest.raises(InputError, match="Ask a question"):
        record_vote(store, None, "a")
    for req in rnd.requests:
        req.done_event.wait(60)
    text = record_vote(store, rnd, "tie", workbench.loaded.name)
    assert f"A was **{rnd.label_a}**, B was **{rnd.label_b}**" in text
    assert BASE_ADAPTER not in text  # base is shown as "base"
    with pytest.raises(InputError, match="already has a vote"):
        record_vote(store, rnd, "a")
    (row,) = store.votes().to_dict(orient="records")
    assert (row["variant_a"], row["variant_b"], row["vote"]) == (rnd.label_a, rnd.label_b, "tie")
    assert "4821937" not in row["question"] and row["region"] == "GB"
    assert row["answer_a"] == mask_pii(rnd.requests[0].output_text, "GB", "en")
    assert row["answer_b"] == mask_pii(rnd.requests[1].output_text, "GB", "en")
    view = leaderboard_view(store)
    assert set(view["variant"]) == {rnd.label_a, rnd.label_b} and "95% CI" in view


def test_panels_build_in_blocks(workbench: Workbench) -> None:
    with gr.Blocks():
        lang, region = gr.Dropdown(["en"], value="en"), gr.Dropdown(["EU"], value="EU")
        grounded = gr.Checkbox(True)
        sliders = [gr.Slider(1, 64, value=8), gr.Slider(0, 1, value=0), gr.Slider(1, 2, value=1)]
        build_arena_panel(workbench, lang, region, grounded, *sliders)
        board = build_arena_leaderboard()
    assert isinstance(board, gr.Dataframe)
