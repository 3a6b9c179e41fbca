"""The model-parameter randomisation test's model (Adebayo et al. 2018): a copy of the model
with every trainable weight re-initialised; frozen (pretrained, not trained) layers stay."""

from __future__ import annotations

import copy

import torch
from torch import nn


def randomised_model(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose modules with trainable parameters are re-initialised by
    their own ``reset_parameters`` (eval mode, same device)."""
    torch.manual_seed(seed)
    fresh = copy.deepcopy(model)
    for module in fresh.modules():
        own = list(module.parameters(recurse=False))
        if hasattr(module, "reset_parameters") and any(p.requires_grad for p in own):
            module.reset_parameters()
    return fresh.eval()
