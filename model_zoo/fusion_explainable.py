"""The demo :class:`FusionModel` behind the model contract, with every optional capability.

Tier 2 (target layers are the encoders' finding maps), cached features (``encode`` one
modality, ``fuse`` any features), attention maps (MedFlexFusion and the task guidance),
a report generator, the answer prevalence of its training cohort (the modality-Shapley
baseline) and its caveat, all read from its checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from fuselens.model_zoo.case import ECHO_VIEWS, MODALITIES, PatientCase
from fuselens.model_zoo.contract import (
    Batch,
    GeneratedReport,
    Logits,
    ModelAttention,
    block_shares,
)
from fuselens.model_zoo.encoders.text import LineStateMemo
from fuselens.model_zoo.estimates import ESTIMATES
from fuselens.model_zoo.inputs import ModelInputs, case_to_arrays, collate
from fuselens.model_zoo.model import CAM_ENCODERS, FusionModel, FusionOutput

DEMO_CAVEAT = "Demonstration model trained on synthetic data — not for clinical use."

_PARTS = {
    "labs": "input_ids",
    "labs.mask": "attention_mask",
    "labs.lines": "input_lines",
    "ecg": "ecg",
    "ecg.leads": "ecg_leads",
    "echo": "echo",
    "echo.views": "echo_views",
    "cxr": "cxr",
}


def to_batch(inputs: ModelInputs) -> Batch:
    """A :class:`ModelInputs` as a contract :class:`Batch` (same tensors, no copies)."""
    tensors = {k: getattr(inputs, f) for k, f in _PARTS.items()}
    return Batch(list(inputs.case_ids), tensors, inputs.present, MODALITIES)


def to_inputs(batch: Batch) -> ModelInputs:
    """A contract :class:`Batch` of this model as :class:`ModelInputs`."""
    return ModelInputs(
        case_ids=list(batch.case_ids),
        present=batch.present,
        **{f: batch.tensors[k] for k, f in _PARTS.items()},
    )


def echo_views_to_depth(n_views: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``reshape_transform`` for echo activations: ``(B*V, C, F, h, w) -> (B, C, V*F, h, w)``
    (the echo encoder reads each view as its own clip), so one Grad-CAM++ weight per channel
    covers every view and frame and the views share one scale."""

    def transform(t: torch.Tensor) -> torch.Tensor:
        bv, c, f, h, w = t.shape
        return (
            t.reshape(bv // n_views, n_views, c, f, h, w)
            .permute(0, 2, 1, 3, 4, 5)
            .reshape(bv // n_views, c, n_views * f, h, w)
        )

    return transform


class FusionExplainable(nn.Module):
    """:class:`FusionModel` as an explainable model (tier 2 and every capability)."""

    modalities: tuple[str, ...] = MODALITIES

    def __init__(
        self,
        net: FusionModel,
        name: str = "demo",
        caveat: str = DEMO_CAVEAT,
        answer_prevalence: dict[str, dict[str, float]] | None = None,
        report_headings: dict[str, str] | None = None,
        estimate_error: dict[str, dict[str, Any]] | None = None,
        operating_points: dict[str, float] | None = None,
    ):
        super().__init__()
        self.net = net
        self.name = name
        self.caveat = caveat
        self.answer_prevalence = answer_prevalence or {}
        self.report_headings = report_headings or {}
        self.estimate_error = estimate_error or {}
        self.operating_points = operating_points or {}
        self._line_states = LineStateMemo()

    @property
    def tasks(self) -> dict[str, list[str]]:
        return self.net.tasks

    @property
    def tokenizer(self):
        return self.net.tokenizer

    @property
    def config(self):
        return self.net.config

    @property
    def device(self) -> torch.device:
        return self.net.device

    def prepare(self, cases: Sequence[PatientCase]) -> Batch:
        arrays = [case_to_arrays(c, self.net.config, self.net.tokenizer) for c in cases]
        return to_batch(collate(arrays, self.net.config).to(self.device))

    def outputs(self, batch: Batch) -> FusionOutput:
        """The full fusion output (every attention map) of a batch."""
        return self.net(to_inputs(batch))

    def predict(self, batch: Batch) -> Logits:
        return self.outputs(batch).logits

    def target_layer(self, modality: str) -> nn.Module | None:
        return self.net.encoders[modality].cam_layer if modality in CAM_ENCODERS else None

    def reshape_transform(self, modality: str) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return echo_views_to_depth(len(ECHO_VIEWS)) if modality == "echo" else None

    def encode(self, batch: Batch, modality: str) -> torch.Tensor:
        enc, t = self.net.encoders[modality], batch.tensors
        if modality == "labs":
            if enc.line_attention and not torch.is_grad_enabled() and not enc.training:
                memo = self._line_states
                return enc.forward_line_wise(t["labs"], t["labs.mask"], t["labs.lines"], memo)
            return enc(t["labs"], t["labs.mask"], lines=t["labs.lines"])
        if modality in ("ecg", "echo"):
            part = "ecg.leads" if modality == "ecg" else "echo.views"
            return enc(t[modality], t[part])
        return enc(t[modality])

    def fuse_outputs(self, features: dict[str, torch.Tensor], batch: Batch) -> FusionOutput:
        return self.net.fuse(features, batch.present)

    def fuse(self, features: dict[str, torch.Tensor], batch: Batch) -> Logits:
        return self.fuse_outputs(features, batch).logits

    def _output(self, batch: Batch, features: dict[str, torch.Tensor] | None) -> FusionOutput:
        return self.outputs(batch) if features is None else self.fuse_outputs(features, batch)

    @torch.no_grad()
    def attention(
        self, batch: Batch, task: str, features: dict[str, torch.Tensor] | None = None
    ) -> ModelAttention:
        """MedFlexFusion's modality x modality attention and lambdas, and the task prompt's
        guidance attention over the fused tokens Z_all (TGMM Fig. 8), for row 0."""
        out = self._output(batch, features)
        t = self.net.task_names.index(task)
        present = batch.present[0].cpu().numpy()
        names = [m for m, p in zip(MODALITIES, present, strict=True) if p]
        keep = np.flatnonzero(present)
        tok = self.net.tokenizer
        prompt = tok.convert_ids_to_tokens(tok(self.net.config.task_prompts[task])["input_ids"])
        n_learn = self.net.guidance.n_learnable
        rows = np.concatenate([self.net.prompt_mask[t].cpu().numpy(), np.ones(n_learn, bool)])
        guidance = out.guidance_attention[0, t].float().cpu().numpy()[rows]
        prompt_rows = prompt + [f"learnable:{i}" for i in range(n_learn)]
        labels = list(out.token_labels)
        fusion = out.modality_attention[0].float().cpu().numpy()[np.ix_(keep, keep)]
        lambdas = out.lambdas[0].float().cpu().numpy()[np.ix_(keep, keep)]
        return ModelAttention(
            matrices={
                "Cross-modal attention (MedFlexFusion)": fusion,
                "Task guidance over the fused tokens": guidance,
                "Lambda mixing weights": lambdas,
            },
            rows={
                "Cross-modal attention (MedFlexFusion)": names,
                "Task guidance over the fused tokens": prompt_rows,
                "Lambda mixing weights": names,
            },
            columns={
                "Cross-modal attention (MedFlexFusion)": names,
                "Task guidance over the fused tokens": labels,
                "Lambda mixing weights": names,
            },
            block_shares=block_shares(guidance, labels),
        )

    @torch.no_grad()
    def estimate(self, batch: Batch) -> dict[str, dict[str, Any]]:
        """Row 0's estimates from the estimate heads (:mod:`~fuselens.model_zoo.estimates`)."""
        out = {}
        for name, v in self.net.estimate(to_inputs(batch)).items():
            value = float(v[0])
            if math.isnan(value):
                continue
            spec = ESTIMATES[name]
            out[name] = spec.describe(value)
            error = self.estimate_error.get(name)
            if error:
                out[name]["error"] = (
                    f"mean error {error['mae']:.{spec.digits + 1}f} on {error['measured_on']}"
                )
        return out

    @torch.no_grad()
    def generate_report(
        self, batch: Batch, features: dict[str, torch.Tensor] | None = None
    ) -> GeneratedReport:
        out = self._output(batch, features)
        feats = features if features is not None else self.net.encode(to_inputs(batch))
        rep = self.net.generate_report(feats, batch.present, out)
        return GeneratedReport(
            words=rep.words[0],
            attention=rep.attention[0].float().cpu().numpy(),
            memory_labels=rep.memory_labels,
        )
