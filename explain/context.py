"""The one shared path every explanation runs through (the role of pytorch-grad-cam's BaseCAM).

:class:`CaseContext` holds a contract model (:mod:`fuselens.model_zoo.contract`), the case's
prepared :class:`~fuselens.model_zoo.contract.Batch` and, when the model has the
``CachedFeatures`` capability, every present modality's features, computed once.
:meth:`CaseContext.run_modality` scores a batch of altered inputs of one modality: with cached
features only that modality is re-encoded and fused with the others' cache; otherwise (any
model, or ``cached=False``: the naive baseline the speed benchmark compares against) the
model's whole ``predict`` runs on every altered input.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fuselens.model_zoo.case import PatientCase
from fuselens.model_zoo.contract import (
    Batch,
    CachedFeatures,
    ExplainableModel,
    Logits,
    answer_log_odds,
)
from fuselens.model_zoo.operating_points import answer_index, yes_at

PREDICTED = "<predicted>"  # as a target: the answer the model gives the case


@dataclass
class CaseContext:
    """A case ready to explain: the model, inputs, cached features, the task and answer."""

    model: ExplainableModel
    case: PatientCase
    batch: Batch
    features: dict[str, torch.Tensor] | None
    logits: Logits
    task: str
    target: str
    cached: bool = True

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        model: ExplainableModel,
        case: PatientCase,
        task: str | None = None,
        target: str | None = None,
        cached: bool = True,
    ) -> CaseContext:
        """Prepare the case and (with cached features) encode every present modality once.
        ``task`` defaults to the model's first, ``target`` to the task's last answer;
        ``target=PREDICTED`` explains the answer the model gives this case."""
        task = task if task is not None else next(iter(model.tasks))
        if task not in model.tasks:
            raise ValueError(f"unknown task {task!r}; the model has {', '.join(model.tasks)}")
        answers = list(model.tasks[task])
        target = target if target is not None else answers[-1]
        if target not in answers and target != PREDICTED:
            raise ValueError(f"{task} answers are {answers}, not {target!r}")
        if isinstance(model, torch.nn.Module):
            model.eval()
        batch = model.prepare([case])
        if not bool(batch.present[0].any()):
            raise ValueError(
                f"case {case.case_id} has none of the modalities {model.name} reads "
                f"({', '.join(model.modalities)})"
            )
        features = None
        if cached and isinstance(model, CachedFeatures):
            features = {m: model.encode(batch, m) for m in batch.modalities if batch.has(m)}
            logits = model.fuse(features, batch)
        else:
            logits = model.predict(batch)
        if target == PREDICTED:
            probs = logits[task][0].float().softmax(-1).tolist()
            target = answers[answer_index(answers, probs, yes_at(model, task))]
        return cls(model, case, batch, features, logits, task, target, cached)

    @property
    def modalities(self) -> list[str]:
        """The modalities the model uses for this case, in the model's order."""
        return [m for m in self.batch.modalities if self.batch.has(m)]

    @property
    def answers(self) -> list[str]:
        return list(self.model.tasks[self.task])

    @property
    def target_index(self) -> int:
        return self.answers.index(self.target)

    @property
    def device(self) -> torch.device:
        return self.batch.present.device

    def task_log_odds(self, logits: Logits) -> torch.Tensor:
        """``(B, A)`` log-odds of each of the task's answers."""
        return answer_log_odds(logits[self.task].float())

    def score(self, logits: Logits) -> torch.Tensor:
        """``(B,)`` log-odds of the explained answer."""
        return self.task_log_odds(logits)[:, self.target_index]

    def full_score(self) -> float:
        return float(self.score(self.logits)[0])

    def modality_input(self, modality: str) -> torch.Tensor:
        """The model's input tensor of one modality for this case (a batch of one)."""
        return self.batch.tensors[modality]

    def predict_subsets(self, present: torch.Tensor) -> Logits:
        """Logits for a ``(K, M)`` batch of modality subsets (the model's missing-modality
        path; fusion only, on cached features, when the model has them)."""
        batch = self.batch.with_present(present)
        if self.features is not None:
            k = present.shape[0]
            return self.model.fuse(
                {m: f.expand(k, *f.shape[1:]) for m, f in self.features.items()}, batch
            )
        return self.model.predict(batch)

    def run_modality(self, modality: str, x: torch.Tensor) -> Logits:
        """Logits for a batch of altered inputs ``x`` of ``modality`` (others as they are)."""
        if modality not in self.modalities:
            raise ValueError(f"{modality} is not present in case {self.case.case_id}")
        batch = self.batch.with_input(modality, x)
        if self.features is None:
            return self.model.predict(batch)
        b = x.shape[0]
        feats = {m: f.expand(b, *f.shape[1:]) for m, f in self.features.items()}
        feats[modality] = self.model.encode(batch, modality)
        return self.model.fuse(feats, batch)

    @torch.no_grad()
    def scores(self, modality: str, x: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
        """``(B,)`` target log-odds for a batch of altered inputs of one modality, in chunks."""
        out = [
            self.score(self.run_modality(modality, x[i : i + batch_size]))
            for i in range(0, x.shape[0], batch_size)
        ]
        return torch.cat(out)
