"""``fuselens study create`` of a study of explanations: time and storage per case.

    python benchmarks/study_create.py [--n 20] [--seed 8] [--model demo]

Writes ``--n`` synthetic cases (``fuselens synth``, seed ``--seed``), then creates a study
with arms no AI / AI answer / AI answer + every explanation panel (Grad-CAM++ heat maps) in
a fresh data folder, twice: the first run explains every case, the second finds every
bundle in the store and only draws the panels again. Reports wall time per case of each run
(the model's load timed apart), and storage per case: the panel and media files, the mark
regions, the bundle store and the database. Prints JSON and writes
``benchmarks/results/study_create.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "study_create.json"
STUDY = """name: Benchmark study
seed: 3
model: {model}
arms: [no_ai, ai, ai_explained]
readers:
  - {{username: reader-one, password: reader-pass-1}}
owner: {{username: study-owner, password: owner-pass-1}}
"""


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def create(cases: Path, config: Path, data: Path, db: str) -> float:
    env = {**os.environ, "FUSELENS_DATA_DIR": str(data), "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "fuselens.app.cli", "study", "create", "--cases", str(cases),
         "--config", str(config), "--db", db, "--quiet"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return time.perf_counter() - t0


def model_load_s(model: str) -> float:
    """A fresh process that only loads the model: the fixed cost of every create."""
    code = f"from fuselens.model_zoo.loading import load_explainable; load_explainable({model!r})"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - t0 - bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--model", default="demo")
    args = parser.parse_args()
    from fuselens.model_zoo.synth.cohort import write_cohort

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_cohort(root / "cases", n=args.n, seed=args.seed, progress=False)
        config = root / "study.yaml"
        config.write_text(STUDY.format(model=args.model), encoding="utf-8")
        data, db = root / "data", f"sqlite:///{root / 'study.db'}"
        load = model_load_s(args.model)
        first = create(root / "cases", config, data, db)
        media = folder_mb(data / "study_media")
        regions = folder_mb(data / "study_regions")
        store = folder_mb(data / "bundles")
        database = (root / "study.db").stat().st_size / 1e6
        again = create(root / "cases", config, data, db)  # every bundle from the store
        n = args.n
        result = {
            "cases": n,
            "arms": ["no_ai", "ai", "ai_explained"],
            "model": args.model,
            "model_load_s": round(load, 2),
            "create_s": round(first, 1),
            "create_s_per_case": round((first - load) / n, 2),
            "create_again_from_store_s_per_case": round((again - load) / n, 2),
            "media_and_panels_mb_per_case": round(media / n, 3),
            "mark_regions_mb_per_case": round(regions / n, 4),
            "bundle_store_mb_per_case": round(store / n, 3),
            "database_mb": round(database, 3),
            "cpu_threads": os.cpu_count(),
        }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
