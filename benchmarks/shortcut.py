"""The shortcut benchmark: does the cohort view expose a model that learnt a spurious cue?

For each cue (cxr: a burnt-in "PORTABLE" tag; ecg: pacing spikes; echo: a marker outside
the sector; see ``fuselens synth --cue``), a model trained on a cohort where the cue follows
the label (without evidence supervision) and a model trained the same way on the same
cohort without cues review a held-out cohort with the cue at the same strength. The cue's
modality's maps of class "yes" (each of ``--methods``, one review each) go through spectral
relevance analysis (the Error review's cohort view), and for each model and method:

- ``cue_cluster_share``: the share of the cue cases in the cluster holding most of them
  (goal >= 0.9 for the shortcut model), and that cluster's purity (its share of cue cases);
- ``cue_mass`` against ``cue_area``: the share of the cluster's mean relevance inside the
  cue's region (the cue mask pooled on the common geometry) against the region's share of
  the area;

and per model the held-out AUC on the cue cohort and on the same-seed cohort without it.

    python benchmarks/shortcut.py --data /work/data/shortcut \
        --out benchmarks/results/shortcut.json

``DATA`` holds ``model_<cue>/model`` and ``model_clean/model`` (``fuselens train
--no-evidence-supervision --report-epochs 0`` on ``fuselens synth --n 1000 --seed 1 [--cue
<cue>:0.9]``), ``heldout_<cue>`` (``fuselens synth --n 300 --seed 3 --cue <cue>:0.9``) and
``heldout_clean`` (the same seed without cues). SpRAy's settings (the relative eigengap, 10
neighbours) were chosen on validation cue cohorts of another seed (``--seed 4 --n 200``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from fuselens.app.review import store
from fuselens.app.review.patterns import cohort_patterns, modality_maps, run_features
from fuselens.app.review.runner import Explained, review_cohort
from fuselens.app.review.workers import ExplainPlan
from fuselens.app.storage.db import open_database
from fuselens.explain.cohort_maps import cxr_grid, ecg_grid, echo_grid
from fuselens.explain.spray import spray
from fuselens.model_zoo.case import STANDARD_LEADS

CUES = ("cxr", "ecg", "echo")
PURE = 0.9  # a cluster at least this share of cue cases counts as a cue cluster


def cue_truth(cohort: Path, cue: str) -> dict[str, bool]:
    """case -> whether the cue was planted (truth.json ``cues``)."""
    out = {}
    for truth in sorted(cohort.glob("*/truth.json")):
        out[truth.parent.name] = bool(json.loads(truth.read_text())["cues"][cue])
    return out


def modality_findings(cohort: Path, modality: str) -> dict[str, list[str]]:
    """case -> the findings planted in ``modality`` (truth.json ``findings``)."""
    out = {}
    for truth in sorted(cohort.glob("*/truth.json")):
        out[truth.parent.name] = json.loads(truth.read_text())["findings"].get(modality, [])
    return out


def cue_only(
    labels: np.ndarray, cases: list[str], planted: dict[str, bool], findings: dict[str, list[str]]
) -> dict:
    """The cue cases with no finding planted in the cue's modality (the cue is all there is
    for the model to see there): how many, the share of them in the cluster holding most,
    and that cluster's purity (its share of cue cases)."""
    only = np.array([planted[c] and not findings[c] for c in cases])
    cue = np.array([planted[c] for c in cases])
    if not only.any():
        return {"cases": 0}
    best = int(np.bincount(labels[only]).argmax())
    members = labels == best
    return {
        "cases": int(only.sum()),
        "share": round(float((only & members).sum() / only.sum()), 3),
        "cluster_purity": round(float((cue & members).sum() / members.sum()), 3),
        "cluster_size": int(members.sum()),
    }


def k_sweep(maps: np.ndarray, cases: list[str], planted: dict, findings: dict) -> dict:
    """A diagnostic, not a tuned choice: the cue-only figures with k fixed at 2..6."""
    return {
        str(k): cue_only(spray(maps, k=k).labels, cases, planted, findings) for k in range(2, 7)
    }


def cue_region(cohort: Path, cue: str, case_id: str) -> np.ndarray:
    """The cue's mask of one case on the common geometry (the share of each cell covered)."""
    with np.load(cohort / case_id / "evidence.npz") as npz:
        if cue == "cxr":
            return cxr_grid(npz["cue_cxr"].astype(np.float32))
        if cue == "ecg":
            return ecg_grid(npz["cue_ecg"].astype(np.float32), list(STANDARD_LEADS))
        views = {k: npz[k].astype(np.float32) for k in npz.files if k.startswith("cue_echo_")}
        return echo_grid(views)


def review(
    cohort: Path, model: Path, work: Path, name: str, workers: int, method: str
) -> tuple[dict, int]:
    """Review ``cohort`` with ``method``'s maps (a stored run resumes: nothing left, nothing
    done); its database URL, seconds and run id."""
    url = f"sqlite:///{work / (name + '.db')}"
    explained = Explained(work / "bundles", plan=ExplainPlan((method,)), workers=workers)
    summary = review_cohort(cohort, model, url, name, progress=False, explained=explained)
    if summary.failed:
        raise SystemExit(f"{name}: {len(summary.failed)} cases failed: {summary.failed}")
    return {"url": url, "seconds": round(summary.seconds, 1)}, summary.run_id


def analyse(cohort: Path, cue: str, url: str, run_id: int) -> dict:
    """The cue cluster's share, purity and relevance mass on the cue region."""
    engine, sessions = open_database(url)
    try:
        patterns = cohort_patterns(sessions, run_id)
        cases, maps = modality_maps(run_features(sessions, run_id)[2], cue)
    finally:
        engine.dispose()
    planted = cue_truth(cohort, cue)
    findings = modality_findings(cohort, cue)
    p = patterns.modalities[cue]
    cue_cases = {c for c in p.cases if planted[c]}
    best = max(p.clusters, key=lambda c: len(cue_cases & set(c.cases)))
    region = np.mean([cue_region(cohort, cue, c) for c in sorted(cue_cases)], axis=0)
    area = float(region.mean())
    mass = float((best.mean_map * region).sum())
    all_mass = [
        float((c.mean_map * region).sum()) for c in p.clusters
    ]  # every cluster, for the clean model's "no such cluster"
    clusters = [
        {"cluster": c.index, "size": len(c.cases), "cue_cases": len(cue_cases & set(c.cases)),
         "purity": round(len(cue_cases & set(c.cases)) / len(c.cases), 3),
         "cue_mass": round(m, 4),
         "findings": dict(Counter(f for case in c.cases for f in findings[case] or ["none"]))}
        for c, m in zip(p.clusters, all_mass, strict=True)
    ]  # fmt: skip
    dominated = [c for c in clusters if c["purity"] >= PURE]
    return {
        "clusters": clusters,
        "cue_share_in_cue_clusters": round(
            sum(c["cue_cases"] for c in dominated) / max(len(cue_cases), 1), 3
        ),
        "cue_clusters": len(dominated),
        "clusters_k": p.clustering.k,
        "cluster_sizes": [len(c.cases) for c in p.clusters],
        "cue_cases": len(cue_cases),
        "cue_cluster": best.index,
        "cue_cluster_share": round(len(cue_cases & set(best.cases)) / max(len(cue_cases), 1), 3),
        "cue_cluster_purity": round(len(cue_cases & set(best.cases)) / len(best.cases), 3),
        "cue_mass": round(mass, 4),
        "cue_area": round(area, 4),
        "cue_mass_over_area": round(mass / area, 2) if area else None,
        "max_cluster_cue_mass": round(max(all_mass), 4),
        "cue_only": cue_only(p.clustering.labels, p.cases, planted, findings),
        "cue_only_k_sweep": k_sweep(maps, cases, planted, findings),
    }


def run_auc(url: str, run_id: int) -> float:
    """The held-out AUC of a stored run's probabilities against its truth."""
    engine, sessions = open_database(url)
    try:
        rows = store.run_rows(sessions, run_id)
    finally:
        engine.dispose()
    truth = np.array([r["truth"] for r in rows])
    return round(float(roc_auc_score(truth, [r["probability"] for r in rows])), 4)


def auc_of(cohort: Path, model: Path, work: Path, name: str) -> float:
    """Review ``cohort`` without explanations; its AUC."""
    url = f"sqlite:///{work / (name + '.db')}"
    return run_auc(url, review_cohort(cohort, model, url, name, progress=False).run_id)


def wait_for(*paths: Path, timeout_s: float = 3 * 3600) -> None:
    """Block until every path exists (models and cohorts still being made)."""
    deadline = time.monotonic() + timeout_s
    while not all(p.exists() for p in paths):
        if time.monotonic() > deadline:
            raise SystemExit(f"missing: {[str(p) for p in paths if not p.exists()]}")
        time.sleep(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/work/data/shortcut")
    ap.add_argument("--cues", default=",".join(CUES))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--methods", default="gradcam_pp,integrated_gradients", help="map methods, one run each"
    )
    ap.add_argument("--out", default="benchmarks/results/shortcut.json")
    ap.add_argument(
        "--work", help="keep the runs' databases and bundles here (default: a temp dir)"
    )
    args = ap.parse_args()
    data = Path(args.data)
    work = Path(args.work or tempfile.mkdtemp(prefix="fuselens-shortcut-"))
    work.mkdir(parents=True, exist_ok=True)
    methods = args.methods.split(",")
    out: dict = {"methods": methods, "class": "yes", "analysis": "SpRAy (relative eigengap)",
                 "pure": PURE, "cues": {}}  # fmt: skip
    cues = args.cues.split(",")
    # every shortcut model first, then the clean one: each run waits for its model and cohort
    runs = [(cue, "shortcut_model", data / f"model_{cue}" / "model") for cue in cues]
    runs += [(cue, "clean_model", data / "model_clean" / "model") for cue in cues]
    for cue, label, model in runs:
        cohort = data / f"heldout_{cue}"
        wait_for(
            model.parent / "metrics.json",
            cohort / "manifest.json",
            data / "heldout_clean" / "manifest.json",
        )
        result: dict = {
            "auc_without_cue": auc_of(data / "heldout_clean", model, work, f"{cue}-{label}-nocue")
        }
        for method in methods:
            name = f"{cue}-{label}-{method}"
            info, run_id = review(cohort, model, work, name, args.workers, method)
            result[method] = {
                **analyse(cohort, cue, info["url"], run_id), "review_s": info["seconds"],
                "db": info["url"],
            }  # fmt: skip
            print(cue, label, method, result[method], flush=True)
        result["auc"] = run_auc(info["url"], run_id)  # the model's, whichever method
        out["cues"].setdefault(cue, {})[label] = result
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
