"""Training: a tiny run lowers the loss and writes its checkpoint, log and metrics."""

from __future__ import annotations

import json

import torch
from test_model_support import make_case, tiny_config

from fuselens.model_zoo.config import ModelConfig
from fuselens.model_zoo.estimates import EstimateHeads, estimate_loss
from fuselens.model_zoo.inputs import case_to_arrays, collate
from fuselens.model_zoo.loading import load_explainable
from fuselens.model_zoo.registry import load_model
from fuselens.model_zoo.training import TrainingConfig, random_subsets, train_model


def test_random_subsets_are_non_empty_subsets_of_the_present_modalities() -> None:
    present = torch.tensor([[True, False, True, True]] * 200 + [[False, True, False, False]] * 5)
    gen = torch.Generator().manual_seed(0)
    sub = random_subsets(present, gen)
    assert sub.any(dim=1).all() and not (sub & ~present).any()
    assert len({tuple(r) for r in sub[:200].tolist()}) == 7  # every subset of 3 modalities


def test_a_tiny_training_run_lowers_the_loss(tmp_path) -> None:
    cases = [make_case(i, i % 2) for i in range(24)]
    cases += [make_case(100 + i, i % 2, ("ecg", "cxr")) for i in range(8)]
    cfg = TrainingConfig(epochs=4, batch_size=8, lr=3e-3, model=tiny_config())
    result = train_model(cases[:28], cases[28:], cfg, tmp_path, progress=False)
    hist = result.metrics["history"]
    assert hist[-1]["total"] < 0.8 * hist[0]["total"]
    assert hist[-1]["diagnosis"] < hist[0]["diagnosis"]
    reports = result.metrics["report_history"]
    assert len(reports) == cfg.report_epochs and reports[-1] < reports[0]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["train_cases"] == 28 and len(metrics["history"]) == 4
    assert "epoch" in (tmp_path / "train.log").read_text()
    model, config = load_model(tmp_path / "model", device="cpu")
    assert (
        config.report_vocab[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
        and "lbbb" in config.report_vocab
    )
    estimates = result.metrics["estimate_history"]
    assert len(estimates) == cfg.estimate_epochs and estimates[-1] < 0.5 * estimates[0]
    val = result.metrics["val_estimates"]
    assert val["ef"]["n"] == 0 and val["ctr"]["n"] == 4  # the val cases have no echo
    batch = collate([case_to_arrays(c, config, model.tokenizer) for c in cases[22:26]], config)
    ef = model.estimate(batch)["ef"]
    assert not ef[:2].isnan().any() and ef[2:].isnan().all()  # cases 24, 25 have no echo
    card = json.loads((tmp_path / "model" / "card.json").read_text())
    assert set(card["estimate_error"]) == {"ctr"}  # no validation case has an echo
    assert card["estimate_error"]["ctr"]["measured_on"] == "the validation split (4 cases)"
    explainable = load_explainable(tmp_path / "model", device="cpu")
    shown = explainable.estimate(explainable.prepare([cases[30]]))
    assert set(shown) == {"ctr"}
    assert shown["ctr"]["error"].endswith("on the validation split (4 cases)")
    # a second run reuses the preprocessing cache
    again = train_model(cases[:28], cases[28:], cfg, tmp_path, progress=False)
    assert "from cache" in (tmp_path / "train.log").read_text()
    assert again.metrics["history"][-1]["total"] == hist[-1]["total"]


def test_estimate_heads_answer_only_where_their_modality_is_present() -> None:
    torch.manual_seed(0)
    heads = EstimateHeads(["ef", "ctr"], {"echo": 6, "cxr": 4})
    present = torch.tensor([[1, 0, 1, 1], [1, 0, 0, 1], [1, 0, 1, 0]], dtype=torch.bool)
    summaries = {"echo": torch.randn(2, 6), "cxr": torch.randn(2, 4)}  # present rows only
    out = heads(summaries, present)
    assert out["ef"].isnan().tolist() == [False, True, False]
    assert out["ctr"].isnan().tolist() == [False, False, True]
    targets = torch.tensor([[60.0, 0.45], [float("nan"), 0.6], [30.0, float("nan")]])
    loss = estimate_loss(heads.standard(summaries, present), targets)
    assert loss.requires_grad and loss > 0
    nothing = torch.full((3, 2), float("nan"))
    assert not estimate_loss(heads.standard(summaries, present), nothing).requires_grad


def test_a_config_saved_before_estimates_loads_without_them() -> None:
    old = {k: v for k, v in tiny_config().to_dict().items() if k != "estimates"}
    assert ModelConfig.from_dict(old).estimates == []
    assert ModelConfig().estimates == ["ef", "ctr"]
