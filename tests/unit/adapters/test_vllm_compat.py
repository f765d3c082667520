"""`workbench adapters list` flags adapters that `vllm serve --enable-lora` would refuse."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.adapters.vllm_compat import vllm_problems
from workbench.cli import main


@pytest.fixture
def adapter(tmp_home: Path, tiny_loaded, make_adapter) -> Path:
    return make_adapter(tiny_loaded, "a1", "v1")


def _edit(folder: Path, **changes) -> Path:
    out = folder.parent.parent / "edited" / f"v{len(list((folder.parent.parent).glob('edited/*'))) + 1}"
    shutil.copytree(folder, out)
    cfg = json.loads((out / "adapter_config.json").read_text())
    cfg.update(changes)
    (out / "adapter_config.json").write_text(json.dumps(cfg))
    return out


def test_a_plain_lora_passes_and_each_refusal_is_named(adapter: Path) -> None:
    assert vllm_problems(adapter) == []
    cases = {"rank 32 > --max-lora-rank 16": {"r": 32}, "DoRA": {"use_dora": True},
             "modules_to_save": {"modules_to_save": ["lm_head"]}, "LoRA bias": {"bias": "all"},
             "rank 64": {"rank_pattern": {"q_proj": 64}}, "peft_type": {"peft_type": "IA3"}}
    for expected, change in cases.items():
        problems = vllm_problems(_edit(adapter, **change))
        assert len(problems) == 1 and expected in problems[0], (change, problems)
    assert vllm_problems(_edit(adapter, r=32), max_lora_rank=32) == []


def test_unservable_target_modules_are_flagged(adapter: Path) -> None:
    out = _edit(adapter)
    (out / "adapter_model.safetensors").unlink()  # fall back to the config's list
    cfg = json.loads((out / "adapter_config.json").read_text())
    cfg["target_modules"] = ["q_proj", "embed_tokens", "lm_head"]
    (out / "adapter_config.json").write_text(json.dumps(cfg))
    assert vllm_problems(out) == ["target modules vLLM cannot serve: embed_tokens, lm_head"]


def test_adapters_list_shows_the_check(adapter: Path, tiny_loaded, make_adapter) -> None:
    big = make_adapter(tiny_loaded, "a2", "v1")
    cfg = json.loads((big / "adapter_config.json").read_text())
    (big / "adapter_config.json").write_text(json.dumps({**cfg, "use_dora": True}))
    res = CliRunner().invoke(main, ["adapters", "list"])
    assert res.exit_code == 0, res.output
    assert "vLLM would refuse a2@v1: DoRA" in res.output and "refuse a1@v1" not in res.output
    res = CliRunner().invoke(main, ["adapters", "list", "--json"])
    rows = {json.loads(line)["name@version"]: json.loads(line) for line in res.output.splitlines()}
    assert rows["a1@v1"]["vllm_refuses"] == [] and rows["a2@v1"]["vllm_refuses"]
