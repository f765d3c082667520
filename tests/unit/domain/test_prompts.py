"""The one prompt builder: persona, language line, grounding; a plain request passes unchanged."""
from __future__ import annotations

import pytest

from workbench.domain.policy import BASE_SYSTEM_PROMPT, policy_text
from workbench.domain.prompts import build_prompt, check_place, customer_prompt
from workbench.errors import UnknownNameError

Q = [{"role": "user", "content": "Can I return shoes after 20 days?"}]


def test_customer_prompt_is_persona_language_and_policy() -> None:
    (system, user) = customer_prompt(Q[0]["content"], lang="de", region="EU")
    assert system["content"] == "\n\n".join(
        [BASE_SYSTEM_PROMPT, "The customer writes in German; reply in German.", policy_text("EU")])
    assert user == Q[0]
    ungrounded = customer_prompt(Q[0]["content"], lang="de", region="EU", grounded=False)
    assert policy_text("EU") not in ungrounded[0]["content"]


def test_api_request_with_lang_and_region_gets_the_pages_prompt() -> None:
    assert build_prompt(Q, lang="ja", region="JP") == customer_prompt(Q[0]["content"], lang="ja", region="JP")


def test_callers_system_message_takes_the_personas_place() -> None:
    own = [{"role": "system", "content": "You are Mia from Harbor & Pine."}, *Q]
    (system, _) = build_prompt(own, lang="fr", region="EU")
    assert system["content"].startswith("You are Mia from Harbor & Pine.\n\nThe customer writes in French")
    assert system["content"].endswith(policy_text("EU")) and BASE_SYSTEM_PROMPT not in system["content"]


def test_plain_request_is_passed_unchanged() -> None:
    own = [{"role": "system", "content": "Be terse."}, *Q]
    assert build_prompt(own) == own
    assert build_prompt(Q) == Q


def test_suite_persona_and_grounding_without_language_line() -> None:
    msgs = build_prompt(Q, persona="Decide returns.", grounding="FAQ text")
    assert msgs[0]["content"] == "Decide returns.\n\nFAQ text"
    assert build_prompt(Q, persona="", grounding="") == Q  # nothing to say: no system message


def test_unknown_language_and_region_are_named() -> None:
    with pytest.raises(UnknownNameError, match="Unknown language 'xx'"):
        check_place("xx", None)
    with pytest.raises(UnknownNameError, match="Unknown region 'ZZ'") as info:
        check_place("de", "ZZ")
    assert info.value.param == "region"
