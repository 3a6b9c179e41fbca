"""A cohort as preprocessed arrays, labels and report ids, cached once for training/evaluation.

Preprocessing (DICOM-derived arrays to model arrays) and the frozen text-encoder layers run
once per case; the cache is a ``torch.save`` file so later epochs and runs skip them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from fuselens.model_zoo.case import PatientCase
from fuselens.model_zoo.config import ModelConfig
from fuselens.model_zoo.inputs import CaseArrays, ModelInputs, case_to_arrays, collate
from fuselens.model_zoo.synth.vocab import LABEL
from fuselens.model_zoo.tasks import TASK_MODALITY

UNKNOWN = -1
CACHE_VERSION = 4


def task_labels(case: PatientCase, tasks: list[str]) -> np.ndarray:
    """``(n_tasks,)`` int: 1/0 from the case's ground truth, -1 where unknown.

    A finding is known only when the case has its modality and findings were recorded.
    """
    out = np.full(len(tasks), UNKNOWN, dtype=np.int64)
    truth = case.truth
    if truth is None:
        return out
    present = set(case.modalities())
    for i, task in enumerate(tasks):
        modality = TASK_MODALITY.get(task)
        if modality is None:
            if task in truth.labels:
                out[i] = int(truth.labels[task])
        elif modality in present and modality in truth.findings:
            out[i] = int(task in truth.findings[modality])
    return out


def case_measurements(case: PatientCase, names: list[str]) -> np.ndarray:
    """``(len(names),)`` float: the case's planted measurements, NaN where unknown."""
    known = case.truth.measurements if case.truth is not None else {}
    return np.array([known.get(n, np.nan) for n in names], dtype=np.float32)


@dataclass
class CohortData:
    """Preprocessed cases with labels ``(n, n_tasks)``, reference reports and the planted
    measurements ``(n, len(estimates))`` (NaN where unknown) of the model's estimates."""

    arrays: list[CaseArrays]
    labels: np.ndarray
    reports: list[str]
    tasks: list[str]
    text_states: list[np.ndarray | None] = field(default_factory=list)
    measurements: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    estimates: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.arrays)

    @property
    def hf_labels(self) -> np.ndarray:
        return self.labels[:, self.tasks.index(LABEL)]

    def batch(self, idx: list[int] | np.ndarray, config: ModelConfig) -> ModelInputs:
        """The cases ``idx`` as one batch, with cached frozen text states when available."""
        idx = [int(i) for i in idx]
        inputs = collate([self.arrays[i] for i in idx], config)
        hidden = _hidden_size(self.text_states)
        if hidden:
            length = inputs.input_ids.shape[1]
            states = torch.zeros(len(idx), length, hidden)
            for row, i in enumerate(idx):
                s = self.text_states[i]
                if s is not None:
                    states[row, : s.shape[0]] = torch.from_numpy(s.astype(np.float32))
            inputs.labs_hidden = states
        return inputs

    def batches(
        self, config: ModelConfig, batch_size: int = 64, device: torch.device | None = None
    ) -> Iterator[tuple[list[int], ModelInputs]]:
        """Every case in order, ``batch_size`` at a time: the indices and the batch (on
        ``device`` when given)."""
        for s in range(0, len(self), batch_size):
            idx = list(range(s, min(len(self), s + batch_size)))
            inputs = self.batch(idx, config)
            yield idx, inputs.to(device) if device is not None else inputs


def _hidden_size(states: list[np.ndarray | None]) -> int:
    """Width of the cached text states, 0 when none are cached."""
    return next((s.shape[1] for s in states if s is not None), 0)


def build_cohort_data(
    cases: list[PatientCase], config: ModelConfig, tasks: list[str], progress: bool = True
) -> CohortData:
    """Preprocess every case (the slow part: resampling, filtering, resizing)."""
    arrays, labels, reports = [], [], []
    for case in tqdm(cases, desc="preprocess", disable=not progress, unit="case"):
        arrays.append(case_to_arrays(case, config))
        labels.append(task_labels(case, tasks))
        reports.append(case.truth.report if case.truth is not None else "")
    return CohortData(
        arrays,
        np.stack(labels),
        reports,
        list(tasks),
        measurements=np.stack([case_measurements(c, config.estimates) for c in cases]),
        estimates=list(config.estimates),
    )


@torch.no_grad()
def add_text_states(data: CohortData, model, batch_size: int = 32, progress: bool = True) -> None:
    """Run the frozen text layers once per case and keep them (float16) in ``data``."""
    text = model.encoders["labs"]
    text.eval()
    states: list[np.ndarray | None] = [None] * len(data)
    with_labs = [i for i, a in enumerate(data.arrays) if a.input_ids is not None]
    starts = range(0, len(with_labs), batch_size)
    for s in tqdm(starts, desc="text cache", disable=not progress, unit="batch"):
        idx = with_labs[s : s + batch_size]
        inputs = collate([data.arrays[i] for i in idx], model.config).to(model.device)
        hidden = text.frozen_states(
            inputs.input_ids, inputs.attention_mask, inputs.input_lines
        ).cpu()
        for row, i in enumerate(idx):
            n = len(data.arrays[i].input_ids)
            states[i] = hidden[row, :n].numpy().astype(np.float16)
    data.text_states = states


def case_fingerprint(case: PatientCase) -> str:
    """A cheap content digest of a case (ids repeat across cohorts, content does not)."""
    h = hashlib.sha256(case.case_id.encode())
    if case.labs is not None:
        h.update(case.labs.textualise().encode())
    if case.ecg is not None:
        h.update(np.ascontiguousarray(case.ecg.signal[:, :256]).tobytes())
    for view in sorted(case.echo):
        h.update(np.ascontiguousarray(case.echo[view].frames[0, ::8, ::8]).tobytes())
    if case.cxr is not None:
        h.update(np.ascontiguousarray(case.cxr.image[::16, ::16]).tobytes())
    return h.hexdigest()


def cache_key(cases: list[PatientCase], config: ModelConfig) -> str:
    """What a cache depends on: the cases' content and the preprocessing settings."""
    settings = [
        config.text_encoder,
        config.text_max_tokens,
        config.echo_frames,
        config.echo_size,
        config.cxr_size,
        config.text_trainable_layers,
        config.text_line_attention,
        config.estimates,
    ]
    blob = json.dumps([CACHE_VERSION, [case_fingerprint(c) for c in cases], settings])
    return hashlib.sha256(blob.encode()).hexdigest()


def save_cohort_data(data: CohortData, path: str | Path, key: str) -> None:
    torch.save({"key": key, "data": data}, path)


def load_cohort_data(path: str | Path, key: str) -> CohortData | None:
    """The cached cohort, or ``None`` when missing or built from other cases or settings."""
    path = Path(path)
    if not path.is_file():
        return None
    blob = torch.load(path, weights_only=False)
    return blob["data"] if blob.get("key") == key else None
