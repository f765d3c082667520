"""Chat tab, arena style: one question, base on the left, an adapter on the right, both streaming.

Both turns go to the service at the same moment, so they normally share one batch (a
mixed-adapter batch over the one copy of the base weights). Every face serves its turns
through ``Workbench.serve_turn``; the service records them.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr

from workbench.console.textfmt import human_duration
from workbench.domain.langs import (RTL_LANGUAGES, example_questions, language_choices, region_choices,
                                    suggested_region)
from workbench.engine.request import BASE_ADAPTER, Request, SamplingParams
from workbench.errors import WorkbenchError
from workbench.service.turns import Face, TurnHandle, TurnRequest, stream_together
from workbench.service.workbench import Workbench
from workbench.store.chatlog import new_conversation_id
from workbench.ui.arena_panel import build_arena_panel
from workbench.ui.common import guard, history_messages, refuse
from workbench.ui.routes_panel import build_customer_view


@dataclass
class PaneRun:
    """One pane's turn while it streams."""

    # "left" or "right".
    pane: str
    # Variant key: "__base__" or an adapter name.
    variant: str
    # The turn the service is serving.
    handle: TurnHandle
    # The pane's chat history, ending with the streaming assistant message.
    history: list[dict]

    @property
    def request(self) -> Request:
        return self.handle.request


def stats_line(req: Request) -> str:
    """What the user reads under an answer: timings, and every limit that changed it."""
    m = req.metrics
    if req.error:
        return f"⚠️ {req.error}"
    if m.total_ms is None:
        return "…"
    tps = m.tokens_per_s
    parts = [f"latency {human_duration(m.total_ms)}", f"TTFT {human_duration(m.ttft_ms)}",
             f"{tps:.1f} tok/s" if tps else "– tok/s", f"batch {m.batch_size}",
             f"{m.completion_tokens} tokens"]
    if m.cached_tokens:
        parts.append(f"{m.cached_tokens} of {m.prompt_tokens} prompt tokens reused")
    return " · ".join(parts) + "".join(f"\n\n⚠️ {n}" for n in limit_notices(req))


def limit_notices(req: Request) -> list[str]:
    """The silent limits made loud: a cut answer, a cut message, dropped turns, a stop."""
    notes = []
    if req.finish_reason == "length":
        notes.append(f"The answer was cut at its limit of {req.max_new_tokens} tokens "
                     "(raise Max new tokens under Generation settings).")
    if req.cut_tokens:
        notes.append(f"The message was too long for the context window: its last "
                     f"{req.cut_tokens} tokens were left out.")
    if req.truncated_turns:
        n = req.truncated_turns
        notes.append(f"{n} oldest turn{'s' if n != 1 else ''} dropped to fit the context window.")
    if req.finish_reason == "cancelled":
        notes.append("Stopped before the end.")
    return notes


def start_runs(wb: Workbench, text: str, lang: str, region: str, grounded: bool,
               right_variant: str, left: list[dict], right: list[dict], max_new_tokens: int,
               temperature: float, repetition_penalty: float = 1.0, conv_id: str = "",
               user: str | None = None) -> list[PaneRun]:
    """Serve the question to both panes' variants at once."""
    sampling = SamplingParams(temperature=float(temperature),
                              repetition_penalty=float(repetition_penalty))
    runs: list[PaneRun] = []
    try:
        for pane, variant, hist in (("left", BASE_ADAPTER, left), ("right", right_variant, right)):
            turn = TurnRequest.question(variant, text, Face.CHAT, history_messages(hist), lang=lang,
                                        region=region, grounded=grounded, sampling=sampling,
                                        max_new_tokens=int(max_new_tokens), user=user, pane=pane,
                                        conversation_id=conv_id)
            new_hist = [*hist, {"role": "user", "content": text}, {"role": "assistant", "content": ""}]
            runs.append(PaneRun(pane, variant, wb.serve_turn(turn), new_hist))
    except WorkbenchError:
        for run in runs:  # the twin was refused: do not leave one pane answering alone
            run.handle.cancel("its twin was refused")
        raise
    return runs


def stream_runs(runs: list[PaneRun]) -> Iterator[None]:
    """Move text into the panes' last messages as it arrives; one step per wake-up."""
    for batch in stream_together([r.handle for r in runs]):
        for i, piece in batch:
            runs[i].history[-1]["content"] += piece
        yield None


def build_chat_tab(wb: Workbench, tab: gr.Tab) -> None:
    """Lay out the Chat tab inside ``tab`` and wire its events."""
    conv_id = gr.State(new_conversation_id)
    active = gr.State([])  # request ids streaming now, for the Stop button
    turn_ids = gr.State(["", ""])  # stored answer ids of the last turn, for ratings
    with gr.Row():
        lang = gr.Dropdown(language_choices(), value="en", label="Customer language", elem_id="chat-lang")
        region = gr.Dropdown(region_choices(), value="EU", label="Store region", elem_id="chat-region")
        grounded = gr.Checkbox(True, label="Ground on region policy", elem_id="chat-grounded")
        right_variant = gr.Dropdown([(wb.variant_label(v), v) for v in wb.variants],
                                    value=wb.default_adapter or BASE_ADAPTER,
                                    label="Right pane variant", elem_id="chat-variant")
        mode = gr.Radio(["Side by side", "Customer view"], value="Side by side", label="Mode",
                        elem_id="chat-mode")
    seen_default = gr.State(wb.default_adapter)  # the Adapters tab's pick, last applied
    # Pane titles sit above the chat boxes: a Chatbot's own label floats over the messages
    # and hides the first bubble once the pane scrolls.
    with gr.Row(equal_height=True) as arena_row:
        with gr.Column():
            gr.Markdown(f"**{pane_label(wb, BASE_ADAPTER, left=True)}**", elem_id="chat-left-title")
            left_bot = gr.Chatbot(show_label=False, height=380, elem_id="chat-left")
            left_stats = gr.Markdown("", elem_id="chat-left-stats")
            left_rating, left_resolved = _rating_row("left")
        with gr.Column():
            right_title = gr.Markdown(f"**{pane_label(wb, right_variant.value)}**",
                                      elem_id="chat-right-title")
            right_bot = gr.Chatbot(show_label=False, height=380, elem_id="chat-right")
            right_stats = gr.Markdown("", elem_id="chat-right-stats")
            right_rating, right_resolved = _rating_row("right")
    with gr.Row() as input_row:
        example = gr.Dropdown(example_questions("en"), value=None, label="Example questions",
                              scale=2, elem_id="chat-example", allow_custom_value=True)
        text = gr.Textbox(placeholder="Type a customer question…", label="Customer message",
                          scale=4, elem_id="chat-input")
    with gr.Row() as button_row:
        send = gr.Button("Send", variant="primary", elem_id="chat-send")
        stop = gr.Button("Stop", elem_id="chat-stop")
        clear = gr.Button("New conversation", elem_id="chat-clear")
    with gr.Accordion("Generation settings", open=False):
        max_new = gr.Slider(16, 512, value=160, step=16, label="Max new tokens",
                            elem_id="chat-max-new")
        temperature = gr.Slider(0.0, 1.5, value=0.0, step=0.1, label="Temperature (0 = greedy)")
        # Small models loop on long greedy answers; a mild penalty keeps chat readable
        # (eval runs use plain greedy decoding).
        rep_penalty = gr.Slider(1.0, 1.5, value=1.15, step=0.05, label="Repetition penalty")
    # Customer view: each question goes through an A/B route, as production traffic does.
    customer = build_customer_view(wb, dict(lang=lang, region=region, grounded=grounded,
                                            max_new=max_new, temperature=temperature,
                                            rep_penalty=rep_penalty, conv_id=conv_id),
                                   stats_line)
    mode.change(lambda m: [gr.update(visible=(m == "Customer view") == show)
                           for show in (True, False, False, False, False)],
                mode, [customer, arena_row, input_row, button_row, right_variant])
    build_arena_panel(wb, lang, region, grounded, max_new, temperature, rep_penalty)

    @guard
    def on_send(msg, lang_v, region_v, grounded_v, variant, left, right, conv, max_new_v, temp, rep,
                request: gr.Request):
        msg = (msg or "").strip()
        if not msg:
            refuse("Type a customer question first.")
        runs = start_runs(wb, msg, lang_v, region_v, grounded_v, variant or BASE_ADAPTER,
                          left or [], right or [], max_new_v, temp, rep, conv,
                          getattr(request, "session_hash", None) or conv)
        ids = [r.handle.id for r in runs]
        yield "", runs[0].history, runs[1].history, "…", "…", ids, ["", ""]
        for _ in stream_runs(runs):  # a reader that goes away cancels both turns
            yield "", runs[0].history, runs[1].history, "…", "…", ids, ["", ""]
        wb.wait_recorded(ids)  # ratings need the stored answers
        yield ("", runs[0].history, runs[1].history, stats_line(runs[0].request),
               stats_line(runs[1].request), [], ids)

    outputs = [text, left_bot, right_bot, left_stats, right_stats, active, turn_ids]
    inputs = [text, lang, region, grounded, right_variant, left_bot, right_bot, conv_id,
              max_new, temperature, rep_penalty]
    send.click(on_send, inputs, outputs, concurrency_limit=None)
    text.submit(on_send, inputs, outputs, concurrency_limit=None)
    stop.click(lambda ids: [wb.cancel_turn(i) for i in ids] and None, active, None)
    clear.click(lambda: ([], [], "", "", new_conversation_id()), None,
                [left_bot, right_bot, left_stats, right_stats, conv_id])
    example.input(lambda q: q if q else gr.skip(), example, text)
    right_variant.change(lambda v: f"**{pane_label(wb, v)}**", right_variant, right_title,
                         show_progress="hidden")
    lang.change(_on_lang, lang, [example, left_bot, right_bot, text, region])
    tab.select(lambda v, seen: _on_open(wb, v, seen), [right_variant, seen_default],
               [right_variant, seen_default])
    for rating, resolved, idx in ((left_rating, left_resolved, 0), (right_rating, right_resolved, 1)):
        rating.change(_rate(wb, idx, "rating"), [turn_ids, rating], None)
        resolved.change(_rate(wb, idx, "resolved"), [turn_ids, resolved], None)


def pane_label(wb: Workbench, variant: str | None, left: bool = False) -> str:
    if left:
        return "Base model"
    if not variant or variant == BASE_ADAPTER:
        return "Base model (sanity check: base against base)"
    return f"Adapter {wb.variant_label(variant)}"


def _on_open(wb: Workbench, picked: str | None, seen: str | None) -> tuple:
    """Opening the tab: new adapters appear, and a right-pane default set in the Adapters tab
    since the last visit is applied; otherwise the user's own pick stays."""
    default = wb.default_adapter or BASE_ADAPTER
    choices = [(wb.variant_label(v), v) for v in wb.variants]
    if wb.default_adapter != seen or picked not in wb.variants:
        return gr.update(choices=choices, value=default), wb.default_adapter
    return gr.update(choices=choices, value=picked), seen


def _rating_row(pane: str) -> tuple[gr.Radio, gr.Radio]:
    with gr.Row():
        rating = gr.Radio([1, 2, 3, 4, 5], label="Rating", elem_id=f"chat-{pane}-rating")
        resolved = gr.Radio(["yes", "no"], label="Resolved?", elem_id=f"chat-{pane}-resolved")
    return rating, resolved


def _rate(wb: Workbench, idx: int, field: str):
    @guard
    def save(ids: list[str], value: object) -> None:
        if value is None or not ids or not ids[idx]:
            return
        if field == "rating":
            wb.rate(ids[idx], rating=int(value))
        else:
            wb.rate(ids[idx], resolved=value == "yes")
        gr.Info("Saved.")

    return save


def _on_lang(code: str):
    rtl = code in RTL_LANGUAGES
    examples = example_questions(code)
    region = suggested_region(code)
    return (gr.update(choices=examples, value=None), gr.update(rtl=rtl), gr.update(rtl=rtl),
            gr.update(rtl=rtl), gr.update(value=region) if region else gr.skip())
