"""Evaluation metrics against known values."""

from __future__ import annotations

import numpy as np
import pytest

from fuselens.model_zoo.evaluation import retrieval_metrics
from fuselens.model_zoo.metrics import bleu4, bootstrap_ci, finding_f1, rouge_l
from fuselens.model_zoo.report import Vocabulary, join_words, split_words


def test_bleu4_and_rouge_l_known_values() -> None:
    assert bleu4(["the cat sat on the mat ."], ["the cat sat on the mat ."]) == pytest.approx(1.0)
    assert bleu4(["a b c"], ["x y z w"]) == pytest.approx(0.0)
    # LCS "the cat on the mat" = 5 of 6 words each way
    assert rouge_l(["the cat is on the mat"], ["the cat sat on the mat"]) == pytest.approx(5 / 6)


def test_finding_f1_counts_pairs() -> None:
    truth = [{"lbbb"}, {"lbbb", "cardiomegaly"}, set()]
    pred = [{"lbbb"}, {"cardiomegaly"}, {"lbbb"}]
    out = finding_f1(truth, pred, ["lbbb", "cardiomegaly"])
    assert out["micro_precision"] == pytest.approx(2 / 3)
    assert out["micro_recall"] == pytest.approx(2 / 3)
    assert out["per_finding"]["cardiomegaly"] == pytest.approx(1.0)


def test_bootstrap_interval_contains_the_estimate() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = y * 0.3 + rng.random(400) * 0.7
    acc = lambda yy, pp: float(((pp >= 0.5) == yy).mean())  # noqa: E731
    lo, hi = bootstrap_ci(acc, y, p, n_boot=300)
    assert lo < acc(y, p) < hi and hi - lo < 0.15


def test_retrieval_perfect_and_chance() -> None:
    emb = np.eye(5)
    present = np.ones((5, 4), bool)
    rows = retrieval_metrics({m: emb for m in ("labs", "ecg", "echo", "cxr")}, present)
    assert len(rows) == 12 and all(r["recall_at_1"] == 1.0 and r["lrap"] == 1.0 for r in rows)


def test_report_vocabulary_round_trip() -> None:
    text = "ECG: left bundle branch block, QRS 150 ms. Echo: EF 30%."
    vocab = Vocabulary.build([text])
    ids = vocab.encode(text, 50)
    assert (
        join_words(vocab.decode(ids)) == "Ecg: left bundle branch block, qrs 150 ms. Echo: ef 30%."
    )
    assert split_words("EF 30%.") == ["ef", "30%", "."]
