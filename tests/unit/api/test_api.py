"""The serving API through the official openai client and raw HTTP: models, chat, streaming
with usage, the error envelope, bad inputs with their statuses, and /metrics."""
from __future__ import annotations

import json
import logging
import time

import httpx
import openai
import pytest
from apihelp import ADMIN, KEY, ask, serve_tiny

from workbench.adapters.demo import make_random_adapter
from workbench.api.auth import APISettings, check_bind
from workbench.models.catalog import load_model
from workbench.errors import WorkbenchError


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One server for the module: these tests only read, and each start costs a second."""
    root = tmp_path_factory.mktemp("api")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(root / "home"))
        mp.setenv("WORKBENCH_ADAPTERS", str(root / "adapters"))
        loaded = load_model("tiny-glm")
        make = lambda loaded, name, version, seed, root: make_random_adapter(  # noqa: E731
            loaded.model, root / name / version, base_model_id=loaded.model_id, seed=seed, rank=4)
        with serve_tiny(loaded, make) as s:
            yield s


@pytest.fixture
def client(served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.v1, api_key="unused", max_retries=0, timeout=60)


def test_models_list_base_and_adapters(served, client) -> None:
    cards = {m.id: m for m in client.models.list().data}
    base = served.wb.loaded.model_id
    assert set(cards) == {base, "a1", "a1@v1"}
    assert cards[base].model_extra["max_model_len"] == served.wb.max_model_len
    assert cards[base].model_extra["parent"] is None
    for ref in ("a1", "a1@v1"):
        assert cards[ref].model_extra["parent"] == base
        assert cards[ref].model_extra["root"] == str(served.wb.served["a1"].path)


def test_stream_with_usage_and_version_named(served, client) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="a1", messages=ask(), max_tokens=8, temperature=0, stream=True,
        stream_options={"include_usage": True})
    assert raw.headers["x-workbench-adapter"] == "a1@v1"
    chunks = list(raw.parse())
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.model == "a1@v1" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish in (["stop"], ["length"])
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert 1 <= last.usage.completion_tokens <= 8 and last.usage.prompt_tokens > 0
    assert last.usage.prompt_tokens_details.cached_tokens >= 0
    # The same greedy request without streaming gives the same text and counts.
    full = client.chat.completions.create(model="a1@v1", messages=ask(), max_tokens=8, temperature=0)
    assert full.choices[0].message.content == text and full.model == "a1@v1"
    assert full.usage.completion_tokens == last.usage.completion_tokens


def test_sse_wire_format_ends_with_done(served) -> None:
    body = {"model": "base", "messages": ask(), "max_tokens": 4, "stream": True}
    with httpx.stream("POST", served.v1 + "/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln]
    assert all(ln.startswith("data: ") for ln in lines)
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][6:])["object"] == "chat.completion.chunk"


def test_repeated_system_prompt_reports_cached_tokens(served, client) -> None:
    system = {"role": "system", "content": "You are a helpful support agent for a store. " * 4}
    usage = [client.chat.completions.create(model="base", messages=[system, *ask()], max_tokens=2,
                                            temperature=0).usage for _ in range(2)]
    assert usage[0].prompt_tokens == usage[1].prompt_tokens
    assert usage[1].prompt_tokens_details.cached_tokens > 0


def test_text_completion_and_region_grounding(served, client) -> None:
    done = client.completions.create(model="base", prompt="Hello", max_tokens=3, temperature=0)
    assert done.object == "text_completion" and done.choices[0].finish_reason in ("stop", "length")
    grounded = client.chat.completions.create(model="base", messages=ask(), max_tokens=2,
                                              extra_body={"region": "EU"})
    plain = client.chat.completions.create(model="base", messages=ask(), max_tokens=2)
    assert grounded.usage.prompt_tokens > plain.usage.prompt_tokens + 20  # the policy is in the prompt


def test_text_completion_streams(served) -> None:
    body = {"model": "a1@v1", "prompt": "Hello", "max_tokens": 3, "temperature": 0, "stream": True}
    with httpx.stream("POST", served.v1 + "/completions", json=body, timeout=60) as r:
        lines = [ln for ln in r.iter_lines() if ln]
    chunks = [json.loads(ln[6:]) for ln in lines[:-1]]
    assert lines[-1] == "data: [DONE]" and r.headers["x-workbench-adapter"] == "a1@v1"
    assert all(c["object"] == "text_completion" and c["model"] == "a1@v1" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_unknown_model_gets_404_envelope_listing_known(served, client) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="a9", messages=ask(), max_tokens=2)
    error = err.value.body
    assert err.value.status_code == 404 and error["type"] == "not_found_error" and error["code"] == 404
    assert "a1@v1" in error["message"] and served.wb.loaded.model_id in error["message"]
    with pytest.raises(openai.NotFoundError):  # a registered but not served version
        client.chat.completions.create(model="a1@v7", messages=ask(), max_tokens=2)


BAD_INPUTS = [
    ("malformed JSON", b'{"model": "base", "messages": [', 400, "not valid JSON"),
    ("wrong types", {"model": "base", "messages": "hello"}, 400, "messages"),
    ("empty messages", {"model": "base", "messages": []}, 400, "messages"),
    ("bad role", {"model": "base", "messages": [{"role": "wizard", "content": "hi"}]}, 400, "role"),
    ("max_tokens 0", {"model": "base", "messages": ask(), "max_tokens": 0}, 400, "max_tokens"),
    ("max_tokens too big", {"model": "base", "messages": ask(), "max_tokens": 10**6}, 400, "max_tokens"),
    ("only blank user text", {"model": "base", "messages": [{"role": "user", "content": "  "}]}, 400,
     "non-empty user message"),
    ("n > 1", {"model": "base", "messages": ask(), "n": 2}, 400, "n"),
    ("unknown region", {"model": "base", "messages": ask(), "region": "XX"}, 400, "region"),
    ("unknown model", {"model": "nope", "messages": ask()}, 404, "Known"),
    ("1 MB message", {"model": "base", "messages": ask("x" * 1_000_000)}, 413, "at most"),
    ("over the context window", {"model": "base", "messages": ask("order " * 3000), "max_tokens": 8},
     400, "maximum context length"),
]


@pytest.mark.parametrize("case, body, status, words", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_statuses(served, case, body, status, words) -> None:
    kwargs = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) \
        else {"json": body}
    r = httpx.post(served.v1 + "/chat/completions", timeout=60, **kwargs)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == status
    assert words in error["message"] or words == error["param"], error
    assert "Traceback" not in r.text
    # The server keeps serving.
    ok = httpx.post(served.v1 + "/chat/completions", timeout=60,
                    json={"model": "base", "messages": ask(), "max_tokens": 2})
    assert ok.status_code == 200


def _logged(caplog, words: str, timeout: float = 5.0) -> list[logging.LogRecord]:
    """Records of the API logger that mention ``words`` (the server thread may log just after
    the client has its response)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in caplog.records if r.name == "workbench.api" and words in r.getMessage()]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_refusal_logs_one_line_and_a_fault_its_traceback(served, caplog, monkeypatch) -> None:
    caplog.set_level(logging.INFO, logger="workbench.api")
    r = httpx.post(served.v1 + "/chat/completions", timeout=60,
                   json={"model": "no-such-model", "messages": ask()})
    assert r.status_code == 404
    refused = _logged(caplog, "no-such-model")
    assert len(refused) == 1 and refused[0].levelno == logging.WARNING
    assert refused[0].exc_info is None and "\n" not in refused[0].getMessage()
    assert refused[0].getMessage().startswith("refused POST /v1/chat/completions: 404 ")
    assert "Traceback" not in caplog.text
    # An unexpected exception is a fault: the client gets a plain 500, the log its traceback.
    caplog.clear()

    def broken(*args, **kwargs):
        raise RuntimeError("resolver exploded")

    monkeypatch.setattr(served.wb, "resolve_model", broken)
    r = httpx.post(served.v1 + "/chat/completions", timeout=60,
                   json={"model": "base", "messages": ask()})
    assert r.status_code == 500 and "Traceback" not in r.text and "exploded" not in r.text
    fault = _logged(caplog, "resolver exploded")
    assert len(fault) == 1 and fault[0].levelno == logging.ERROR and fault[0].exc_info
    assert "Traceback" in caplog.text and "RuntimeError: resolver exploded" in caplog.text


def test_truncate_drops_old_turns_of_a_long_conversation(served) -> None:
    long = [{"role": "user", "content": "order " * 3000}, {"role": "assistant", "content": "Sure."}, *ask()]
    body = {"model": "base", "messages": long, "max_tokens": 2}
    refused = httpx.post(served.v1 + "/chat/completions", json=body, timeout=60)
    assert refused.status_code == 400 and "maximum context length" in refused.json()["error"]["message"]
    ok = httpx.post(served.v1 + "/chat/completions", json={**body, "truncate": True}, timeout=60)
    assert ok.status_code == 200 and ok.json()["usage"]["prompt_tokens"] < 2048


def test_api_key_guards_inference(tmp_home, tiny_loaded, make_adapter) -> None:
    with serve_tiny(tiny_loaded, make_adapter, api_key=KEY) as s:
        body = {"model": "base", "messages": ask(), "max_tokens": 2}
        assert httpx.post(s.v1 + "/chat/completions", json=body).status_code == 401
        wrong = httpx.post(s.v1 + "/chat/completions", json=body, headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
        # Credentials are checked before the body is looked at.
        assert httpx.post(s.v1 + "/chat/completions", content=b"{oops").status_code == 401
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=s.v1, api_key="wrong", max_retries=0).models.list()
        good = openai.OpenAI(base_url=s.v1, api_key=KEY, max_retries=0)
        assert good.chat.completions.create(model="base", messages=ask(), max_tokens=2).choices
        assert httpx.get(s.url + "/metrics").status_code == 200  # scrapes need no key, as with vLLM


def test_metrics_families_with_adapter_labels(served, client) -> None:
    before = served.wb.telemetry.window(300).requests
    client.chat.completions.create(model="a1", messages=ask(), max_tokens=4, temperature=0)
    client.chat.completions.create(model="base", messages=ask(), max_tokens=4, temperature=0)
    deadline = time.monotonic() + 10  # the engine's listener runs just after a request ends
    while served.wb.telemetry.window(300).requests < before + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    text = httpx.get(served.url + "/metrics").text
    model = served.wb.loaded.model_id
    for family in ("vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_count",
                   "vllm:e2e_request_latency_seconds_sum", "vllm:request_queue_time_seconds_count",
                   "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
                   "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
                   "vllm:num_requests_running", "vllm:num_requests_waiting",
                   "process_resident_memory_bytes", "workbench:resident_memory_bytes"):
        assert family in text, family
    assert any(f'vllm:request_success_total{{adapter="a1",adapter_version="v1",finished_reason="{why}",'
               f'model_name="{model}"}}' in text for why in ("stop", "length"))
    assert f'vllm:generation_tokens_total{{adapter="a1",adapter_version="v1",model_name="{model}"}}' in text
    assert f'vllm:generation_tokens_total{{adapter="base",adapter_version="",model_name="{model}"}}' in text
    assert f'workbench:adapter_loaded{{adapter="a1",adapter_version="v1",model_name="{model}"}} 1.0' in text
    stats = served.wb.telemetry.window(300)
    assert stats.requests == before + 2 and stats.ttft_p50_s is not None


@pytest.mark.parametrize("host, key, token, ok", [
    ("127.0.0.1", None, None, True), ("localhost", None, None, True), ("::1", None, None, True),
    ("0.0.0.0", None, None, False), ("0.0.0.0", KEY, None, False), ("0.0.0.0", None, ADMIN, False),
    ("10.1.2.3", KEY, ADMIN, True)])
def test_bind_rule(host, key, token, ok) -> None:
    settings = APISettings(api_key=key)
    if ok:
        check_bind(host, settings, token)
    else:
        with pytest.raises(WorkbenchError, match="Refusing to listen"):
            check_bind(host, settings, token)
