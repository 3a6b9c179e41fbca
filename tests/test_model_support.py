"""In-memory PatientCase builders and tiny configs for the model tests (plus their own checks)."""

from __future__ import annotations

import numpy as np
import torch

from fuselens.model_zoo.case import (
    CXR,
    ECG,
    MODALITIES,
    STANDARD_LEADS,
    EchoCine,
    GroundTruth,
    LabItem,
    Labs,
    PatientCase,
)
from fuselens.model_zoo.config import ModelConfig
from fuselens.model_zoo.fusion_explainable import DEMO_CAVEAT, FusionExplainable
from fuselens.model_zoo.inputs import ModelInputs, case_to_arrays, collate
from fuselens.model_zoo.model import FusionModel
from fuselens.model_zoo.synth.reports import HEADERS

TINY_PREVALENCE = {"heart_failure": {"no": 0.6, "yes": 0.4}}
"""The answer prevalence :func:`tiny_explainable` states (the modality-Shapley baseline)."""


def tiny_config(**overrides) -> ModelConfig:
    """A model small enough for unit tests (seconds on CPU)."""
    base = dict(
        d_model=32,
        n_heads=2,
        tokens_per_modality=2,
        dropout=0.0,
        text_max_tokens=64,
        ecg_channels=[4, 8, 8, 8],
        echo_frames=4,
        echo_size=32,
        echo_channels=[4, 4, 8, 8],
        cxr_size=64,
        cxr_channels=[4, 4, 8, 8],
        prompt_learnable_tokens=2,
        report_layers=1,
        report_max_words=24,
        contrastive_dim=16,
        report_vocab=["<pad>", "<bos>", "<eos>", "<unk>", ".", "ecg", "lbbb", "normal"],
    )
    base.update(overrides)
    return ModelConfig(**base)


def make_case(
    index: int, hf: int, modalities: tuple[str, ...] = MODALITIES, seed: int = 0
) -> PatientCase:
    """A small case whose signals carry the label (ECG amplitude, echo motion, CXR blob, labs)."""
    rng = np.random.default_rng([seed, index])
    case = PatientCase(case_id=f"T{index:04d}")
    if "labs" in modalities:
        bnp = float(rng.uniform(900, 5000) if hf else rng.uniform(20, 300))
        case.labs = Labs(
            items=[
                LabItem("NT-proBNP", round(bnp), "pg/mL", None, 125),
                LabItem("Sodium", round(float(rng.normal(138, 2))), "mmol/L", 135, 145),
            ],
            history="hypertension" if rng.random() < 0.5 else "",
        )
    if "ecg" in modalities:
        t = np.arange(5000) / 500.0
        beat = np.sin(2 * np.pi * 1.2 * t) ** 20 * (1.5 if hf else 0.8)
        sig = beat[None] + 0.02 * rng.normal(size=(12, t.size))
        case.ecg = ECG(sig.astype(np.float32), 500.0, list(STANDARD_LEADS))
    if "echo" in modalities:
        frames = rng.integers(0, 40, (10, 48, 48)).astype(np.uint8)
        for f in range(10):
            r = 8 + (1 if hf else 6) * np.sin(np.pi * f / 9)
            yy, xx = np.mgrid[:48, :48]
            frames[f][(yy - 24) ** 2 + (xx - 24) ** 2 < r**2] = 200
        case.echo = {v: EchoCine(frames.copy(), 30.0, view=v) for v in ("A4C", "A2C")}
    if "cxr" in modalities:
        img = rng.random((96, 96)).astype(np.float32) * 0.2
        w = 30 if hf else 15
        img[40:70, 48 - w // 2 : 48 + w // 2] = 0.9
        case.cxr = CXR(img)
    case.truth = GroundTruth(
        labels={"heart_failure": hf},
        findings={"labs": ["raised_ntprobnp"] if hf else [], "ecg": ["lbbb"] if hf else []},
        report="ECG lbbb." if hf else "ECG normal.",
        measurements={
            "ef": float(rng.uniform(20, 35) if hf else rng.uniform(58, 68)),
            "ctr": float(rng.uniform(0.56, 0.62) if hf else rng.uniform(0.42, 0.46)),
        },
    )
    case.validate()
    return case


def tiny_model(seed: int = 0) -> FusionModel:
    """A :func:`tiny_config` model with seeded random weights, in eval mode."""
    torch.manual_seed(seed)
    return FusionModel(tiny_config()).eval()


def tiny_explainable(
    seed: int = 0, name: str = "tiny", prevalence: bool = True, **overrides
) -> FusionExplainable:
    """A :func:`tiny_config` model (``overrides`` to the config) with seeded random weights
    behind the model contract, with the demo caveat, :data:`TINY_PREVALENCE` (unless
    ``prevalence`` is False) and the synthetic reports' headings."""
    torch.manual_seed(seed)
    net = FusionModel(tiny_config(**overrides)).eval()
    return FusionExplainable(
        net,
        name=name,
        caveat=DEMO_CAVEAT,
        answer_prevalence=TINY_PREVALENCE if prevalence else None,
        report_headings=dict(HEADERS),
    ).eval()


def tiny_batch(model: FusionModel, n: int = 3) -> ModelInputs:
    """``n`` :func:`make_case` cases (labels alternating) as one batch for ``model``."""
    cases = [make_case(i, i % 2) for i in range(n)]
    return collate([case_to_arrays(c, model.config) for c in cases], model.config)


def test_make_case_is_valid_and_reproducible() -> None:
    a, b = make_case(3, 1), make_case(3, 1)
    assert a.modalities() == list(MODALITIES)
    np.testing.assert_array_equal(a.ecg.signal, b.ecg.signal)
    assert make_case(4, 0, ("ecg",)).modalities() == ["ecg"]
