"""What the tabs share: how a refused input reaches the user."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import gradio as gr

from workbench.errors import WorkbenchError

P = ParamSpec("P")
R = TypeVar("R")


def guard(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` with a WorkbenchError turned into gr.Error: the message reaches the user, nothing
    else happens."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except WorkbenchError as exc:
            raise gr.Error(exc.message) from exc

    return run
