"""Full-page screenshots of every tab, for looking at a change the way a user sees it.

    python -m workbench.devtools.ui_shots --url http://127.0.0.1:7860 --out shots/
    python -m workbench.devtools.ui_shots --out shots/            # starts a tiny in-process app itself

Each tab is shot empty, during work, after work and after a refused input, at a desktop's
1400x1000 and a phone's 390x844, with the customer language set to English and to Arabic
(right-to-left). File names say which: ``chat-en-1400-after.png``. The browser tests
(``-m browser``) assert the parts of these pictures a user relies on; this script is for eyes.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

VIEWPORTS = {"1400": (1400, 1000), "390": (390, 844)}
LANGS = {"en": "English", "ar": "العربية (Arabic)"}
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
QUESTION = {"en": "Can I return shoes after 20 days?", "ar": "هل يمكنني إرجاع الحذاء بعد 20 يومًا؟"}


def pick_language(page, lang: str) -> None:
    page.locator("#chat-lang input").click()
    page.get_by_role("option", name=LANGS[lang]).click()
    page.wait_for_timeout(300)


def open_tab(page, title: str) -> None:
    page.get_by_role("tab").first.wait_for()  # the page has rendered its tab bar
    tabs = page.get_by_role("tab", name=title, exact=True)
    shown = [tabs.nth(i) for i in range(tabs.count()) if tabs.nth(i).is_visible()]
    if shown:
        shown[0].click()
    else:  # a phone's width moves the last tabs into Gradio's "More tabs" menu
        page.get_by_role("button", name="More tabs").click()
        page.locator(".overflow-dropdown button", has_text=title).click()
    page.wait_for_timeout(500)


def start_eval(page, suite: str, variants: list[str], limit: int) -> None:
    """On the Evaluate tab, tick ``suite`` and ``variants``, set the item limit, press Run."""
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#eval-suites").get_by_label(suite, exact=False).check()
    for variant in variants:
        page.locator("#eval-variants").get_by_label(variant, exact=True).check()
    box = page.locator("#eval-limit input").first
    box.fill(str(limit))
    box.press("Tab")
    page.locator("#eval-run").click()


def chat_states(page, lang: str, shot: Callable[[str], None]) -> None:
    open_tab(page, "Chat")
    pick_language(page, lang)
    shot("empty")
    page.locator("#chat-send").click()  # empty box: refused with a toast
    page.wait_for_timeout(800)
    shot("refused")
    page.locator("#chat-input textarea").fill(QUESTION[lang])
    page.locator("#chat-send").click()
    page.locator("#chat-right .message.bot").first.wait_for(timeout=120_000)
    shot("during")
    page.wait_for_function(
        "() => (document.getElementById('chat-right-stats')?.innerText || '').includes('tok/s')",
        timeout=300_000)
    shot("after")


def evaluate_states(page, shot: Callable[[str], None]) -> None:
    open_tab(page, "Evaluate")
    shot("empty")
    page.locator("#eval-run").click()  # no suite picked: refused
    page.wait_for_timeout(800)
    shot("refused")
    page.locator("#eval-suites label").first.click()
    page.locator("#eval-limit input").first.fill("2")
    page.locator("#eval-run").click()
    page.wait_for_timeout(3000)
    shot("during")
    page.wait_for_function(
        "() => (document.getElementById('eval-status')?.innerText || '').includes('Run ')",
        timeout=600_000)
    page.wait_for_timeout(1000)
    shot("after")


def adapters_states(page, shot: Callable[[str], None]) -> None:
    open_tab(page, "Adapters")
    shot("empty")
    with contextlib.suppress(Exception):
        page.locator("#adapters-load").click(timeout=2000)  # locked or no ref: refused
        page.wait_for_timeout(800)
    shot("refused")


def monitor_states(page, shot: Callable[[str], None]) -> None:
    open_tab(page, "Monitor")
    page.wait_for_timeout(4000)
    shot("after")


def take_all(url: str, out: Path, langs: list[str], viewports: list[str]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for vp in viewports:
            for lang in langs:
                page = browser.new_page(viewport=dict(zip(("width", "height"), VIEWPORTS[vp])))
                page.set_default_timeout(60_000)
                page.goto(url)

                def shot(tab: str) -> Callable[[str], None]:
                    def take(state: str) -> None:
                        path = out / f"{tab}-{lang}-{vp}-{state}.png"
                        page.screenshot(path=str(path), full_page=True)
                        written.append(path)
                    return take

                chat_states(page, lang, shot("chat"))
                if lang == langs[0]:  # the other tabs do not depend on the customer language
                    evaluate_states(page, shot("evaluate"))
                    adapters_states(page, shot("adapters"))
                    monitor_states(page, shot("monitor"))
                page.close()
        browser.close()
    return written


@contextlib.contextmanager
def tiny_app() -> Iterator[str]:
    """A tiny random GLM workbench served on a free port (no network, no cached model)."""
    import tempfile

    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb-shots-"))
    from workbench.service.workbench import Workbench
    from workbench.ui.app import build_demo, launch_kwargs

    wb = Workbench.start("tiny-glm")
    demo = build_demo(wb)
    demo.queue(default_concurrency_limit=16)
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True,
                            **launch_kwargs())
    try:
        yield url.rstrip("/")
    finally:
        demo.close()
        wb.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running app (default: start a tiny one in-process)")
    ap.add_argument("--out", type=Path, default=Path("shots"))
    ap.add_argument("--langs", default="en,ar")
    ap.add_argument("--viewports", default="1400,390")
    args = ap.parse_args(argv)
    langs, vps = args.langs.split(","), args.viewports.split(",")
    with (contextlib.nullcontext(args.url) if args.url else tiny_app()) as url:
        for path in take_all(url, args.out, langs, vps):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
