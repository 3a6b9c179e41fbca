"""Cases to a :class:`~fuselens.model_zoo.contract.Batch` in the contract's standard layouts.

A user's model calls :func:`standard_batch` in its ``prepare``: it runs FuseLens's own
preprocessing (ECG resampled to 250 Hz, band-passed, 12 x 2,500 in the standard lead order;
echo frames sampled over the loop and resized; CXR resized; labs textualised and tokenised)
for the modalities the model reads, so every explanation knows how a map on these tensors
returns to the case's own geometry. Echo and CXR come as floats in [0, 1]; a model applies
its own normalisation inside ``predict``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fuselens.model_zoo.case import ECHO_VIEWS, MODALITIES, STANDARD_LEADS, PatientCase
from fuselens.model_zoo.contract import Batch
from fuselens.model_zoo.preprocess import (
    ECG_SAMPLES,
    labs_text,
    preprocess_cxr,
    preprocess_ecg,
    preprocess_echo,
    tokenise_labs,
)


def _labs(cases: Sequence[PatientCase], tokenizer, max_tokens: int) -> dict[str, torch.Tensor]:
    rows = [
        tokenise_labs(labs_text(c.labs), tokenizer, max_tokens) if c.labs is not None else None
        for c in cases
    ]
    length = max([len(r[0]) for r in rows if r is not None] or [1])
    ids = torch.zeros(len(cases), length, dtype=torch.long)
    mask = torch.zeros(len(cases), length, dtype=torch.long)
    lines = torch.full((len(cases), length), -1, dtype=torch.long)
    for i, r in enumerate(rows):
        if r is not None:
            n = len(r[0])
            ids[i, :n], mask[i, :n] = torch.from_numpy(r[0]), 1
            lines[i, :n] = torch.from_numpy(r[1])
    return {"labs": ids, "labs.mask": mask, "labs.lines": lines}


def _ecg(cases: Sequence[PatientCase]) -> dict[str, torch.Tensor]:
    x = torch.zeros(len(cases), 1, len(STANDARD_LEADS), ECG_SAMPLES)
    leads = torch.zeros(len(cases), len(STANDARD_LEADS), dtype=torch.bool)
    for i, c in enumerate(cases):
        if c.ecg is not None:
            sig, mask = preprocess_ecg(c.ecg)
            x[i, 0], leads[i] = torch.from_numpy(sig), torch.from_numpy(mask)
    return {"ecg": x, "ecg.leads": leads}


def _echo(cases: Sequence[PatientCase], frames: int, size: int) -> dict[str, torch.Tensor]:
    x = torch.zeros(len(cases), len(ECHO_VIEWS), frames, size, size)
    views = torch.zeros(len(cases), len(ECHO_VIEWS), dtype=torch.bool)
    for i, c in enumerate(cases):
        known = {v: cine for v, cine in c.echo.items() if v in ECHO_VIEWS}
        if known:
            loops, mask = preprocess_echo(known, frames, size)
            x[i] = torch.from_numpy(loops.astype(np.float32) / 255.0)
            views[i] = torch.from_numpy(mask)
    return {"echo": x, "echo.views": views}


def _cxr(cases: Sequence[PatientCase], size: int) -> dict[str, torch.Tensor]:
    x = torch.zeros(len(cases), 1, size, size)
    for i, c in enumerate(cases):
        if c.cxr is not None:
            x[i, 0] = torch.from_numpy(preprocess_cxr(c.cxr, size))
    return {"cxr": x}


def case_has(case: PatientCase, modality: str) -> bool:
    """Whether the case has something of ``modality`` a standard input can be made of."""
    if modality == "echo":
        return any(v in ECHO_VIEWS for v in case.echo)
    if modality == "ecg":
        return case.ecg is not None and any(n in STANDARD_LEADS for n in case.ecg.lead_names)
    return modality in case.modalities()


def standard_batch(
    cases: Sequence[PatientCase],
    modalities: Sequence[str],
    *,
    tokenizer=None,
    text_max_tokens: int = 160,
    echo_frames: int = 16,
    echo_size: int = 64,
    cxr_size: int = 224,
    device: torch.device | str = "cpu",
) -> Batch:
    """The cases' inputs for ``modalities`` (labs need a Hugging Face fast ``tokenizer``)."""
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown:
        raise ValueError(f"unknown modalities {unknown}; FuseLens knows {MODALITIES}")
    if not cases:
        raise ValueError("standard_batch needs at least one case")
    tensors: dict[str, torch.Tensor] = {}
    for m in modalities:
        if m == "labs":
            if tokenizer is None:
                raise ValueError("a model that reads labs needs a tokenizer")
            tensors.update(_labs(cases, tokenizer, text_max_tokens))
        elif m == "ecg":
            tensors.update(_ecg(cases))
        elif m == "echo":
            tensors.update(_echo(cases, echo_frames, echo_size))
        else:
            tensors.update(_cxr(cases, cxr_size))
    present = torch.tensor([[case_has(c, m) for m in modalities] for c in cases], dtype=torch.bool)
    batch = Batch([c.case_id for c in cases], tensors, present, tuple(modalities))
    return batch.to(device)
