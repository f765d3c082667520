"""The one prompt builder: the same customer question gets the same prompt from every face.

The Chat tab's panes, the customer view, the arena, ``workbench chat``, the API, the eval
suites, the benchmark and the feedback export all build their messages here, so what an
evaluator reads in the page is what production serves.

The system message is three parts, each optional, joined by blank lines:

1. the persona: the store's own (``BASE_SYSTEM_PROMPT``), or the caller's system message
   when an API request brings one, or a suite's ``system_prompt``;
2. the language line ("The customer writes in German; reply in German."), when the
   customer's language is known;
3. the grounding: the region's return policy when grounding is on, or a suite's FAQ.

A conversation that names neither a language nor a region nor a grounding text is passed on
unchanged: a plain OpenAI request gets exactly the messages it sent.
"""
from __future__ import annotations

from collections.abc import Sequence

from workbench.domain.langs import LANGUAGES, language_name
from workbench.domain.policy import BASE_SYSTEM_PROMPT, policy_text, region_policy
from workbench.errors import UnknownNameError

Messages = list[dict[str, str]]


def check_place(lang: str | None, region: str | None) -> None:
    """Refuse a language or region the store does not know (named, with the known ones)."""
    if lang is not None and lang not in LANGUAGES:
        raise UnknownNameError("language", lang, LANGUAGES)
    if region is not None:
        region_policy(region)


def language_line(lang: str) -> str:
    name = language_name(lang)
    return f"The customer writes in {name}; reply in {name}."


def system_text(persona: str | None = None, lang: str | None = None,
                grounding: str | None = None) -> str:
    """The system message's text: persona, language line, grounding (empty parts left out)."""
    parts = [(persona if persona is not None else BASE_SYSTEM_PROMPT).strip(),
             language_line(lang) if lang else "", (grounding or "").strip()]
    return "\n\n".join(p for p in parts if p)


def region_grounding(region: str | None, grounded: bool = True) -> str | None:
    """The region's return policy as prompt text (None: not grounded, or no region)."""
    return policy_text(region) if grounded and region else None


def build_prompt(conversation: Sequence[dict[str, str]], *, lang: str | None = None,
                 region: str | None = None, grounded: bool = True,
                 persona: str | None = None, grounding: str | None = None) -> Messages:
    """The messages a model is asked with.

    ``conversation`` is the customer's side: earlier turns and the newest message, optionally
    headed by the caller's own system message (which then takes the persona's place).
    ``grounding`` overrides the region's policy (a suite's FAQ); ``persona`` the store's.
    """
    turns = [{"role": m["role"], "content": m["content"]} for m in conversation]
    caller = turns.pop(0)["content"] if turns and turns[0]["role"] == "system" else None
    ground = grounding if grounding is not None else region_grounding(region, grounded)
    if lang is None and ground is None and persona is None:
        return ([{"role": "system", "content": caller}] if caller is not None else []) + turns
    system = system_text(caller if caller is not None else persona, lang, ground)
    return ([{"role": "system", "content": system}] if system else []) + turns


def customer_prompt(question: str, *, history: Sequence[dict[str, str]] = (), lang: str | None = None,
                    region: str | None = None, grounded: bool = True) -> Messages:
    """A customer's question after its conversation so far, as every chat face asks it."""
    return build_prompt([*history, {"role": "user", "content": question}], lang=lang,
                        region=region, grounded=grounded, persona=BASE_SYSTEM_PROMPT)
