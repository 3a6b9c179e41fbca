"""Explanation quality of every map method on a cohort (``fuselens bench-xai``).

Every map explains one task's answer (``yes`` when the task has it, else the model's own
answer for the case). Per map method and modality: on cases whose planted evidence sits in
that modality (synthetic cohorts; a labelled cohort of real files has no masks), pointing
game, top-k hit (k = mask size) and mass in mask against the evidence masks in the case's own
geometry; on every case with the modality, deletion and insertion curves (target log-odds,
features removed most-important first) against random orders on the model's input grid (also
given over the evidence cases alone, as earlier versions measured it), the
model-parameter randomisation test (Spearman between the trained and a randomised model's
maps, pooled to the feature grid) and seconds per case. Labs (models that read lab text):
ERASER comprehensiveness/sufficiency of the SHAP rationale and item-level fidelity of the
default text-SHAP budget against a high-budget reference. Modality Shapley: the planted
modality ranks first on cases with a single evidence modality; efficiency error everywhere.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from fuselens.explain.context import CaseContext
from fuselens.explain.methods import REGISTRY
from fuselens.explain.metrics import (
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
from fuselens.explain.modalities import LABEL, MODALITY
from fuselens.explain.perturb import feature_grid, prob_fn, score_fn
from fuselens.explain.pipeline import lab_items
from fuselens.explain.randomise import randomised_model
from fuselens.explain.shapley import modality_shapley
from fuselens.explain.text_shap import DEFAULT_MAX_EVALS, item_values, text_shap
from fuselens.model_zoo.case import PatientCase
from fuselens.model_zoo.contract import ExplainableModel, capabilities

REFERENCE_MAX_EVALS = 1000
STEPS = 10
RANDOM_ORDERS = 2


def localisation(modality: str, attribution: Any, mask: Any, items: list[str]) -> dict:
    """Pointing game, top-k hit and mass in mask; echo views are pooled into one volume."""
    if modality == "labs":
        a = np.asarray(attribution)
        m = np.array([name in mask for name in items])
    else:
        a, m = MODALITY[modality].flatten(attribution, mask)
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


def with_case_target(ctx: CaseContext) -> CaseContext:
    """The context explaining ``yes`` when the task has it, else the model's own answer
    (same inputs and cached features)."""
    if "yes" in ctx.answers:
        return dataclasses.replace(ctx, target="yes")
    return dataclasses.replace(ctx, target=ctx.answers[int(ctx.logits[ctx.task][0].argmax())])


def _map_records(
    ctx: CaseContext, rctx: CaseContext, modality: str, methods: Sequence[str], seed: int
) -> dict[str, dict[str, Any]]:
    """Per method: sanity, faithfulness, seconds and (where planted) localisation."""
    case, spec = ctx.case, MODALITY[modality]
    mask = spec.evidence_mask(case) if ctx.task == LABEL else None
    grid = feature_grid(ctx, modality)
    out = {}
    for name in methods:
        method = REGISTRY[name]
        if method.unavailable(ctx, modality) is not None:
            continue
        t = time.perf_counter()
        values = method.attribute(ctx, modality)
        rec: dict[str, Any] = {"seconds": time.perf_counter() - t}
        rvalues = method.attribute(rctx, modality)
        rec["sanity_spearman"] = spearman(grid.pool(values), grid.pool(rvalues))
        rec.update(faithfulness(ctx, modality, values, seed))
        if mask is not None:
            rec.update(localisation(modality, spec.to_case(values, case), mask, []))
            rec["findings"] = "+".join(sorted(case.truth.findings.get(modality, [])))
        out[name] = rec
    return out


def _labs_records(
    ctx: CaseContext,
    rctx: CaseContext,
    text_max_evals: int,
    reference_max_evals: int | None,
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Text SHAP's record (as method ``text_shap``) and the case-level ERASER/fidelity."""
    case, extra = ctx.case, {}
    grid = feature_grid(ctx, "labs")
    t = time.perf_counter()
    res = text_shap(ctx, text_max_evals, seed=seed)
    rec: dict[str, Any] = {"seconds": time.perf_counter() - t}
    rvalues = text_shap(rctx, text_max_evals, seed=seed).values
    rec["sanity_spearman"] = spearman(grid.pool(res.values), grid.pool(rvalues))
    items = lab_items(case)
    per_item = item_values(res.tokens.lines, res.values, len(items))
    if reference_max_evals:
        ref = text_shap(ctx, reference_max_evals, seed=seed)
        extra["text_fidelity"] = spearman(
            per_item, item_values(ref.tokens.lines, ref.values, len(items))
        )
    rec.update(faithfulness(ctx, "labs", res.values, seed))
    mask = MODALITY["labs"].evidence_mask(case) if ctx.task == LABEL else None
    if mask is not None:
        rec.update(localisation("labs", per_item, mask, items))
        rec["findings"] = "+".join(sorted(case.truth.findings.get("labs", [])))
        order = attribution_order(res.values)
        rand = random_orders(grid.n, 1, seed)[0]
        eraser = eraser_scores(prob_fn(ctx, grid), order)
        rnd = eraser_scores(prob_fn(ctx, grid), rand)
        extra["eraser"] = {
            **eraser,
            "random_comprehensiveness": rnd["comprehensiveness"],
            "random_sufficiency": rnd["sufficiency"],
        }
    return {"text_shap": rec}, extra


def evaluate_case(
    model: ExplainableModel,
    random_model: ExplainableModel,
    case: PatientCase,
    task: str,
    methods: Sequence[str],
    text_max_evals: int = DEFAULT_MAX_EVALS,
    reference_max_evals: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Every quality record of one case (JSON-ready): ``modalities[m][method]``."""
    ctx = with_case_target(CaseContext.build(model, case, task))
    target = ctx.target
    rctx = CaseContext.build(random_model, case, task, target)
    out: dict[str, Any] = {"case_id": case.case_id, "target": target, "modalities": {}}
    for modality in ctx.modalities:
        if MODALITY[modality].spatial:
            out["modalities"][modality] = _map_records(ctx, rctx, modality, methods, seed)
        elif capabilities(model)["text"]:
            recs, extra = _labs_records(ctx, rctx, text_max_evals, reference_max_evals, seed)
            out["modalities"][modality] = recs
            out.update(extra)
    sh = modality_shapley(ctx)
    out["shapley_efficiency_error"] = sh.efficiency_error
    planted = bool(case.truth and case.truth.labels.get(LABEL) == 1 and task == LABEL)
    evidence = [m for m in ctx.modalities if case.truth and case.truth.findings.get(m)]
    if planted and len(evidence) == 1 and len(sh.players) > 1:
        out["shapley_planted_first"] = max(sh.values, key=sh.values.get) == evidence[0]
    return out


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


def summarise_records(recs: list[dict[str, Any]]) -> dict[str, Any]:
    """One method on one modality over the cases that have it."""
    loc = [r for r in recs if "pointing_game" in r]
    sanity = [r["sanity_spearman"] for r in recs]
    return {
        "pointing_game": _mean([r["pointing_game"] for r in loc]),
        "top_k_hit": _mean([r["top_k_hit"] for r in loc]),
        "mass_in_mask": _mean([r["mass_in_mask"] for r in loc]),
        "deletion_auc": _mean([r["deletion_auc"] for r in recs]),
        "random_deletion_auc": _mean([r["random_deletion_auc"] for r in recs]),
        "deletion_below_random_fraction": _mean(
            [float(r["deletion_auc"] < r["random_deletion_auc"]) for r in recs]
        ),
        "insertion_auc": _mean([r["insertion_auc"] for r in recs]),
        "random_insertion_auc": _mean([r["random_insertion_auc"] for r in recs]),
        "insertion_above_random_fraction": _mean(
            [float(r["insertion_auc"] > r["random_insertion_auc"]) for r in recs]
        ),
        "evidence_deletion_below_random_fraction": _mean(
            [float(r["deletion_auc"] < r["random_deletion_auc"]) for r in loc]
        ),
        "sanity_spearman_median": float(statistics.median(sanity)) if sanity else None,
        "seconds_per_case": _mean([r["seconds"] for r in recs]),
        "pointing_game_by_findings": _by_findings(loc),
        "localisation_cases": len(loc),
        "cases": len(recs),
    }


def summarise(records: list[dict[str, Any]], seconds: float, **settings: Any) -> dict[str, Any]:
    """The bench-xai JSON from per-case records: ``modalities[m][method]`` summaries."""
    modalities: dict[str, dict[str, Any]] = {}
    for r in records:
        for m, per_method in r["modalities"].items():
            for method, rec in per_method.items():
                modalities.setdefault(m, {}).setdefault(method, []).append(rec)
    table = {m: {k: summarise_records(v) for k, v in ms.items()} for m, ms in modalities.items()}
    fidelity = [r["text_fidelity"] for r in records if "text_fidelity" in r]
    planted = [r["shapley_planted_first"] for r in records if "shapley_planted_first" in r]
    eraser = [r["eraser"] for r in records if "eraser" in r]
    return {
        "modalities": table,
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


COLUMNS = (
    ("pointing_game", "pointing"),
    ("deletion_auc", "deletion"),
    ("random_deletion_auc", "random del."),
    ("insertion_auc", "insertion"),
    ("sanity_spearman_median", "sanity rho"),
    ("seconds_per_case", "s/case"),
)


def format_table(result: dict[str, Any]) -> str:
    """One table: a row per modality and method, the headline metrics in columns."""
    head = f"{'modality':<8} {'method':<22}" + "".join(f"{t:>12}" for _, t in COLUMNS)
    lines = [head, "-" * len(head)]
    for m, per_method in result["modalities"].items():
        for method, s in per_method.items():
            cells = "".join(
                f"{s[k]:>12.3f}" if s[k] is not None else f"{'-':>12}" for k, _ in COLUMNS
            )
            lines.append(f"{m:<8} {method:<22}{cells}")
    return "\n".join(lines)


def bench_xai(
    model: ExplainableModel,
    cases: Iterable[PatientCase],
    task: str | None = None,
    methods: Sequence[str] | None = None,
    text_max_evals: int = DEFAULT_MAX_EVALS,
    reference_max_evals: int = REFERENCE_MAX_EVALS,
    fidelity_cases: int = 10,
    progress: bool = True,
) -> dict[str, Any]:
    """Run :func:`evaluate_case` over ``cases`` and summarise (``cases`` may be a generator,
    so a cohort never has to sit in memory). The sanity test needs a PyTorch model."""
    task = task if task is not None else next(iter(model.tasks))
    if task not in model.tasks:
        raise ValueError(f"unknown task {task!r}; the model has {', '.join(model.tasks)}")
    methods = list(methods or REGISTRY)
    unknown = [m for m in methods if m not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown map methods {unknown}; registered: {', '.join(REGISTRY)}")
    t0 = time.perf_counter()
    random_model = randomised_model(model)
    records, n_fid = [], 0
    for i, case in enumerate(tqdm(cases, desc="bench-xai", disable=not progress, unit="case")):
        ref = reference_max_evals if n_fid < fidelity_cases and case.labs is not None else None
        records.append(
            evaluate_case(model, random_model, case, task, methods, text_max_evals, ref, seed=i)
        )
        n_fid += ref is not None
    if not records:
        raise ValueError("no cases to evaluate")
    return summarise(
        records,
        time.perf_counter() - t0,
        task=task,
        methods=methods,
        text_max_evals=text_max_evals,
        reference_max_evals=reference_max_evals,
        device=str(model.device),
    )
