"""The training recipe across seeds: validation figures, the held-out figures of each seed,
their mean and spread, and the checkpoint chosen on the validation split alone.

Each run folder holds what `fuselens train` wrote (`metrics.json`; its `model/card.json`
with the operating points `fuselens operating-points --split-seed 0 --write` chose on the
validation split) plus the held-out
`fuselens eval --json --out eval_heldout.json` and `fuselens bench-xai --json --out
bench_xai_heldout.json` of its checkpoint. The choice reads only `metrics.json` (the
validation split): the seed with the highest mean validation AUC over all four modalities
and each single one.

    python benchmarks/seed_recipe.py /work/data/seed0 /work/data/seed1 /work/data/seed2 \
        --out benchmarks/results/seed_recipe.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

FULL = ("labs", "ecg", "echo", "cxr")
SINGLES = [(m,) for m in FULL]
VAL_KEYS = ["+".join(FULL), *FULL]
FACTS = ("lab_values_equal_to_input", "heart_rate", "qrs_ms", "ef", "ctr")
XAI = {"ecg": "gradcam_pp", "echo": "gradcam_pp", "cxr": "gradcam_pp", "labs": "text_shap"}


def issue3_bars(subsets: list[dict]) -> dict[str, bool]:
    """The held-out AUC bars of issue 3: fusion >= 0.93, 0.03 over the best single modality,
    every single modality in [0.65, 0.92], every subset above 0.60."""
    auc = {tuple(r["modalities"]): r["auc"] for r in subsets}
    singles = [auc[s] for s in SINGLES]
    return {
        "all_four_at_least_0.93": auc[FULL] >= 0.93,
        "fusion_0.03_over_best_single": auc[FULL] - max(singles) >= 0.03,
        "singles_within_0.65_0.92": all(0.65 <= a <= 0.92 for a in singles),
        "every_subset_above_0.60": all(a > 0.60 for a in auc.values()),
    }


def xai_bars(bench: dict) -> dict[str, dict[str, Any]]:
    """Per modality: pointing game >= 0.85, deletion below random on the evidence cases
    >= 0.9, randomisation sanity (median Spearman) <= 0.2."""
    out = {}
    for m, method in XAI.items():
        r = bench["modalities"].get(m, {}).get(method)
        if r is None:
            continue
        row = {
            "method": method,
            "pointing_game": r["pointing_game"],
            "evidence_deletion_below_random": r["evidence_deletion_below_random_fraction"],
            "sanity_spearman": r["sanity_spearman_median"],
        }
        row["met"] = {
            "pointing": (r["pointing_game"] or 0) >= 0.85,
            "deletion": (r["evidence_deletion_below_random_fraction"] or 0) >= 0.9,
            "sanity": r["sanity_spearman_median"] is not None
            and r["sanity_spearman_median"] <= 0.2,
        }
        out[m] = row
    return out


def run_summary(run: Path) -> dict[str, Any]:
    metrics = json.loads((run / "metrics.json").read_text())
    last = metrics["history"][-1]
    out: dict[str, Any] = {
        "run": str(run),
        "seed": metrics["config"]["seed"],
        "train_s": metrics["train_s"],
        "val_auc": {k: last["val_auc"][k] for k in VAL_KEYS},
        "val_mean_auc": statistics.mean(last["val_auc"][k] for k in VAL_KEYS),
        "val_estimates": metrics.get("val_estimates", {}),
    }
    card = run / "model" / "card.json"
    if card.is_file():
        points = json.loads(card.read_text()).get("operating_points", {})
        out["val_operating_points"] = points
    ev = run / "eval_heldout.json"
    if ev.is_file():
        e = json.loads(ev.read_text())
        rep = e["report"]
        out["heldout"] = {
            "auc": {"+".join(r["modalities"]): r["auc"] for r in e["subsets"]},
            "issue3_bars": issue3_bars(e["subsets"]),
            "bleu4": rep["bleu4"],
            "rouge_l": rep["rouge_l"],
            "finding_f1": rep["finding_f1"],
            "finding_precision": rep["finding_precision"],
            "finding_recall": rep["finding_recall"],
            "per_finding_f1": rep["per_finding_f1"],
            "operating_points": rep.get("operating_points", {}),
            "factuality_shown": {k: rep["factuality"][k] for k in FACTS},
            "contradicting_shown": rep["factuality"]["reports_contradicting_the_model"],
            "factuality_decoded": {k: rep["factuality_decoded"][k] for k in FACTS},
            "contradicting_decoded": rep["factuality_decoded"]["reports_contradicting_the_model"],
            "estimates": e.get("estimates", {}),
        }
    bx = run / "bench_xai_heldout.json"
    if bx.is_file():
        out["heldout_xai"] = xai_bars(json.loads(bx.read_text()))
    return out


def spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.mean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def recipe(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread over the seeds of every held-out AUC and report figure."""
    done = [r for r in runs if "heldout" in r]
    if not done:
        return {}
    keys = list(done[0]["heldout"]["auc"])
    out = {"auc": {k: spread([r["heldout"]["auc"][k] for r in done]) for k in keys}}
    for k in ("bleu4", "rouge_l", "finding_f1"):
        out[k] = spread([r["heldout"][k] for r in done])
    return out


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    """The per-seed and recipe tables as Markdown (for the model card)."""
    runs = [r for r in result["runs"] if "heldout" in r]
    seeds = [str(r["seed"]) for r in runs]
    head = "| | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± sd |"
    rule = "| --- |" + " ---: |" * (len(seeds) + 1)
    out = ["Validation split (200 cases of the training cohort; the choice reads only this)", ""]
    out += [head, rule]
    for k in VAL_KEYS:
        vals = [r["val_auc"][k] for r in runs]
        sp = spread(vals)
        cells = " | ".join(_f(v) for v in vals)
        out.append(f"| val AUC {k} | {cells} | {sp['mean']:.3f} ± {sp['sd']:.3f} |")
    vals = [r["val_mean_auc"] for r in runs]
    out.append(f"| val mean of those | {' | '.join(_f(v, 4) for v in vals)} | |")
    out += ["", "Held-out cohort (synthetic seed 2, 1000 cases)", "", head, rule]
    rows: list[tuple[str, list[float | None]]] = []
    for k in runs[0]["heldout"]["auc"]:
        rows.append((f"AUC {k}", [r["heldout"]["auc"][k] for r in runs]))
    for k in ("bleu4", "rouge_l", "finding_f1"):
        rows.append((k, [r["heldout"][k] for r in runs]))
    for k in FACTS:
        rows.append(
            (
                f"shown reports: {k} within",
                [r["heldout"]["factuality_shown"][k]["within"] for r in runs],
            )
        )
    rows.append(
        (
            "shown reports contradicting the model",
            [r["heldout"]["contradicting_shown"] for r in runs],
        )
    )
    rows.append(
        (
            "decoded reports contradicting the model",
            [r["heldout"]["contradicting_decoded"] for r in runs],
        )
    )
    for name in ("ef", "ctr"):
        rows.append(
            (f"{name} estimate MAE", [r["heldout"]["estimates"][name]["mae"] for r in runs])
        )
        rows.append(
            (
                f"{name} estimate within tolerance",
                [r["heldout"]["estimates"][name]["within"] for r in runs],
            )
        )
    for m in XAI:
        for key, label in (
            ("pointing_game", "pointing game"),
            ("evidence_deletion_below_random", "deletion below random"),
            ("sanity_spearman", "sanity rho"),
        ):
            rows.append(
                (f"{m} {label}", [r.get("heldout_xai", {}).get(m, {}).get(key) for r in runs])
            )
    for label, vals in rows:
        known = [v for v in vals if v is not None]
        sp = spread(known) if known else None
        tail = f"{sp['mean']:.3f} ± {sp['sd']:.3f}" if sp else "–"
        out.append(f"| {label} | {' | '.join(_f(v) for v in vals)} | {tail} |")
    met = ["yes" if all(r["heldout"]["issue3_bars"].values()) else "no" for r in runs]
    out.append(f"| issue-3 AUC bars all met | {' | '.join(met)} | |")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = p.parse_args()
    runs = [run_summary(r) for r in args.runs]
    chosen = max(runs, key=lambda r: r["val_mean_auc"])
    result = {
        "runs": runs,
        "recipe": recipe(runs),
        "chosen_on_validation": {"seed": chosen["seed"], "val_mean_auc": chosen["val_mean_auc"]},
    }
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(markdown(result) if args.markdown else text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
