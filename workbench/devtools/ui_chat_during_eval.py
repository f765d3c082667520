"""Chat under load, as a user sees it: starts the app on the embedded default with two
adapters, then in headless Chromium (1) two pages ask at once, (2) a Spanish chat turn is sent
while an Evaluate run (multilingual-support, base and cs-support@v2, 40 items) is going.
Prints the seconds to each pane's first text and to both panes' end, the panes' stats lines,
and the app's peak resident memory (VmHWM). Not a test (it takes minutes on the real model):

    python -m workbench.devtools.ui_chat_during_eval [--port 7871] [--shots DIR]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from workbench.devtools.ui_shots import start_eval
from workbench.config import REPO_ROOT

ROOT = REPO_ROOT
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def has_text(pane: str) -> str:
    return (f"() => {{const m = document.querySelectorAll('#chat-{pane} .message.bot');"
            " return m.length > 0 && m[m.length - 1].innerText.trim().length > 0}")


DONE = ("() => ['chat-left-stats', 'chat-right-stats'].every("
        "id => (document.getElementById(id)?.innerText || '').includes('tok/s'))")


def start_app(port: int) -> subprocess.Popen:
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--adapters",
                            "cs-support@v2,demo-random@v1"], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=2)
            return app
        except OSError:
            if app.poll() is not None:
                sys.exit("the app did not start")
            time.sleep(1)


def ask(page, text: str, lang: str | None = None) -> None:
    if lang:
        page.locator("#chat-lang input").click()
        page.get_by_role("option", name=lang).click()
        page.wait_for_timeout(300)
    page.locator("#chat-input textarea").fill(text)


def stats(page) -> list[str]:
    return [page.locator(f"#chat-{p}-stats").inner_text() for p in ("left", "right")]


def timed_turn(page) -> dict:
    start = time.monotonic()
    page.locator("#chat-send").click()
    out = {}
    for pane in ("left", "right"):
        page.wait_for_function(has_text(pane), timeout=600_000, polling=50)
        out[f"first_{pane}_s"] = round(time.monotonic() - start, 2)
    page.wait_for_function(DONE, timeout=900_000, polling=100)
    return {**out, "both_done_s": round(time.monotonic() - start, 2), "stats": stats(page)}


def two_pages(p1, p2) -> dict:
    ask(p1, "Where is my order? It has not arrived after ten days.")
    ask(p2, "Can I return shoes after 20 days?")
    start = time.monotonic()
    p1.locator("#chat-send").click()
    p2.locator("#chat-send").click()
    first: dict[str, float] = {}
    while len(first) < 4 and time.monotonic() - start < 600:
        for name, page in (("page1", p1), ("page2", p2)):
            for pane in ("left", "right"):
                if f"{name}-{pane}" not in first and page.evaluate(has_text(pane)):
                    first[f"{name}-{pane}"] = round(time.monotonic() - start, 2)
        time.sleep(0.05)
    for page in (p1, p2):
        page.wait_for_function(DONE, timeout=900_000, polling=100)
    return {"first_text_s": first, "both_done_s": round(time.monotonic() - start, 2),
            "stats": stats(p1) + stats(p2)}


def main() -> int:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=7871)
    ap.add_argument("--shots", type=Path, default=None, help="folder for two screenshots")
    args = ap.parse_args()
    app = start_app(args.port)
    results: dict = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            p1, p2 = (browser.new_page(viewport={"width": 1400, "height": 1000}) for _ in range(2))
            for page in (p1, p2):
                page.goto(f"http://127.0.0.1:{args.port}", wait_until="load")
                page.locator("#chat-input textarea").wait_for(timeout=120_000)
            ask(p1, "Hello, where is my order?")
            results["warm-up turn"] = timed_turn(p1)  # system prompts cached, as in steady use
            p1.locator("#chat-clear").click()
            results["two pages at once"] = two_pages(p1, p2)
            start_eval(p2, "multilingual-support", ["base", "cs-support@v2"], 40)
            p2.wait_for_timeout(8000)  # the run is under way: its prompts are being prefilled
            p1.locator("#chat-clear").click()
            ask(p1, "¿Puedo devolver unos zapatos después de 20 días? No me quedan bien.", "Español (Spanish)")
            results["spanish turn during eval"] = timed_turn(p1)
            results["eval status after the turn"] = p2.locator("#eval-status").inner_text()[:200]
            if args.shots:
                args.shots.mkdir(parents=True, exist_ok=True)
                p1.screenshot(path=str(args.shots / "chat_during_eval.png"))
                p2.screenshot(path=str(args.shots / "eval_during_chat.png"))
            browser.close()
        status = Path(f"/proc/{app.pid}/status").read_text()
        results["app_peak_rss_mib"] = int(status.split("VmHWM:")[1].split()[0]) // 1024
    finally:
        app.terminate()
        app.wait(30)
    print(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
