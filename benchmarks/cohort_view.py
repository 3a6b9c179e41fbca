"""Screenshots of the Error review's cohort view of a run, and the click-to-panels time of
opening one of its cases in the Case view (served from the bundle store).

    python benchmarks/cohort_view.py --db sqlite:///RUN.db --model DIR \
        --modality cxr --out test-artifacts/cohort-view-cxr.png

The workstation is started with ``--review-db`` (no login, loopback), chromium opens the
tab (its newest run), picks the modality, and saves a full-page screenshot; then the first case
of the largest cluster is opened in the Case view and the seconds from the click to each of
its panels are printed (JSON; ``--dwell S`` waits S seconds between picking a case in the
table and opening it, as a reader reading its summary does).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from browser_support import serve_workstation, workstation_page  # noqa: E402
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402

NAMES = {"ecg": "ECG", "echo": "Echo", "cxr": "Chest X-ray"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--modality", choices=sorted(NAMES), default="cxr")
    ap.add_argument("--out", required=True)
    ap.add_argument("--opens", type=int, default=3, help="cases opened one after another")
    ap.add_argument(
        "--dwell", type=float, default=0.0, help="seconds between picking a case and opening it"
    )
    args = ap.parse_args()
    cases = Path(args.out).resolve().parent / "cohort-view-cases"
    serve = ["--model", args.model, "--cases", str(cases), "--device", "cpu"]
    serve += ["--review-db", args.db]
    with (
        serve_workstation(serve, "cohort-view.log") as server,
        workstation_page(server["url"]) as pg,
    ):
        pg.get_by_role("tab", name="Error review").click()
        pg.wait_for_selector("#fl-review-cluster-maps .heatmaplayer", timeout=300_000)
        pg.locator("#fl-review-pattern-modality").get_by_label(NAMES[args.modality]).check()
        pg.wait_for_function(
            "document.querySelector('#fl-review-outcome-maps').innerText"
            f".includes('{NAMES[args.modality]}: mean')"
        )
        pg.wait_for_timeout(1000)
        pg.screenshot(path=args.out, full_page=True)
        times = [open_case(pg, row, args.dwell) for row in range(args.opens)]
        opened = str(Path(args.out).with_name(Path(args.out).stem + "-opened.png"))
        pg.screenshot(path=opened, full_page=True)
    print(json.dumps({"screenshot": args.out, "opened": opened, "opens": times}, indent=1))


# Marks, in ms after the click (the pointer going down on the Open button; Playwright's
# checks before it are not the reader's), of what the page shows: the opening response
# drawn (the identity line names the case), the Shapley bars, the ECG print's traces, the
# progress "done", and every echo loop able to play (a previous case's panels are replaced
# by the opening response, so each is looked for only after it).
PROBE = """(caseId) => {
  let t0 = null;
  const marks = {};
  document.getElementById('fl-review-open').addEventListener(
    'pointerdown', () => { t0 = performance.now(); }, {capture: true, once: true});
  const text = (id) => (document.querySelector(id) || {innerText: ''}).innerText;
  const loops = () => [...document.querySelectorAll('[id^=fl-echo-video] video')]
    .filter((v) => v.offsetParent !== null);
  const tick = () => {
    if (t0 === null) { requestAnimationFrame(tick); return; }
    const now = performance.now() - t0;
    if (!marks.opened && text('#fl-identity').includes('-' + caseId)) marks.opened = now;
    if (marks.opened && !marks.done && text('#fl-progress').includes('done')) marks.done = now;
    if (marks.opened && !marks.shapley && document.querySelector('#fl-shapley .barlayer .point'))
      marks.shapley = now;
    if (marks.opened && !marks.ecg
        && document.querySelectorAll('#fl-ecg .scatterlayer .trace').length >= 14) marks.ecg = now;
    const playable = loops();
    if (marks.done && !marks.loops && playable.length && playable.every((v) => v.readyState >= 2))
      marks.loops = now;
    if (!(marks.done && marks.shapley && marks.ecg && (marks.loops || now > 20000)))
      requestAnimationFrame(tick);
  };
  window.__marks = marks;
  requestAnimationFrame(tick);
}"""


def open_case(pg, row: int, dwell: float = 0.0) -> dict[str, float]:
    """Open the table's case ``row`` from the Error review, ``dwell`` seconds after picking
    it (a reader looks at its summary first); seconds from the click to each mark."""
    pg.get_by_role("tab", name="Error review").click()
    cell = pg.locator(f"#fl-review-table [data-testid='cell-{row}-0']")
    case_id = cell.inner_text().strip()
    cell.click()
    pg.wait_for_function("document.querySelector('#fl-review-case').innerText.includes('·')")
    pg.wait_for_timeout(dwell * 1000)
    pg.evaluate(PROBE, case_id)
    pg.click("#fl-review-open")
    pg.wait_for_function(
        "window.__marks.done && window.__marks.shapley && window.__marks.ecg", timeout=120_000
    )
    with contextlib.suppress(PlaywrightTimeout):  # a case without echo views has no loops
        pg.wait_for_function("window.__marks.loops", timeout=10_000)
    marks = pg.evaluate("window.__marks")
    every_panel = max(marks[k] for k in ("done", "shapley", "ecg")) / 1000
    return {"every_panel_s": round(every_panel, 2),
            **{f"{k}_s": round(v / 1000, 2) for k, v in marks.items()}}  # fmt: skip


if __name__ == "__main__":
    main()
