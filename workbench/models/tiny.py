"""Tiny random GLM / GLM-4 models and a tokenizer, built offline in seconds (tests, demos).

The tokenizer is a byte-level BPE trained in-process on a few lines of the 15 languages,
so every script round-trips; it carries a GLM-style chat template.
"""
from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (GlmConfig, GlmForCausalLM, Glm4Config, Glm4ForCausalLM,
                          PreTrainedModel, PreTrainedTokenizerFast)

SPECIALS = ["<pad>", "<eos>", "<|system|>", "<|user|>", "<|assistant|>"]

# GLM-4's template shape: role tags, then the generation prompt.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_CORPUS = [
    "Where is my order? It has not arrived yet.", "¿Dónde está mi pedido? Quiero devolverlo.",
    "我的订单在哪里？我想退货。", "أين طلبي؟ أريد إرجاع المنتج.", "Où est ma commande ? Je veux un remboursement.",
    "Wo ist meine Bestellung? Ich möchte zurückgeben.", "Onde está meu pedido? Quero devolver.",
    "Где мой заказ? Я хочу вернуть товар.", "注文はどこですか？返品したいです。", "제 주문은 어디에 있나요? 반품하고 싶어요.",
    "Dov'è il mio ordine? Voglio un rimborso.", "Siparişim nerede? İade etmek istiyorum.",
    "Di mana pesanan saya? Saya ingin mengembalikan.", "Đơn hàng của tôi ở đâu? Tôi muốn trả hàng.",
    "คำสั่งซื้อของฉันอยู่ที่ไหน ฉันต้องการคืนสินค้า", "Returns within 14 days. Refund in 7 days.",
]


def build_tokenizer(vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with pad/eos and a chat template."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>",
                                   padding_side="left")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _config_kwargs(tokenizer: PreTrainedTokenizerFast, hidden: int, layers: int) -> dict:
    return dict(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, head_dim=hidden // 4,
        max_position_embeddings=2048, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=None, tie_word_embeddings=False,
    )


def build_tiny_glm(kind: str = "glm", seed: int = 0, hidden: int = 64, layers: int = 2,
                   tokenizer: PreTrainedTokenizerFast | None = None
                   ) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """A seeded random ``GlmForCausalLM`` (kind="glm") or ``Glm4ForCausalLM`` (kind="glm4")."""
    tokenizer = tokenizer or build_tokenizer()
    torch.manual_seed(seed)
    kwargs = _config_kwargs(tokenizer, hidden, layers)
    if kind == "glm":
        model = GlmForCausalLM(GlmConfig(**kwargs))
    elif kind == "glm4":
        model = Glm4ForCausalLM(Glm4Config(**kwargs))
    else:
        raise ValueError(f"tiny model kind must be 'glm' or 'glm4', not {kind!r}")
    # Larger random weights than the default init give peaked logits, so greedy decoding
    # does not hinge on near-ties and outputs stay comparable across batch shapes.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.2)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval(), tokenizer
