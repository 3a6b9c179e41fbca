"""Choose SpRAy's input on validation cue cohorts, never on the held-out ones.

For each cue, the shortcut model and the clean model (``benchmarks/shortcut.py``'s recipe)
review a validation cohort of another seed (``fuselens synth --n 200 --seed 4 --cue
<cue>:0.9``, in ``DATA/val_<cue>``) with each map method; each of SpRAy's candidate inputs
(``fuselens.explain.spray.REPRESENTATIONS``) then clusters the cue modality's maps, and for
each we print the number of clusters, the cue cluster's share of the cue cases and its
purity, and the share of cue cases in clusters at least 90% cue cases ("in pure"). A good
input puts the shortcut model's cue cases in one pure cluster and leaves the clean model
without one.

    python benchmarks/spray_validation.py --data /work/data/shortcut --cues ecg \
        --work /work/data/shortcut_val --out benchmarks/results/spray_validation.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from shortcut import PURE, cue_truth, review

from fuselens.app.review.patterns import modality_maps, run_features
from fuselens.app.storage.db import open_database
from fuselens.explain.spray import NEIGHBOURS, REPRESENTATIONS, spray

MODELS = ("shortcut_model", "clean_model")


def cue_clusters(labels: np.ndarray, planted: np.ndarray) -> dict:
    """The cue cluster's share of the cue cases and purity, and the share in pure clusters."""
    k = int(labels.max()) + 1
    cue = np.bincount(labels[planted], minlength=k)
    size = np.bincount(labels, minlength=k)
    best = int(np.argmax(cue))
    pure = (cue / np.maximum(size, 1)) >= PURE
    n = max(int(planted.sum()), 1)
    return {
        "k": k,
        "sizes": size.tolist(),
        "cue_per_cluster": cue.tolist(),
        "share": round(float(cue[best] / n), 3),
        "purity": round(float(cue[best] / size[best]), 3),
        "in_pure": round(float(cue[pure].sum() / n), 3),
    }


def analyse(url: str, run_id: int, cohort: Path, cue: str, neighbours: int) -> dict:
    engine, sessions = open_database(url)
    try:
        _, _, features = run_features(sessions, run_id)
    finally:
        engine.dispose()
    cases, maps = modality_maps(features, cue)
    truth = cue_truth(cohort, cue)
    planted = np.array([truth[c] for c in cases])
    out = {"cases": len(cases), "cue_cases": int(planted.sum())}
    for name in REPRESENTATIONS:
        if name.startswith("time_profile") and cue != "ecg":
            continue
        labels = spray(maps, neighbours=neighbours, representation=name).labels
        out[name] = cue_clusters(labels, planted)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/work/data/shortcut")
    ap.add_argument("--cues", default="ecg")
    ap.add_argument("--methods", default="gradcam_pp,integrated_gradients")
    ap.add_argument("--neighbours", type=int, default=NEIGHBOURS)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", required=True, help="the runs' databases and bundles")
    ap.add_argument("--out", default="benchmarks/results/spray_validation.json")
    args = ap.parse_args()
    data, work = Path(args.data), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {"neighbours": args.neighbours, "pure": PURE, "cues": {}}
    for cue in args.cues.split(","):
        cohort = data / f"val_{cue}"
        for label in MODELS:
            model = data / ("model_clean" if label == "clean_model" else f"model_{cue}") / "model"
            for method in args.methods.split(","):
                name = f"val-{cue}-{label}-{method}"
                info, run_id = review(cohort, model, work, name, args.workers, method)
                result = {**analyse(info["url"], run_id, cohort, cue, args.neighbours), **info}
                out["cues"].setdefault(cue, {}).setdefault(label, {})[method] = result
                print(name, json.dumps(result), flush=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
