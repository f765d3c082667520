"""The improvement loop on API traffic, end to end, against running ``workbench serve``s.

    python -m workbench.devtools.loop_demo --url http://127.0.0.1:8000 [--url http://127.0.0.1:8001]

1. Makes a 50/50 route between two variants (default ``cs-support@v2``, the incumbent, and
   ``demo-random@v1``) with an automatic guard (``min_feedback`` 10).
2. Sends ``--requests`` chat completions through it, each with its own ``user``.
3. Posts feedback for every answer: resolved and rating 5 for the incumbent's answers,
   escalated to a human and rating 1 for the candidate's. With two ``--url``, each feedback
   goes to the replica that did not serve the answer.
4. Prints the route report (every turn counted, with its outcomes) and the route's audit
   trail; exits 0 when the worse arm was rolled back by the guard, with no admin call.

Needs the admin token (``--admin-token`` or ``WORKBENCH_ADMIN_TOKEN``) to make the route and
read the report, and the inference key when the servers have one.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import httpx

ROUTE = "loop-demo"


def _client(url: str, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=url.rstrip("/") + "/v1", headers=headers, timeout=300)


def make_route(admin: httpx.Client, incumbent: str, candidate: str, min_feedback: int) -> None:
    admin.delete(f"/routes/{ROUTE}")  # a previous run's route, if any
    guard = {"auto": True, "metric": "resolution", "margin": 0.02, "alpha": 0.05,
             "min_feedback": min_feedback, "steps": [50, 100]}
    resp = admin.post("/routes", json={"name": ROUTE, "incumbent": incumbent, "guard": guard, "arms": [
        {"ref": incumbent, "weight": 50}, {"ref": candidate, "weight": 50}]})
    resp.raise_for_status()


def wait_for_route(admins: list[httpx.Client], timeout_s: float = 10.0) -> float:
    """Seconds until every replica serves the new route (they re-read routes every second)."""
    t0 = time.monotonic()
    while any(a.get(f"/routes/{ROUTE}").status_code != 200 for a in admins):
        if time.monotonic() - t0 > timeout_s:
            raise SystemExit(f"a replica did not see route {ROUTE} within {timeout_s:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - t0


def ask(client: httpx.Client, i: int, max_tokens: int) -> tuple[str, str]:
    resp = client.post("/chat/completions", json={
        "model": ROUTE, "user": f"demo-customer-{i}", "max_tokens": max_tokens, "temperature": 0,
        "lang": "en", "region": "EU",
        "messages": [{"role": "user", "content": "Can I return shoes I bought 20 days ago?"}]})
    resp.raise_for_status()
    return resp.json()["id"], resp.headers["x-workbench-route-arm"]


def give(client: httpx.Client, turn_id: str, good: bool) -> None:
    body = ({"id": turn_id, "resolved": True, "escalated": False, "rating": 5} if good else
            {"id": turn_id, "resolved": False, "escalated": True, "rating": 1})
    client.post("/feedback", json=body).raise_for_status()


def run(args: argparse.Namespace) -> dict:
    servers = [_client(u, args.api_key) for u in args.url]
    admins = [_client(u, args.admin_token) for u in args.url]
    make_route(admins[0], args.incumbent, args.candidate, args.min_feedback)
    seen_after = wait_for_route(admins)
    served: list[tuple[int, str, str]] = []
    for i in range(args.requests):
        k = i % len(servers)
        turn_id, arm = ask(servers[k], i, args.max_tokens)
        served.append((k, turn_id, arm))
    for k, turn_id, arm in served:
        give(servers[(k + 1) % len(servers)], turn_id, arm == args.incumbent)
    report = admins[-1].get(f"/routes/{ROUTE}/report").json()
    route = admins[-1].get(f"/routes/{ROUTE}").json()
    audit = admins[0].get(f"/routes/{ROUTE}/audit").json().get("data", [])
    arms = {ref: {key: s[key] for key in ("turns", "resolved_n", "resolution_rate", "escalated_n",
                                          "escalation_rate", "rating_mean")}
            for ref, s in report["arms"].items()}
    rolled_back = route["shares"].get(args.candidate) == 0.0 and any(
        e["action"] == "guard-rollback" and e["who"] == "guard" for e in audit)
    return {"replicas": len(servers), "route_seen_by_all_after_s": round(seen_after, 2),
            "requests": args.requests,
            "turns_counted": sum(a["turns"] for a in arms.values()), "arms": arms,
            "shares": route["shares"], "guard": report.get("guard", {}).get("status"),
            "audit": [{k: e.get(k) for k in ("time", "action", "who", "note")} for e in audit],
            "rolled_back_by_guard": rolled_back}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", action="append", required=True, help="a server (repeat for replicas)")
    ap.add_argument("--admin-token", default=os.environ.get("WORKBENCH_ADMIN_TOKEN"))
    ap.add_argument("--api-key", default=os.environ.get("WORKBENCH_API_KEY"))
    ap.add_argument("--incumbent", default="cs-support@v2")
    ap.add_argument("--candidate", default="demo-random@v1")
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--min-feedback", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=24)
    args = ap.parse_args(argv)
    if not args.admin_token:
        ap.error("the admin token is needed: --admin-token or WORKBENCH_ADMIN_TOKEN")
    out = run(args)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0 if out["rolled_back_by_guard"] and out["turns_counted"] == args.requests else 1


if __name__ == "__main__":
    sys.exit(main())
