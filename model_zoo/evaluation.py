"""Held-out evaluation shaped like TGMM's Tables 2-3 and CliniFuse's report table.

- heart-failure AUC and accuracy with 95% bootstrap intervals for every subset of the four
  modalities, evaluated through the missing-modality path (other modalities masked) on the
  cases that have every modality of the subset;
- generated reports: BLEU-4 (sacrebleu), ROUGE-L (rouge-score) and finding-level F1 with
  findings parsed from the generated text;
- cross-modal retrieval Recall@1 and LRAP for each ordered modality pair.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.metrics import label_ranking_average_precision_score, roc_auc_score

from fuselens.model_zoo.case import MODALITIES
from fuselens.model_zoo.dataset import CohortData
from fuselens.model_zoo.estimates import ESTIMATES
from fuselens.model_zoo.metrics import bleu4, bootstrap_ci, finding_f1, rouge_l
from fuselens.model_zoo.synth.vocab import ALL_FINDINGS, LABEL

ALL_SUBSETS: list[tuple[str, ...]] = [
    s for k in range(1, len(MODALITIES) + 1) for s in itertools.combinations(MODALITIES, k)
]


def subset_mask(present: torch.Tensor, subset: tuple[str, ...]) -> torch.Tensor:
    keep = torch.tensor([m in subset for m in MODALITIES], device=present.device)
    return present & keep


@torch.no_grad()
def encode_cohort(
    model, data: CohortData, batch_size: int = 64
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Every case's per-modality features (encoders run once) and the present mask."""
    model.eval()
    feats: dict[str, list[torch.Tensor]] = {m: [] for m in MODALITIES}
    present = []
    for _, inputs in data.batches(model.config, batch_size, model.device):
        for m, f in model.encode(inputs).items():
            feats[m].append(f.float().cpu())
        present.append(inputs.present.cpu())
    return {m: torch.cat(v) for m, v in feats.items()}, torch.cat(present)


@torch.no_grad()
def fuse_cohort(
    model, feats: dict[str, torch.Tensor], present: torch.Tensor, batch_size: int = 256
) -> dict[str, np.ndarray]:
    """P(yes) per task and contrastive embeddings for every case under ``present``."""
    out: dict[str, list[np.ndarray]] = {}
    for s in range(0, present.shape[0], batch_size):
        sl = slice(s, s + batch_size)
        fo = model.fuse(
            {m: f[sl].to(model.device) for m, f in feats.items()}, present[sl].to(model.device)
        )
        for task in model.task_names:
            out.setdefault(task, []).append(fo.probabilities[task][:, -1].float().cpu().numpy())
        for m, e in fo.embeddings.items():
            out.setdefault(f"embedding:{m}", []).append(e.float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


@torch.no_grad()
def estimate_cohort(model, data: CohortData, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Every case's estimates (NaN where the estimate's modality is absent)."""
    model.eval()
    out: dict[str, list[np.ndarray]] = {}
    for _, inputs in data.batches(model.config, batch_size, model.device):
        for name, v in model.estimate(inputs).items():
            out.setdefault(name, []).append(v.float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def estimate_metrics(data: CohortData, estimates: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per estimate, on the cases with both an estimate and a planted measurement: n, mean
    and 90th-percentile absolute error, and the share within the estimate's tolerance."""
    out = {}
    for j, name in enumerate(data.estimates):
        est = estimates.get(name)
        if est is None:
            continue
        truth = data.measurements[:, j]
        ok = ~(np.isnan(est) | np.isnan(truth))
        err = np.abs(est[ok] - truth[ok])
        tol = ESTIMATES[name].tolerance
        out[name] = {
            "n": int(ok.sum()),
            "mae": float(err.mean()) if ok.any() else None,
            "p90_error": float(np.quantile(err, 0.9)) if ok.any() else None,
            "tolerance": tol,
            "within": float((err <= tol).mean()) if ok.any() else None,
        }
    return out


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def subset_auc_table(
    model,
    data: CohortData,
    subsets: list[tuple[str, ...]] | None = None,
    n_boot: int = 0,
    seed: int = 0,
    features: tuple[dict[str, torch.Tensor], torch.Tensor] | None = None,
) -> list[dict]:
    """One row per subset: n, AUC, accuracy (threshold 0.5), with bootstrap CIs if ``n_boot``."""
    feats, present = features if features is not None else encode_cohort(model, data)
    y_all = data.hf_labels
    rows = []
    for subset in subsets or ALL_SUBSETS:
        keep = torch.tensor([m in subset for m in MODALITIES])
        has = (present[:, keep].all(dim=1) & torch.from_numpy(y_all >= 0)).numpy()
        row: dict = {"modalities": list(subset), "n": int(has.sum())}
        if has.sum() == 0:
            rows.append(row | {"auc": float("nan"), "accuracy": float("nan")})
            continue
        idx = np.nonzero(has)[0]
        mask = subset_mask(present[idx], subset)
        p = fuse_cohort(model, {m: f[idx] for m, f in feats.items()}, mask)[LABEL]
        y = y_all[idx]
        row["auc"] = _auc(y, p)
        row["accuracy"] = float(((p >= 0.5) == y).mean())
        if n_boot:
            row["auc_low"], row["auc_high"] = bootstrap_ci(_auc, y, p, n_boot, seed)
            acc = lambda yy, pp: float(((pp >= 0.5) == yy).mean())  # noqa: E731
            row["accuracy_low"], row["accuracy_high"] = bootstrap_ci(acc, y, p, n_boot, seed)
        rows.append(row)
    return rows


def finding_truth(data: CohortData) -> list[set[str]]:
    """The planted findings of each case, from its task labels."""
    cols = [(f, data.tasks.index(f)) for f in ALL_FINDINGS if f in data.tasks]
    return [{f for f, i in cols if data.labels[r, i] == 1} for r in range(len(data))]


@torch.no_grad()
def generate_reports(
    model, feats: dict[str, torch.Tensor], present: torch.Tensor, batch_size: int = 128
) -> list[str]:
    texts: list[str] = []
    for s in range(0, present.shape[0], batch_size):
        sl = slice(s, s + batch_size)
        out = model.generate_report(
            {m: f[sl].to(model.device) for m, f in feats.items()}, present[sl].to(model.device)
        )
        texts.extend(out.texts)
    return texts


ReportCheck = Callable[[list[str], np.ndarray, dict[str, np.ndarray]], tuple[list[str], dict]]
"""``(decoded texts, their case indices, per case P(yes) per task and ``estimate:<name>``) ->
(texts shown, figures)``: how a caller checks reports before they are scored (the
workstation's fact checks, :func:`fuselens.explain.report_factuality.fact_check`)."""


def report_metrics(
    model,
    data: CohortData,
    feats: dict[str, torch.Tensor],
    present: torch.Tensor,
    check: ReportCheck | None = None,
    estimates: dict[str, np.ndarray] | None = None,
) -> dict:
    """BLEU-4, ROUGE-L and finding F1 of generated vs reference reports (all modalities);
    with ``check``, of the checked reports, plus the figures ``check`` returns (``check``
    is given the model's ``estimates`` of each case: :func:`estimate_cohort`)."""
    from fuselens.model_zoo.synth.reports import findings_from_report

    has_ref = np.array([bool(r.strip()) for r in data.reports])
    idx = np.nonzero(has_ref)[0]
    hyps = generate_reports(model, {m: f[idx] for m, f in feats.items()}, present[idx])
    refs = [data.reports[i] for i in idx]
    truth = finding_truth(data)
    extra: dict = {}
    if check is not None:
        answers = fuse_cohort(model, feats, present)
        if estimates is None:
            estimates = estimate_cohort(model, data)
        answers |= {f"estimate:{k}": v for k, v in estimates.items()}
        hyps, extra = check(hyps, idx, answers)
    predicted = [set().union(*findings_from_report(h).values()) for h in hyps]
    f1 = finding_f1([truth[i] for i in idx], predicted, list(ALL_FINDINGS))
    return {
        **extra,
        "n": int(len(idx)),
        "bleu4": bleu4(hyps, refs),
        "rouge_l": rouge_l(hyps, refs),
        "finding_f1": f1["micro_f1"],
        "finding_precision": f1["micro_precision"],
        "finding_recall": f1["micro_recall"],
        "per_finding_f1": f1["per_finding"],
        "examples": [
            {"generated": h, "reference": r} for h, r in list(zip(hyps, refs, strict=True))[:3]
        ],
    }


def retrieval_metrics(embeddings: dict[str, np.ndarray], present: np.ndarray) -> list[dict]:
    """Recall@1 and LRAP of finding the same patient across modalities (query -> gallery)."""
    rows = []
    for a, b in itertools.permutations(MODALITIES, 2):
        both = present[:, MODALITIES.index(a)] & present[:, MODALITIES.index(b)]
        if both.sum() < 2:
            continue
        q, g = embeddings[a][both], embeddings[b][both]
        sim = q @ g.T
        truth = np.eye(len(q), dtype=int)
        rows.append(
            {
                "query": a,
                "gallery": b,
                "n": int(both.sum()),
                "recall_at_1": float((sim.argmax(1) == np.arange(len(q))).mean()),
                "lrap": float(label_ranking_average_precision_score(truth, sim)),
                "chance_recall_at_1": 1.0 / float(both.sum()),
            }
        )
    return rows


def task_auc_table(
    model, data: CohortData, feats: dict[str, torch.Tensor], present: torch.Tensor
) -> dict[str, float]:
    """AUC of every task with all present modalities (findings: cases with their modality)."""
    probs = fuse_cohort(model, feats, present)
    out = {}
    for i, task in enumerate(data.tasks):
        known = data.labels[:, i] >= 0
        out[task] = _auc(data.labels[known, i], probs[task][known])
    return out


def evaluate_model(
    model,
    data: CohortData,
    n_boot: int = 1000,
    seed: int = 0,
    reports: bool = True,
    check: ReportCheck | None = None,
) -> dict:
    """The full evaluation as a JSON-ready dict (``subsets``, ``report``, ``retrieval``, ...)."""
    t0 = time.perf_counter()
    feats, present = encode_cohort(model, data)
    result = {
        "n_cases": len(data),
        "subsets": subset_auc_table(model, data, ALL_SUBSETS, n_boot, seed, (feats, present)),
        "tasks_auc": task_auc_table(model, data, feats, present),
    }
    emb = fuse_cohort(model, feats, present)
    result["retrieval"] = retrieval_metrics(
        {m: emb[f"embedding:{m}"] for m in MODALITIES}, present.numpy()
    )
    estimates = estimate_cohort(model, data)
    result["estimates"] = estimate_metrics(data, estimates)
    if reports and model.report is not None:
        result["report"] = report_metrics(model, data, feats, present, check, estimates)
    result["device"] = str(model.device)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def format_tables(result: dict) -> str:
    """The evaluation as plain-text tables (Table 2-, report- and Table 3-shaped)."""
    lines = ["Heart failure by available modalities (95% bootstrap CI)", ""]
    lines.append(f"{'modalities':<24} {'n':>5} {'AUC':>6} {'95% CI':>15} {'accuracy':>9}")
    for r in result["subsets"]:
        ci = f"{r.get('auc_low', float('nan')):.3f}-{r.get('auc_high', float('nan')):.3f}"
        lines.append(
            f"{'+'.join(r['modalities']):<24} {r['n']:>5} {r['auc']:>6.3f} {ci:>15} "
            f"{r['accuracy']:>9.3f}"
        )
    rep = result.get("report")
    if rep:
        lines += [
            "",
            f"Reports (n={rep['n']}): BLEU-4 {rep['bleu4']:.3f}, ROUGE-L "
            f"{rep['rouge_l']:.3f}, finding F1 {rep['finding_f1']:.3f}",
        ]
        if "factuality" in rep:
            lines += ["", *factuality_lines(rep)]
    if result.get("estimates"):
        lines += ["", *estimate_lines(result["estimates"])]
    lines += ["", f"{'retrieval query->gallery':<24} {'n':>5} {'R@1':>6} {'LRAP':>6} {'chance':>7}"]
    for r in result["retrieval"]:
        pair = f"{r['query']}->{r['gallery']}"
        lines.append(
            f"{pair:<24} {r['n']:>5} {r['recall_at_1']:>6.3f} {r['lrap']:>6.3f} "
            f"{r['chance_recall_at_1']:>7.4f}"
        )
    return "\n".join(lines)


FACT_ROWS = (
    ("lab_values_equal_to_input", "lab values = input (±2%)"),
    ("heart_rate", "heart rate (±5/min)"),
    ("qrs_ms", "QRS (±20 ms)"),
    ("ef", "ejection fraction (±10)"),
    ("ctr", "cardiothoracic ratio (±0.05)"),
)


def factuality_lines(rep: dict) -> list[str]:
    """Stated numbers within tolerance of the case, decoded against fact-checked reports."""
    lines = [f"{'stated quantity':<30} {'decoded: n  within':>20} {'shown: n  within':>18}"]
    for key, label in FACT_ROWS:
        cells = []
        for which in ("factuality_decoded", "factuality"):
            f = rep[which][key]
            within = "-" if f["within"] is None else f"{f['within']:.3f}"
            cells.append(f"{f['stated']:>5} {within:>7}")
        lines.append(f"{label:<30} {cells[0]:>20} {cells[1]:>18}")
    lines.append(
        f"{'reports contradicting the model':<30} "
        f"{rep['factuality_decoded']['reports_contradicting_the_model']:>20.3f} "
        f"{rep['factuality']['reports_contradicting_the_model']:>18.3f}"
    )
    return lines


def estimate_lines(estimates: dict[str, dict]) -> list[str]:
    """The estimate heads' held-out error against the planted measurements."""
    lines = [f"{'estimate':<24} {'n':>5} {'MAE':>7} {'p90':>7} {'within':>12}"]
    for name, e in estimates.items():
        if not e["n"]:
            continue
        within = f"{e['within']:.3f} (±{e['tolerance']:g})"
        lines.append(f"{name:<24} {e['n']:>5} {e['mae']:>7.3f} {e['p90_error']:>7.3f} {within:>12}")
    return lines


def markdown_tables(result: dict) -> str:
    """The evaluation as Markdown tables (for model cards and exports)."""
    out = ["| modalities | n | AUC (95% CI) | accuracy (95% CI) |", "| --- | ---: | --- | --- |"]
    for r in result["subsets"]:
        nan = float("nan")
        auc = f"{r['auc']:.3f} ({r.get('auc_low', nan):.3f}-{r.get('auc_high', nan):.3f})"
        acc = (
            f"{r['accuracy']:.3f} ({r.get('accuracy_low', float('nan')):.3f}-"
            f"{r.get('accuracy_high', float('nan')):.3f})"
        )
        out.append(f"| {' + '.join(r['modalities'])} | {r['n']} | {auc} | {acc} |")
    rep = result.get("report")
    if rep:
        out += ["", "| reports (n) | BLEU-4 | ROUGE-L | finding F1 | precision | recall |"]
        out += ["| ---: | ---: | ---: | ---: | ---: | ---: |"]
        out.append(
            f"| {rep['n']} | {rep['bleu4']:.3f} | {rep['rouge_l']:.3f} | {rep['finding_f1']:.3f} "
            f"| {rep['finding_precision']:.3f} | {rep['finding_recall']:.3f} |"
        )
    if result.get("estimates"):
        out += ["", "| estimate | n | MAE | p90 error | within tolerance |"]
        out += ["| --- | ---: | ---: | ---: | ---: |"]
        for name, e in result["estimates"].items():
            if e["n"]:
                out.append(
                    f"| {name} | {e['n']} | {e['mae']:.3f} | {e['p90_error']:.3f} "
                    f"| {e['within']:.3f} (±{e['tolerance']:g}) |"
                )
    out += [
        "",
        "| query -> gallery | n | Recall@1 | LRAP | chance R@1 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in result["retrieval"]:
        out.append(
            f"| {r['query']} -> {r['gallery']} | {r['n']} | {r['recall_at_1']:.3f} "
            f"| {r['lrap']:.3f} | {r['chance_recall_at_1']:.4f} |"
        )
    if "tasks_auc" in result:
        out += ["", "| task | AUC |", "| --- | ---: |"]
        out += [f"| {t} | {a:.3f} |" for t, a in result["tasks_auc"].items()]
    return "\n".join(out)
