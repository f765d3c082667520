"""Check an A/B route end to end: the 90/10 split, stickiness, and the guarded promote rule.

    python workbench/devtools/route_split.py [--users 2000] [--repeats 3] [--seed 0] [--json]

Part 1 sends ``--users`` first requests, each with a distinct ``user`` value, through a
90/10 route (``workbench.routing.routes.resolve_route``, the function the chat-completions endpoint
calls), then every user's later requests, half of them through a second store that re-reads
the routes file as another server process would. It reports the candidate's share with the
exact 99.9% binomial interval around the configured 10%, and whether every user stayed on
one arm. With ``--base-url`` the requests go over HTTP to a running server's
``/v1/chat/completions`` instead, and the arm is read from the ``x-workbench-route-arm``
header (the route must exist there: ``workbench routes create``).

Part 2 seeds rated chat turns (fixed seed) where the candidate resolves worse than the
incumbent, and then where it does not, and shows that promote is refused, then allowed.

Runs in a temporary WORKBENCH_HOME unless ``--home`` is given; exits 1 if a check fails.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROUTE, INCUMBENT, CANDIDATE = "cs-support", "cs-support@v2", "cs-support@v3"


def split_direct(users: int, repeats: int, seed: int) -> dict[str, list[str]]:
    from workbench.routing.routes import parse_arms
    from workbench.routing.store import RouteStore, resolve_route

    RouteStore().create(ROUTE, parse_arms(f"{INCUMBENT}=90,{CANDIDATE}=10"), seed=seed,
                        who="script:route_split")
    other = RouteStore()  # another process's view of the same routes file
    seen: dict[str, list[str]] = {f"user-{i:05d}": [] for i in range(users)}
    for r in range(repeats):
        for i, user in enumerate(seen):
            arm = resolve_route(ROUTE, user) if (r + i) % 2 == 0 else other.resolve(ROUTE, user)
            seen[user].append(arm)
    return seen


def split_http(base_url: str, api_key: str | None, users: int, repeats: int) -> dict[str, list[str]]:
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    seen: dict[str, list[str]] = {f"user-{i:05d}": [] for i in range(users)}
    with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=120) as client:
        for _ in range(repeats):
            for user in seen:
                resp = client.post("/chat/completions", json={
                    "model": ROUTE, "user": user, "max_tokens": 1,
                    "messages": [{"role": "user", "content": "Where is my order?"}]})
                resp.raise_for_status()
                seen[user].append(resp.headers["x-workbench-route-arm"])
    return seen


def summarize_split(seen: dict[str, list[str]], share: float = 0.10) -> dict:
    from scipy.stats import binom

    first = Counter(arms[0] for arms in seen.values())
    n, k = len(seen), first.get(CANDIDATE, 0)
    lo, hi = binom.ppf(0.0005, n, share), binom.ppf(0.9995, n, share)
    switched = [u for u, arms in seen.items() if len(set(arms)) != 1]
    return {"users": n, "requests": sum(len(a) for a in seen.values()), "arms": dict(first),
            "candidate_share": k / n, "expected_share": share,
            "candidate_99_9_interval": [int(lo), int(hi)], "within_bounds": bool(lo <= k <= hi),
            "users_that_switched_arm": len(switched), "sticky": not switched}


def seed_turns(arm: str, n: int, resolved_p: float, seed: int) -> None:
    """``n`` rated answers of ``arm`` through the route, written in one transaction."""
    import time
    import uuid

    from sqlalchemy import insert

    from workbench.store.chatlog import ChatLog
    from workbench.store.schema import chat_turns

    rng, now, rows = random.Random(seed), time.time(), []
    for i in range(n):
        ok = rng.random() < resolved_p
        rows.append({"turn_id": uuid.uuid4().hex, "conversation_id": "seeded", "created": now,
                     "lang": "en", "region": "EU", "grounded": 1, "pane": "route", "variant": arm,
                     "model": "seeded", "user_text": "q", "answer_text": "a", "route": ROUTE, "arm": arm,
                     "total_ms": 900.0 + 10 * (i % 50), "ttft_ms": 120.0 + (i % 30),
                     "rating": rng.randint(4, 5) if ok else rng.randint(1, 3), "resolved": int(ok)})
    with ChatLog().db.begin() as conn:
        conn.execute(insert(chat_turns), rows)


def promote_case(name: str, incumbent_p: float, candidate_p: float, n: int, seed: int) -> dict:
    """A fresh database and route per case, so the two cases never see each other's turns."""
    from workbench.routing.report import promote
    from workbench.routing.routes import PromoteRefused, parse_arms
    from workbench.routing.store import RouteStore

    with tempfile.TemporaryDirectory(prefix=f"route-{name}-") as home:
        os.environ["WORKBENCH_HOME"] = home
        store = RouteStore()
        store.create(ROUTE, parse_arms(f"{INCUMBENT}=90,{CANDIDATE}=10"), who="script:route_split")
        seed_turns(INCUMBENT, n, incumbent_p, seed)
        seed_turns(CANDIDATE, n, candidate_p, seed + 1)
        try:
            route = promote(store, ROUTE, who="script:route_split")
            return {"case": name, "allowed": True, "message": store.audit()[-1]["note"],
                    "weights_after": route.weights}
        except PromoteRefused as exc:
            return {"case": name, "allowed": False, "message": exc.message,
                    "weights_after": store.get(ROUTE).weights}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3, help="requests per user")
    ap.add_argument("--seed", type=int, default=0, help="the route's hash seed")
    ap.add_argument("--home", default=None, help="WORKBENCH_HOME to use [default: a temp folder]")
    ap.add_argument("--base-url", default=None, help="send over HTTP to this /v1 URL instead")
    ap.add_argument("--api-key", default=os.environ.get("WORKBENCH_API_KEY"))
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    saved_home = os.environ.get("WORKBENCH_HOME")
    with tempfile.TemporaryDirectory(prefix="route-split-") as tmp:
        os.environ["WORKBENCH_HOME"] = args.home or tmp
        Path(os.environ["WORKBENCH_HOME"]).mkdir(parents=True, exist_ok=True)
        if args.base_url:
            seen = split_http(args.base_url, args.api_key, args.users, args.repeats)
        else:
            seen = split_direct(args.users, args.repeats, args.seed)
        split = summarize_split(seen)
    split["mode"] = "http " + args.base_url if args.base_url else "direct (workbench.routing.routes.resolve_route)"
    # Sizes the sequential test can decide on (its interval is wider than one fixed look's).
    cases = [promote_case("candidate-worse", 0.60, 0.45, 1500, seed=11),
             promote_case("candidate-better", 0.60, 0.72, 1500, seed=11)]
    if saved_home is not None:
        os.environ["WORKBENCH_HOME"] = saved_home
    ok = (split["within_bounds"] and split["sticky"] and not cases[0]["allowed"]
          and cases[1]["allowed"])
    if args.json:
        print(json.dumps({"split": split, "promote": cases, "ok": ok}, ensure_ascii=False))
    else:
        print(f"Split ({split['mode']}): {split['users']} users, {split['requests']} requests; "
              f"first-request arms {split['arms']}; candidate share {split['candidate_share']:.2%} "
              f"(99.9% binomial interval for 10%: {split['candidate_99_9_interval'][0]}–"
              f"{split['candidate_99_9_interval'][1]} users) -> "
              f"{'within' if split['within_bounds'] else 'OUTSIDE'} bounds")
        print(f"Sticky: {split['users_that_switched_arm']} users changed arm across "
              f"{args.repeats} requests each -> {'ok' if split['sticky'] else 'FAILED'}")
        for c in cases:
            print(f"Promote, {c['case']}: {'allowed' if c['allowed'] else 'refused'}\n  {c['message']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
