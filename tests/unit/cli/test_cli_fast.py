"""Bad arguments and unknown names are refused before any model loads.

Every case runs the real command line with the model loader replaced by one that records the
call and fails; a refusal must come with its message, a non-zero exit code and no call.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.cli.precheck import DEFAULT_MODEL, check_refs


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Model loads attempted during the test (each one fails)."""
    import workbench.models.catalog as catalog
    import workbench.service.workbench as service

    calls: list[str] = []

    def no_load(name: str = DEFAULT_MODEL, *args, **kwargs):
        calls.append(name)
        raise RuntimeError(f"the model {name} was loaded")

    monkeypatch.setattr(catalog, "load_model", no_load)
    monkeypatch.setattr(service, "load_model", no_load)
    return calls


@pytest.fixture
def registered(tmp_home: Path, tiny_loaded, make_adapter) -> Path:
    """Adapter a1@v1 in the registry, and a training file; returns the adapters folder."""
    make_adapter(tiny_loaded, "a1", "v1")
    return tmp_home.parent / "adapters"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def _cases(root: Path, data: Path) -> list[tuple[list[str], str]]:
    suite = ["eval", "--suite", "multilingual-intents"]
    return [
        (["eval", "--suite", "no-such-suite"], "Unknown suite 'no-such-suite'"),
        ([*suite, "--decoding", "greedy"], "Invalid value for '--decoding': 'greedy' is not one of"),
        ([*suite, "--limit", "0"], "Invalid value for '--limit': 0 is not in the range x>=1"),
        ([*suite, "--limit", "ten"], "'ten' is not a valid integer"),
        ([*suite, "--variants", "base,a11"], "Unknown adapter 'a11'. Did you mean 'a1'?"),
        ([*suite, "--variants", "a1@v9"], "Unknown version of adapter 'a1' 'v9'"),
        (["eval", "--resume", "20990101-000000-abcdef"], "Unknown eval run"),
        (["eval", "--variants", "a12"], "Unknown adapter 'a12'"),  # no --suite: every suite
        (["chat", "Where is my order?", "--adapter", "zz"], "Unknown adapter 'zz'"),
        (["chat", "Where is my order?", "--region", "XX"], "Unknown region 'XX'"),
        (["bench", "--adapters", "a1,zz"], "Unknown adapter 'zz'"),
        (["bench", "--requests", "0"], "0 is not in the range x>=1"),
        (["adapters", "load", "zz"], "Unknown adapter 'zz'"),
        (["adapters", "unload", "zz"], "Unknown adapter 'zz'"),
        (["adapters", "rollback", "a1", "--to", "v7"], "Unknown version of adapter 'a1' 'v7'"),
        (["adapters", "import", str(data), "--name", "../up"], "Invalid adapter name '../up'"),
        (["adapters", "import", str(data), "--name", "a1", "--version", "v1"], "already registered"),
        (["train", "--data", str(root / "missing"), "--out", str(root / "t" / "v1")],
         "does not exist"),
        (["train", "--data", str(data), "--out", str(root / "a1" / "v1")], "already exists"),
        (["train", "--data", str(data), "--out", str(root / "t" / "v1"), "--lr", "0"],
         "Invalid value for '--lr'"),
        (["train", "--method", "kto", "--data", str(root), "--from", "zz@v1",
          "--out", str(root / "a1" / "v2")], "Unknown adapter 'zz'"),
        (["train", "--method", "dpo", "--data", str(root), "--out", str(root / "a1" / "v2")],
         "needs --from NAME@VERSION"),
        (["serve", "--preset", "fastest"], "Unknown engine preset 'fastest'"),
        (["serve", "--adapters", "a1,zz"], "Unknown adapter 'zz'"),
        (["demo-adapter", "--name", "a1", "--version", "v1"], "already exists"),
    ]


def test_bad_arguments_fail_before_the_model_loads(registered: Path, loads: list[str],
                                                   tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    for args, message in _cases(registered, data):
        res = run(*args)
        assert res.exit_code != 0, (args, res.output)
        assert message in res.output, (args, res.output)
        assert "Traceback" not in res.output, args
        assert loads == [], (args, "the model was loaded before the refusal")


def test_the_loader_stand_in_does_see_loads(registered: Path, loads: list[str]) -> None:
    """The same stand-in catches a command that gets past its checks: the test above would
    notice a load that came first."""
    res = run("eval", "--suite", "multilingual-intents", "--variants", "base,a1", "--limit", "1",
              "--model", "tiny-glm")
    assert res.exit_code != 0 and loads == ["tiny-glm"]
    loads.clear()
    res = run("adapters", "load", "a1", "--model", "tiny-glm")
    assert res.exit_code != 0 and loads == ["tiny-glm"]


def test_remote_variants_are_left_to_the_server(registered: Path) -> None:
    check_refs(["only-on-the-server"], remote=True)  # nothing to check here
    with pytest.raises(Exception, match="Unknown adapter 'only-on-the-server'"):
        check_refs(["only-on-the-server"], remote=False)


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, cmd in sorted(group.commands.items()):
        yield (*path, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))


def test_every_command_help_has_an_example() -> None:
    commands = list(_commands(main))
    assert len(commands) > 20
    for path, cmd in commands:
        res = run(*path, "--help")
        assert res.exit_code == 0, path
        assert re.search(r"^\s*Example: .*\bworkbench \w", cmd.help or "", re.M), \
            f"workbench {' '.join(path)} has no example"
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden and param.name != "help":
                assert param.help, f"workbench {' '.join(path)} {param.opts[0]} has no help"


def test_precheck_never_imports_torch() -> None:
    """Argument checks run before any heavy import: a typo must not wait for torch."""
    code = ("import sys; import workbench.cli.precheck; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
