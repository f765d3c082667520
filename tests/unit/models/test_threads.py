"""Model-building work runs on a short-lived thread of its own and hands back its result or error."""
from __future__ import annotations

import threading

import pytest

from workbench.models import catalog
from workbench.models.threads import on_own_thread


def test_result_comes_back_from_another_thread() -> None:
    caller = threading.get_ident()
    ident, value = on_own_thread(lambda: (threading.get_ident(), 42))
    assert value == 42 and ident != caller


def test_error_is_raised_on_the_caller() -> None:
    def boom() -> None:
        raise ValueError("bad weights")

    with pytest.raises(ValueError, match="bad weights"):
        on_own_thread(boom)


def test_load_model_builds_off_the_calling_thread(monkeypatch) -> None:
    seen: list[str] = []
    real = catalog._load

    def spy(*args, **kwargs):
        seen.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(catalog, "_load", spy)
    loaded = catalog.load_model("tiny-glm")
    assert seen == ["model-load"]
    assert loaded.model is not None
