"""The in-place cache layer: the same keys/values a concatenating layer would hold, without
copying the history on each step."""
from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

from workbench.engine.kvcache import GrowingLayer, new_cache


def test_growing_layer_holds_what_concatenation_holds() -> None:
    grow, plain = GrowingLayer(), DynamicLayer()
    torch.manual_seed(0)
    for t in (7, 1, 1, 3, *[1] * 80):  # a prefill chunk, then decode steps past one growth
        k, v = torch.randn(2, 3, t, 4), torch.randn(2, 3, t, 5)
        gk, gv = grow.update(k, v)
        pk, pv = plain.update(k, v)
        assert torch.equal(gk, pk) and torch.equal(gv, pv)
    assert grow.get_seq_length() == plain.get_seq_length() == 92


def test_a_decode_step_writes_in_place_until_the_buffer_is_full() -> None:
    layer = GrowingLayer()
    layer.update(torch.randn(1, 2, 10, 4), torch.randn(1, 2, 10, 4))
    buf = layer._k.buf
    assert buf.shape[-2] > 10  # spare columns
    for _ in range(buf.shape[-2] - 10):
        layer.update(torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 4))
    assert layer._k.buf is buf  # no copy while it fits
    layer.update(torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 4))
    assert layer._k.buf is not buf and layer.keys.shape[-2] == buf.shape[-2] + 1


def test_replaced_rows_become_the_new_history() -> None:
    layer = GrowingLayer()
    layer.update(torch.randn(3, 2, 5, 4), torch.randn(3, 2, 5, 4))
    kept = layer.keys[[0, 2]].clone()  # rows leave: the batch sets keys/values wholesale
    layer.keys, layer.values = kept, layer.values[[0, 2]].clone()
    new_k = torch.randn(2, 2, 1, 4)
    k, _ = layer.update(new_k, torch.randn(2, 2, 1, 4))
    assert k.shape == (2, 2, 6, 4) and torch.equal(k[:, :, :5], kept) and torch.equal(k[:, :, 5:], new_k)


def test_new_cache_grows_full_attention_layers(tiny_loaded) -> None:
    cache = new_cache(tiny_loaded.model.config)
    assert cache.layers and all(isinstance(layer, GrowingLayer) for layer in cache.layers)
