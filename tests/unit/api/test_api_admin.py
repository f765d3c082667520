"""Adapter administration over HTTP: the admin token, vLLM's routes and statuses, lora_path
checks, immutable versions, rollback pinned across restarts, uploads; and the hardened
adapter_config whitelist, each refusal leaving the shared base weights bit-identical."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
import zipfile
from pathlib import Path

import httpx
import pytest
import torch
from apihelp import ADMIN, ask, serve_tiny

from workbench.adapters.config_rules import AdapterLimits, regex_problem
from workbench.adapters.demo import make_random_adapter
from workbench.adapters.registry import Registry
from workbench.api.auth import APISettings
from workbench.store.chatlog import ChatLog
from workbench.config import EngineConfig
from workbench.backends.local import LocalBackend
from workbench.models.catalog import load_model
from workbench.service.workbench import Workbench
from workbench.config import REPO_ROOT

AUTH = {"Authorization": f"Bearer {ADMIN}"}


def fresh_adapter(out: Path, seed: int = 5, **config_changes) -> Path:
    """A random LoRA made on a separate tiny base, with adapter_config.json edited."""
    folder = make_random_adapter(load_model("tiny-glm").model, out, base_model_id="tiny-glm", seed=seed,
                                 rank=4)
    cfg_file = folder / "adapter_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg.update(config_changes)
    cfg_file.write_text(json.dumps(cfg))
    return folder


def base_digest(wb: Workbench) -> str:
    """sha256 over every base (non-LoRA) tensor of the served model."""
    digest = hashlib.sha256()
    for key, tensor in sorted(wb.loaded.model.state_dict().items()):
        if "lora_" not in key:
            digest.update(key.encode())
            digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def post(s, route: str, body: dict, headers: dict | None = AUTH) -> httpx.Response:
    return httpx.post(s.v1 + route, json=body, headers=headers, timeout=60)


@pytest.fixture
def served(tmp_home, tiny_loaded, make_adapter, tmp_path):
    imports = tmp_path / "incoming"
    imports.mkdir()
    with serve_tiny(tiny_loaded, make_adapter, settings=APISettings(lora_roots=(imports,))) as s:
        yield s


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the refusal tests: a refusal changes nothing, so they can share it."""
    root = tmp_path_factory.mktemp("admin")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(root / "home"))
        mp.setenv("WORKBENCH_ADAPTERS", str(root / "adapters"))
        def make(loaded, name, version, seed, root):
            return fresh_adapter(root / name / version, seed)

        with serve_tiny(load_model("tiny-glm"), make) as s:
            yield s


def test_admin_token_rules(tmp_home, tiny_loaded, make_adapter) -> None:
    with serve_tiny(tiny_loaded, make_adapter, admin_token=None) as off:
        r = post(off, "/load_lora_adapter", {"lora_name": "a1", "lora_path": "a1/v1"})
        assert r.status_code == 403 and "WORKBENCH_ADMIN_TOKEN" in r.json()["error"]["message"]
    # A fresh base: the first server's engine has served the other; a1@v1 is on disk already.
    with serve_tiny(load_model("tiny-glm"), make_adapter, adapters=()) as s:
        body = {"lora_name": "a1"}
        assert post(s, "/unload_lora_adapter", body, headers=None).status_code == 401
        wrong = post(s, "/unload_lora_adapter", body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403 and wrong.json()["error"]["type"] == "permission_error"
        assert "a1" in s.wb.engine.adapters  # nothing happened


@pytest.mark.parametrize("path, status, words", [
    ("../../etc", 400, "outside"), ("/etc", 400, "outside"), ("a1/../../..", 400, "outside"),
    ("a1/v9", 404, "No adapter folder"), ("a1", 400, "not a LoRA adapter folder"),
])
def test_lora_path_refusals(shared, path, status, words) -> None:
    before = (shared.wb.engine.adapters, dict(shared.wb.served), base_digest(shared.wb))
    r = post(shared, "/load_lora_adapter", {"lora_name": "a1", "lora_path": path})
    assert r.status_code == status and words in r.json()["error"]["message"], r.text
    assert (shared.wb.engine.adapters, dict(shared.wb.served), base_digest(shared.wb)) == before


def test_load_swap_unload_and_immutable_versions(served, tmp_path) -> None:
    wb = served.wb
    fresh_adapter(wb.registry.root / "a1" / "v2", seed=7)
    r = post(served, "/load_lora_adapter", {"lora_name": "a1", "lora_path": "a1/v2"})
    assert r.status_code == 200 and r.text == "Success: LoRA adapter 'a1' added successfully."
    assert wb.served["a1"].version == "v2"
    again = post(served, "/load_lora_adapter", {"lora_name": "a1", "lora_path": "a1/v2"})
    assert again.status_code == 400 and "already been loaded" in again.json()["error"]["message"]
    # A folder outside the registry (an import root) is registered as a new version first.
    ext = fresh_adapter(tmp_path / "incoming" / "ext-adapter", seed=8)
    r = post(served, "/load_lora_adapter", {"lora_name": "ext", "lora_path": str(ext)})
    assert r.status_code == 200 and wb.served["ext"].ref == "ext@v1"
    other = fresh_adapter(tmp_path / "incoming" / "other", seed=9)
    r = post(served, "/load_lora_adapter", {"lora_name": "ext@v1", "lora_path": str(other)})
    assert r.status_code == 400 and "immutable" in r.json()["error"]["message"]
    ids = {m["id"] for m in httpx.get(served.v1 + "/models").json()["data"]}
    assert {"a1@v2", "ext@v1"} <= ids and "a1@v1" not in ids
    assert post(served, "/unload_lora_adapter", {"lora_name": "ext"}).status_code == 200
    gone = post(served, "/unload_lora_adapter", {"lora_name": "ext"})
    assert gone.status_code == 404
    chat = httpx.post(served.v1 + "/chat/completions", json={"model": "ext", "messages": ask()})
    assert chat.status_code == 404


def test_rollback_is_pinned_across_restarts(served, tiny_loaded) -> None:
    wb = served.wb
    fresh_adapter(wb.registry.root / "a1" / "v2", seed=7)
    assert post(served, "/load_lora_adapter", {"lora_name": "a1", "lora_path": "a1/v2"}).status_code == 200
    r = post(served, "/rollback_lora_adapter", {"lora_name": "a1"})
    assert r.status_code == 200 and r.json()["adapter"] == "a1@v1"
    # A fresh start on the same registry serves the pinned v1, not the newest v2.
    engine = LocalBackend(load_model("tiny-glm"), EngineConfig(max_queue=8)).start()
    restarted = Workbench(engine.loaded, engine, Registry(wb.registry.root), ChatLog())
    try:
        restarted.load_startup_adapters(None)
        assert restarted.served["a1"].version == "v1"
    finally:
        restarted.close()


def zipped(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f.name)
    return buf.getvalue()


def test_upload_names_version_and_is_capped(tmp_home, tiny_loaded, make_adapter, tmp_path) -> None:
    with serve_tiny(tiny_loaded, make_adapter, settings=APISettings(max_upload_bytes=200_000)) as s:
        data = zipped(fresh_adapter(tmp_path / "up", seed=3))
        headers = {**AUTH, "content-type": "application/zip"}
        r = httpx.post(s.v1 + "/upload_lora_adapter", params={"name": "up", "version": "v4", "load": "true"},
                       content=data, headers=headers, timeout=60)
        assert r.status_code == 200 and r.json()["adapter"] == "up@v4" and s.wb.served["up"].version == "v4"
        big = httpx.post(s.v1 + "/upload_lora_adapter", params={"name": "big"}, content=b"0" * 300_000,
                         headers=headers, timeout=60)
        assert big.status_code == 413 and not s.wb.registry.versions("big")
        assert httpx.post(s.v1 + "/upload_lora_adapter", params={"name": "x"}, content=data,
                          headers={"content-type": "application/zip"}).status_code == 401


# ---- the adapter_config whitelist -------------------------------------------------------------
REFUSED = [
    ("init pissa", {"init_lora_weights": "pissa"}, "rewrites the base"),
    ("init pissa_niter", {"init_lora_weights": "pissa_niter_4"}, "rewrites the base"),
    ("init olora", {"init_lora_weights": "olora"}, "rewrites the base"),
    ("init corda", {"init_lora_weights": "corda"}, "rewrites the base"),
    ("init loftq", {"init_lora_weights": "loftq"}, "rewrites the base"),
    ("loftq_config", {"loftq_config": {"loftq_bits": 4}}, "LoftQ"),
    ("layer_replication", {"layer_replication": [[0, 2], [1, 2]]}, "duplicates base layers"),
    ("modules_to_save", {"modules_to_save": ["lm_head"]}, "replaces base modules"),
    ("trainable_token_indices", {"trainable_token_indices": [1, 2]}, "embedding"),
    ("bias all", {"bias": "all"}, "base-layer biases"),
    ("use_dora", {"use_dora": True}, "DoRA"),
    ("rank over cap", {"r": 4096}, "above the served maximum"),
    ("rank_pattern over cap", {"rank_pattern": {"q_proj": 4096}}, "above the served maximum"),
    ("catastrophic regex", {"target_modules": "(.*.*)*q_proj"}, "backtrack"),
    ("back-reference", {"target_modules": r"(\w+)\.\1"}, "back-references"),
    ("unknown active key", {"shiny_new_init": "rewrite"}, "not a setting"),
]


@pytest.mark.parametrize("case, change, words", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_config_keys_leave_base_bit_identical(shared, case, change, words) -> None:
    wb = shared.wb
    name = "bad-" + case.replace(" ", "-").replace("_", "-")
    fresh_adapter(wb.registry.root / name / "v1", **change)
    before = base_digest(wb)
    t0 = time.monotonic()
    r = post(shared, "/load_lora_adapter", {"lora_name": name, "lora_path": f"{name}/v1"})
    assert r.status_code == 400 and words in r.json()["error"]["message"], r.text
    assert time.monotonic() - t0 < 5.0  # a hostile regex is refused, not run
    assert base_digest(wb) == before and name not in wb.engine.adapters
    ok = httpx.post(shared.v1 + "/chat/completions", json={"model": "a1", "messages": ask(), "max_tokens": 2})
    assert ok.status_code == 200


def test_safe_settings_still_load(shared) -> None:
    wb = shared.wb
    fresh_adapter(wb.registry.root / "ok" / "v1", init_lora_weights="gaussian", use_rslora=True,
                  target_modules=r".*\.(q_proj|v_proj)$", rank_pattern={"q_proj": 4})
    r = post(shared, "/load_lora_adapter", {"lora_name": "ok", "lora_path": "ok/v1"})
    assert r.status_code == 200, r.text


def test_regex_rules() -> None:
    assert regex_problem(r"model\.layers\.\d+\.self_attn\.(q|v)_proj") is None
    assert regex_problem(r".*\.(q_proj|v_proj)$") is None
    for bad in ["(a+)+$", "(a|aa)*b", r"(\w+)\1", ".*" * 5, "(", "a" * 300]:
        assert regex_problem(bad), bad
    assert AdapterLimits(max_rank=8).max_rank == 8


def test_shipped_adapters_pass_the_whitelist() -> None:
    from workbench.adapters.config_rules import check_config

    root = REPO_ROOT / "adapters"
    configs = sorted(root.glob("*/*/adapter_config.json"))
    assert configs
    for cfg in configs:
        check_config(json.loads(cfg.read_text()), cfg.parent.name, AdapterLimits())


def test_copy_of_registry_version_is_not_reloaded_in_place(shared) -> None:
    """Loading a1@v1 from a changed copy of its folder is refused: a version never changes."""
    wb = shared.wb
    copy = wb.registry.root / "a1" / "v1-copy"
    shutil.copytree(wb.registry.root / "a1" / "v1", copy)
    r = post(shared, "/load_lora_adapter", {"lora_name": "a1@v1", "lora_path": "a1/v1-copy"})
    assert r.status_code == 400 and "does not match" in r.json()["error"]["message"]
    assert wb.served["a1"].path.name == "v1"
