"""What the tabs share: how a refused input reaches the user.

A refusal is a toast (``gr.Warning``) and nothing else: every output keeps what it showed.
Raising ``gr.Error`` instead would turn each output of the event into a red "Error" badge
that hides the conversation or the tables until the page is reloaded.
"""
from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from workbench.errors import InputError, WorkbenchError

log = logging.getLogger("workbench.ui")


def refuse(message: str) -> None:
    """Stop the event with ``message`` for the user (shown as a warning toast by ``guard``)."""
    raise InputError(message)


def _warn(exc: WorkbenchError) -> Any:
    # One line per refusal in the server log: these are ordinary inputs, not faults.
    log.info("refused: %s", exc.message)
    gr.Warning(exc.message)
    return gr.skip()


def guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as a Gradio handler whose WorkbenchError becomes a warning toast and leaves every
    output as it was; generator handlers keep what they already streamed."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except WorkbenchError as exc:
                yield _warn(exc)
        return stream

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except WorkbenchError as exc:
            return _warn(exc)
    return run


def history_messages(history: list[dict]) -> list[dict[str, str]]:
    """Chatbot history -> plain chat messages (drops UI metadata)."""
    return [{"role": m["role"], "content": _text(m["content"])} for m in history
            if m.get("role") in ("user", "assistant")]


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # Gradio 6 may hand back [{"type": "text", "text": ...}]
        return "".join(c.get("text", "") for c in content if isinstance(c, dict))
    return str(content)
