"""The model-parameter randomisation test's model (Adebayo et al. 2018): a copy of the model
with every trainable weight re-initialised; frozen (pretrained, not trained) layers stay."""

from __future__ import annotations

import copy

import torch
from torch import nn


def randomised_model(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` (eval mode, same device) whose trainable weights are re-drawn: a
    module with ``reset_parameters`` re-initialises itself; any other trainable parameter (a
    learnable token, a gate, an embedding table held directly) gets its own values in a
    random order, so it keeps its scale but loses what training put where."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    fresh = copy.deepcopy(model)
    reset: set[int] = set()
    for module in fresh.modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if own and hasattr(module, "reset_parameters"):
            module.reset_parameters()
            reset.update(id(p) for p in module.parameters(recurse=False))
    with torch.no_grad():
        for p in fresh.parameters():
            if p.requires_grad and id(p) not in reset:
                order = torch.randperm(p.numel(), generator=gen).to(p.device)
                p.copy_(p.flatten()[order].view_as(p))
    return fresh.eval()
