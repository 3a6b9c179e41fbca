"""The one shared path every explanation runs through (the role of pytorch-grad-cam's BaseCAM).

:class:`CaseContext` holds the model, the case's inputs and every present modality's encoder
features, computed once. :meth:`CaseContext.run_modality` re-runs one modality's encoder on a
batch of altered inputs and fuses it with the other modalities' cached features;
:meth:`CaseContext.fuse` re-runs only fusion and heads (any subset of modalities). With
``cached=False`` every call re-encodes every modality instead: the naive baseline the speed
benchmark compares against.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from model_zoo.case import MODALITIES, PatientCase
from model_zoo.inputs import ModelInputs, case_to_inputs
from model_zoo.model import FusionModel, FusionOutput, ReportOutput


def answer_log_odds(logits: torch.Tensor) -> torch.Tensor:
    """``(B, A)`` logits -> ``(B, A)`` log-odds of each answer against all the others."""
    out = []
    for a in range(logits.shape[-1]):
        others = torch.cat([logits[..., :a], logits[..., a + 1 :]], dim=-1)
        out.append(logits[..., a] - torch.logsumexp(others, dim=-1))
    return torch.stack(out, dim=-1)


@dataclass
class CaseContext:
    """A case ready to explain: inputs, cached features and the explained task and answer."""

    model: FusionModel
    case: PatientCase
    inputs: ModelInputs
    features: dict[str, torch.Tensor]
    output: FusionOutput
    task: str
    target: str
    cached: bool = True

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        model: FusionModel,
        case: PatientCase,
        task: str = "heart_failure",
        target: str = "yes",
        cached: bool = True,
    ) -> CaseContext:
        """Preprocess the case and encode every present modality once."""
        if task not in model.tasks:
            raise ValueError(f"unknown task {task!r}; the model has {', '.join(model.tasks)}")
        if target not in model.tasks[task]:
            raise ValueError(f"{task} answers are {model.tasks[task]}, not {target!r}")
        model.eval()
        inputs = case_to_inputs(case, model.config, model.tokenizer).to(model.device)
        features = model.encode(inputs)
        output = model.fuse(features, inputs.present)
        return cls(model, case, inputs, features, output, task, target, cached)

    @property
    def present(self) -> torch.Tensor:
        """``(1, M)`` bool: the modalities the model uses for this case."""
        return self.inputs.present

    @property
    def modalities(self) -> list[str]:
        return [m for i, m in enumerate(MODALITIES) if bool(self.present[0, i])]

    @property
    def target_index(self) -> int:
        return self.model.tasks[self.task].index(self.target)

    def task_log_odds(self, output: FusionOutput) -> torch.Tensor:
        """``(B, A)`` log-odds of each of the task's answers."""
        return answer_log_odds(output.logits[self.task].float())

    def score(self, output: FusionOutput) -> torch.Tensor:
        """``(B,)`` log-odds of the explained answer."""
        return self.task_log_odds(output)[:, self.target_index]

    def _features(self, batch: int) -> dict[str, torch.Tensor]:
        """Every present modality's features for ``batch`` rows: the cache expanded, or (not
        cached) every encoder run again on ``batch`` copies of the case, as a model call per
        altered input would."""
        if self.cached:
            return {m: f.expand(batch, -1, -1) for m, f in self.features.items()}
        rows = torch.zeros(batch, dtype=torch.long, device=self.present.device)
        return self.model.encode(_take(self.inputs, rows), self.modalities)

    def fuse(self, present: torch.Tensor) -> FusionOutput:
        """Fusion and heads on the cached features for a ``(K, M)`` batch of subsets."""
        present = present.to(self.present.device).bool()
        if (present & ~self.present).any():
            raise ValueError("a subset may only hold modalities the case has")
        return self.model.fuse(self._features(present.shape[0]), present)

    def modality_input(self, modality: str) -> torch.Tensor:
        """The model's input tensor of one modality for this case (a batch of one)."""
        if modality == "labs":
            return self.inputs.input_ids
        return getattr(self.inputs, modality)

    def encode_batch(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """One modality's encoder on a batch of its inputs ``x`` (shaped like
        :meth:`modality_input`, any batch size); labs ``x`` are token ids."""
        enc = self.model.encoders[modality]
        b = x.shape[0]
        if modality == "labs":
            return enc(x, torch.ones_like(x), lines=self.inputs.input_lines.expand(b, -1))
        if modality == "ecg":
            return enc(x, self.inputs.ecg_leads.expand(b, -1))
        if modality == "echo":
            return enc(x, self.inputs.echo_views.expand(b, -1))
        return enc(x)

    def run_modality(self, modality: str, x: torch.Tensor) -> FusionOutput:
        """Encode a batch of altered inputs of ``modality`` and fuse each with the other
        modalities' (cached) features."""
        if modality not in self.modalities:
            raise ValueError(f"{modality} is not present in case {self.case.case_id}")
        b = x.shape[0]
        feats = self._features(b)
        feats[modality] = self.encode_batch(modality, x)
        return self.model.fuse(feats, self.present.expand(b, -1))

    @torch.no_grad()
    def report(self) -> ReportOutput:
        """The generated report (greedy) with each word's cross-attention."""
        return self.model.generate_report(
            self._features(1), self.present, self.output if self.cached else None
        )

    @torch.no_grad()
    def scores(self, modality: str, x: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
        """``(B,)`` target log-odds for a batch of altered inputs of one modality, in chunks."""
        out = [
            self.score(self.run_modality(modality, x[i : i + batch_size]))
            for i in range(0, x.shape[0], batch_size)
        ]
        return torch.cat(out)


def _take(inputs: ModelInputs, rows: torch.Tensor) -> ModelInputs:
    """The batch rows ``rows`` (repeats allowed) of ``inputs``."""
    moved = {
        f.name: getattr(inputs, f.name)[rows]
        for f in fields(inputs)
        if isinstance(getattr(inputs, f.name), torch.Tensor)
    }
    return replace(inputs, case_ids=[inputs.case_ids[i] for i in rows.tolist()], **moved)
