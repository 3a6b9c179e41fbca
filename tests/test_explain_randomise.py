"""The randomisation test's model: every trainable weight re-drawn, frozen layers kept, the
original untouched; parameters held directly by a module (no ``reset_parameters``) too."""

from __future__ import annotations

import torch
from torch import nn

from fuselens.explain.randomise import randomised_model


class Gated(nn.Module):
    """A linear layer, a frozen one, and a learnable gate held directly (no reset)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 4)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.gate = nn.Parameter(torch.arange(16.0).reshape(4, 4))
        self.norm = nn.LayerNorm(4)  # starts (and is reset) at scale 1, shift 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.frozen(self.linear(x)) @ self.gate)


def test_trainable_weights_are_redrawn_and_frozen_ones_kept():
    torch.manual_seed(1)
    model = Gated()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fresh = randomised_model(model, seed=3)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    assert not torch.equal(fresh.linear.weight, model.linear.weight)
    assert torch.equal(fresh.frozen.weight, model.frozen.weight)
    assert not torch.equal(fresh.gate, model.gate)
    assert torch.equal(fresh.gate.flatten().sort().values, model.gate.flatten().sort().values)
    assert not fresh.training
    again = randomised_model(model, seed=3)
    assert torch.equal(again.gate, fresh.gate) and torch.equal(again.linear.bias, fresh.linear.bias)


def test_an_untrained_model_built_under_the_same_seed_still_gets_new_weights():
    """The README's model builds under torch.manual_seed(0), as the randomisation drew its
    weights: the re-draw gave back the very same weights and the sanity test's rank
    correlation was 1 for every method."""
    torch.manual_seed(0)
    model = Gated()
    fresh = randomised_model(model, seed=0)
    assert not torch.equal(fresh.linear.weight, model.linear.weight)
    assert not torch.equal(fresh.linear.bias, model.linear.bias)
    assert not torch.equal(fresh.gate, model.gate)
    assert torch.equal(fresh.norm.weight, model.norm.weight)  # constant: reset to itself
