"""Registry, validation, upload and rollback: every refusal leaves registry and engine as they were."""
from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from workbench.service import lifecycle
from workbench.adapters.demo import make_random_adapter
from workbench.adapters.registry import Registry
from workbench.adapters.upload import UploadLimits, import_adapter
from workbench.adapters.validate import validate_adapter
from workbench.errors import AdapterError, InputError, UnknownNameError, WorkbenchError
from workbench.models.catalog import load_model
from workbench.models.tiny import build_tiny_glm
from workbench.service.workbench import Workbench

PROMPT = [{"role": "user", "content": "Where is my order?"}]


def snapshot(wb: Workbench) -> tuple:
    """Everything a refused operation must leave untouched."""
    files = sorted(str(p.relative_to(wb.registry.root)) for p in wb.registry.root.rglob("*")
                   if ".staging" not in p.parts)
    staged = list((wb.registry.root / ".staging").glob("*"))
    return ([v.ref for v in wb.registry.all()], files, staged, wb.engine.adapters,
            {n: v.ref for n, v in wb.served.items()}, wb.default_adapter)


def answer(wb: Workbench, adapter: str | None = "a1") -> str:
    done = wb.engine.generate(PROMPT, adapter=adapter, max_new_tokens=8)
    assert done.error is None
    return done.text


def zip_folder(folder: Path, dest: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, prefix + f.name)
    return dest


def fresh_base():
    """A separate tiny-glm instance: adapters must never be made on the served (wrapped) model."""
    return load_model("tiny-glm").model


def wrong_shape_adapter(out: Path) -> Path:
    """A LoRA for a tiny GLM of another width, claiming to be for tiny-glm."""
    other, _ = build_tiny_glm("glm", seed=3, hidden=32)
    return make_random_adapter(other, out, base_model_id="tiny-glm", seed=3, rank=4)


# ---- registry ----------------------------------------------------------------------------
def test_duplicate_version_refused(workbench: Workbench, tmp_path: Path) -> None:
    src = workbench.registry.resolve("a1@v1").path
    before = snapshot(workbench)
    with pytest.raises(AdapterError, match="immutable"):
        workbench.registry.register(src, "a1", "v1")
    with pytest.raises(AdapterError, match="already registered"):
        import_adapter(workbench.registry, zip_folder(src, tmp_path / "a.zip"), workbench.validate_adapter,
                       name="a1", version="v1")
    assert snapshot(workbench) == before


def test_register_and_import_new_version(workbench: Workbench, tmp_path: Path) -> None:
    src = make_random_adapter(fresh_base(), tmp_path / "new", base_model_id="tiny-glm",
                              seed=7, rank=4)
    version = import_adapter(workbench.registry, zip_folder(src, tmp_path / "n.zip", "a1/v2/"),
                             workbench.validate_adapter)
    assert version.ref == "a1@v2"
    assert version.card["imported"]["weights_sha256"]
    assert workbench.registry.resolve("a1").version == "v2"  # name alone = newest
    assert workbench.registry.next_version("a1") == "v3"
    assert not list((workbench.registry.root / ".staging").glob("*"))


def test_rollback_restores_previous_version(workbench: Workbench, tmp_path: Path) -> None:
    root = workbench.registry.root
    make_random_adapter(fresh_base(), root / "a1" / "v2", base_model_id="tiny-glm",
                        seed=11, rank=4)
    v1_text = answer(workbench)
    res = lifecycle.load(workbench, "a1@v2")  # served name: hot-swap
    assert (res.before, res.after) == ("v1", "v2")
    assert workbench.served["a1"].version == "v2"
    v2_text = answer(workbench)
    assert v2_text != v1_text
    res = lifecycle.rollback(workbench, "a1")
    assert (res.before, res.after) == ("v2", "v1")
    assert answer(workbench) == v1_text
    assert workbench.engine.adapters == ["a1", "a2"]
    # Nothing older than v1: a second rollback is refused and changes nothing.
    before = snapshot(workbench)
    with pytest.raises(AdapterError, match="no version before"):
        lifecycle.rollback(workbench, "a1")
    assert snapshot(workbench) == before
    assert lifecycle.pinned_refs(workbench.registry) == ["a1@v1", "a2@v1"]


def test_rollback_history_survives_a_new_process(workbench: Workbench) -> None:
    root = workbench.registry.root
    for seed, version in ((12, "v2"), (13, "v3")):
        make_random_adapter(fresh_base(), root / "a1" / version, base_model_id="tiny-glm",
                            seed=seed, rank=4)
    lifecycle.load(workbench, "a1@v3")
    lifecycle.load(workbench, "a1@v1")
    assert lifecycle.history(workbench.registry, "a1")[-2:] == ["v3", "v1"]
    res = lifecycle.rollback(workbench, "a1")
    assert res.after == "v3"  # back to what was served before, not to the next-older number


def test_unload_and_default(workbench: Workbench) -> None:
    lifecycle.set_default(workbench, "a2")
    assert workbench.default_adapter == "a2"
    with pytest.raises(UnknownNameError, match="Did you mean 'a1'"):
        lifecycle.set_default(workbench, "a11")
    lifecycle.unload(workbench, "a2")
    assert workbench.engine.adapters == ["a1"]
    assert "a2" not in workbench.served and workbench.default_adapter == "a1"
    lifecycle.load(workbench, "a2")
    assert workbench.served["a2"].version == "v1"
    lifecycle.set_default(workbench, None)
    assert workbench.default_adapter is None


# ---- bad adapters: refused, nothing changes, serving goes on --------------------------------
def _corrupt(folder: Path) -> None:
    weights = folder / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-16])


def _bad_cases(tmp_path: Path, good: Path) -> dict[str, tuple[Path, str]]:
    cases = {}
    cases["wrong-shapes"] = (wrong_shape_adapter(tmp_path / "shapes"), "Shape mismatch")
    corrupt = shutil.copytree(good, tmp_path / "corrupt")
    _corrupt(corrupt)
    cases["corrupt"] = (corrupt, "corrupt or truncated")
    noconfig = shutil.copytree(good, tmp_path / "noconfig")
    (noconfig / "adapter_config.json").unlink()
    cases["no-config"] = (noconfig, "adapter_config.json")
    wrongbase = shutil.copytree(good, tmp_path / "wrongbase")
    cfg = json.loads((wrongbase / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "meta-llama/Llama-3-8B"
    (wrongbase / "adapter_config.json").write_text(json.dumps(cfg))
    (wrongbase / "card.json").unlink()
    cases["wrong-base"] = (wrongbase, "trained for base")
    badtarget = shutil.copytree(good, tmp_path / "badtarget")
    cfg = json.loads((badtarget / "adapter_config.json").read_text())
    cfg["target_modules"] = ["q_proj", "query_key_value"]
    (badtarget / "adapter_config.json").write_text(json.dumps(cfg))
    cases["missing-target"] = (badtarget, "query_key_value")
    return cases


def test_bad_adapters_are_refused_on_load(workbench: Workbench, tmp_path: Path) -> None:
    good = workbench.registry.resolve("a1@v1").path
    for label, (folder, message) in _bad_cases(tmp_path, good).items():
        # Put the bad version straight into the registry, as a hand-copied folder would be.
        target = workbench.registry.root / "a1" / f"bad-{label}"
        shutil.copytree(folder, target)
        before = snapshot(workbench)
        expected = answer(workbench)
        with pytest.raises(WorkbenchError) as info:
            lifecycle.load(workbench, f"a1@bad-{label}")
        if label != "no-config":  # a folder without a config is not a version at all
            assert isinstance(info.value, AdapterError) and message in info.value.message, label
        assert snapshot(workbench) == before, label
        assert answer(workbench) == expected, label
        shutil.rmtree(target)


def test_bad_adapters_are_refused_on_import(workbench: Workbench, tmp_path: Path) -> None:
    good = workbench.registry.resolve("a1@v1").path
    for label, (folder, message) in _bad_cases(tmp_path, good).items():
        before = snapshot(workbench)
        archive = zip_folder(folder, tmp_path / f"{label}.zip")
        with pytest.raises(AdapterError) as info:
            import_adapter(workbench.registry, archive, workbench.validate_adapter, name="up", version="v1")
        assert message in info.value.message, label
        assert snapshot(workbench) == before, label
    assert answer(workbench)


@pytest.mark.parametrize("prefix, named", [("", "dora.zip"), ("cs/v2/", "dora.zip › cs › v2")])
def test_upload_refusals_name_what_the_user_gave(workbench: Workbench, tmp_path: Path,
                                                 prefix: str, named: str) -> None:
    """No staging names ("raw:", "v1:") in a refusal: it names the zip (and its folder)."""
    dora = shutil.copytree(workbench.registry.resolve("a1@v1").path, tmp_path / "dora")
    cfg = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**cfg, "use_dora": True}))
    before = snapshot(workbench)
    with pytest.raises(AdapterError) as info:
        import_adapter(workbench.registry, zip_folder(dora, tmp_path / "dora.zip", prefix),
                       workbench.validate_adapter, name="up")
    assert info.value.message.startswith(f"{named}: adapter_config.json 'use_dora'"), info.value.message
    assert "raw:" not in info.value.message and not info.value.message.startswith("v2:")
    assert snapshot(workbench) == before


def test_table_cells_are_short() -> None:
    from workbench.service.lifecycle import short_eval, short_targets

    cfg = {"target_modules": ["gate_proj", "down_proj", "o_proj", "v_proj", "k_proj", "q_proj",
                              "up_proj"], "layers_to_transform": list(range(20, 30))}
    assert short_targets(cfg) == "q k v o gate up down · layers 20–29"
    assert short_targets({"target_modules": "all-linear"}) == "all linear"
    ev = {"multilingual-intents@aa": {"suite": "multilingual-intents", "suite_hash": "aa" * 32,
                                      "resolution_rate": 0.2167, "n": 180},
          "regional-policy@bb": {"suite": "regional-policy", "suite_hash": "bb" * 32,
                                 "resolution_rate": 0.4, "n": 72}}
    assert short_eval(ev) == "intents 21.7% · policy 40%"
    # Two suites ending alike keep their names; one name with other items shows its hash.
    assert short_eval({"a-policy": {"accuracy": 0.5}, "b-policy": {"accuracy": 0.25}}) == \
        "a-policy 50% · b-policy 25%"
    same = {"p@1": {"suite": "p", "suite_hash": "111111ff", "accuracy": 0.5},
            "p@2": {"suite": "p", "suite_hash": "222222ff", "accuracy": 0.5}}
    assert short_eval(same) == "p [111111] 50% · p [222222] 50%"
    assert short_eval({}) == "" and short_eval(None) == ""


@pytest.mark.parametrize("ref", ["../a1", "a1@../../etc", "/etc/passwd", "a1@v1/..", ".hidden"])
def test_traversal_names_refused(workbench: Workbench, tmp_path: Path, ref: str) -> None:
    before = snapshot(workbench)
    with pytest.raises(AdapterError, match="Invalid adapter"):
        lifecycle.load(workbench, ref)
    name, _, version = ref.partition("@")
    good = workbench.registry.resolve("a1@v1").path
    with pytest.raises(AdapterError, match="Invalid adapter"):
        import_adapter(workbench.registry, zip_folder(good, tmp_path / "t.zip"), workbench.validate_adapter,
                       name=name, version=version or "v9")
    assert snapshot(workbench) == before
    assert answer(workbench)


def _evil_zip(path: Path, good: Path, kind: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for f in good.iterdir():
            zf.write(f, f.name)
        if kind == "dotdot":
            zf.writestr("../../evil.txt", "x")
        elif kind == "absolute":
            zf.writestr("/tmp/evil.txt", "x")
        elif kind == "symlink":
            info = zipfile.ZipInfo("link")
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
        elif kind == "many":
            for i in range(40):
                zf.writestr(f"f{i}.txt", "x")
        elif kind == "big":
            zf.writestr("pad.bin", b"\0" * (3 << 20), compress_type=zipfile.ZIP_DEFLATED)
        elif kind == "notzip":
            pass
    if kind == "notzip":
        path.write_bytes(b"PK\x03\x04 not really a zip")
    return path


@pytest.mark.parametrize("kind,message", [
    ("dotdot", "outside the archive"), ("absolute", "absolute path"), ("symlink", "symbolic link"),
    ("many", "files in the archive"), ("big", "uncompressed"), ("notzip", "not a valid zip"),
])
def test_zip_slip_and_limits_refused(workbench: Workbench, tmp_path: Path, kind: str,
                                     message: str) -> None:
    good = workbench.registry.resolve("a1@v1").path
    archive = _evil_zip(tmp_path / f"{kind}.zip", good, kind)
    before = snapshot(workbench)
    limits = UploadLimits(max_total_bytes=2 << 20, max_files=32)
    with pytest.raises(InputError, match=message):
        import_adapter(workbench.registry, archive, workbench.validate_adapter, name="up", limits=limits)
    assert snapshot(workbench) == before
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil.txt").exists()
    assert answer(workbench)


def test_validate_reports_a_good_adapter(workbench: Workbench) -> None:
    report = validate_adapter(workbench.registry.resolve("a1@v1").path, workbench.loaded)
    assert report.rank == 4 and report.base_model == "tiny-glm"
    assert any(m.endswith("q_proj") for m in report.modules)
    assert report.tensors == 2 * len(report.modules)


def test_registry_hides_staging_and_partial_folders(tmp_home: Path) -> None:
    reg = Registry(Path(os.environ["WORKBENCH_ADAPTERS"]))
    stage = reg.staging_dir()
    (stage / "adapter_config.json").write_text("{}")
    (reg.root / "x" / ".v1.partial-abc").mkdir(parents=True)
    (reg.root / "x" / ".v1.partial-abc" / "adapter_config.json").write_text("{}")
    assert reg.names() == [] and reg.all() == []


# ---- the Adapters tab drives the same operations ---------------------------------------------
def test_adapters_tab_buttons(workbench: Workbench, tmp_path: Path) -> None:
    import gradio as gr

    from workbench.ui import adapters_tab

    workbench.admin_token = "tab-token"
    with gr.Blocks() as demo:
        with gr.Tab("Adapters") as tab:
            adapters_tab.build_adapters_tab(workbench, tab)
    ids = {c.get("props", {}).get("elem_id") for c in demo.config["components"]}
    assert {"adapters-table", "adapters-ref", "adapters-load", "adapters-unload", "adapters-rollback",
            "adapters-default", "adapters-upload", "adapters-upload-name", "adapters-upload-version",
            "adapters-token", "adapters-unlock"} <= ids
    load, unload, rollback, default, upload = adapters_tab._handlers(workbench)
    token, _ = adapters_tab.unlock(workbench, "tab-token")
    src = make_random_adapter(fresh_base(), tmp_path / "up", base_model_id="tiny-glm", seed=9, rank=4)
    status = upload(str(zip_folder(src, tmp_path / "up.zip", "a1/v2/")), "", "", token)
    assert "Registered a1@v2" in status
    # Table rows: Adapter, Version, Rank, Target modules, Loaded, Eval, Created.
    assert [["a1", "v2"]] == [r[:2] for r in adapters_tab.table_rows(workbench) if r[:2] == ["a1", "v2"]]
    status = load("a1@v2", token)
    assert "v1 -> v2" in status
    assert any(r[:2] == ["a1", "v2"] and r[4] for r in adapters_tab.table_rows(workbench))
    status = default("a2@v1")
    assert workbench.default_adapter == "a2" and "a2" in status
    rollback("a1", token)
    assert workbench.served["a1"].version == "v1"
    before = snapshot(workbench)
    with pytest.raises(UnknownNameError, match="Unknown adapter"):
        load("nope@v1", token)
    with pytest.raises(InputError, match="Refused upload"):
        upload(str(_evil_zip(tmp_path / "evil.zip", src, "dotdot")), "", "", token)
    with pytest.raises(WorkbenchError, match="admin token"):
        unload("a2", False, None)
    assert snapshot(workbench) == before
    # Wired to the buttons, a refusal is a toast that leaves table, picker and status as they were.
    assert adapters_tab.refreshing(workbench, load)("nope@v1", token) == gr.skip()
    assert snapshot(workbench) == before
    table, picker, line = adapters_tab.refreshing(workbench, default)("base")
    assert workbench.default_adapter is None and "defaults to **base**" in line
    assert "a1@v2" in picker["choices"] and ["a1", "v2"] in [r[:2] for r in table]
    unload("a2", False, token)
    assert workbench.engine.adapters == ["a1"]
