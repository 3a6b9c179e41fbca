"""The model-parameter randomisation test's model (Adebayo et al. 2018): a copy of the model
with every trainable weight re-initialised; frozen (pretrained, not trained) layers stay."""

from __future__ import annotations

import copy

import torch
from torch import nn

MAX_DRAWS = 8


def randomised_model(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` (eval mode, same device) whose trainable weights are re-drawn: a
    module with ``reset_parameters`` re-initialises itself; any other trainable parameter (a
    learnable token, a gate, an embedding table held directly) gets its own values in a
    random order, so it keeps its scale but loses what training put where.

    A draw that leaves a trainable weight as it was (an untrained model built under the same
    seed gets its own weights back) is made again from the next seed."""
    for draw_seed in range(seed, seed + MAX_DRAWS):
        fresh = _redrawn(model, draw_seed)
        unchanged = _unchanged(model, fresh)
        if not unchanged:
            return fresh
    raise ValueError(
        f"re-drawing the weights left {', '.join(unchanged)} unchanged for seeds {seed}-{draw_seed}"
    )


def _unchanged(model: nn.Module, fresh: nn.Module) -> list[str]:
    """Names of trainable weights holding different values that a re-draw left as they were
    (a constant one, as a norm layer's scale starts, is reset to itself by design)."""
    return [
        name
        for (name, p), q in zip(model.named_parameters(), fresh.parameters(), strict=True)
        if p.requires_grad and p.numel() > 1 and p.min() < p.max() and torch.equal(p, q)
    ]


def _redrawn(model: nn.Module, seed: int) -> nn.Module:
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
