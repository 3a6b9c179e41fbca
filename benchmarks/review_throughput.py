"""``fuselens review`` with explanations: cases per hour at 1 and 2 Ray workers, peak memory
per worker, and a rerun served from the bundle store.

    python benchmarks/review_throughput.py --cohort /work/data/heldout_seed2 \
        --one-worker-cases 250 --out benchmarks/results/review_throughput.json

Each run starts its own local Ray cluster and fresh database; "steady" rates count from the
first stored case to the last (Ray start and model loading excluded), "wall" rates include
them. Run it on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from fuselens.app.review.runner import Explained, review_cohort
from fuselens.explain.bundle_store import BundleStore


def one_run(cohort: str, workers: int, store: Path, db: Path, name: str, limit: int | None) -> dict:
    stamps: list[float] = []
    t0 = time.perf_counter()
    summary = review_cohort(
        cohort,
        "demo",
        f"sqlite:///{db}",
        name,
        limit=limit,
        progress=False,
        explained=Explained(
            store, workers=workers, on_output=lambda _: stamps.append(time.perf_counter())
        ),
    )
    wall = time.perf_counter() - t0
    n = len(stamps)  # cases this invocation handled (explained, found in the store or failed)
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) * 3600 if len(stamps) > 1 else 0.0
    entries = [p for p in store.glob("*/*") if not p.name.startswith(".")]
    size = BundleStore(store).size_bytes(p.name for p in entries)
    return {
        "workers": workers,
        "cases": n,
        "failed": len(summary.failed),
        "bundles_written": summary.bundles_written,
        "served_from_store": summary.cached,
        "wall_s": round(wall, 1),
        "cases_per_hour_wall": round(n / wall * 3600),
        "cases_per_hour_steady": round(steady),
        "first_case_after_s": round(stamps[0] - t0, 1) if stamps else None,
        "peak_rss_mb_per_worker": [round(w["peak_rss_mb"]) for w in summary.workers],
        "store_entries": len(entries),
        "store_mb_per_case": round(size / max(len(entries), 1) / 2**20, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort", required=True)
    ap.add_argument("--one-worker-cases", type=int, default=250)
    ap.add_argument("--out", default="benchmarks/results/review_throughput.json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fuselens-throughput-"))
    try:
        two = one_run(args.cohort, 2, work / "store2", work / "two.db", "two", None)
        print("2 workers:", two, flush=True)
        rerun = one_run(args.cohort, 2, work / "store2", work / "two.db", "rerun", None)
        print("rerun:", rerun, flush=True)
        one = one_run(
            args.cohort, 1, work / "store1", work / "one.db", "one", args.one_worker_cases
        )
        print("1 worker:", one, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "cohort": str(Path(args.cohort).resolve()),
        "two_workers": two,
        "rerun_from_store": rerun,
        "one_worker": one,
        "speedup_2_vs_1_steady": round(
            two["cases_per_hour_steady"] / one["cases_per_hour_steady"], 2
        ),
        "speedup_2_vs_1_wall": round(two["cases_per_hour_wall"] / one["cases_per_hour_wall"], 2),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
