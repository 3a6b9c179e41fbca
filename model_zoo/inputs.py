"""Model inputs: compact per-case arrays (:class:`CaseArrays`), batches (:class:`ModelInputs`).

``case_to_arrays`` runs the preprocessing once (cacheable: uint8 echo, float16 ECG/CXR);
``collate`` pads and stacks any list of them; ``case_to_inputs`` is the two in one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from fuselens.model_zoo.case import ECHO_VIEWS, MODALITIES, STANDARD_LEADS, PatientCase
from fuselens.model_zoo.config import ModelConfig
from fuselens.model_zoo.encoders.text import load_tokenizer
from fuselens.model_zoo.preprocess import (
    ECG_SAMPLES,
    labs_text,
    normalise_cxr,
    normalise_echo,
    preprocess_cxr,
    preprocess_ecg,
    preprocess_echo,
    tokenise_labs,
)


@dataclass
class CaseArrays:
    """One case after preprocessing, in compact dtypes; absent modalities are ``None``."""

    case_id: str
    input_ids: np.ndarray | None = None
    input_lines: np.ndarray | None = None
    ecg: np.ndarray | None = None
    ecg_leads: np.ndarray | None = None
    echo: np.ndarray | None = None
    echo_views: np.ndarray | None = None
    cxr: np.ndarray | None = None

    def modalities(self) -> list[str]:
        have = {
            "labs": self.input_ids is not None,
            "ecg": self.ecg is not None,
            "echo": self.echo is not None,
            "cxr": self.cxr is not None,
        }
        return [m for m in MODALITIES if have[m]]


@dataclass
class ModelInputs:
    """A batch of B cases as tensors.

    ``present`` is ``(B, 4)`` bool in ``MODALITIES`` order (labs, ecg, echo, cxr). Rows of an
    absent modality hold zeros and are never used: the model masks them.
    """

    case_ids: list[str]
    input_ids: torch.Tensor  # (B, L) long
    attention_mask: torch.Tensor  # (B, L) long
    input_lines: torch.Tensor  # (B, L) long: each token's lab-text line, -1 special/padding
    ecg: torch.Tensor  # (B, 1, 12, 2500) float, mV
    ecg_leads: torch.Tensor  # (B, 12) bool
    echo: torch.Tensor  # (B, V, F, S, S) float, normalised
    echo_views: torch.Tensor  # (B, V) bool
    cxr: torch.Tensor  # (B, 1, S, S) float, normalised
    present: torch.Tensor  # (B, 4) bool
    labs_hidden: torch.Tensor | None = None  # (B, L, H) cached frozen text states

    def to(self, device: torch.device | str) -> ModelInputs:
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **moved)

    def with_present(self, present: torch.Tensor) -> ModelInputs:
        """The same batch with fewer modalities marked present (a subset, never more)."""
        present = present.to(self.present.device).bool()
        if (present & ~self.present).any():
            raise ValueError("cannot mark a modality present that the case does not have")
        return replace(self, present=present)

    def __len__(self) -> int:
        return len(self.case_ids)


def case_to_arrays(case: PatientCase, config: ModelConfig, tokenizer=None) -> CaseArrays:
    """Run every preprocessing step on the modalities the case has."""
    out = CaseArrays(case_id=case.case_id)
    if case.labs is not None:
        tok = tokenizer if tokenizer is not None else load_tokenizer(config.text_encoder)
        out.input_ids, lines = tokenise_labs(labs_text(case.labs), tok, config.text_max_tokens)
        out.input_lines = lines.astype(np.int16)
    if case.ecg is not None:
        sig, leads = preprocess_ecg(case.ecg)
        if leads.any():
            out.ecg, out.ecg_leads = sig.astype(np.float16), leads
    views = {v: c for v, c in case.echo.items() if v in ECHO_VIEWS}
    if views:
        out.echo, out.echo_views = preprocess_echo(views, config.echo_frames, config.echo_size)
    if case.cxr is not None:
        out.cxr = preprocess_cxr(case.cxr, config.cxr_size).astype(np.float16)
    return out


def collate(items: list[CaseArrays], config: ModelConfig) -> ModelInputs:
    """Stack cases into one batch; text is right-padded to the longest sequence."""
    b = len(items)
    if b == 0:
        raise ValueError("collate needs at least one case")
    length = max([len(a.input_ids) for a in items if a.input_ids is not None] or [1])
    ids = torch.zeros(b, length, dtype=torch.long)
    att = torch.zeros(b, length, dtype=torch.long)
    lines = torch.full((b, length), -1, dtype=torch.long)
    ecg = torch.zeros(b, 1, len(STANDARD_LEADS), ECG_SAMPLES)
    leads = torch.zeros(b, len(STANDARD_LEADS), dtype=torch.bool)
    n_views, f, s = len(ECHO_VIEWS), config.echo_frames, config.echo_size
    echo = torch.zeros(b, n_views, f, s, s, dtype=torch.uint8)
    views = torch.zeros(b, n_views, dtype=torch.bool)
    cxr = torch.zeros(b, 1, config.cxr_size, config.cxr_size)
    present = torch.zeros(b, len(MODALITIES), dtype=torch.bool)
    cxr_present = torch.zeros(b, dtype=torch.bool)
    for i, a in enumerate(items):
        if a.input_ids is not None:
            n = len(a.input_ids)
            ids[i, :n] = torch.from_numpy(a.input_ids)
            att[i, :n] = 1
            lines[i, :n] = torch.from_numpy(a.input_lines.astype(np.int64))
        if a.ecg is not None:
            ecg[i, 0] = torch.from_numpy(a.ecg.astype(np.float32))
            leads[i] = torch.from_numpy(a.ecg_leads)
        if a.echo is not None:
            echo[i] = torch.from_numpy(a.echo)
            views[i] = torch.from_numpy(a.echo_views)
        if a.cxr is not None:
            cxr[i, 0] = torch.from_numpy(a.cxr.astype(np.float32))
            cxr_present[i] = True
        present[i] = torch.tensor([m in a.modalities() for m in MODALITIES])
    echo_f = normalise_echo(echo) * views[:, :, None, None, None]
    cxr_f = normalise_cxr(cxr) * cxr_present[:, None, None, None]
    return ModelInputs(
        case_ids=[a.case_id for a in items],
        input_ids=ids,
        attention_mask=att,
        input_lines=lines,
        ecg=ecg,
        ecg_leads=leads,
        echo=echo_f,
        echo_views=views,
        cxr=cxr_f,
        present=present,
    )


def case_to_inputs(
    case: PatientCase, config: ModelConfig | None = None, tokenizer=None
) -> ModelInputs:
    """One case as a batch of one (``config`` defaults to :class:`ModelConfig`)."""
    config = config or ModelConfig()
    return collate([case_to_arrays(case, config, tokenizer)], config)
