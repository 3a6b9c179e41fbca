"""Where a case's time goes without a browser: the bench path against the server path.

    python benchmarks/server_path.py [--model demo] [--out benchmarks/results/server_path.json]

For every demo case (model warmed up first, as ``fuselens serve`` does):

- ``bench``: :func:`fuselens.explain.pipeline.explain_case` in the main thread, as
  ``fuselens bench`` runs it: seconds per stage and in all;
- ``server``: what the workstation's callbacks do for one click, in this process: open the
  case (which starts its explanation on the worker thread), then the explanation callback
  builds every stage's panels as it arrives. Seconds from the click to the prediction, to the
  lab lines, to every panel (word pieces not yet refined) and to the refined end, plus the
  stages' own seconds on the worker and the seconds spent building panels.

Together with ``benchmarks/browser_walk.py`` (the same server path with chromium on the page)
this splits the click-to-panel time into computing, panel building and the browser.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench_path(ws, loaded) -> dict:
    from fuselens.explain.pipeline import explain_case

    t0 = time.perf_counter()
    bundle = explain_case(ws.model.model, loaded.case, model_name=ws.model.name)
    stages = {k: round(v, 3) for k, v in bundle.timings.items() if ":" not in k}
    return {"total_s": round(time.perf_counter() - t0, 3), "stages": stages}


def _server_path(ws, ui, key: str, session: str) -> dict:
    from fuselens.app import image_views
    from fuselens.app.workstation import _explanation_updates, _opened

    task = next(iter(ws.model.model.tasks))
    target = list(ws.model.model.tasks[task])[-1]
    method = "gradcam_pp"
    t0 = time.perf_counter()
    cur = _opened(ws, ui, ws.open_demo(key), session, (task, target, method))[ui.current]
    settings = ws.settings([0.5] * image_views.ECHO_SLOTS, 0.5, method)
    marks: dict[str, float] = {}
    building = 0.0
    stream = _explanation_updates(ws, ui, cur, task, target, settings, session)
    while True:
        t = time.perf_counter()
        try:
            update = next(stream)
        except StopIteration:
            break
        building += time.perf_counter() - t  # includes waiting for the worker
        now = time.perf_counter() - t0
        if update.get(ui.panels["prediction"]):
            marks.setdefault("prediction_s", now)
        if ui.panels["lab_text"] in update:
            marks.setdefault("labs_line_s", now)
        stages = list(cur.bundle.stages) if cur.bundle is not None else []
        if "report" in stages or "shapley" in stages and cur.bundle.report is None:
            marks.setdefault("every_panel_s", now)
    marks["refined_s"] = time.perf_counter() - t0
    bundle = cur.bundle
    compute = sum(v for k, v in bundle.timings.items() if ":" not in k)
    return {
        **{k: round(v, 3) for k, v in marks.items()},
        "worker_compute_s": round(compute, 3),
        "panel_building_and_waiting_s": round(building, 3),
        "stages": {k: round(v, 3) for k, v in bundle.timings.items() if ":" not in k},
    }


def measure(model: str) -> dict:
    """Both paths on every demo case, one process, model warmed up."""
    import gradio as gr

    sys.path.insert(0, str(ROOT))
    from fuselens.app.demo_cases import load_catalogue
    from fuselens.app.session import Workstation, load_workstation_model
    from fuselens.app.workstation import declare_layout

    cases_dir = tempfile.mkdtemp(prefix="fuselens-bench-cases-")
    ws = Workstation(load_workstation_model(model, "cpu"), load_catalogue(), cases_dir)
    with gr.Blocks():
        ui = declare_layout(ws)
    try:
        warm = ws.warm_up()
        rows = []
        for i, key in enumerate(ws.catalogue):
            loaded = ws.open_demo(key)
            bench = _bench_path(ws, loaded)
            server = _server_path(ws, ui, key, f"bench-{i}")
            rows.append({"case": key, "bench": bench, "server": server})
    finally:
        ws.close()
    return {"model": model, "cpu_count": os.cpu_count(), "warm_up_s": round(warm, 2), "cases": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "server_path.json"))
    args = ap.parse_args()
    text = json.dumps(measure(args.model), indent=2) + "\n"
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
