"""bfloat16 linear weights packed for oneDNN: the same numbers, shared weights left dense (a
tied head packed as a copy), and adapters loaded and unloaded over packed layers."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from workbench.config import EngineConfig
from workbench.engine import Engine, RequestStatus, SamplingParams, onednn, precision
from workbench.models.catalog import load_model

pytestmark = pytest.mark.skipif(not onednn.supported("cpu", torch.bfloat16),
                                reason="this torch has no oneDNN bfloat16 packing")
MSGS = [{"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": "Where is my order? It has not arrived."}]


def test_packed_model_gives_the_same_logits() -> None:
    loaded = load_model("tiny-glm")
    precision.apply(loaded, "bfloat16")
    dense = copy.deepcopy(loaded.model)
    params = sum(p.numel() for p in loaded.model.parameters())
    assert onednn.pack_linears(loaded.model) > 0
    assert any(p.is_mkldnn for p in loaded.model.parameters())
    assert any(getattr(m, "fused_into", None) for m in loaded.model.modules())  # q, k, v as one
    assert sum(p.numel() for p in loaded.model.parameters()) == params
    ids = torch.tensor([[5, 9, 17, 33, 2, 8, 41]])
    with torch.inference_mode():
        got, want = loaded.model(input_ids=ids).logits, dense(input_ids=ids).logits
        last = loaded.model(input_ids=ids, logits_to_keep=1).logits  # a strided last column
    assert torch.equal(got, want)
    assert torch.equal(last[:, -1], want[:, -1])


def test_shared_and_float_weights_stay_dense() -> None:
    tied = nn.Linear(8, 8, bias=False).bfloat16()
    other = nn.Linear(8, 8, bias=False).bfloat16()
    other.weight = tied.weight  # one Parameter in two modules, as a head tied to its embedding
    model = nn.Sequential(tied, other, nn.Linear(8, 4).bfloat16(), nn.Linear(4, 4))
    assert onednn.pack_linears(model) == 1
    assert not model[0].weight.is_mkldnn and not model[1].weight.is_mkldnn
    assert model[2].weight.is_mkldnn and not model[3].weight.is_mkldnn  # float32 stays
    x = torch.randn(3, 8, dtype=torch.bfloat16)
    assert model[2](x).shape == (3, 4)


def test_a_tied_head_runs_on_a_packed_copy_and_the_embedding_keeps_its_weight() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    model = LlamaForCausalLM(config).bfloat16().eval()
    assert model.lm_head.weight is model.model.embed_tokens.weight
    dense = copy.deepcopy(model)
    embedding = model.model.embed_tokens.weight
    onednn.pack_linears(model)
    assert model.lm_head.weight.is_mkldnn and model.model.embed_tokens.weight is embedding
    assert not embedding.is_mkldnn
    ids = torch.tensor([[5, 9, 17, 33, 2, 8, 41]])
    with torch.inference_mode():
        assert torch.equal(model(input_ids=ids).logits, dense(input_ids=ids).logits)


def test_adapters_load_and_leave_over_packed_layers(make_adapter) -> None:
    loaded = load_model("tiny-glm")
    path = make_adapter(loaded, "a1", seed=1)
    config = EngineConfig(max_batch_size=4, max_wait_ms=50, dtype="bfloat16")
    with Engine(loaded, config) as engine:
        assert any(p.is_mkldnn for p in engine.runner.model.parameters())
        engine.load_adapter("a1", path)
        reqs = [engine.submit(MSGS, key, SamplingParams(ignore_eos=True), max_new_tokens=6)
                for key in (None, "a1")]
        for req in reqs:
            assert req.done_event.wait(60) and req.status is RequestStatus.FINISHED, req.error
        engine.unload_adapter("a1", drain=True)  # the last one: PEFT's layers go, the packed ones stay
        again = engine.submit(MSGS, None, SamplingParams(ignore_eos=True), max_new_tokens=6)
        assert again.done_event.wait(60) and again.status is RequestStatus.FINISHED, again.error
        assert again.output_token_ids == reqs[0].output_token_ids


def test_fused_siblings_answer_each_member_for_its_own_input() -> None:
    attn = nn.Module()
    attn.q_proj, attn.k_proj, attn.v_proj = (nn.Linear(8, n).bfloat16() for n in (8, 4, 4))
    dense = copy.deepcopy(attn)
    assert onednn.pack_linears(attn) == 3
    x, y = torch.randn(2, 3, 8, dtype=torch.bfloat16), torch.randn(2, 3, 8, dtype=torch.bfloat16)
    with torch.inference_mode():
        # k before q, q twice on one input, then a new input mid-group: each call is right.
        for name, inp in (("k_proj", x), ("q_proj", x), ("q_proj", x), ("v_proj", y), ("k_proj", y),
                          ("v_proj", x)):
            got, want = getattr(attn, name)(inp), getattr(dense, name)(inp)
            assert got.shape == want.shape and torch.allclose(got.float(), want.float(), atol=1e-2), name
