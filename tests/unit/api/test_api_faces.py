"""The other faces of administration: the CLI acting through a running server (or saying it
did not), the Adapters tab's once-per-session admin token, the one-port app (UI at / and API
at /v1 on one Workbench), and `workbench serve` refusing an open non-loopback bind."""
from __future__ import annotations

import importlib.util
import sys
import time

import gradio as gr
import httpx
import pytest
from apihelp import ADMIN, ask, serve_tiny
from click.testing import CliRunner

from workbench.adapters.demo import make_random_adapter
from workbench.api.server import ServerThread
from workbench.cli import main as cli
from workbench.models.catalog import load_model
from workbench.errors import WorkbenchError
from workbench.ui import adapters_tab
from workbench.config import REPO_ROOT

REPO = REPO_ROOT


def wait_until(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)
    return cond()


def add_version(wb, name: str, version: str, seed: int) -> None:
    make_random_adapter(load_model("tiny-glm").model, wb.registry.root / name / version,
                        base_model_id="tiny-glm", seed=seed, rank=4)


def test_cli_acts_through_server(tmp_home, tiny_loaded, make_adapter, monkeypatch) -> None:
    with serve_tiny(tiny_loaded, make_adapter) as s:
        add_version(s.wb, "a1", "v2", seed=7)
        runner = CliRunner()
        monkeypatch.setenv("WORKBENCH_SERVER", s.url)
        monkeypatch.delenv("WORKBENCH_ADMIN_TOKEN", raising=False)
        refused = runner.invoke(cli, ["adapters", "load", "a1@v2"])
        assert refused.exit_code == 5 and "WORKBENCH_ADMIN_TOKEN" in refused.output
        monkeypatch.setenv("WORKBENCH_ADMIN_TOKEN", ADMIN)
        done = runner.invoke(cli, ["adapters", "load", "a1@v2"])
        assert done.exit_code == 0, done.output
        assert "now serves a1@v2" in done.output and s.wb.served["a1"].version == "v2"
        back = runner.invoke(cli, ["adapters", "rollback", "a1"])
        assert back.exit_code == 0 and s.wb.served["a1"].version == "v1", back.output
        again = runner.invoke(cli, ["adapters", "load", "a1@v1"])  # the server's refusal, verbatim
        assert again.exit_code == 1 and "already been loaded" in again.output
        gone = runner.invoke(cli, ["adapters", "unload", "a1", "--server", s.url + "/v1"])
        assert gone.exit_code == 0 and "a1" not in s.wb.engine.adapters


def test_cli_without_server_says_only_disk_changed(tmp_home, tiny_loaded, make_adapter, monkeypatch) -> None:
    monkeypatch.delenv("WORKBENCH_SERVER", raising=False)
    root = tmp_home.parent / "adapters"
    make_adapter(load_model("tiny-glm"), "a1", "v1", seed=1, root=root)
    make_adapter(load_model("tiny-glm"), "a1", "v2", seed=2, root=root)
    out = CliRunner().invoke(cli, ["adapters", "load", "a1@v1", "--model", "tiny-glm"])
    assert out.exit_code == 0, out.output
    assert "only the registry's record on disk changed" in out.output
    assert "no running server was touched" in out.output


def test_adapters_tab_needs_the_token_once(workbench) -> None:
    wb = workbench
    on_load, on_unload, on_rollback, _default, _upload = adapters_tab._handlers(wb)
    with pytest.raises(WorkbenchError, match="off"):  # no token configured: administration is off
        on_unload("a1", False, None)
    wb.admin_token = ADMIN
    with pytest.raises(WorkbenchError, match="admin token"):
        on_unload("a1", False, None)
    with pytest.raises(WorkbenchError, match="wrong"):
        adapters_tab.unlock(wb, "not-it")
    with pytest.raises(WorkbenchError, match="wrong"):
        on_unload("a1", False, "not-it")
    assert "a1" in wb.engine.adapters  # every refusal changed nothing
    token, message = adapters_tab.unlock(wb, ADMIN)
    assert token == ADMIN and "unlocked" in message
    assert "unload" in on_unload("a1", False, token) and "a1" not in wb.engine.adapters


def test_adapters_tab_upload_takes_name_and_version(workbench, tmp_path) -> None:
    import zipfile

    wb = workbench
    wb.admin_token = ADMIN
    src = make_random_adapter(load_model("tiny-glm").model, tmp_path / "src", base_model_id="tiny-glm",
                              seed=4, rank=4)
    archive = tmp_path / "up.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in src.iterdir():
            zf.write(f, f.name)
    upload = adapters_tab._handlers(wb)[4]
    with pytest.raises(WorkbenchError, match="admin token"):
        upload(str(archive), "named", "v3", None)
    assert not wb.registry.versions("named")
    assert "named@v3" in upload(str(archive), "named", "v3", ADMIN)


def load_app_module(monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODEL", "tiny-glm")
    spec = importlib.util.spec_from_file_location("workbench_app_under_test", REPO / "app.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "workbench_app_under_test", module)
    spec.loader.exec_module(module)
    return module


def test_one_port_serves_ui_and_api_on_one_workbench(tmp_home, monkeypatch) -> None:
    app_module = load_app_module(monkeypatch)
    wb = app_module._wb
    try:
        with ServerThread(app_module.build_app(wb, app_module.demo)) as url:
            page = httpx.get(url + "/", timeout=30)
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            models = httpx.get(url + "/v1/models", timeout=30).json()["data"]
            assert models[0]["id"] == wb.loaded.model_id
            before = wb.telemetry.window(60).requests
            r = httpx.post(url + "/v1/chat/completions", timeout=60,
                           json={"model": "base", "messages": ask(), "max_tokens": 2})
            assert r.status_code == 200
            # The same engine served it (its listener runs just after the request ends).
            assert wait_until(lambda: wb.telemetry.window(60).requests == before + 1)
            assert "vllm:generation_tokens_total" in httpx.get(url + "/metrics").text
    finally:
        wb.close()


def test_serve_refuses_open_non_loopback_bind(monkeypatch) -> None:
    monkeypatch.delenv("WORKBENCH_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("WORKBENCH_API_KEY", raising=False)
    out = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--model", "tiny-glm"])
    assert out.exit_code != 0 and "Refusing to listen on 0.0.0.0" in out.output
    assert "WORKBENCH_ADMIN_TOKEN" in out.output and "--api-key" in out.output


def test_serve_help_has_an_example() -> None:
    out = CliRunner().invoke(cli, ["serve", "--help"])
    assert out.exit_code == 0 and "Example: " in out.output


def test_admin_actions_are_not_gradio_api_endpoints(workbench) -> None:
    workbench.admin_token = ADMIN
    with gr.Blocks() as demo:
        with gr.Tab("Adapters") as tab:
            adapters_tab.build_adapters_tab(workbench, tab)
    # The events that take the session's admin token: load, unload, rollback, upload.
    guarded = [f for f in demo.fns.values() if any(isinstance(c, gr.State) for c in f.inputs)]
    assert len(guarded) >= 4 and all(f.api_visibility == "private" for f in guarded)
