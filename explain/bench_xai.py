"""Explanation quality on a synthetic cohort with planted evidence (``fuselens bench-xai``).

Every map explains ``heart_failure = yes``. Per modality, on heart-failure cases whose
planted evidence sits in that modality: pointing game, top-k hit (k = mask size) and mass in
mask against the evidence masks in the case's own geometry; deletion and insertion curves
(target log-odds, features removed most-important first) against random orders on the
model's input grid. On every case with the modality: the model-parameter randomisation test
(Spearman between the trained and a randomised model's maps, pooled to the feature grid).
Labs: ERASER comprehensiveness/sufficiency of the SHAP rationale, and item-level fidelity of
the default text-SHAP budget against a high-budget reference (on the first few labs cases).
Modality Shapley: the planted modality ranks first on cases with a single evidence modality;
efficiency error on every case.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from explain.context import CaseContext
from explain.geometry import cxr_to_native, ecg_to_native, echo_to_native
from explain.gradcam import CAM_MODALITIES, gradcam_plusplus
from explain.metrics import (
    attribution_order,
    curve_auc,
    eraser_scores,
    mass_in_mask,
    pointing_game,
    random_orders,
    spearman,
    step_masks,
    top_k_hit,
)
from explain.perturb import feature_grid, prob_fn, score_fn
from explain.pipeline import lab_items
from explain.randomise import randomised_model
from explain.shapley import modality_shapley
from explain.text_shap import DEFAULT_MAX_EVALS, item_values, text_shap
from model_zoo.case import ECHO_VIEWS, MODALITIES, STANDARD_LEADS, PatientCase
from model_zoo.model import FusionModel
from model_zoo.synth.truth import case_folders
from model_zoo.synth.vocab import LABEL

REFERENCE_MAX_EVALS = 1000
STEPS = 10
RANDOM_ORDERS = 2


def select_cases(cohort_dir: str | Path, limit: int | None = None) -> list[Path]:
    """Case folders in evaluation order: heart-failure cases with a single evidence modality
    first (the Shapley test needs them), then the rest, each in id order; ``limit`` cuts."""
    single, rest = [], []
    for f in case_folders(cohort_dir):
        meta = json.loads((f / "truth.json").read_text(encoding="utf-8"))
        one = meta["labels"].get(LABEL) == 1 and len(meta["evidence_modalities"]) == 1
        (single if one else rest).append(f)
    chosen = single + rest
    return chosen[:limit] if limit else chosen


def evidence_mask(case: PatientCase, modality: str) -> Any:
    """The planted evidence of ``modality`` in the case's own geometry, or ``None``."""
    truth = case.truth
    if truth is None or truth.labels.get(LABEL) != 1 or modality not in case.modalities():
        return None
    mask = truth.masks.get(modality)
    if modality == "labs":
        return list(mask) if mask else None
    if modality == "ecg":
        if mask is None:
            return None
        mask = np.stack([mask[STANDARD_LEADS.index(n)] for n in case.ecg.lead_names])
        return mask if mask.any() else None
    if modality == "echo":
        views = {v: m for v, m in (mask or {}).items() if v in case.echo and m.any()}
        return views or None
    return mask if mask is not None and mask.any() else None


def native_map(case: PatientCase, modality: str, cam: np.ndarray) -> Any:
    if modality == "ecg":
        return ecg_to_native(cam, case.ecg)
    if modality == "echo":
        return {
            v: echo_to_native(cam[i], case.echo[v])
            for i, v in enumerate(ECHO_VIEWS)
            if v in case.echo
        }
    return cxr_to_native(cam, case.cxr)


def localisation(modality: str, attribution: Any, mask: Any, items: list[str]) -> dict:
    """Pointing game, top-k hit and mass in mask; echo views are pooled into one volume."""
    if modality == "labs":
        a = np.asarray(attribution)
        m = np.array([name in mask for name in items])
    elif modality == "echo":
        views = sorted(mask)
        a = np.concatenate([attribution[v].ravel() for v in views])
        m = np.concatenate([mask[v].ravel() for v in views])
    else:
        a, m = attribution, mask
    return {
        "pointing_game": float(pointing_game(a, m)),
        "top_k_hit": top_k_hit(a, m),
        "mass_in_mask": mass_in_mask(a, m),
    }


def faithfulness(ctx: CaseContext, modality: str, values: np.ndarray, seed: int) -> dict:
    """Deletion/insertion AUCs of the attribution order and of random orders (one batch)."""
    grid = feature_grid(ctx, modality)
    pooled = grid.pool(values)
    orders = [attribution_order(pooled), *random_orders(grid.n, RANDOM_ORDERS, seed)]
    masks = [step_masks(o, STEPS, ins) for ins in (False, True) for o in orders]
    scores = score_fn(ctx, grid)(np.concatenate(masks)).reshape(len(masks), STEPS + 1)
    aucs = [curve_auc(s) for s in scores]
    k = len(orders)
    return {
        "deletion_auc": aucs[0],
        "random_deletion_auc": float(np.mean(aucs[1:k])),
        "insertion_auc": aucs[k],
        "random_insertion_auc": float(np.mean(aucs[k + 1 :])),
    }


def evaluate_case(
    model: FusionModel,
    random_model: FusionModel,
    case: PatientCase,
    text_max_evals: int = DEFAULT_MAX_EVALS,
    reference_max_evals: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Every quality record of one case (JSON-ready)."""
    ctx = CaseContext.build(model, case)
    rctx = CaseContext.build(random_model, case)
    out: dict[str, Any] = {"case_id": case.case_id, "modalities": {}}
    for modality in ctx.modalities:
        grid = feature_grid(ctx, modality)
        rec: dict[str, Any] = {}
        if modality in CAM_MODALITIES:
            cam = gradcam_plusplus(ctx, modality)
            rcam = gradcam_plusplus(rctx, modality)
            values, native = cam, native_map(case, modality, cam)
        else:
            shap_res = text_shap(ctx, text_max_evals, seed=seed)
            rcam = text_shap(rctx, text_max_evals, seed=seed).values
            values = cam = shap_res.values
            items = lab_items(case)
            native = item_values(shap_res.tokens.lines, shap_res.values, len(items))
            if reference_max_evals:
                ref = text_shap(ctx, reference_max_evals, seed=seed)
                ref_items = item_values(ref.tokens.lines, ref.values, len(items))
                out["text_fidelity"] = spearman(native, ref_items)
        rec["sanity_spearman"] = spearman(grid.pool(cam), grid.pool(rcam))
        mask = evidence_mask(case, modality)
        if mask is not None:
            items = lab_items(case) if modality == "labs" else []
            rec.update(localisation(modality, native, mask, items))
            rec["findings"] = "+".join(sorted(case.truth.findings.get(modality, [])))
            rec.update(faithfulness(ctx, modality, values, seed))
            if modality == "labs":
                order = attribution_order(values)
                rand = random_orders(grid.n, 1, seed)[0]
                eraser = eraser_scores(prob_fn(ctx, grid), order)
                rnd = eraser_scores(prob_fn(ctx, grid), rand)
                out["eraser"] = {
                    **eraser,
                    "random_comprehensiveness": rnd["comprehensiveness"],
                    "random_sufficiency": rnd["sufficiency"],
                }
        out["modalities"][modality] = rec
    sh = modality_shapley(ctx)
    out["shapley_efficiency_error"] = sh.efficiency_error
    planted = case.truth.labels.get(LABEL) == 1 if case.truth else False
    evidence = _evidence_modalities(case)
    if planted and len(evidence) == 1 and evidence[0] in sh.players and len(sh.players) > 1:
        out["shapley_planted_first"] = max(sh.values, key=sh.values.get) == evidence[0]
    return out


def _evidence_modalities(case: PatientCase) -> list[str]:
    findings = case.truth.findings if case.truth else {}
    return [m for m in MODALITIES if findings.get(m)]


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def _by_findings(loc: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Pointing game per combination of planted findings (``"a+b"``), with its case count."""
    groups: dict[str, list[float]] = {}
    for r in loc:
        groups.setdefault(r["findings"], []).append(r["pointing_game"])
    return {
        k: {"pointing_game": float(np.mean(v)), "cases": len(v)} for k, v in sorted(groups.items())
    }


def summarise(records: list[dict[str, Any]], seconds: float, **settings: Any) -> dict[str, Any]:
    """The bench-xai JSON from per-case records."""
    modalities = {}
    for m in MODALITIES:
        recs = [r["modalities"][m] for r in records if m in r["modalities"]]
        loc = [r for r in recs if "pointing_game" in r]
        below = [r["deletion_auc"] < r["random_deletion_auc"] for r in loc]
        above = [r["insertion_auc"] > r["random_insertion_auc"] for r in loc]
        sanity = [r["sanity_spearman"] for r in recs]
        modalities[m] = {
            "pointing_game": _mean([r["pointing_game"] for r in loc]),
            "top_k_hit": _mean([r["top_k_hit"] for r in loc]),
            "mass_in_mask": _mean([r["mass_in_mask"] for r in loc]),
            "deletion_auc": _mean([r["deletion_auc"] for r in loc]),
            "random_deletion_auc": _mean([r["random_deletion_auc"] for r in loc]),
            "deletion_below_random_fraction": _mean([float(b) for b in below]),
            "insertion_auc": _mean([r["insertion_auc"] for r in loc]),
            "random_insertion_auc": _mean([r["random_insertion_auc"] for r in loc]),
            "insertion_above_random_fraction": _mean([float(b) for b in above]),
            "sanity_spearman_median": float(statistics.median(sanity)) if sanity else None,
            "pointing_game_by_findings": _by_findings(loc),
            "localisation_cases": len(loc),
            "sanity_cases": len(sanity),
        }
    fidelity = [r["text_fidelity"] for r in records if "text_fidelity" in r]
    planted = [r["shapley_planted_first"] for r in records if "shapley_planted_first" in r]
    eraser = [r["eraser"] for r in records if "eraser" in r]
    return {
        "modalities": modalities,
        "text_fidelity_spearman": float(statistics.median(fidelity)) if fidelity else None,
        "text_fidelity_min": min(fidelity) if fidelity else None,
        "text_fidelity_cases": len(fidelity),
        "shapley_planted_first": _mean([float(p) for p in planted]),
        "shapley_planted_cases": len(planted),
        "shapley_efficiency_max_error": max(r["shapley_efficiency_error"] for r in records),
        "eraser": {k: _mean([e[k] for e in eraser]) for k in eraser[0]} if eraser else {},
        "cases": len(records),
        "seconds": round(seconds, 1),
        **settings,
    }


def bench_xai(
    model: FusionModel,
    cases: Iterable[PatientCase],
    text_max_evals: int = DEFAULT_MAX_EVALS,
    reference_max_evals: int = REFERENCE_MAX_EVALS,
    fidelity_cases: int = 10,
    progress: bool = True,
) -> dict[str, Any]:
    """Run :func:`evaluate_case` over ``cases`` and summarise (``cases`` may be a generator,
    so a cohort never has to sit in memory)."""
    t0 = time.perf_counter()
    random_model = randomised_model(model)
    records, n_fid = [], 0
    for i, case in enumerate(tqdm(cases, desc="bench-xai", disable=not progress, unit="case")):
        ref = reference_max_evals if n_fid < fidelity_cases and case.labs is not None else None
        records.append(evaluate_case(model, random_model, case, text_max_evals, ref, seed=i))
        n_fid += ref is not None
    if not records:
        raise ValueError("no cases to evaluate")
    return summarise(
        records,
        time.perf_counter() - t0,
        text_max_evals=text_max_evals,
        reference_max_evals=reference_max_evals,
        device=str(model.device),
    )
