"""Chat template → prompt ids, fitted to the context budget by whole turns.

A conversation longer than the budget loses its oldest turns (a user message and the
answers after it) right after the system message. The system message carries the store's
policy grounding, so it is never cut, and nothing is cut inside the template: cutting ids
from the left, as before, could leave half a role tag or half a policy. When the system
message and the newest turn alone are over the budget the request is refused at submit,
unless the caller asks for the newest message to be cut (the chat UI does, and says so under
the answer): then the end of that message's text goes, never the template or the system.

Templating runs on the caller's thread, so a bad prompt is refused at once and the worker
only runs the model. One lock guards the tokenizer: fast tokenizers may refuse concurrent
calls that touch their padding and truncation state.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from workbench.errors import InputError

Messages = list[dict[str, str]]


class ContextLengthError(InputError):
    """A conversation that does not fit the context window and may not be shortened."""

    def __init__(self, tokens: int, budget: int, window: int | None = None,
                 max_new_tokens: int | None = None) -> None:
        self.tokens, self.budget = tokens, budget
        limits = (f"This model's maximum context length is {window} tokens, and prompts may use at "
                  f"most {budget} of them with max_tokens={max_new_tokens}" if window else
                  f"Prompts may use at most {budget} tokens")
        super().__init__(f"{limits}; your messages resulted in {tokens} tokens. Shorten the "
                         "conversation, lower max_tokens, or let the oldest turns be dropped "
                         "(\"truncate\": true).", param="messages")


@dataclass(frozen=True)
class FittedPrompt:
    """A templated prompt that fits the budget."""

    # Token ids of the whole templated prompt.
    ids: list[int]
    # Leading ids that are the system message (0: none, or too short to reuse).
    prefix_len: int
    # Whole turns dropped after the system message to fit.
    dropped_turns: int
    # Tokens cut from the end of the newest message to fit (0: none).
    cut_tokens: int = 0


def split_turns(messages: Messages) -> tuple[Messages, list[Messages]]:
    """(system messages at the head, turns): each turn starts at a user message."""
    head = [m for m in messages[:1] if m.get("role") == "system"]
    turns: list[Messages] = []
    for m in messages[len(head):]:
        if m.get("role") == "user" or not turns:
            turns.append([m])
        else:
            turns[-1].append(m)
    return head, turns


def common_prefix_len(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class Prompter:
    """Templates and fits prompts for one tokenizer."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        self._lock = threading.Lock()

    def ids(self, messages: Messages, generation_prompt: bool = True) -> list[int]:
        with self._lock:
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt,
                                                      tokenize=False)
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def fit(self, messages: Messages, budget: int, min_prefix: int,
            cut_last: bool = False, truncate: bool = True) -> FittedPrompt:
        """The prompt with the fewest oldest turns dropped that fits ``budget`` tokens;
        with ``cut_last``, the newest message's text is shortened when that is not enough.
        Without ``truncate`` nothing is dropped: a prompt over budget is refused."""
        head, turns = split_turns(messages)
        dropped = 0
        ids = self.ids(messages)
        if len(ids) > budget and not truncate:
            raise ContextLengthError(len(ids), budget)
        while len(ids) > budget and len(turns) - dropped > 1:
            dropped += 1
            ids = self.ids(head + [m for t in turns[dropped:] for m in t])
        kept = head + [m for t in turns[dropped:] for m in t]
        cut = 0
        if len(ids) > budget and cut_last and kept and kept[-1].get("role") == "user":
            ids, cut = self._cut_last(kept, budget)
        if len(ids) > budget:
            what = "The system message and the last message" if head else "The last message"
            raise InputError(f"{what} take {len(ids)} tokens; the prompt budget is {budget}. "
                             "Shorten it or raise max_prompt_tokens.")
        return FittedPrompt(ids, self._prefix_len(head, ids, min_prefix), dropped, cut)

    def _cut_last(self, messages: Messages, budget: int) -> tuple[list[int], int]:
        """(ids, tokens cut): the last message's text cut at a token boundary until it fits."""
        text = messages[-1]["content"]
        with self._lock:
            content = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        over = len(self.ids(messages)) - budget
        keep = len(content) - over
        while keep > 0:
            with self._lock:
                short = self.tokenizer.decode(content[:keep], skip_special_tokens=True)
            ids = self.ids([*messages[:-1], {**messages[-1], "content": short}])
            if len(ids) <= budget:
                return ids, len(content) - keep
            keep -= max(1, len(ids) - budget)  # re-tokenising at the cut can add a few ids
        return self.ids(messages), 0

    def _prefix_len(self, head: Messages, ids: list[int], min_prefix: int) -> int:
        if not head or min_prefix <= 0:
            return 0
        try:
            head_ids = self.ids(head, generation_prompt=False)
        except Exception:  # templates that insist on a user turn: nothing to reuse
            return 0
        n = min(common_prefix_len(ids, head_ids), len(ids) - 1)  # one id must be left to run
        return n if n >= min_prefix else 0
