"""Choose text SHAP's default budget: fidelity to a high-budget reference against time.

    python benchmarks/text_shap_budget.py --cohort /work/data/cohort_seed2 [--model demo]
        [--cases 8] [--budgets 24 48 64 96 128 256] [--reference 1000] [--out FILE]

For each case with labs (heart-failure cases first), text SHAP runs at every budget and at
the reference budget; per budget it reports the median/min Spearman of the per-item values
and the median Spearman of the per-token values against the reference, and the median
seconds (prints JSON).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from fuselens.app.ingest import load_case
from fuselens.explain.bench_xai import select_cases
from fuselens.explain.context import CaseContext
from fuselens.explain.metrics import spearman
from fuselens.explain.pipeline import lab_items
from fuselens.explain.text_shap import item_values, text_shap
from fuselens.model_zoo.registry import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cohort", required=True)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--budgets", type=int, nargs="+", default=[24, 48, 64, 96, 128, 256])
    parser.add_argument("--reference", type=int, default=1000)
    parser.add_argument("--out")
    args = parser.parse_args()

    model, _ = load_model(args.model)
    rows: dict[int, dict[str, list[float]]] = {
        b: {"item": [], "token": [], "s": []} for b in args.budgets
    }
    used = []
    for folder in select_cases(args.cohort):
        if len(used) == args.cases:
            break
        case, _ = load_case(folder)
        if case.labs is None:
            continue
        used.append(case.case_id)
        ctx = CaseContext.build(model, case)
        n_items = len(lab_items(case))
        ref = text_shap(ctx, args.reference)
        ref_items = item_values(ref.tokens.lines, ref.values, n_items)
        for b in args.budgets:
            t0 = time.perf_counter()
            r = text_shap(ctx, b)
            rows[b]["s"].append(time.perf_counter() - t0)
            items = item_values(r.tokens.lines, r.values, n_items)
            rows[b]["item"].append(spearman(items, ref_items))
            rows[b]["token"].append(spearman(r.values, ref.values))
    result = {
        "cases": used,
        "reference_max_evals": args.reference,
        "device": str(model.device),
        "torch_threads": torch.get_num_threads(),
        "budgets": {
            str(b): {
                "item_spearman_median": statistics.median(v["item"]),
                "item_spearman_min": min(v["item"]),
                "token_spearman_median": statistics.median(v["token"]),
                "seconds_median": statistics.median(v["s"]),
            }
            for b, v in rows.items()
        },
    }
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
