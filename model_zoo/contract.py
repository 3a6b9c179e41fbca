"""The model contract: what FuseLens needs of a model to explain it, in tiers.

*Any model* (:class:`ExplainableModel`) states its tasks with their answers, the modalities
it reads, and predicts from patient cases in two steps: :meth:`~ExplainableModel.prepare`
turns cases into a :class:`Batch` of per-modality tensors, :meth:`~ExplainableModel.predict`
gives each task's logits. That alone gets lab-text SHAP (when it reads the labs as word
pieces and has a ``tokenizer``), modality Shapley values (through the model's own handling
of a modality marked absent in ``Batch.present``) and perturbation maps (occlusion).

*A PyTorch model* (:class:`GradientModel`) also names a target layer (and, where its
activations are not ``(B, C, *spatial)``, a reshape transform) per modality, and its
``predict`` is differentiable: Grad-CAM++ and Integrated Gradients.

*Optional capabilities*, each detected with ``isinstance``, never assumed:
:class:`CachedFeatures` (the encode/fuse split that makes re-running one modality cheap),
:class:`AttentionReader` (attention maps), :class:`ReportWriter` (a generated report), and
the optional attributes ``answer_prevalence`` (the Shapley baseline), ``report_headings`` and
``operating_points`` (task -> the P(yes) at which it answers yes; 0.5 where absent:
:mod:`fuselens.model_zoo.operating_points`).

Tensors follow one layout per modality (:mod:`fuselens.model_zoo.standard_inputs` builds
them): ``labs`` word-piece ids ``(B, L)`` with ``labs.mask`` and ``labs.lines``; ``ecg``
``(B, 1, 12, 2500)`` mV at 250 Hz in the standard lead order with ``ecg.leads`` ``(B, 12)``;
``echo`` ``(B, V, F, S, S)`` over the views ``A4C, A2C, PLAX`` with ``echo.views`` ``(B, V)``;
``cxr`` ``(B, 1, S, S)`` in any value range the model wants. A task with several labels is
one yes/no task per label (as torchxrayvision's pathologies).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from fuselens.model_zoo.case import MODALITIES, PatientCase

Logits = dict[str, torch.Tensor]  # task -> (B, n_answers)


@dataclass
class Batch:
    """Prepared inputs of B cases: tensors with the batch first, keyed by modality (and
    ``"<modality>.<part>"`` for a modality's other tensors), and ``present`` ``(B, M)`` bool
    over the model's ``modalities`` in that order."""

    case_ids: list[str]
    tensors: dict[str, torch.Tensor]
    present: torch.Tensor
    modalities: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.case_ids)

    def has(self, modality: str) -> bool:
        """Whether row 0 has ``modality``."""
        return modality in self.modalities and bool(self.present[0, self.index(modality)])

    def index(self, modality: str) -> int:
        return self.modalities.index(modality)

    def expand(self, n: int) -> Batch:
        """A one-row batch as ``n`` rows (views, no copies)."""
        if len(self) != 1:
            raise ValueError("expand needs a batch of one")
        return Batch(
            self.case_ids * n,
            {k: v.expand(n, *v.shape[1:]) for k, v in self.tensors.items()},
            self.present.expand(n, -1),
            self.modalities,
        )

    def with_input(self, modality: str, x: torch.Tensor) -> Batch:
        """A one-row batch expanded to ``len(x)`` rows with ``modality``'s input set to ``x``."""
        out = self.expand(x.shape[0])
        out.tensors = {**out.tensors, modality: x}
        return out

    def with_present(self, present: torch.Tensor) -> Batch:
        """The same rows with fewer modalities present; a one-row batch is expanded to the
        rows of ``present`` (never marks present what the case lacks)."""
        present = present.to(self.present.device).bool()
        base = self.expand(present.shape[0]) if len(self) == 1 else self
        if (present & ~base.present).any():
            raise ValueError("a subset may only hold modalities the case has")
        return replace(base, present=present)

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            self.case_ids,
            {k: v.to(device) for k, v in self.tensors.items()},
            self.present.to(device),
            self.modalities,
        )


@runtime_checkable
class ExplainableModel(Protocol):
    """Tier 1, any model: tasks and answers, modalities read, prepare and predict."""

    name: str
    tasks: dict[str, list[str]]
    modalities: tuple[str, ...]
    caveat: str

    @property
    def device(self) -> torch.device: ...

    def prepare(self, cases: Sequence[PatientCase]) -> Batch:
        """Preprocess cases into one batch on the model's device."""
        ...

    def predict(self, batch: Batch) -> Logits:
        """Each task's logits ``(B, n_answers)``; modalities absent in ``batch.present`` must
        not be read."""
        ...


@runtime_checkable
class GradientModel(ExplainableModel, Protocol):
    """Tier 2, a PyTorch model: differentiable ``predict`` and a target layer per modality."""

    def target_layer(self, modality: str) -> nn.Module | None:
        """The layer Grad-CAM++ reads for ``modality`` (``None``: none)."""
        ...

    def reshape_transform(self, modality: str) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """Turns the target layer's activations into ``(B, C, *spatial)`` over the modality's
        Grad-CAM layout (``None``: already so)."""
        ...


@runtime_checkable
class CachedFeatures(Protocol):
    """Capability: encode one modality, fuse any features (the fast path)."""

    def encode(self, batch: Batch, modality: str) -> torch.Tensor:
        """The features of ``modality`` for every row of ``batch`` (rows where it is present)."""
        ...

    def fuse(self, features: dict[str, torch.Tensor], batch: Batch) -> Logits:
        """Logits from per-modality features of the modalities present in ``batch``."""
        ...


def block_of(label: str) -> str:
    """``"ecg:2"`` -> ``"ecg"``; ``"shared:0"`` -> ``"shared"``; ``"task:x"`` -> ``"task"``."""
    return label.split(":", 1)[0]


def block_shares(
    weights: np.ndarray, labels: Sequence[str], blocks: Sequence[str] | None = None
) -> dict[str, float]:
    """Share of the total weight (last axis over ``labels``) that falls in each block
    (``blocks``, default: those of ``labels`` in their order)."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1, len(labels)).sum(0)
    total = float(w.sum()) or 1.0
    names = [block_of(lab) for lab in labels]
    blocks = list(dict.fromkeys(names)) if blocks is None else list(blocks)
    return {
        b: float(sum(v for v, n in zip(w, names, strict=True) if n == b) / total) for b in blocks
    }


@dataclass
class ModelAttention:
    """Attention a model exposes for one case and task: named matrices with row and column
    labels, and a share per block (modality) of the task's attention."""

    matrices: dict[str, np.ndarray]
    rows: dict[str, list[str]]
    columns: dict[str, list[str]]
    block_shares: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class AttentionReader(Protocol):
    """Capability: attention maps of one case."""

    def attention(
        self, batch: Batch, task: str, features: dict[str, torch.Tensor] | None = None
    ) -> ModelAttention:
        """Row 0's attention for ``task`` (``features``: from ``encode``, when cached)."""
        ...


@dataclass
class GeneratedReport:
    """A generated report: its words, and each word's attention over ``memory_labels``
    (labels ``"<modality>:<i>"``, ``"shared:<i>"``, ``"task:<name>"``)."""

    words: list[str]
    attention: np.ndarray  # (n_words, n_memory)
    memory_labels: list[str]


@runtime_checkable
class ReportWriter(Protocol):
    """Capability: a report generated for one case."""

    def generate_report(
        self, batch: Batch, features: dict[str, torch.Tensor] | None = None
    ) -> GeneratedReport:
        """Row 0's report (``features``: from ``encode``, when cached)."""
        ...


@runtime_checkable
class Estimator(Protocol):
    """Capability: quantities only the model gives (an ejection fraction from the echo).

    Row 0's estimates by quantity, each a JSON-ready dict with ``value``, ``text`` (as a
    report writes it), ``label``, ``modality`` and ``source`` (which head estimated it);
    empty when the model estimates nothing for this case."""

    def estimate(self, batch: Batch) -> dict[str, dict[str, Any]]: ...


CAPABILITIES: dict[str, type] = {
    "gradients": GradientModel,
    "cached_features": CachedFeatures,
    "attention": AttentionReader,
    "report": ReportWriter,
    "estimates": Estimator,
}


def capabilities(model: object) -> dict[str, bool]:
    """Which tiers and capabilities ``model`` has (detected, never assumed)."""
    found = {name: isinstance(model, proto) for name, proto in CAPABILITIES.items()}
    found["text"] = "labs" in getattr(model, "modalities", ()) and hasattr(model, "tokenizer")
    return found


def check_model(model: object) -> None:
    """Raise a ``TypeError`` naming what ``model`` lacks of the base contract."""
    missing = [
        a
        for a in ("name", "tasks", "modalities", "caveat", "device", "prepare", "predict")
        if not hasattr(model, a)
    ]
    if missing:
        raise TypeError(
            f"{type(model).__name__} does not meet the FuseLens model contract: "
            f"missing {', '.join(missing)} (see fuselens.model_zoo.contract)"
        )
    unknown = [m for m in model.modalities if m not in MODALITIES]
    if unknown or not model.modalities:
        raise TypeError(f"{model.name}: modalities must be among {MODALITIES}, not {unknown}")
    for task, answers in model.tasks.items():
        if len(answers) < 2 or len(set(answers)) != len(answers):
            raise TypeError(f"{model.name}: task {task!r} needs two or more distinct answers")


def answer_log_odds(logits: torch.Tensor) -> torch.Tensor:
    """``(B, A)`` logits -> ``(B, A)`` log-odds of each answer against all the others."""
    out = []
    for a in range(logits.shape[-1]):
        others = torch.cat([logits[..., :a], logits[..., a + 1 :]], dim=-1)
        out.append(logits[..., a] - torch.logsumexp(others, dim=-1))
    return torch.stack(out, dim=-1)


def probabilities(logits: Logits) -> dict[str, torch.Tensor]:
    """Softmax of each task's logits."""
    return {t: v.float().softmax(-1) for t, v in logits.items()}
