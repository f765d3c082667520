"""Every face serves a turn through ``Workbench.serve_turn``: the Chat tab's panes, the customer
view, the blind arena, ``workbench chat`` and the API build the same prompt for the same
question, and an adapter swap holds each of them at the gate."""
from __future__ import annotations

import ast
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from apihelp import serve_tiny
from click.testing import CliRunner

from workbench.backends.local import LocalBackend
from workbench.cli import main as cli
from workbench.config import REPO_ROOT
from workbench.routing.routes import parse_arms
from workbench.routing.store import RouteStore
from workbench.service import start as service_start
from workbench.ui.arena_panel import start_round
from workbench.ui.chat_tab import start_runs
from workbench.ui.routes_panel import start_customer_turn

QUESTION, LANG, REGION = "Kann ich Schuhe nach 20 Tagen zurückgeben?", "de", "EU"


class Spy:
    """Every request the backend admits: (face's adapter, prompt token ids)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[str | None, tuple[int, ...]]] = []
        submit = LocalBackend.submit

        def spying(backend: LocalBackend, *args, **kwargs):
            req = submit(backend, *args, **kwargs)
            self.seen.append((req.adapter, tuple(req.prompt_ids)))
            return req
        monkeypatch.setattr(LocalBackend, "submit", spying)

    def prompts(self) -> set[tuple[int, ...]]:
        return {ids for _, ids in self.seen}


@pytest.fixture
def served(tmp_home, tiny_loaded, make_adapter, monkeypatch) -> Iterator:
    with serve_tiny(tiny_loaded, make_adapter, adapters=("a1",)) as s:
        # workbench chat runs on this same Workbench (and leaves it running).
        monkeypatch.setattr(service_start.Workbench, "start", classmethod(lambda cls, **_: s.wb))
        monkeypatch.setattr(s.wb, "close", lambda: None)
        yield s


def faces(s) -> dict[str, Callable[[], None]]:
    """Each face asking QUESTION of adapter a1, in German, grounded on the EU policy."""
    RouteStore().create("all-a1", parse_arms("a1@v1=100"))

    def chat() -> None:
        for run in start_runs(s.wb, QUESTION, LANG, REGION, True, "a1", [], [], 4, 0.0):
            run.handle.text()

    def customer() -> None:
        start_customer_turn(s.wb, "all-a1", "session-1", QUESTION, LANG, REGION, True, [], 4, 0.0,
                            1.0).text()

    def arena() -> None:
        rnd = start_round(s.wb, QUESTION, LANG, REGION, True, 4, 0.0, 1.0, rng=random.Random(0))
        for handle in rnd.handles:
            handle.text()

    def command_line() -> None:
        res = CliRunner().invoke(cli, ["chat", QUESTION, "--lang", LANG, "--region", REGION,
                                       "--adapter", "a1", "--max-new-tokens", "4"])
        assert res.exit_code == 0, res.output

    def api() -> None:
        body = {"model": "a1", "messages": [{"role": "user", "content": QUESTION}],
                "lang": LANG, "region": REGION, "max_tokens": 4}
        resp = httpx.post(s.v1 + "/chat/completions", json=body, timeout=60)
        assert resp.status_code == 200, resp.text

    return {"chat": chat, "customer": customer, "arena": arena, "cli": command_line, "api": api}


def test_every_face_sends_the_same_prompt_tokens(served, monkeypatch) -> None:
    spy = Spy(monkeypatch)
    prompts = {}
    for name, ask in faces(served).items():
        spy.seen.clear()
        ask()
        assert spy.seen, f"{name} reached no backend"
        assert len(spy.prompts()) == 1, f"{name}'s requests disagree among themselves"
        prompts[name] = spy.prompts().pop()
    assert len(set(prompts.values())) == 1, {k: len(v) for k, v in prompts.items()}
    # and the prompt is the grounded one: the EU policy is in it
    tok = served.wb.engine.loaded.tokenizer
    assert "Return policy for" in tok.decode(prompts["api"]) and "German" in tok.decode(prompts["api"])


def test_a_swap_holds_every_face_at_the_gate(served, monkeypatch) -> None:
    spy = Spy(monkeypatch)
    for name, ask in faces(served).items():
        spy.seen.clear()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                ask()
            except BaseException as exc:  # handed to the test thread
                errors.append(exc)
        with served.wb.exclusive("a1", timeout=30):
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            time.sleep(0.5)
            held = [a for a, _ in spy.seen if a == "a1"]
            assert held == [], f"{name} reached the backend for a1 while a1 was being swapped"
        worker.join(60)
        assert not worker.is_alive() and not errors, (name, errors)
        assert any(a == "a1" for a, _ in spy.seen), f"{name} never served a1 after the swap"


FACES = ["workbench/ui", "workbench/cli", "workbench/api"]


def test_no_face_calls_the_backend_directly() -> None:
    """Pages, commands and routes go through the service; only it reaches the backend."""
    calls = []
    for folder in FACES:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Attribute) and node.attr in ("submit", "stream", "generate",
                                                                      "generate_many")
                        and isinstance(node.value, ast.Attribute) and node.value.attr == "engine"):
                    calls.append(f"{Path(path).relative_to(REPO_ROOT)}:{node.lineno} .engine.{node.attr}")
    assert calls == []
