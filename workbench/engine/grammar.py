"""Grammar-constrained decoding per row, with xgrammar: JSON schemas and choice lists.

The sampler asks each constrained row for a :class:`RowConstraint`, masks that row's logits
before picking a token and feeds the picked token back; unconstrained rows of the same batch
are left alone::

    rc = compile_constraint(StructuredOutput(json_schema=schema), tokenizer, vocab_size)
    rc.mask_logits(logits[row])   # logits: [V]; tokens the grammar forbids -> -inf
    rc.accept(token_id)
    rc.is_finished()              # the grammar is complete and its stop token was taken

Compiling a grammar against a vocabulary is the expensive part (tens of milliseconds to
seconds), so compiled grammars are cached per (tokenizer, vocab size, spec); a row's matcher
state is cheap and made fresh for every row.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import torch
import xgrammar as xgr

from workbench.engine.request import StructuredOutput
from workbench.errors import InputError

# Compiled grammars kept per tokenizer; the oldest go first beyond this.
CACHE_SIZE = 64

_lock = threading.Lock()
# id(tokenizer), vocab_size -> (tokenizer kept alive so its id stays unique, compiler)
_compilers: dict[tuple[int, int], tuple[Any, xgr.GrammarCompiler]] = {}
_compiled: "OrderedDict[tuple[int, int, StructuredOutput], xgr.CompiledGrammar]" = OrderedDict()


class RowConstraint:
    """One row's grammar state while it decodes."""

    def __init__(self, compiled: xgr.CompiledGrammar, vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self._matcher = xgr.GrammarMatcher(compiled)
        self._bitmask = xgr.allocate_token_bitmask(1, vocab_size)  # [1, ceil(V / 32)] int32
        self._stop_ids = list(compiled.tokenizer_info.stop_token_ids)

    def mask_logits(self, logits: torch.Tensor) -> None:
        """Set every token the grammar does not allow next to -inf, in place; logits: [V]."""
        if self._matcher.is_terminated():  # nothing may follow but stopping again
            keep = logits[self._stop_ids].clone()
            logits.fill_(float("-inf"))
            logits[self._stop_ids] = keep
            return
        if not self._matcher.fill_next_token_bitmask(self._bitmask):
            return  # everything allowed at this step
        row = logits.view(1, -1)  # [1, V]
        if logits.device.type == "cpu":
            xgr.apply_token_bitmask_inplace(row, self._bitmask, vocab_size=self.vocab_size)
        else:
            xgr.apply_token_bitmask_inplace(row, self._bitmask.to(logits.device),
                                            vocab_size=self.vocab_size, backend="torch_native")
        if logits.shape[-1] > self.vocab_size:  # padded lm_head rows are no tokens at all
            logits[self.vocab_size:] = float("-inf")

    def accept(self, token_id: int) -> None:
        """Advance past ``token_id``; a token the grammar forbids is a sampler bug."""
        if not self._matcher.accept_token(int(token_id)):
            raise InputError(f"Token {token_id} is not allowed here by the row's output grammar.")

    def is_finished(self) -> bool:
        """Whether the output is complete: the grammar matched and its stop token was taken."""
        return self._matcher.is_terminated()


def compile_constraint(spec: StructuredOutput, tokenizer: Any, vocab_size: int) -> RowConstraint:
    """A fresh row constraint for ``spec``; raises InputError on a bad schema or choice list."""
    _check_spec(spec)
    key = (id(tokenizer), int(vocab_size), spec)
    with _lock:
        compiled = _compiled.get(key)
        if compiled is not None:
            _compiled.move_to_end(key)
    if compiled is None:
        compiled = _compile(_compiler(tokenizer, int(vocab_size)), spec)
        with _lock:
            _compiled[key] = compiled
            while len(_compiled) > CACHE_SIZE:
                _compiled.popitem(last=False)
    return RowConstraint(compiled, int(vocab_size))


def _check_spec(spec: StructuredOutput) -> None:
    if (spec.json_schema is None) == (not spec.choice):
        raise InputError("A structured output needs exactly one of a JSON schema or a choice list.")
    if spec.choice and not all(isinstance(c, str) and c for c in spec.choice):
        raise InputError("Every choice of a structured output must be a non-empty string.")


def _compiler(tokenizer: Any, vocab_size: int) -> xgr.GrammarCompiler:
    key = (id(tokenizer), vocab_size)
    with _lock:
        hit = _compilers.get(key)
        if hit is not None and hit[0] is tokenizer:
            return hit[1]
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
    compiler = xgr.GrammarCompiler(info, max_threads=2)
    with _lock:
        _compilers[key] = (tokenizer, compiler)
    return compiler


def _compile(compiler: xgr.GrammarCompiler, spec: StructuredOutput) -> xgr.CompiledGrammar:
    if spec.choice:
        # Each choice as one EBNF string literal; JSON's escapes are valid EBNF escapes.
        alts = " | ".join(json.dumps(c, ensure_ascii=False) for c in spec.choice)
        return compiler.compile_grammar(f"root ::= {alts}")
    schema = _parse_schema(spec.json_schema or "")
    try:
        # One line with fixed separators: a small model cannot spin on whitespace forever.
        return compiler.compile_json_schema(json.dumps(schema), any_whitespace=False,
                                            separators=(", ", ": "))
    except (RuntimeError, ValueError, TypeError) as exc:
        raise InputError(f"The JSON schema cannot be used for constrained output: {exc}") from exc


def _parse_schema(text: str) -> dict:
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"The JSON schema is not valid JSON: {exc.msg} (column {exc.colno}).") from exc
    if not isinstance(schema, dict):
        raise InputError("A JSON schema must be a JSON object.")
    return schema
