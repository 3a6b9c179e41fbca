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


def _masked_batch(seed: int = 0, n: int = 12):
    from test_model_support import tiny_explainable

    model = tiny_explainable(seed).eval()
    case = make_case(0, 1)
    case.labs.history = "hypertension"
    batch = model.prepare([case])
    ids = batch.tensors["labs"].repeat(n, 1)
    gen = torch.Generator().manual_seed(seed)
    hide = torch.rand(ids.shape, generator=gen) < 0.3
    hide[:, 0] = False
    ids[hide] = model.tokenizer.mask_token_id
    return model, batch.with_input("labs", ids)


def test_line_wise_states_equal_the_whole_texts_states() -> None:
    model, batch = _masked_batch()
    enc, t = model.net.encoders["labs"], batch.tensors
    with torch.no_grad():
        whole = enc(t["labs"], t["labs.mask"], lines=t["labs.lines"])
        line_wise = model.encode(batch, "labs")  # through the model's line-state memo
        again = model.encode(batch, "labs")  # every line from the memo now
    assert len(model._line_states) > 0
    torch.testing.assert_close(line_wise, whole, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(again, line_wise, atol=0.0, rtol=0.0)


def test_the_line_memo_forgets_states_once_a_weight_changes() -> None:
    import copy

    model, batch = _masked_batch()
    with torch.no_grad():
        before = model.encode(batch, "labs")
        twin = copy.deepcopy(model)
        assert len(twin._line_states) == 0  # a copy may be given other weights
        for p in model.net.encoders["labs"].bert.parameters():
            p.mul_(1.5)
        after = model.encode(batch, "labs")
        enc, t = model.net.encoders["labs"], batch.tensors
        whole = enc(t["labs"], t["labs.mask"], lines=t["labs.lines"])
    assert not torch.allclose(before, after, atol=1e-2)
    torch.testing.assert_close(after, whole, atol=1e-3, rtol=1e-3)  # float32 round-off
