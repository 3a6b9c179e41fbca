"""Training the fusion model on PatientCase objects with modality dropout.

Each batch runs the encoders once on everything present, then fuses the features several
times: once with every present modality (diagnosis, report and contrastive losses) and
``subsets_per_batch`` times with a random non-empty subset per case (diagnosis loss), so
every subset, single modalities included, is trained through the missing-modality path.
CUDA with mixed precision when present, CPU otherwise; tqdm progress, a log file and
``metrics.json`` in ``out_dir``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from fuselens.model_zoo.case import MODALITIES, PatientCase
from fuselens.model_zoo.config import ModelConfig
from fuselens.model_zoo.dataset import (
    CohortData,
    add_text_states,
    build_cohort_data,
    cache_key,
    load_cohort_data,
    save_cohort_data,
)
from fuselens.model_zoo.erasing import random_erasing
from fuselens.model_zoo.estimates import estimate_loss
from fuselens.model_zoo.evaluation import estimate_cohort, estimate_metrics, subset_auc_table
from fuselens.model_zoo.evidence_targets import evidence_batch, training_evidence
from fuselens.model_zoo.fusion_explainable import DEMO_CAVEAT
from fuselens.model_zoo.losses import (
    contrastive_loss,
    diagnosis_loss,
    evidence_loss,
    finding_loss,
    lab_evidence_loss,
    report_loss,
)
from fuselens.model_zoo.model import FusionModel
from fuselens.model_zoo.registry import default_device, save_card, save_model
from fuselens.model_zoo.report import Vocabulary
from fuselens.model_zoo.synth.reports import HEADERS
from fuselens.model_zoo.synth.vocab import LABEL

log = logging.getLogger("fuselens.model_zoo.training")


@dataclass
class TrainingConfig:
    """Optimisation settings plus the model's own :class:`ModelConfig`."""

    epochs: int = 6
    batch_size: int = 32
    lr: float = 2e-3
    text_lr: float = 2e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    seed: int = 0
    subsets_per_batch: int = 2
    hf_weight: float = 2.0
    report_weight: float = 0.5
    contrastive_weight: float = 0.1
    finding_weight: float = 1.0
    evidence_weight: float = 1.0
    estimate_epochs: int = 60
    estimate_lr: float = 2e-3
    erase_prob: float = 0.5
    grad_clip: float = 1.0
    report_epochs: int = 10
    report_lr: float = 1e-3
    threads: int | None = None
    model: ModelConfig = field(default_factory=ModelConfig)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    model: FusionModel
    metrics: dict
    out_dir: Path


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def random_subsets(present: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A uniformly random non-empty subset of each row's present modalities."""
    out = torch.zeros_like(present)
    while True:
        todo = ~out.any(dim=1)
        if not todo.any():
            return out
        draw = torch.rand(present.shape, generator=gen) < 0.5
        out[todo] = (draw & present)[todo]


def _report_targets(
    data: CohortData, idx: list[int], vocab: Vocabulary, max_words: int
) -> torch.Tensor:
    seqs = [vocab.encode(data.reports[i], max_words) for i in idx]
    out = torch.zeros(len(seqs), max(len(s) for s in seqs), dtype=torch.long)
    for row, s in enumerate(seqs):
        out[row, : len(s)] = torch.tensor(s)
    return out


def _setup_logging(out_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(out_dir / "train.log", mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _cohort(
    cases: list[PatientCase], model: FusionModel, path: Path, name: str, progress: bool
) -> CohortData:
    key = cache_key(cases, model.config)
    data = load_cohort_data(path, key)
    if data is None:
        t0 = time.perf_counter()
        data = build_cohort_data(cases, model.config, model.task_names, progress)
        add_text_states(data, model, progress=progress)
        save_cohort_data(data, path, key)
        log.info(
            "%s: preprocessed %d cases in %.1f s -> %s",
            name,
            len(data),
            time.perf_counter() - t0,
            path,
        )
    else:
        log.info("%s: %d cases from cache %s", name, len(data), path)
    return data


def _optimizer(model: FusionModel, cfg: TrainingConfig) -> torch.optim.Optimizer:
    text, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (text if name.startswith("encoders.labs.bert.") else rest).append(p)
    groups = [{"params": rest, "lr": cfg.lr}, {"params": text, "lr": cfg.text_lr}]
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def train_step(
    model: FusionModel,
    data: CohortData,
    idx: list[int],
    cfg: TrainingConfig,
    gen: torch.Generator,
    device: torch.device,
    evidence: list[dict[str, np.ndarray]] | None = None,
) -> dict[str, torch.Tensor]:
    """Losses of one batch (not yet backpropagated); ``evidence`` holds each training case's
    :func:`evidence_targets` (index-aligned with ``data``) for the evidence loss."""
    inputs = random_erasing(data.batch(idx, model.config), gen, cfg.erase_prob).to(device)
    labels = torch.from_numpy(data.labels[idx]).to(device)
    feats, findings = model.encode_with_findings(inputs)
    full = model.fuse(feats, inputs.present)
    diag = diagnosis_loss(
        full.logits, labels, model.task_names, inputs.present, LABEL, cfg.hf_weight
    )
    for _ in range(cfg.subsets_per_batch):
        sub = random_subsets(inputs.present.cpu(), gen).to(device)
        out = model.fuse(feats, sub)
        diag = diag + diagnosis_loss(
            out.logits, labels, model.task_names, sub, LABEL, cfg.hf_weight
        )
    diag = diag / (1 + cfg.subsets_per_batch)
    losses = {"diagnosis": diag}
    if model.report is not None:
        targets = _report_targets(data, idx, model.vocab, model.config.report_max_words).to(device)
        memory, mask, _ = model.report_memory(full)
        logits, _ = model.report(targets[:, :-1], memory, mask)
        losses["report"] = report_loss(logits, targets[:, 1:])
    losses["contrastive"] = contrastive_loss(
        full.embeddings, inputs.present, model.contrastive.log_temperature
    )
    losses["findings"] = finding_loss(findings, model.finding_tasks, labels, model.task_names)
    if evidence is not None and cfg.evidence_weight:
        targets = evidence_batch(evidence, idx, device)
        losses["evidence"] = evidence_loss(
            findings, targets, model.finding_tasks, labels, model.task_names, inputs.ecg_leads
        )
        if "labs" in targets:
            losses["lab_evidence"] = lab_evidence_loss(
                model.encoders["labs"].pool.last_attention,
                inputs.present[:, MODALITIES.index("labs")].nonzero()[:, 0],
                inputs.input_lines,
                targets["labs"],
            )
    losses["total"] = (
        diag
        + cfg.report_weight * losses.get("report", diag.new_zeros(()))
        + cfg.contrastive_weight * losses["contrastive"]
        + cfg.finding_weight * losses["findings"]
        + cfg.evidence_weight * losses.get("evidence", diag.new_zeros(()))
        + cfg.evidence_weight * losses.get("lab_evidence", diag.new_zeros(()))
    )
    return losses


@torch.no_grad()
def _report_memories(model: FusionModel, data: CohortData, device: torch.device) -> list:
    """Per batch of 64 cases: the frozen model's fused tokens, mask, task states and P(yes)."""
    model.eval()
    out = []
    for idx, inputs in data.batches(model.config, 64, device):
        fo = model(inputs)
        p_yes = torch.stack([fo.probability(t) for t in model.task_names], dim=1)
        out.append((idx, fo.fused_tokens, fo.fused_mask, fo.task_states, p_yes))
    return out


def train_report_decoder(
    model: FusionModel, data: CohortData, cfg: TrainingConfig, device: torch.device, progress: bool
) -> list[float]:
    """Stage 2: only the report decoder learns, on the frozen model's fused features.

    Encoders, fusion and response stay fixed, so the decoder learns to put into words what
    the response module decided (its per-task answers) instead of a generic report.
    """
    if model.report is None or cfg.report_epochs == 0:
        return []
    memories = _report_memories(model, data, device)
    opt = torch.optim.AdamW(model.report.parameters(), lr=cfg.report_lr, weight_decay=0.01)
    total = cfg.report_epochs * len(memories)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _schedule(s, total, 1))
    order_rng = np.random.default_rng(cfg.seed + 1)
    losses = []
    model.report.train()
    for epoch in range(cfg.report_epochs):
        running = 0.0
        bar = tqdm(
            order_rng.permutation(len(memories)), desc=f"report {epoch + 1}", disable=not progress
        )
        for k in bar:
            idx, fused, mask, states, p_yes = memories[k]
            targets = _report_targets(data, idx, model.vocab, model.config.report_max_words).to(
                device
            )
            task_tokens = model.report.task_memory(states, p_yes)
            ones = torch.ones(task_tokens.shape[:2], dtype=torch.bool, device=device)
            memory = torch.cat([fused, task_tokens], dim=1)
            logits, _ = model.report(targets[:, :-1], memory, torch.cat([mask, ones], dim=1))
            loss = report_loss(logits, targets[:, 1:])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.report.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            running += loss.item()
        losses.append(running / len(memories))
        log.info("report epoch %d: loss %.4f", epoch + 1, losses[-1])
    model.eval()
    return losses


@torch.no_grad()
def _summaries(model: FusionModel, data: CohortData, device: torch.device) -> list:
    """Per batch of 64 cases: the frozen encoders' estimate summaries, present mask, targets."""
    model.eval()
    out = []
    for idx, inputs in data.batches(model.config, 64, device):
        targets = torch.from_numpy(data.measurements[idx]).to(device)
        out.append((model.summaries(inputs), inputs.present, targets))
    return out


def train_estimate_heads(
    model: FusionModel, data: CohortData, cfg: TrainingConfig, device: torch.device, progress: bool
) -> list[float]:
    """Stage 3: only the estimate heads learn, on the frozen encoders' summaries against the
    planted measurements (:mod:`fuselens.model_zoo.estimates`)."""
    heads = model.estimate_heads
    if heads is None or cfg.estimate_epochs == 0:
        return []
    batches = _summaries(model, data, device)
    opt = torch.optim.AdamW(heads.parameters(), lr=cfg.estimate_lr, weight_decay=0.01)
    order_rng = np.random.default_rng(cfg.seed + 2)
    losses = []
    heads.train()
    for epoch in tqdm(range(cfg.estimate_epochs), desc="estimates", disable=not progress):
        running = 0.0
        for k in order_rng.permutation(len(batches)):
            summaries, present, targets = batches[k]
            loss = estimate_loss(heads.standard(summaries, present), targets)
            if not loss.requires_grad:  # no case of the batch has a planted measurement
                continue
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item()
        losses.append(running / len(batches))
        if (epoch + 1) % 10 == 0:
            log.info("estimate epoch %d: loss %.4f", epoch + 1, losses[-1])
    model.eval()
    return losses


def train_model(
    train_cases: list[PatientCase],
    val_cases: list[PatientCase],
    config: TrainingConfig | None = None,
    out_dir: str | Path = "fusion_model",
    progress: bool = True,
) -> TrainResult:
    """Train, log, save the checkpoint (``out_dir/model``) and ``metrics.json``."""
    cfg = config or TrainingConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    handler = _setup_logging(out)
    try:
        return _train(train_cases, val_cases, cfg, out, progress)
    finally:
        log.removeHandler(handler)
        handler.close()


def training_card(labels: np.ndarray, tasks: list[str], n_cases: int) -> dict:
    """What the checkpoint carries besides its weights: its caveat, each task's answer
    prevalence in the training cases (the modality-Shapley baseline; a task counts only where
    its label is known) and the report headings its decoder was trained on."""
    prevalence = {}
    for i, task in enumerate(tasks):
        known = labels[:, i] >= 0
        if known.any():
            p = float(labels[known, i].mean())
            prevalence[task] = {"no": 1.0 - p, "yes": p}
    return {
        "caveat": DEMO_CAVEAT,
        "answer_prevalence": prevalence,
        "answer_prevalence_source": f"training cases ({n_cases})",
        "report_headings": dict(HEADERS),
    }


def _train(
    train_cases: list[PatientCase],
    val_cases: list[PatientCase],
    cfg: TrainingConfig,
    out: Path,
    progress: bool,
) -> TrainResult:
    t_start = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # Denormal floats made CPU steps 6x slower once warm-up ended; flush them. The flag is
    # per thread and reaches only this one, so on a CPU train with --threads 1 (two seeds in
    # parallel rather than two threads for one).
    torch.set_flush_denormal(True)
    seed_everything(cfg.seed)
    device = default_device()
    use_amp = device.type == "cuda"
    reports = [c.truth.report for c in train_cases if c.truth is not None and c.truth.report]
    model_cfg = ModelConfig.from_dict(cfg.model.to_dict())
    model_cfg.report_vocab = Vocabulary.build(reports).words if reports else []
    model = FusionModel(model_cfg).to(device)
    log.info(
        "device %s, %d train / %d val cases, config %s",
        device,
        len(train_cases),
        len(val_cases),
        json.dumps(cfg.to_dict()),
    )
    train = _cohort(train_cases, model, out / "cache_train.pt", "train", progress)
    val = _cohort(val_cases, model, out / "cache_val.pt", "val", progress) if val_cases else None
    evidence = (
        [training_evidence(c, model.config) for c in train_cases] if cfg.evidence_weight else None
    )
    t_prep = time.perf_counter() - t_start

    opt = _optimizer(model, cfg)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = max(1, int(cfg.warmup_fraction * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _schedule(s, total, warmup))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    gen = torch.Generator().manual_seed(cfg.seed)
    order_rng = np.random.default_rng(cfg.seed)
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        order = order_rng.permutation(len(train))
        sums: dict[str, float] = {}
        bar = tqdm(
            range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress
        )
        for step in bar:
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size].tolist()
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                losses = train_step(model, train, idx, cfg, gen, device, evidence)
            opt.zero_grad(set_to_none=True)
            scaler.scale(losses["total"]).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.set_postfix(loss=f"{sums['total'] / (step + 1):.3f}")
        record = {"epoch": epoch + 1, **{k: v / steps_per_epoch for k, v in sums.items()}}
        record["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        if val is not None:
            table = subset_auc_table(model, val, [tuple(MODALITIES), *[(m,) for m in MODALITIES]])
            record["val_auc"] = {"+".join(r["modalities"]): r["auc"] for r in table}
        history.append(record)
        log.info("epoch %s", json.dumps(record))
    report_history = train_report_decoder(model, train, cfg, device, progress)
    estimate_history = train_estimate_heads(model, train, cfg, device, progress)
    model.eval()
    save_model(model, out / "model")
    card = training_card(train.labels, train.tasks, len(train))
    val_estimates = estimate_metrics(val, estimate_cohort(model, val)) if val else {}
    card["estimate_error"] = {
        name: {**e, "measured_on": f"the validation split ({e['n']} cases)"}
        for name, e in val_estimates.items()
        if e["n"]
    }
    save_card(out / "model", card)
    metrics = {
        "history": history,
        "report_history": report_history,
        "estimate_history": estimate_history,
        "val_estimates": val_estimates,
        "train_cases": len(train),
        "val_cases": len(val) if val is not None else 0,
        "device": str(device),
        "preprocess_s": round(t_prep, 1),
        "train_s": round(time.perf_counter() - t_start, 1),
        "torch_threads": torch.get_num_threads(),
        "config": cfg.to_dict(),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.info("done in %.1f s; checkpoint %s", metrics["train_s"], out / "model")
    return TrainResult(model=model, metrics=metrics, out_dir=out)
