"""Blind arena: an anonymous A/B mode for the Chat tab, and its leaderboard for Evaluate.

Two of the loaded variants are drawn at random for each question and shown as "A" and "B"
(the draw's order decides the sides), so a product owner judges answers, not names; the
names appear only after the vote. Each vote is stored with the language, the region and
both answers, masked (``workbench.eval.arena``).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from workbench.engine.request import BASE_ADAPTER, Request, SamplingParams
from workbench.errors import InputError, WorkbenchError
from workbench.eval.arena import VOTE_LABELS, VOTES, ArenaStore, Vote, leaderboard
from workbench.service.turns import Face, TurnHandle, TurnRequest, stream_together
from workbench.service.workbench import Workbench
from workbench.store.chatlog import new_conversation_id
from workbench.ui.common import guard

_RNG = random.SystemRandom()


@dataclass
class ArenaRound:
    """One question put to two anonymous variants."""

    # Variant keys on side A and B ("__base__" or adapter names) and their shown names.
    variant_a: str
    variant_b: str
    label_a: str
    label_b: str
    # The question, where it was asked from, and the two requests.
    question: str
    lang: str
    region: str
    conversation_id: str
    handles: tuple[TurnHandle, TurnHandle]
    # Set once a vote is stored, so a round is voted on only once.
    voted: bool = False

    @property
    def requests(self) -> tuple[Request, Request]:
        return self.handles[0].request, self.handles[1].request


def draw_pair(variants: list[str], rng: random.Random | None = None) -> tuple[str, str]:
    """Two different variants in random order: the first is shown as A."""
    if len(variants) < 2:
        raise InputError("The blind arena needs two loaded variants; load an adapter first.")
    a, b = (rng or _RNG).sample(list(variants), 2)
    return a, b


def label(wb: Workbench, variant: str) -> str:
    return "base" if variant == BASE_ADAPTER else wb.variant_label(variant)


def start_round(wb: Workbench, question: str, lang: str, region: str, grounded: bool,
                max_new_tokens: int, temperature: float, repetition_penalty: float,
                rng: random.Random | None = None) -> ArenaRound:
    """Draw two variants and send them the question at once (they normally share a batch)."""
    question = (question or "").strip()
    if not question:
        raise InputError("Type a customer question first.")
    a, b = draw_pair(wb.variants, rng)
    sampling = SamplingParams(temperature=float(temperature),
                              repetition_penalty=float(repetition_penalty))
    conv = new_conversation_id()
    turns = [TurnRequest.question(v, question, Face.ARENA, lang=lang, region=region, grounded=grounded,
                                  sampling=sampling, max_new_tokens=int(max_new_tokens), pane=side,
                                  conversation_id=conv) for v, side in ((a, "a"), (b, "b"))]
    handle_a = wb.serve_turn(turns[0])
    try:
        handle_b = wb.serve_turn(turns[1])
    except WorkbenchError:
        handle_a.cancel("its twin was refused")
        raise
    return ArenaRound(a, b, label(wb, a), label(wb, b), question, lang, region, conv,
                      (handle_a, handle_b))


def record_vote(store: ArenaStore, rnd: ArenaRound | None, vote: str, model: str | None = None) -> str:
    """Store the vote (masked) and reveal who was who."""
    if rnd is None or not all(r.done_event.is_set() for r in rnd.requests):
        raise InputError("Ask a question and wait for both answers before voting.")
    if rnd.voted:
        raise InputError("This round already has a vote; ask another question.")
    store.record(Vote(rnd.label_a, rnd.label_b, rnd.question, rnd.requests[0].output_text,
                      rnd.requests[1].output_text, vote, rnd.lang, rnd.region, model,
                      rnd.conversation_id))
    rnd.voted = True
    return (f"**{VOTE_LABELS[vote]}** — A was **{rnd.label_a}**, B was **{rnd.label_b}**. "
            "Vote saved.")


def _history(question: str, req: Request, text: str) -> list[dict]:
    shown = text if not req.error else f"{text}\n\n⚠️ {req.error}"
    return [{"role": "user", "content": question}, {"role": "assistant", "content": shown}]


def build_arena_panel(wb: Workbench, lang: gr.Dropdown, region: gr.Dropdown,
                      grounded: gr.Checkbox, max_new: gr.Slider, temperature: gr.Slider,
                      rep_penalty: gr.Slider, store: ArenaStore | None = None) -> None:
    """The Chat tab's anonymous mode; reuses the tab's language, region and settings."""
    store = store or ArenaStore()
    with gr.Accordion("Blind arena: two anonymous variants", open=False, elem_id="arena"):
        gr.Markdown("Two loaded variants, drawn at random, answer as **A** and **B**. "
                    "Vote, then see which was which.")
        rnd = gr.State(None)
        question = gr.Textbox(label="Customer message", elem_id="arena-input")
        ask = gr.Button("Ask A and B", variant="primary", elem_id="arena-ask")
        with gr.Row(equal_height=True):
            bot_a = gr.Chatbot(label="A", height=300, elem_id="arena-a")
            bot_b = gr.Chatbot(label="B", height=300, elem_id="arena-b")
        with gr.Row():
            buttons = [gr.Button(VOTE_LABELS[v], interactive=False, elem_id=f"arena-vote-{v}")
                       for v in VOTES]
        reveal = gr.Markdown("", elem_id="arena-reveal")

    @guard
    def on_ask(q, lang_v, region_v, grounded_v, max_new_v, temp, rep):
        r = start_round(wb, q, lang_v, region_v, grounded_v, max_new_v, temp, rep)
        texts = ["", ""]
        off = [gr.update(interactive=False)] * len(VOTES)
        for batch in stream_together(r.handles):
            for k, piece in batch:
                texts[k] += piece
            yield (r, _history(r.question, r.requests[0], texts[0]),
                   _history(r.question, r.requests[1], texts[1]), "", *off)
        on = [gr.update(interactive=True)] * len(VOTES)
        yield (r, _history(r.question, r.requests[0], r.requests[0].output_text),
               _history(r.question, r.requests[1], r.requests[1].output_text), "", *on)

    ask.click(on_ask, [question, lang, region, grounded, max_new, temperature, rep_penalty],
              [rnd, bot_a, bot_b, reveal, *buttons], concurrency_limit=None)
    for vote, button in zip(VOTES, buttons):
        button.click(_on_vote(store, wb, vote), rnd, [reveal, *buttons])


def _on_vote(store: ArenaStore, wb: Workbench, vote: str):
    @guard
    def save(r: ArenaRound | None):
        text = record_vote(store, r, vote, wb.loaded.name)
        return (text, *[gr.update(interactive=False)] * len(VOTES))
    return save


# ---- Evaluate tab ----------------------------------------------------------------------
def leaderboard_view(store: ArenaStore, per_language: bool = False) -> pd.DataFrame:
    """The leaderboard as shown: rating and its 95% interval rounded, vote counts."""
    table = leaderboard(store.votes(), by_lang=per_language)
    if table.empty:
        return table
    table["95% CI"] = [f"{lo:.0f}–{hi:.0f}" for lo, hi in zip(table["low"], table["high"])]
    table["rating"] = table["rating"].round(0).astype(int)
    return table.drop(columns=["low", "high"])


def build_arena_leaderboard(store: ArenaStore | None = None) -> gr.Dataframe:
    """Bradley–Terry ratings from all arena votes, overall or per language."""
    store = store or ArenaStore()
    with gr.Accordion("Blind arena leaderboard", open=False, elem_id="arena-board"):
        gr.Markdown("Bradley–Terry ratings (Elo scale) over all votes; ties and "
                    "\"both bad\" count half. 95% intervals from a seeded bootstrap.")
        with gr.Row():
            scope = gr.Radio(["all votes", "per language"], value="all votes", label="Scope",
                             elem_id="arena-board-scope")
            refresh = gr.Button("Refresh", elem_id="arena-board-refresh")
        table = gr.Dataframe(leaderboard_view(store), interactive=False, elem_id="arena-board-table")
    show = lambda s: leaderboard_view(store, s == "per language")  # noqa: E731
    refresh.click(show, scope, table)
    scope.change(show, scope, table)
    return table
