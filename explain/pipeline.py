"""The staged explanation of one case: quick stages first, the bundle growing after each.

``explain_stages`` yields ``(stage, bundle)`` after every stage that applies to the case and
the model: ``prediction``; ``text_lines`` (text SHAP's exact line level, a few dozen masked
texts) where the model reads the labs as text; one stage per chosen map method of the registry
(:mod:`fuselens.explain.methods`, Grad-CAM++ by default) on the ECG, echo and CXR;
``attention`` and ``report`` where the model has those capabilities; ``shapley``;
``text_shap`` (the line level refined to word pieces) where the model reads the labs as
text. A panel whose capability is absent gets one line in ``bundle.unavailable`` saying
why. ``explain_case`` runs them all.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from fuselens.explain.attention import attention_maps, has_attention
from fuselens.explain.bundle import (
    ExplanationBundle,
    ModalityMaps,
    ModalityShapley,
    TextAttribution,
)
from fuselens.explain.context import CaseContext
from fuselens.explain.ecg_measurements import measure_ecg
from fuselens.explain.evidence import labs_evidence, top_tokens
from fuselens.explain.grounding import ground_report
from fuselens.explain.methods import DEFAULT_METHOD, REGISTRY
from fuselens.explain.modalities import MODALITY
from fuselens.explain.report_facts import Measured, check_report
from fuselens.explain.shapley import coalition_key, modality_shapley
from fuselens.explain.text_shap import (
    DEFAULT_MAX_EVALS,
    TextShapResult,
    item_values,
    line_result,
    text_shap,
    text_shap_lines,
)
from fuselens.model_zoo.case import PatientCase
from fuselens.model_zoo.contract import (
    Estimator,
    ExplainableModel,
    GeneratedReport,
    ReportWriter,
    capabilities,
)
from fuselens.model_zoo.operating_points import DEFAULT_YES_AT, yes_at
from fuselens.model_zoo.predict import task_result

FIRST_STAGES: tuple[str, ...] = ("prediction", "text_lines")
LAST_STAGES: tuple[str, ...] = ("measurements", "attention", "shapley", "report", "text_shap")


def stage_names(methods: Sequence[str] = (DEFAULT_METHOD,)) -> tuple[str, ...]:
    """Every stage in the order it runs, with the chosen map methods after the exact quick
    ones (the prediction and the lab lines)."""
    return (*FIRST_STAGES, *methods, *LAST_STAGES)


STAGES: tuple[str, ...] = stage_names()


def prediction_summary(ctx: CaseContext) -> dict[str, Any]:
    """Answer, P(yes) (else the top answer's probability) and per-answer probabilities of
    every task (JSON-ready)."""
    return {
        task: task_result(
            answers, ctx.logits[task][0].float().softmax(-1).cpu().tolist(), yes_at(ctx.model, task)
        )
        for task, answers in ctx.model.tasks.items()
    }


def method_maps(
    ctx: CaseContext, method: str, timings: dict[str, float], unavailable: dict[str, str]
) -> ModalityMaps:
    """One map method on every present modality it can explain, in the case's own geometry
    (seconds per modality into ``timings["<method>:<modality>"]``; why not, into
    ``unavailable["<method>:<modality>"]``)."""
    impl, case = REGISTRY[method], ctx.case
    maps = ModalityMaps(method=method)
    for modality in (m for m in ctx.modalities if MODALITY[m].spatial):
        reason = impl.unavailable(ctx, modality)
        if reason is not None:
            unavailable[f"{method}:{modality}"] = reason
            continue
        t = time.perf_counter()
        native = MODALITY[modality].to_case(impl.attribute(ctx, modality), case)
        MODALITY[modality].store(maps, native, case)
        timings[f"{method}:{modality}"] = time.perf_counter() - t
    return maps


def shapley_summary(ctx: CaseContext) -> ModalityShapley:
    r = modality_shapley(ctx)
    return ModalityShapley(
        modalities=r.players,
        values=r.values,
        interactions=r.interactions,
        coalitions={coalition_key(s, ctx.modalities): v for s, v in r.coalitions.items()},
        base_value=r.base_value,
        full_value=r.full_value,
        baseline=r.baseline,
        efficiency_error=r.efficiency_error,
    )


def lab_items(case: PatientCase) -> list[str]:
    """One name per lab text line: the items, then History and Medications when present."""
    return case.labs.line_names()


def text_attribution(r: TextShapResult, case: PatientCase) -> TextAttribution:
    items = lab_items(case)
    return TextAttribution(
        text=r.tokens.text,
        tokens=r.tokens.tokens,
        token_values=r.values.astype(np.float32),
        token_spans=r.tokens.spans,
        token_items=r.tokens.lines,
        items=items,
        item_values=item_values(r.tokens.lines, r.values, len(items)).astype(np.float32),
        base_value=r.base_value,
        full_value=r.full_value,
        max_evals=r.max_evals,
        evals=r.evals,
        level=r.level,
    )


def map_evidence(ctx: CaseContext, bundle: ExplanationBundle) -> dict[str, dict[str, Any]]:
    """Evidence summary per present modality from the maps computed so far (the first map
    method that ran; lab lines from text SHAP: exact line values, word pieces once refined)."""
    out: dict[str, dict[str, Any]] = {}
    for maps in bundle.maps.values():
        for m in ctx.modalities:
            native = getattr(maps, m, None) if MODALITY[m].spatial else None
            if m not in out and native is not None and len(native):
                out[m] = MODALITY[m].evidence(native, ctx.case)
    text = bundle.text
    if "labs" in ctx.modalities and text is not None:
        source = "text_shap" if text.level == "word" else "text_lines"
        out["labs"] = labs_evidence(ctx.case.labs, list(text.items), text.item_values, source)
        if text.level == "word":
            out["labs"]["tokens"] = top_tokens(text.tokens, text.token_values)
    return out


def model_answers(prediction: dict[str, Any]) -> dict[str, float]:
    """P(yes) of every yes/no task (the finding heads a report is checked against)."""
    return {
        task: float(result["probabilities"]["yes"])
        for task, result in prediction.items()
        if set(result.get("probabilities", {})) == {"no", "yes"}
    }


def answer_thresholds(prediction: dict[str, Any]) -> dict[str, float]:
    """The operating point (P(yes) at which the answer is yes) each yes/no task was answered at."""
    return {
        t: float(prediction[t].get("yes_at", DEFAULT_YES_AT)) for t in model_answers(prediction)
    }


def measured_quantities(measurements: dict[str, Any]) -> dict[str, Measured]:
    """The measurements (and the model's estimates) a report may cite, as it writes them."""
    ecg = measurements.get("ecg") or {}
    source = f"{ecg.get('method', 'neurokit2')}, lead {ecg.get('lead', '?')}"
    out = {}
    if ecg.get("heart_rate") is not None:
        rate = float(ecg["heart_rate"])
        out["heart_rate"] = Measured(rate, f"{round(rate)}/min", source)
    if ecg.get("qrs_ms") is not None:
        qrs = float(ecg["qrs_ms"])
        out["qrs_ms"] = Measured(qrs, f"{round(qrs)}", source)
    for name, e in (measurements.get("model_estimates") or {}).items():
        out[name] = Measured(float(e["value"]), str(e["text"]), str(e["source"]))
    return out


def grounded(ctx: CaseContext, bundle: ExplanationBundle, report: GeneratedReport):
    """The report with its numbers sourced and findings checked
    (:func:`~fuselens.explain.report_facts.check_report`), each sentence grounded."""
    labs = ctx.case.labs.items if ctx.case.labs is not None else []
    facts = check_report(
        report.words,
        labs,
        model_answers(bundle.prediction),
        measured_quantities(bundle.measurements),
        ctx.modalities,
        answer_thresholds(bundle.prediction),
    )
    attention = np.asarray(report.attention)
    # a word added from a finding head (index ADDED_INDEX = -1) takes the appended zero row
    attention = np.vstack([attention, np.zeros((1, attention.shape[1]))])
    out = ground_report(
        facts.words,
        attention[facts.index],
        report.memory_labels,
        ctx.modalities,
        map_evidence(ctx, bundle),
        getattr(ctx.model, "report_headings", None),
    )
    out.numbers, out.checks = facts.numbers, facts.checks
    return out


def explain_stages(
    model: ExplainableModel,
    case: PatientCase,
    task: str | None = None,
    target: str | None = None,
    *,
    methods: Sequence[str] | None = None,
    model_name: str | None = None,
    text_max_evals: int = DEFAULT_MAX_EVALS,
    cached: bool = True,
) -> Iterator[tuple[str, ExplanationBundle]]:
    """Yield ``(stage, bundle)`` after each stage; each yielded bundle is a snapshot.
    ``task`` defaults to the model's first task, ``target`` to its last answer."""
    methods = list(methods or (DEFAULT_METHOD,))
    unknown = [m for m in methods if m not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown map methods {unknown}; registered: {', '.join(REGISTRY)}")
    t0 = time.perf_counter()
    ctx = CaseContext.build(model, case, task, target, cached)
    summary = prediction_summary(ctx)
    caps = capabilities(model)
    bundle = ExplanationBundle(
        case_id=case.case_id,
        task=ctx.task,
        target=ctx.target,
        answers=ctx.answers,
        modalities=ctx.modalities,
        prediction=summary,
        probability=summary[ctx.task]["probabilities"][ctx.target],
        model_name=model_name or model.name,
        caveat=model.caveat,
        device=str(model.device),
    )

    def done(stage: str, start: float) -> tuple[str, ExplanationBundle]:
        bundle.timings[stage] = time.perf_counter() - start
        bundle.stages.append(stage)
        return stage, dataclasses.replace(
            bundle,
            timings=dict(bundle.timings),
            stages=list(bundle.stages),
            unavailable=dict(bundle.unavailable),
            maps=dict(bundle.maps),
            measurements=dict(bundle.measurements),
        )

    if isinstance(model, Estimator):
        bundle.measurements["model_estimates"] = model.estimate(ctx.batch)
    if not has_attention(ctx):
        bundle.unavailable["attention"] = f"{bundle.model_name} exposes no attention maps"
    if not isinstance(model, ReportWriter):
        bundle.unavailable["report"] = f"{bundle.model_name} generates no report"
    if "labs" in ctx.modalities and not caps["text"]:
        bundle.unavailable["text_shap"] = f"{bundle.model_name} does not read the labs as text"
    yield done("prediction", t0)
    reads_text = "labs" in ctx.modalities and caps["text"]
    lines = None
    if reads_text:
        t = time.perf_counter()
        lines = text_shap_lines(ctx)
        bundle.text = text_attribution(line_result(ctx, lines), case)
        yield done("text_lines", t)
    if any(MODALITY[m].spatial for m in ctx.modalities):
        for method in methods:
            t = time.perf_counter()
            bundle.maps[method] = method_maps(ctx, method, bundle.timings, bundle.unavailable)
            yield done(method, t)
    if case.ecg is not None and "ecg" in ctx.modalities:
        t = time.perf_counter()
        try:
            bundle.measurements["ecg"] = measure_ecg(case.ecg).to_dict()
        except ValueError as exc:
            bundle.unavailable["measurements"] = f"ECG not measured: {exc}"
        yield done("measurements", t)
    if has_attention(ctx):
        t = time.perf_counter()
        bundle.attention = attention_maps(ctx)
        yield done("attention", t)
    t = time.perf_counter()
    bundle.shapley = shapley_summary(ctx)
    yield done("shapley", t)
    report = None
    if isinstance(model, ReportWriter):
        t = time.perf_counter()
        report = model.generate_report(ctx.batch, features=ctx.features)
        bundle.report = grounded(ctx, bundle, report)
        yield done("report", t)
    if reads_text:
        t = time.perf_counter()
        bundle.text = text_attribution(text_shap(ctx, text_max_evals, lines=lines), case)
        if report is not None:
            bundle.report = grounded(ctx, bundle, report)
        yield done("text_shap", t)


def explain_case(
    model: ExplainableModel,
    case: PatientCase,
    task: str | None = None,
    target: str | None = None,
    **options: Any,
) -> ExplanationBundle:
    """Every stage of :func:`explain_stages`; the finished bundle."""
    stages = explain_stages(model, case, task, target, **options)
    return [bundle for _, bundle in stages][-1]
