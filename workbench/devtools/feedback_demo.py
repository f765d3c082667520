"""The feedback loop end to end, with the project's scorers standing in for customers.

1. Training questions (never eval items) from ``workbench/data/train/policy.jsonl`` and
   ``intents.jsonl`` are asked in the chat's form (the chat system prompt, grounded on the
   region's policy) of the starting adapter and of the base model.
2. Each answer is rated as a customer would: 5 when the verdict (or intent label) is right
   and the answer is in the customer's language, 4 right but another language, 2 wrong but
   in the right language, 1 otherwise; "resolved" when it is right. Turns go to the store.
3. ``export_feedback`` cleans them into KTO/DPO data; ``train_preference`` continues the
   starting version into the new one.
4. The old and the new version are evaluated on the same items (one run each, greedy) and
   compared with paired-bootstrap intervals per suite.

Use a scratch ``WORKBENCH_HOME`` (the seeded turns are synthetic) and a scratch adapters
folder (``WORKBENCH_ADAPTERS``) until the new version has been evaluated::

    python -m workbench.devtools.feedback_demo --from cs-support@v2 --out adapters/cs-support/v3 \\
        --questions 48 --steps 30 --eval-limit 24 --report loop.json
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from workbench.adapters.feedback import export_feedback
from workbench.adapters.train_pref import PrefConfig, train_preference
from workbench.store.chatlog import ChatTurn
from workbench.config import DATA_ROOT, engine_preset
from workbench.engine import BASE_ADAPTER, RequestSpec
from workbench.eval.schema import Expected, ScoreContext
from workbench.eval.scorers import intent_label, language_match, verdict
from workbench.domain.prompts import customer_prompt
from workbench.console.progress import Progress

TRAIN = DATA_ROOT / "train"
SUITES = ("multilingual-intents", "multilingual-support", "regional-policy")
DIFF_METRICS = {"multilingual-intents": ("accuracy", "acc", "macro_f1"),
                "multilingual-support": ("resolution_rate", "accuracy"),
                "regional-policy": ("resolution_rate", "accuracy", "format_compliance")}


def questions(n: int, seed: int) -> list[dict]:
    """``n`` training dialogs, two policy questions for every intent one, seeded."""
    rng = random.Random(seed)
    pools = {name: [json.loads(x) for x in (TRAIN / f"{name}.jsonl").read_text("utf-8").splitlines()]
             for name in ("policy", "intents")}
    n_policy = (2 * n) // 3
    return rng.sample(pools["policy"], n_policy) + rng.sample(pools["intents"], n - n_policy)


def chat_messages(row: dict) -> list[dict[str, str]]:
    user = next(m["content"] for m in row["messages"] if m["role"] == "user")
    grounded = row["task"] == "policy"
    return customer_prompt(user, lang=row["lang"], region=row.get("region"), grounded=grounded)


def _intent_labels() -> tuple[str, ...]:
    from workbench.eval.suite import load_suite

    return load_suite("multilingual-intents").labels  # the taxonomy only, not its items


def rate(row: dict, answer: str) -> tuple[int, bool]:
    """A 1-5 rating and the resolved flag from the project's scorers."""
    if row["task"] == "policy":
        ctx = ScoreContext(row["lang"], Expected(eligible=row["eligible"], days=row["days"]))
        right = bool(verdict(answer, ctx).passed)
    else:
        labels = _intent_labels()
        ctx = ScoreContext(row["lang"], Expected(intent=row["intent"]), labels)
        right = bool(intent_label(answer, ctx).passed)
    same_lang = language_match(answer, ScoreContext(row["lang"], Expected())).passed is not False
    return {(True, True): 5, (True, False): 4, (False, True): 2, (False, False): 1}[
        (right, same_lang)], right


def seed_store(wb, rows: list[dict], adapter: str, max_new_tokens: int = 128) -> dict:
    """Ask every question of ``adapter`` and the base; store the rated turns."""
    variants = [adapter, BASE_ADAPTER]
    specs = [RequestSpec(chat_messages(r), None if v == BASE_ADAPTER else v, max_new_tokens)
             for r in rows for v in variants]
    with Progress(len(specs), "answering training questions", unit="answer") as bar:
        done = wb.engine.generate_many(specs, on_done=lambda _i, _c: bar.update(1))
    stats = {v: {"answers": 0, "right": 0} for v in variants}
    for k, c in enumerate(done):
        row, v = rows[k // 2], variants[k % 2]
        user = specs[k].messages[-1]["content"]
        tid = wb.chatlog.record(ChatTurn(f"loop-{k // 2}", row["lang"], row.get("region") or "",
                                         row["task"] == "policy", "left" if k % 2 == 0 else "right",
                                         wb.variant_label(v), wb.loaded.name, user, c.text))
        rating, right = rate(row, c.text)
        wb.chatlog.rate(tid, rating=rating, resolved=right)
        stats[v]["answers"] += 1
        stats[v]["right"] += right
    return stats


def evaluate(model: str, ref: str, limit: int | None, suites: list[str]) -> str:
    from workbench.eval.runner import run_eval
    from workbench.service.workbench import Workbench

    wb = Workbench.start(model=model, adapters=[ref], engine_config=engine_preset("throughput"))
    try:
        return run_eval(wb, suites, [ref], limit=limit).run_id
    finally:
        wb.close()


def compare(run_a: str, run_b: str) -> dict:
    from workbench.eval.intervals import paired_difference
    from workbench.eval.store import EvalStore

    store = EvalStore()
    a, b = store.results_frame(run_a), store.results_frame(run_b)
    out = {}
    for suite in sorted(set(a["suite"])):
        metrics = DIFF_METRICS.get(suite, ("accuracy", "resolution_rate"))
        sa, sb = a[a["suite"] == suite], b[b["suite"] == suite]
        out[suite] = {}
        for m in metrics:
            d = paired_difference(sa, sb, m)
            out[suite][m] = {"old": d.a, "new": d.b, "diff": d.diff, "low": d.low, "high": d.high,
                             "n": d.n, "verdict": d.verdict}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--from", dest="start", default="cs-support@v2")
    p.add_argument("--out", type=Path, required=True, help="adapters/NAME/VERSION to write")
    p.add_argument("--questions", type=int, default=48)
    p.add_argument("--method", choices=("kto", "dpo"), default="kto")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--eval-limit", type=int, default=None, help="items per suite (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--suite", action="append", default=None, help="suite to compare on "
                   "(repeat; default: all three)")
    p.add_argument("--report", type=Path, default=None, help="write the loop's figures as JSON")
    args = p.parse_args(argv)
    from workbench.service.workbench import Workbench

    t0, report = time.monotonic(), {"args": {k: str(v) for k, v in vars(args).items()}}
    wb = Workbench.start(model=args.model, adapters=[args.start],
                         engine_config=engine_preset("throughput"))
    try:
        name = wb.registry.resolve(args.start).name
        report["seeded"] = seed_store(wb, questions(args.questions, args.seed), name)
    finally:
        wb.close()
    data = args.out.parent / f".feedback-{args.out.name}"
    report["export"] = export_feedback(data).as_json()
    res = train_preference(args.model, data, args.start, args.out,
                           PrefConfig(method=args.method, max_steps=args.steps, lr=args.lr,
                                      seed=args.seed))
    report["train"] = res.card["train"]
    new_ref = f"{args.out.parent.name}@{args.out.name}"
    suites = args.suite or list(SUITES)
    runs = {ref: evaluate(args.model, ref, args.eval_limit, suites) for ref in (args.start, new_ref)}
    report["runs"] = runs
    report["compare"] = compare(runs[args.start], runs[new_ref])
    report["seconds"] = round(time.monotonic() - t0, 1)
    text = json.dumps(report, indent=2, ensure_ascii=False, default=str)
    if args.report:
        args.report.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
