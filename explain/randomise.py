"""The model-parameter randomisation test's model (Adebayo et al. 2018): same architecture,
every trained weight re-initialised; the frozen pretrained text layers stay as they are."""

from __future__ import annotations

import torch

from model_zoo.model import FusionModel


def randomised_model(model: FusionModel, seed: int = 0) -> FusionModel:
    """A fresh, randomly initialised copy of ``model`` (eval mode, same device)."""
    torch.manual_seed(seed)
    fresh = FusionModel(model.config)
    text = fresh.encoders["labs"]
    for layer in text.bert.encoder.layer[text.n_frozen :]:
        for module in layer.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return fresh.to(model.device).eval()
