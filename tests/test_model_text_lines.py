"""Line attention in the lab-text encoder: each lab line's token states depend on that line
alone, so hiding one line's words changes no other line's states."""

from __future__ import annotations

import pytest
import torch
from test_model_support import make_case, tiny_config

from fuselens.model_zoo.config import ModelConfig
from fuselens.model_zoo.inputs import case_to_inputs
from fuselens.model_zoo.model import FusionModel


def _states_after_hiding(line_attention: bool, hidden_line: int) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(0)
    model = FusionModel(tiny_config(text_line_attention=line_attention)).eval()
    case = make_case(0, 1)
    case.labs.history = "hypertension"
    x = case_to_inputs(case, model.config, model.tokenizer)
    enc = model.encoders["labs"]

    def states(ids: torch.Tensor) -> torch.Tensor:
        frozen = enc.frozen_states(ids, x.attention_mask, x.input_lines)
        with torch.no_grad():
            return enc.trainable_states(frozen, x.attention_mask, x.input_lines)[0]

    masked = x.input_ids.clone()
    masked[x.input_lines == hidden_line] = model.tokenizer.mask_token_id
    return states(x.input_ids), states(masked), x.input_lines[0]


@pytest.mark.parametrize("hidden_line", [0, 1, 2])
def test_hiding_a_line_leaves_every_other_lines_states_unchanged(hidden_line: int) -> None:
    full, hidden, lines = _states_after_hiding(True, hidden_line)
    change = (full - hidden).abs().amax(-1)
    assert change[lines != hidden_line].max() < 1e-5
    assert change[lines == hidden_line].min() > 1e-2


def test_without_line_attention_the_lines_mix() -> None:
    full, hidden, lines = _states_after_hiding(False, 1)
    change = (full - hidden).abs().amax(-1)
    assert change[lines == 0].max() > 1e-2


def test_a_config_saved_before_line_attention_loads_without_it(tmp_path) -> None:
    old = ModelConfig().to_dict()
    del old["text_line_attention"]
    assert ModelConfig.from_dict(old).text_line_attention is False
    saved = tmp_path / "config.json"
    ModelConfig().save(saved)
    assert ModelConfig.load(saved).text_line_attention is True
