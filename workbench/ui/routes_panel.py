"""A/B routes in the UI: the route view of the Adapters tab, and the Chat tab's customer view.

The route view shows each arm's share and figures (turns, resolution and rating with 95%
intervals, TTFT and end-to-end P95, errors), whether promote is allowed and why, and edits
weights, promotes and rolls back through the same ``workbench.routing.routes`` functions as the CLI
and the admin API. Changes need the admin token when the server has one (they are logged
with its id) and are off when it has none, as adapter administration is.

The customer view sends each question through a route as production traffic would: the
arm is picked for the browser session (sticky per session), the answer is stored with its
route and arm, and its rating and "resolved?" feed the route view.
"""
from __future__ import annotations

import gradio as gr

from workbench.engine.request import SamplingParams
from workbench.errors import AuthError, WorkbenchError
from workbench.routing import canary
from workbench.routing.guard import GUARD_EXAMPLE, policy_from_json
from workbench.routing.report import (REPORT_HEADERS, manual_policy, promote, promote_decision,
                                      report_table, route_report)
from workbench.routing.routes import parse_arms
from workbench.routing.store import RouteStore, default_store
from workbench.service.turns import Face, TurnHandle, TurnRequest, stream_together
from workbench.service.workbench import Workbench
from workbench.store.chatlog import ChatLog
from workbench.ui.common import guard, history_messages, refuse


# ---- route view (Adapters tab) -------------------------------------------------------------
def route_choices(store: RouteStore | None = None) -> list[str]:
    return (store or default_store()).names()


def route_view(name: str | None) -> tuple[list[list[str]], str]:
    """The arms table and a summary line (shares, incumbent, promote verdicts) of one route."""
    if not name:
        return [], "No route picked. Create one below (arms as `name@version=weight, ...`)."
    store = default_store()
    route = store.get(name)
    rep = route_report(route)
    lines = [f"**{route.name}**: " + ", ".join(f"{a.ref} {route.share(a.ref):.0%}" for a in route.arms)
             + f" · incumbent **{route.incumbent}** · margin {route.margin:.1%} · seed {route.seed}"]
    lines += [promote_decision(rep, c, route.incumbent, manual_policy(route)).message
              for c in route.candidates]
    lines.append(f"Automatic canary: {canary.status(route, ChatLog())}")
    last = store.audit(name)[-1:] or []
    lines += [f"Last change: {e['time']} {e['action']} by {e['who']}" for e in last]
    return report_table(rep), "\n\n".join(lines)


def who_from_token(wb: Workbench, token: str | None) -> str:
    """The admin token's id for the audit log; refuses when changes are off or the token is wrong."""
    if not wb.admin_enabled:
        raise AuthError("Route changes are off: start the app with WORKBENCH_ADMIN_TOKEN set to "
                        "enable them (they are logged with the token's id).", status=403)
    return wb.check_admin((token or "").strip() or None)


def _route_handlers(wb: Workbench):
    @guard
    def on_create(token, name, arms, incumbent, margin, guard_text):
        route = default_store().create((name or "").strip(), parse_arms(arms or ""),
                                       (incumbent or "").strip() or None, margin=float(margin),
                                       who=who_from_token(wb, token), guard=guard_policy(guard_text))
        return route.name, f"Created route {route.name}."

    @guard
    def on_guard(token, name, guard_text):
        _need(name)
        policy = guard_policy(guard_text) or {}  # empty: the guard comes off
        route = default_store().set(name, guard=policy, who=who_from_token(wb, token), action="guard")
        return route.name, ("Guard saved: it acts on the next feedback." if route.guard else
                            "Guard removed: promote and roll back by hand.")

    @guard
    def on_set(token, name, arms):
        _need(name)
        route = default_store().set(name, parse_arms(arms or ""), who=who_from_token(wb, token))
        return route.name, "Weights saved; they apply to the next request."

    @guard
    def on_promote(token, name):
        _need(name)
        route = promote(default_store(), name, who=who_from_token(wb, token))
        return route.name, f"Promoted {route.incumbent} to 100%."

    @guard
    def on_rollback(token, name):
        _need(name)
        route = default_store().rollback(name, who=who_from_token(wb, token))
        return route.name, f"Rolled back: all traffic to {route.incumbent}."

    return on_create, on_set, on_promote, on_rollback, on_guard


def guard_policy(text: str | None) -> dict | None:
    """The automatic guard typed in the box (empty: none)."""
    return policy_from_json(text) or None if (text or "").strip() else None


def _need(name: str | None) -> None:
    if not name:
        refuse("Pick a route first.")


def build_routes_panel(wb: Workbench) -> None:
    """The route view, inside whatever block the caller opened (an accordion of the Adapters tab)."""
    with gr.Row():
        pick = gr.Dropdown(route_choices(), label="Route", elem_id="routes-pick", scale=2,
                           allow_custom_value=False)
        refresh = gr.Button("Refresh", elem_id="routes-refresh", scale=0)
    table = gr.Dataframe([], headers=list(REPORT_HEADERS), interactive=False,
                         elem_id="routes-table", wrap=True)
    summary = gr.Markdown("", elem_id="routes-summary")
    with gr.Row():
        name = gr.Textbox(label="New route name", elem_id="routes-name", scale=1)
        arms = gr.Textbox(label="Arms (REF=WEIGHT, comma-separated; REF is name@version or base)",
                          placeholder="cs-support@v2=90, cs-support@v3=10", elem_id="routes-arms", scale=3)
        incumbent = gr.Textbox(label="Incumbent (default: first arm)", elem_id="routes-incumbent", scale=1)
        margin = gr.Number(0.02, label="Promote margin", elem_id="routes-margin", scale=0)
    guard_box = gr.Textbox(label="Automatic canary guard (JSON; empty: none)", placeholder=GUARD_EXAMPLE,
                           elem_id="routes-guard")
    token = gr.Textbox(label="Admin token", type="password", elem_id="routes-token")
    with gr.Row():
        create = gr.Button("Create route", elem_id="routes-create")
        save = gr.Button("Save weights", variant="primary", elem_id="routes-set")
        promote = gr.Button("Promote candidate", elem_id="routes-promote")
        rollback = gr.Button("Roll back to incumbent", elem_id="routes-rollback")
        save_guard = gr.Button("Save guard", elem_id="routes-guard-set")
    status = gr.Markdown("", elem_id="routes-status")

    @guard
    def show(route_name: str | None, message: str = ""):
        rows, text = route_view(route_name)
        return gr.update(choices=route_choices(), value=route_name), rows, text, message

    outs = [pick, table, summary, status]
    on_create, on_set, on_promote, on_rollback, on_guard = _route_handlers(wb)
    pick.input(show, pick, outs)
    refresh.click(show, pick, outs)
    create.click(lambda t, n, a, i, m, g: show(*on_create(t, n, a, i, m, g)),
                 [token, name, arms, incumbent, margin, guard_box], outs)
    save_guard.click(lambda t, n, g: show(*on_guard(t, n, g)), [token, pick, guard_box], outs)
    save.click(lambda t, n, a: show(*on_set(t, n, a)), [token, pick, arms], outs)
    promote.click(lambda t, n: show(*on_promote(t, n)), [token, pick], outs)
    rollback.click(lambda t, n: show(*on_rollback(t, n)), [token, pick], outs)


# ---- customer view (Chat tab) --------------------------------------------------------------
def start_customer_turn(wb: Workbench, route_name: str, user_key: str, text: str, lang: str,
                        region: str, grounded: bool, history: list[dict], max_new_tokens: int,
                        temperature: float, repetition_penalty: float,
                        conv_id: str = "") -> TurnHandle:
    """Serve the question through the route: the service picks the session's arm."""
    if not route_name:
        raise WorkbenchError("Pick a route for the customer view (create one in the Adapters tab).")
    default_store().get(route_name)  # an unknown route is named, with the known ones
    sampling = SamplingParams(temperature=float(temperature),
                              repetition_penalty=float(repetition_penalty))
    turn = TurnRequest.question(route_name, text, Face.CUSTOMER, history_messages(history),
                                lang=lang, region=region, grounded=grounded, sampling=sampling,
                                max_new_tokens=int(max_new_tokens), user=user_key,
                                conversation_id=conv_id)
    return wb.serve_turn(turn)


def build_customer_view(wb: Workbench, inputs: dict, stats_line) -> gr.Column:
    """A single routed chat pane with its rating row; ``inputs`` holds the tab's shared
    controls (lang, region, grounded, max_new, temperature, rep_penalty, conv_id)."""
    with gr.Column(visible=False, elem_id="chat-customer") as col:
        route = gr.Dropdown(route_choices(), label="Route (production traffic split)",
                            elem_id="chat-route")
        bot = gr.Chatbot(label="Customer view", height=380, elem_id="chat-customer-bot")
        stats = gr.Markdown("", elem_id="chat-customer-stats")
        with gr.Row():
            rating = gr.Radio([1, 2, 3, 4, 5], label="Rating", elem_id="chat-customer-rating")
            resolved = gr.Radio(["yes", "no"], label="Resolved?", elem_id="chat-customer-resolved")
        with gr.Row():
            text = gr.Textbox(placeholder="Type a customer question…", label="Customer message",
                              scale=4, elem_id="chat-customer-input")
            send = gr.Button("Send", variant="primary", elem_id="chat-customer-send", scale=1)
    turn_id = gr.State("")

    @guard
    def on_send(msg, route_name, lang, region, grounded, hist, conv, max_new, temp, rep,
                request: gr.Request):
        msg = (msg or "").strip()
        if not msg:
            refuse("Type a customer question first.")
        key = getattr(request, "session_hash", None) or conv
        handle = start_customer_turn(wb, route_name, key, msg, lang, region, grounded,
                                     hist or [], max_new, temp, rep, conv)
        shown = [*(hist or []), {"role": "user", "content": msg}, {"role": "assistant", "content": ""}]
        for batch in stream_together([handle]):
            shown[-1]["content"] += "".join(piece for _, piece in batch)
            yield "", shown, "…", "", None, None
        wb.wait_recorded([handle.id])  # ratings need the stored answer
        yield ("", shown, f"arm **{handle.variant.arm}** · " + stats_line(handle.request), handle.id,
               None, None)

    ins = [text, route, inputs["lang"], inputs["region"], inputs["grounded"], bot,
           inputs["conv_id"], inputs["max_new"], inputs["temperature"], inputs["rep_penalty"]]
    outs = [text, bot, stats, turn_id, rating, resolved]
    send.click(on_send, ins, outs, concurrency_limit=None)
    text.submit(on_send, ins, outs, concurrency_limit=None)
    route.focus(lambda v: gr.update(choices=route_choices(), value=v), route, route)

    rating.change(_rater(wb, "rating"), [turn_id, rating], None)
    resolved.change(_rater(wb, "resolved"), [turn_id, resolved], None)
    return col


def _rater(wb: Workbench, field: str):
    """Store a customer-view rating or "resolved?" answer on the last turn."""

    @guard
    def save(tid: str, value: object) -> None:
        if value is None or not tid:
            return
        if field == "rating":
            wb.rate(tid, rating=int(value))
        else:
            wb.rate(tid, resolved=value == "yes")
        gr.Info("Saved.")

    return save
