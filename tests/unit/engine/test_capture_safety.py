"""The bucketed decode step holds nothing a CUDA graph capture refuses or would replay stale.

A capture records the kernels a step launches; it fails on anything that makes the host wait
for the device (``.item()``, ``nonzero``, boolean indexing: their result decides the next
launch) and it would bake in, as constants, tensors made from Python values inside the step.
The CPU cannot capture, so the stand-in capture below runs the step under a dispatch mode
that sees every aten op the step calls, which is what the capture would record, and lists
those. It runs for each architecture the engine serves: GLM, GLM-4 and Llama (SmolLM2).
"""
from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import LlamaConfig, LlamaForCausalLM

from test_decode_graphs import FakeGraph
from workbench.config import EngineConfig
from workbench.engine import Engine, RequestStatus, SamplingParams
from workbench.engine import capture as capture_mod
from workbench.models.catalog import load_model
from workbench.models.loaded import LoadedModel
from workbench.models.tiny import _config_kwargs, build_tokenizer

# Ops whose result the host must read before it can go on (a capture raises on them).
SYNCING = {"_local_scalar_dense", "nonzero", "is_nonzero", "equal", "masked_select", "_unique2",
           "unique_consecutive", "unique_dim", "item"}
# Ops that turn Python data into a tensor: inside a graph, a value frozen at capture time.
FROM_PYTHON = {"lift_fresh", "lift_fresh_copy"}


class OpLog(TorchDispatchMode):
    """Every aten op called inside the block, with the ones a capture cannot hold."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()
        self.refused: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        name = func.overloadpacket.__name__
        self.ops.add(name)
        if name in SYNCING or name in FROM_PYTHON or _bool_index(name, args):
            self.refused.append(str(func))
        return func(*args, **(kwargs or {}))


def _bool_index(name: str, args: tuple) -> bool:
    """Indexing by a boolean mask: its output size depends on the data (a hidden nonzero)."""
    if name not in {"index", "index_put", "index_put_"} or len(args) < 2:
        return False
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in args[1] or ())


def _tiny_llama() -> LoadedModel:
    tok = build_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**_config_kwargs(tok, 64, 2))).eval()
    return LoadedModel("tiny-llama", "tiny-llama", model, tok, "cpu", "float32")


LOADERS = {"glm": lambda: load_model("tiny-glm"), "glm4": lambda: load_model("tiny-glm4"),
           "llama": _tiny_llama}


def _record_capture(logs: list[OpLog]):  # noqa: ANN202 - stands in for _Graph.capture
    def capture(graph, mempool) -> None:  # noqa: ANN001
        log = OpLog()
        with log:
            graph.logits = graph.fn()
        logs.append(log)
        graph.cuda_graph = FakeGraph(graph.fn, graph.logits)
    return capture


@pytest.mark.parametrize("arch", sorted(LOADERS))
def test_the_captured_step_neither_syncs_nor_bakes_in_python_values(arch, make_adapter, monkeypatch) -> None:
    loaded = LOADERS[arch]()
    twin = LOADERS[arch]()
    paths = {"a1": make_adapter(twin, "a1", seed=1), "a2": make_adapter(twin, "a2", seed=2)}
    logs: list[OpLog] = []
    monkeypatch.setattr(capture_mod._Graph, "capture", _record_capture(logs))
    monkeypatch.setattr(capture_mod, "graph_pool", lambda device: object())
    config = EngineConfig(max_batch_size=4, max_wait_ms=50, decode_graphs="cuda")
    with Engine(loaded, config) as engine:
        for name, path in paths.items():
            engine.load_adapter(name, path)
        msgs = [{"role": "user", "content": "Where is my order?"}]
        reqs = [engine.submit(msgs, a, SamplingParams(ignore_eos=True), 6) for a in ("a1", None, "a2")]
        for r in reqs:
            assert r.done_event.wait(60) and r.status is RequestStatus.FINISHED, r.error
        stats = engine.runner.static.stats
    assert logs and stats.captures == len(logs) and not stats.fallback
    for log in logs:
        assert {"matmul", "index_copy_", "scaled_dot_product_attention"} <= log.ops  # LoRA, pool, attention
        assert log.refused == [], f"{arch}: a capture would fail or replay stale values: {log.refused}"


def test_the_op_log_sees_a_sync_and_a_python_value() -> None:
    x = torch.arange(6.0).view(2, 3)
    with OpLog() as log:
        _ = x.sum().item()
        _ = x[x > 2]
        _ = x + torch.tensor([1.0, 2.0, 3.0])
    assert any("_local_scalar_dense" in op for op in log.refused)
    assert any("index" in op for op in log.refused)
    assert any("lift_fresh" in op for op in log.refused)
    with OpLog() as clean:
        _ = x @ x.t() + x.sum(-1, keepdim=True)
    assert clean.refused == []
