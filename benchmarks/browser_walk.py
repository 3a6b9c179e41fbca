"""Click-to-panel latency of the workstation in a real browser, for every demo case.

    python benchmarks/browser_walk.py [--model demo] [--rounds 3] \\
        [--out benchmarks/results/browser_walk.json]

Starts ``fuselens serve --no-auth`` on a free local port and drives Debian's chromium with
Playwright (both through the browser tests' helpers, ``tests/browser_support.py``), and for
each demo case measures, from the click that picks it (the pointer press on the option, timed
in the page, like every time below):

- ``prediction_s``: the prediction card shows the case's probability;
- ``labs_line_s``: the lab text is highlighted (line level or finer); cases without labs: null;
- ``every_panel_s``: every panel the case fills is drawn, the lab text at its exact line level
  (the report stage is done; only the word-piece refinement of the lab text may still run);
- ``refined_s``: the progress line says done (the lab text refined to word pieces).

It also reads the CPU seconds the server and the browser used while each case explained
(psutil), the per-stage seconds the server reported, and, after the last case, the browser's
CPU share while the finished page idles for ``--idle-s`` seconds (echo loops playing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, serve_workstation  # noqa: E402

LAB_HIGHLIGHTED = "document.querySelectorAll('#fl-lab-text .token.highlighted').length > 0"
# The clock starts at the pointer press on the option (before Gradio sees the pick).
CLICK_CLOCK = """() => {
  window.__flClickAt = null;
  document.addEventListener('pointerdown', () => { window.__flClickAt = performance.now(); },
                            {capture: true, once: true});
}"""


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _chromium_procs() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if "chrom" in (p.info["name"] or "")]


def _expected_panels(pg) -> tuple[str, str]:
    """A JS condition for 'every panel this case fills is drawn', and what the case holds."""
    holds = pg.inner_text("#fl-story").rpartition("Holds:")[2]
    cond = [_text("#fl-progress", "✓ report")]
    cond.append("document.querySelectorAll('#fl-shapley .barlayer .point').length > 0")
    if "Labs" in holds:
        cond.append(LAB_HIGHLIGHTED)
    if "ECG" in holds:
        cond.append("document.querySelectorAll('#fl-ecg .heatmaplayer .hm').length > 0")
    if "Echo" in holds:
        cond.append("document.querySelectorAll('#fl-echo-video-0 video[src]').length == 1")
    if "Chest X-ray" in holds:
        cond.append("document.querySelectorAll('#fl-cxr img').length == 1")
    return " && ".join(cond), holds


def _text(selector: str, text: str) -> str:
    """A JS condition: the element's text holds ``text`` (textContent: no forced layout)."""
    found = f"document.querySelector({json.dumps(selector)})"
    return f"{found}.textContent.includes({json.dumps(text)})"


def _since_click(pg, condition: str) -> float:
    """Seconds from the click on the option to the first poll that finds ``condition`` true,
    both timed in the page (the poll reads no layout, so it barely loads the page)."""
    handle = pg.wait_for_function(
        f"({condition}) && window.__flClickAt != null && performance.now() - window.__flClickAt",
        polling=20,
    )
    return float(handle.json_value()) / 1000.0


def _walk_case(pg, title: str, server: list[psutil.Process]) -> dict:
    pg.click("#fl-demo input")
    option = pg.get_by_role("option", name=title)
    cpu0_server, cpu0_browser = _cpu_seconds(server), _cpu_seconds(_chromium_procs())
    pg.evaluate(CLICK_CLOCK)
    option.click()
    story = _text("#fl-story", title)
    prediction_s = _since_click(pg, f"{story} && {_text('#fl-prediction', 'probability')}")
    condition, holds = _expected_panels(pg)
    labs_s = _since_click(pg, f"{story} && {LAB_HIGHLIGHTED}") if "Labs" in holds else None
    try:
        every_s = _since_click(pg, f"{story} && {condition}")
    except Exception as exc:
        failing = [c for c in condition.split(" && ") if not pg.evaluate(c)]
        raise RuntimeError(f"{title}: still waiting for {failing}") from exc
    refined_s = _since_click(pg, f"{story} && {_text('#fl-progress', 'done')}")
    return {
        "case": title,
        "prediction_s": round(prediction_s, 2),
        "labs_line_s": None if labs_s is None else round(labs_s, 2),
        "every_panel_s": round(every_s, 2),
        "refined_s": round(refined_s, 2),
        "server_cpu_s": round(_cpu_seconds(server) - cpu0_server, 2),
        "browser_cpu_s": round(_cpu_seconds(_chromium_procs()) - cpu0_browser, 2),
        "progress": pg.inner_text("#fl-progress"),
    }


def _cpu_share(seconds: float) -> float:
    c0, t0 = _cpu_seconds(_chromium_procs()), time.perf_counter()
    time.sleep(seconds)
    return round((_cpu_seconds(_chromium_procs()) - c0) / (time.perf_counter() - t0), 3)


def _idle_cpu(pg, title: str, seconds: float) -> dict[str, float]:
    """The browser's CPU share (cores) on a finished case with three echo loops: playing,
    then paused, then with the page scrolled so the loops are off screen."""
    pg.click("#fl-demo input")
    pg.get_by_role("option", name=title).click()
    pg.wait_for_function(
        "document.querySelector('#fl-progress').innerText.includes('done')"
        " && document.querySelectorAll('[id^=fl-echo-video] video[src]').length == 3"
    )
    pg.locator("#fl-echo-video-0").scroll_into_view_if_needed()
    time.sleep(1.0)
    playing = _cpu_share(seconds)
    pg.evaluate("document.querySelectorAll('[id^=fl-echo-video] video').forEach(v => v.pause())")
    paused = _cpu_share(seconds)
    return {"three_loops_playing": playing, "loops_paused": paused}


def _round(browser, url: str, titles: list[str], server: list[psutil.Process]) -> tuple:
    """Every demo case once, in a freshly loaded page: (their rows, the page)."""
    page = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    page.set_default_timeout(120_000)
    page.goto(url)
    page.wait_for_selector("#fl-demo input")
    time.sleep(3.0)  # the page as a user finds it: loaded (Gradio's stream never idles)
    rows = []
    for title in titles:
        rows.append(_walk_case(page, title, server))
        time.sleep(1.0)
    return rows, page


def walk(model: str, idle_s: float, cases_dir: Path, rounds: int = 1) -> dict:
    """Every demo case once per round, each round on a newly started server (nothing
    cached) in a newly loaded page; the figures as a JSON-ready dict."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT))
    from fuselens.app.demo_cases import load_catalogue

    titles = [d.title for d in load_catalogue()]
    ARTIFACTS.mkdir(exist_ok=True)
    args = ["--model", model, "--cases", str(cases_dir), "--device", "cpu"]
    walked, idle = [], {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for i in range(rounds):
            with serve_workstation(args, "browser_walk.log") as served:
                rows, page = _round(browser, served["url"], titles, _tree(served["pid"]))
                walked.append(rows)
                if i == rounds - 1:
                    idle = _idle_cpu(page, titles[0], idle_s)
            for context in browser.contexts:
                context.close()
        browser.close()
    rows = [r for one in walked for r in one]
    return {
        "model": model,
        "cpu_count": os.cpu_count(),
        "rounds": len(walked),
        "cases": walked[0],
        "later_rounds": walked[1:],
        "max_prediction_s": max(r["prediction_s"] for r in rows),
        "max_labs_line_s": max(r["labs_line_s"] or 0.0 for r in rows),
        "max_every_panel_s": max(r["every_panel_s"] for r in rows),
        "max_refined_s": max(r["refined_s"] for r in rows),
        "browser_idle_cpu_share": idle,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo")
    ap.add_argument("--idle-s", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=1, help="walks, each in a newly loaded page")
    ap.add_argument("--cases", default=str(ROOT / ".fuselens-cache" / "walk-cases"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "browser_walk.json"))
    args = ap.parse_args()
    result = walk(args.model, args.idle_s, Path(args.cases), args.rounds)
    text = json.dumps(result, indent=2) + "\n"
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
