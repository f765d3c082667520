"""The remote backend against a third-party OpenAI-compatible server (`transformers serve` on
a tiny GLM saved to a folder, in a subprocess), plus fakes for the error paths."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from workbench.config import REPO_ROOT, engine_preset
from workbench.engine import Engine, RequestSpec, RequestStatus
from workbench.backends.remote import RemoteBackend, parse_models, request_body
from workbench.errors import BusyError, InputError, UnknownNameError, WorkbenchError
from workbench.models.catalog import load_model
from workbench.models.tiny import build_tiny_glm

MSGS = [{"role": "user", "content": "Where is my order?"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-glm-served")
    model, tok = build_tiny_glm("glm")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def hf_server(tiny_folder: Path) -> Iterator[str]:
    """`transformers serve FOLDER` on a free loopback port; yields its /v1 URL."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = open(tiny_folder / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "transformers.cli.transformers", "serve",
                             str(tiny_folder), "--host", "127.0.0.1", "--port", str(port),
                             "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("transformers serve did not start:\n" +
                            (tiny_folder / "serve.log").read_text()[-2000:])
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


@pytest.fixture
def remote(hf_server: str) -> Iterator[RemoteBackend]:
    eng = RemoteBackend(hf_server, config=engine_preset("test")).start()
    yield eng
    eng.shutdown()


def test_lists_the_server_models_and_streams_with_client_timings(remote: RemoteBackend,
                                                                 tiny_folder: Path) -> None:
    assert remote.base_id == str(tiny_folder) and remote.adapters == []
    req = remote.submit(MSGS, max_new_tokens=8)
    pieces = list(remote.stream(req, timeout=60))
    assert req.status == RequestStatus.FINISHED and req.finish_reason == "length"
    m = req.metrics
    assert "".join(pieces) == req.output_text and pieces
    assert m.completion_tokens == 8 and m.prompt_tokens > 0  # from the stream's usage
    assert 0 < m.queue_ms <= m.ttft_ms <= m.total_ms
    assert len(m.token_times) == len(pieces) and m.tpot_ms is not None and m.tpot_ms >= 0
    snap = remote.snapshot()
    assert snap.running == 0 and snap.waiting == 0 and remote.stats.completed == 1


def test_greedy_answers_match_the_local_engine(remote: RemoteBackend, tiny_folder: Path) -> None:
    """The same folder served two ways gives the same greedy text (tiny model, peaked logits)."""
    local = Engine(load_model(str(tiny_folder)), engine_preset("test")).start()
    try:
        prompts = [MSGS, [{"role": "user", "content": "Quiero devolverlo."}]]
        theirs = [remote.generate(p, max_new_tokens=12).text for p in prompts]
        ours = [local.generate(p, max_new_tokens=12).text for p in prompts]
    finally:
        local.shutdown()
    assert theirs == ours


def test_generate_many_cancel_and_refusals(remote: RemoteBackend) -> None:
    seen: list[int] = []
    done = remote.generate_many([RequestSpec(MSGS, max_new_tokens=4) for _ in range(5)],
                                on_done=lambda i, c: seen.append(i))
    assert sorted(seen) == list(range(5)) and all(c.status == RequestStatus.FINISHED for c in done)
    req = remote.submit(MSGS, max_new_tokens=500)
    next(remote.stream(req, timeout=60))
    assert remote.cancel(req.request_id)
    assert req.done_event.wait(30) and req.status == RequestStatus.CANCELLED
    assert req.finish_reason == "cancelled" and len(req.output_text) > 0
    with pytest.raises(UnknownNameError, match="Known: base"):
        remote.submit(MSGS, adapter="cs-support")
    with pytest.raises(InputError):
        remote.submit([{"role": "user", "content": " "}])


def test_eval_run_records_the_backend(hf_server: str, tmp_home: Path) -> None:
    from workbench.service.start import start_workbench
    from workbench.eval.runner import run_eval
    from workbench.eval.store import EvalStore

    wb = start_workbench("openai", hf_server, engine_config=engine_preset("test"))
    try:
        result = run_eval(wb, ["multilingual-intents"], ["base"], limit=2)
    finally:
        wb.close()
    record = EvalStore().get_run(result.run_id)
    assert result.status == "finished" and result.done == 2
    assert record.engine["backend"]["base_url"] == hf_server
    assert record.engine["backend"]["models"] == [wb.engine.base_id]


# ---- fakes: behaviour a healthy tiny server never shows ------------------------------------
def _fake(handler) -> RemoteBackend:
    return RemoteBackend("http://fake/v1", api_key="k", config=engine_preset("test"),
                        transport=httpx.MockTransport(handler)).start()


MODELS = {"data": [{"id": "glm-4-9b", "parent": None}, {"id": "cs-support", "parent": "glm-4-9b",
                                                        "root": "/adapters/cs-support/v2"}]}


def test_error_envelope_reaches_the_request_and_serving_goes_on() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json=MODELS)
        body = json.loads(request.content)
        calls.append((body, request.headers.get("authorization")))
        if body["model"] == "cs-support":
            return httpx.Response(404, json={"error": {"message": "The model `cs-support` does not exist.",
                                                       "type": "NotFoundError", "code": 404}})
        sse = ('data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'
               'data: {"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,'
               '"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":2}}}\n\ndata: [DONE]\n\n')
        return httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"})

    eng = _fake(handler)
    try:
        assert eng.base_id == "glm-4-9b" and eng.adapters == ["cs-support"]
        bad = eng.generate(MSGS, adapter="cs-support")
        assert bad.status == RequestStatus.FAILED and "does not exist" in bad.error
        good = eng.generate(MSGS)
        assert good.text == "Hi" and good.finish_reason == "eos" and good.metrics.cached_tokens == 2
        assert calls[1][0]["model"] == "glm-4-9b" and calls[1][1] == "Bearer k"
    finally:
        eng.shutdown()


def test_unreachable_server_and_full_queue() -> None:
    with pytest.raises(WorkbenchError, match="Cannot reach"):
        RemoteBackend("http://127.0.0.1:9/v1").start()

    def slow(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json=MODELS)
        time.sleep(0.5)
        return httpx.Response(200, text="data: [DONE]\n\n")

    eng = _fake(slow)
    try:
        reqs = []
        with pytest.raises(BusyError):
            for _ in range(64):
                reqs.append(eng.submit(MSGS))
        assert len(reqs) >= eng.config.max_queue
    finally:
        eng.shutdown()


def test_request_body_maps_sampling() -> None:
    from workbench.engine import SamplingParams
    from workbench.engine.request import Request

    req = Request(MSGS, sampling=SamplingParams(temperature=0.7, top_p=0.9, seed=3, stop=("\n",),
                                                repetition_penalty=1.1), max_new_tokens=5)
    body = request_body("m", req)
    assert body["max_tokens"] == 5 and body["stream"] and body["stream_options"]["include_usage"]
    assert (body["top_p"], body["seed"], body["stop"], body["repetition_penalty"]) == (0.9, 3, ["\n"], 1.1)
    assert parse_models(MODELS)[1].parent == "glm-4-9b"


# ---- this project's own API in a subprocess -------------------------------------------------
SERVE_TINY = """
import os, sys
from pathlib import Path
from workbench.console.quiet import quiet_imports
quiet_imports()
from workbench.adapters.demo import make_random_adapter
from workbench.adapters.registry import Registry
from workbench.api.app import create_api
from workbench.api.server import serve
from workbench.store.chatlog import ChatLog
from workbench.config import engine_preset
from workbench.backends.local import LocalBackend
from workbench.models.catalog import load_model
from workbench.service.workbench import Workbench
loaded = load_model("tiny-glm")
root = Path(os.environ["WORKBENCH_ADAPTERS"])
make_random_adapter(loaded.model, root / "a1" / "v1", base_model_id=loaded.model_id, seed=1, rank=4)
wb = Workbench(loaded, LocalBackend(loaded, engine_preset("test")).start(), Registry(root), ChatLog())
wb.load_startup_adapters(None)
serve(create_api(wb), "127.0.0.1", int(sys.argv[1]), "warning")
"""


@pytest.fixture
def own_api(tmp_path: Path) -> Iterator[str]:
    """`workbench.api` on tiny-glm with one adapter a1@v1, in its own process and home."""
    port = free_port()
    (tmp_path / "srv-adapters").mkdir()
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "srv-home"),
           "WORKBENCH_ADAPTERS": str(tmp_path / "srv-adapters")}
    env.pop("WORKBENCH_ADMIN_TOKEN", None)
    log = open(tmp_path / "api.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", SERVE_TINY, str(port)], stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the API did not start:\n" + (tmp_path / "api.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def test_eval_through_own_api_matches_in_process(own_api: str, workbench) -> None:
    """Same items, greedy: the remote run's answers and scores equal the in-process run's."""
    from workbench.service.start import start_workbench
    from workbench.eval.runner import run_eval
    from workbench.eval.store import EvalStore

    remote_wb = start_workbench("openai", own_api, engine_config=engine_preset("test"))
    try:
        assert remote_wb.engine.base_id == workbench.loaded.model_id
        assert {"a1", "a1@v1"} <= set(remote_wb.engine.adapters)
        far = run_eval(remote_wb, ["multilingual-intents"], ["base", "a1@v1"], limit=4)
    finally:
        remote_wb.close()
    near = run_eval(workbench, ["multilingual-intents"], ["base", "a1"], limit=4)
    store = EvalStore()
    cols = ["suite", "item_id", "answer", "resolved", "correct"]
    a = store.results_frame(far.run_id).sort_values(["item_id", "variant"])[cols].reset_index(drop=True)
    b = store.results_frame(near.run_id).sort_values(["item_id", "variant"])[cols].reset_index(drop=True)
    assert len(a) == 8 and a.equals(b)
    assert store.get_run(far.run_id).engine["backend"]["base_url"] == own_api


def test_cli_commands_take_the_remote_backend(hf_server: str, tmp_home: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main
    from workbench.eval.store import EvalStore

    remote = ["--backend", "openai", "--base-url", hf_server]
    runner = CliRunner()
    res = runner.invoke(main, ["eval", "--suite", "multilingual-intents", "--variants", "base",
                               "--limit", "2", "--json", *remote])
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.output.strip().splitlines()[-1])["run_id"]
    assert EvalStore().get_run(run_id).engine["backend"]["base_url"] == hf_server
    res = runner.invoke(main, ["chat", "Where is my order?", "--max-new-tokens", "4", *remote])
    assert res.exit_code == 0 and "──" in res.output, res.output
    res = runner.invoke(main, ["bench", "--concurrency", "2", "--requests", "4", "--new-tokens",
                               "4", "--json", *remote])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary  # the engine passes ran against the server; no local baseline
    res = runner.invoke(main, ["eval", "--suite", "multilingual-intents", "--backend", "openai"])
    assert res.exit_code == 2 and "--base-url" in res.output


def test_strict_server_gets_plain_openai_requests() -> None:
    bodies: list[dict] = []

    def strict(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json=MODELS)
        body = json.loads(request.content)
        bodies.append(body)
        if "repetition_penalty" in body or "ignore_eos" in body:
            return httpx.Response(422, json={"detail": "extra fields not permitted"})
        return httpx.Response(200, text='data: {"choices":[{"delta":{"content":"ok"}}]}\n\ndata: [DONE]\n\n')

    from workbench.engine import SamplingParams

    eng = _fake(strict)
    try:
        c = eng.generate(MSGS, sampling=SamplingParams(repetition_penalty=1.2))
        assert c.text == "ok" and eng.plain_openai and len(bodies) == 2
        eng.generate(MSGS, sampling=SamplingParams(ignore_eos=True))
        assert len(bodies) == 3 and "ignore_eos" not in bodies[-1]
    finally:
        eng.shutdown()


def test_app_builds_and_chats_on_the_remote_backend(hf_server: str, tmp_home: Path) -> None:
    from workbench.service.start import start_workbench
    from workbench.ui.app import build_demo
    from workbench.ui.chat_tab import start_runs, stream_runs

    wb = start_workbench("openai", hf_server)
    try:
        assert build_demo(wb) is not None and hf_server in wb.loaded.describe()
        runs = start_runs(wb, "Where is my order?", "en", "EU", True, "__base__", [], [], 4, 0.0,
                          conv_id="conv")
        list(stream_runs(runs))
        assert all(r.request.status == RequestStatus.FINISHED for r in runs)
        assert [r.history[-1]["content"] for r in runs] == [r.request.output_text for r in runs]
        for run in runs:  # the service recorded both answers: each can be rated
            wb.rate(run.handle.id, rating=5)
        assert len(wb.chatlog.turns("conv")) == 2
    finally:
        wb.close()


def test_app_py_serves_the_page_on_the_remote_backend(hf_server: str, tmp_home: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "app.py", "--backend", "openai", "--base-url", hf_server,
                             "--port", str(port)], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert proc.poll() is None, proc.stdout.read()
        assert "GLM support workbench" in httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert "Ready: " in out and hf_server in out, out[-2000:]


def test_serve_forwards_to_the_remote_backend(hf_server: str, tmp_home: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`workbench serve --backend openai`: this API in front, generation on the other server."""
    from click.testing import CliRunner
    from fastapi.testclient import TestClient

    import workbench.api.server as server_mod
    from workbench.cli import main

    seen: dict = {}

    def fake_serve(app, host: str, port: int) -> None:
        with TestClient(app) as client:
            seen["models"] = client.get("/v1/models").json()
            seen["chat"] = client.post("/v1/chat/completions", json={
                "model": "base", "max_tokens": 4,
                "messages": [{"role": "user", "content": "Where is my order?"}]}).json()
            seen["metrics"] = client.get("/metrics").text

    monkeypatch.setattr(server_mod, "serve", fake_serve)
    res = CliRunner().invoke(main, ["serve", "--backend", "openai", "--base-url", hf_server])
    assert res.exit_code == 0, res.output
    assert "choices" in seen["chat"], (seen["models"], seen["chat"])
    assert seen["chat"]["choices"][0]["message"]["content"]
    assert seen["chat"]["usage"]["completion_tokens"] >= 1
    assert "vllm:request_success_total" in seen["metrics"]  # counted here, served there
