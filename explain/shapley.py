"""Exact modality Shapley values and pairwise Shapley interaction indices.

The game: players are the present modalities, f(S) the explained answer's log-odds when
the model sees only S (the missing-modality path: absent modalities are masked), all 2^M - 1
non-empty subsets in one fused batch on cached features; f(empty) is a defined baseline
(:mod:`fuselens.explain.baseline`). Values satisfy efficiency exactly: sum = f(all) - f(empty).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fuselens.explain.baseline import empty_value
from fuselens.explain.context import CaseContext

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
    baseline: str


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
def coalition_values(ctx: CaseContext) -> tuple[dict[Coalition, float], str]:
    """f(S) for every subset of the present modalities (one batch through the model's
    missing-modality path), with f(empty) the baseline, and how f(empty) is defined."""
    players = ctx.modalities
    subsets = [s for s in all_coalitions(players) if s]
    order = ctx.batch.modalities
    present = torch.tensor([[m in s for m in order] for s in subsets], dtype=torch.bool)
    scores = ctx.score(ctx.predict_subsets(present)).double().cpu().numpy()
    values = {s: float(v) for s, v in zip(subsets, scores, strict=True)}
    values[frozenset()], how = empty_value(ctx.model, ctx.task, ctx.target)
    return values, how


def modality_shapley(ctx: CaseContext) -> ShapleyResult:
    """Shapley values and interactions of the case's present modalities."""
    players = ctx.modalities
    values, how = coalition_values(ctx)
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
        baseline=how,
    )


def coalition_key(coalition: Coalition, order: Sequence[str]) -> str:
    """``"labs+ecg"`` in the model's modality order; ``""`` for the empty set."""
    return "+".join(m for m in order if m in coalition)
