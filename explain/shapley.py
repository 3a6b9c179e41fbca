"""Exact modality Shapley values and pairwise Shapley interaction indices.

The game: players are the present modalities, f(S) the explained answer's log-odds when
the model sees only S (the missing-modality path: absent modalities are masked), all 2^M - 1
non-empty subsets in one fused batch on cached features; f(empty) is a defined baseline
(:mod:`explain.baseline`). Values satisfy efficiency exactly: sum = f(all) - f(empty).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from explain.baseline import empty_value
from explain.context import CaseContext
from model_zoo.case import MODALITIES

Coalition = frozenset[str]


@dataclass
class ShapleyResult:
    players: list[str]
    values: dict[str, float]
    interactions: np.ndarray  # (M, M)
    coalitions: dict[Coalition, float]
    base_value: float
    full_value: float
    efficiency_error: float


def all_coalitions(players: Sequence[str]) -> list[Coalition]:
    """Every subset of ``players``, the empty one first."""
    return [
        frozenset(c) for k in range(len(players) + 1) for c in itertools.combinations(players, k)
    ]


def shapley_values(players: Sequence[str], f: Callable[[Coalition], float]) -> dict[str, float]:
    """Exact Shapley values: weighted marginal contributions over all coalitions."""
    n = len(players)
    out = {}
    for p in players:
        others = [q for q in players if q != p]
        total = 0.0
        for s in all_coalitions(others):
            w = math.factorial(len(s)) * math.factorial(n - len(s) - 1) / math.factorial(n)
            total += w * (f(s | {p}) - f(s))
        out[p] = total
    return out


def interaction_indices(players: Sequence[str], f: Callable[[Coalition], float]) -> np.ndarray:
    """Shapley interaction index of every pair (Grabisch 1997): > 0 synergy, < 0 redundancy."""
    n = len(players)
    out = np.zeros((n, n))
    for i, j in itertools.combinations(range(n), 2):
        pi, pj = players[i], players[j]
        others = [q for q in players if q not in (pi, pj)]
        total = 0.0
        for s in all_coalitions(others):
            w = math.factorial(len(s)) * math.factorial(n - len(s) - 2) / math.factorial(n - 1)
            total += w * (f(s | {pi, pj}) - f(s | {pi}) - f(s | {pj}) + f(s))
        out[i, j] = out[j, i] = total
    return out


@torch.no_grad()
def coalition_values(ctx: CaseContext) -> dict[Coalition, float]:
    """f(S) for every subset of the present modalities (one fused batch; f(empty) baseline)."""
    players = ctx.modalities
    subsets = [s for s in all_coalitions(players) if s]
    present = torch.tensor([[m in s for m in MODALITIES] for s in subsets], dtype=torch.bool)
    scores = ctx.score(ctx.fuse(present)).double().cpu().numpy()
    values = {s: float(v) for s, v in zip(subsets, scores, strict=True)}
    values[frozenset()] = empty_value(ctx.task, ctx.target, ctx.model.tasks[ctx.task])
    return values


def modality_shapley(ctx: CaseContext) -> ShapleyResult:
    """Shapley values and interactions of the case's present modalities."""
    players = ctx.modalities
    values = coalition_values(ctx)
    phi = shapley_values(players, values.__getitem__)
    base, full = values[frozenset()], values[frozenset(players)]
    return ShapleyResult(
        players=players,
        values=phi,
        interactions=interaction_indices(players, values.__getitem__),
        coalitions=values,
        base_value=base,
        full_value=full,
        efficiency_error=abs(sum(phi.values()) - (full - base)),
    )


def coalition_key(coalition: Coalition) -> str:
    """``"labs+ecg"`` in ``MODALITIES`` order; ``""`` for the empty set."""
    return "+".join(m for m in MODALITIES if m in coalition)
