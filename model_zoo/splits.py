"""The train/validation split of a training cohort, one rule for `fuselens train` and for
every later step that must see the same validation cases (`fuselens operating-points`)."""

from __future__ import annotations

import numpy as np


def validation_split(n_cases: int, split_seed: int, fraction: float) -> tuple[list[int], list[int]]:
    """(train, validation) indices into the cohort's sorted case folders: a seeded
    permutation's first ``round(fraction * n_cases)`` cases are the validation split."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    order = np.random.default_rng(split_seed).permutation(n_cases)
    n_val = int(round(fraction * n_cases))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())
