"""Finding maps: never negative, the Grad-CAM++ layer, the convolutional encoders' finding
logits are their means (plus a bias), every token path goes through them, and the finding
loss counts only known labels."""

from __future__ import annotations

import pytest
import torch
from test_model_support import tiny_batch, tiny_model

from fuselens.model_zoo.encoders.finding_maps import FindingMaps, FindingOutput, masked_mean
from fuselens.model_zoo.losses import finding_loss
from fuselens.model_zoo.model import CAM_ENCODERS, FusionModel
from fuselens.model_zoo.synth.vocab import FINDINGS


@pytest.fixture(scope="module")
def model() -> FusionModel:
    return tiny_model()


@pytest.fixture(scope="module")
def batch(model: FusionModel):
    return tiny_batch(model)


def _maps(model: FusionModel, modality: str, batch) -> torch.Tensor:
    seen = []
    hook = model.encoders[modality].findings.register_forward_hook(lambda _m, _i, o: seen.append(o))
    with torch.no_grad():
        _, findings = model.encode_with_findings(batch)
    hook.remove()
    return seen[0], findings[modality][1]


def test_each_modality_has_one_map_per_finding_task(model: FusionModel) -> None:
    for m in CAM_ENCODERS:
        assert model.finding_tasks[m] == list(FINDINGS[m])
        assert model.encoders[m].findings.n_findings == len(FINDINGS[m])


def test_masked_mean_skips_invalid_cells() -> None:
    x = torch.tensor([[[0.0, 1.0, 5.0, 100.0]]])
    valid = torch.tensor([[[True, True, True, False]]])
    assert masked_mean(x, valid, (2,)).item() == 2.0
    assert masked_mean(x, torch.zeros_like(valid), (2,)).item() == 0.0


def test_ecg_maps_are_zero_where_the_receptive_field_leaves_the_strip(
    model: FusionModel, batch
) -> None:
    maps, _ = _maps(model, "ecg", batch)
    edge = model.encoders["ecg"].findings.edge_cells
    assert edge == 8  # half of a 239-sample receptive field, in 16-sample cells
    assert not maps[..., :edge].any() and not maps[..., -edge:].any()
    assert (maps[..., edge:-edge] > 0).all()


def test_finding_maps_are_never_negative_and_are_the_cam_layer(model: FusionModel) -> None:
    torch.manual_seed(0)
    maps = FindingMaps(4, 3, 3)
    out = maps(torch.randn(2, 4, 5, 6, 7) * 10)
    assert out.shape == (2, 3, 5, 6, 7) and (out >= 0).all() and (out < 1e-3).any()
    for m in CAM_ENCODERS:
        assert model.cam_target_layer(m) is model.encoders[m].findings


def test_ecg_and_cxr_logits_pool_their_maps(model: FusionModel, batch) -> None:
    maps, logits = _maps(model, "cxr", batch)
    bias = model.encoders["cxr"].findings.logit_bias.detach().double()
    for i in range(maps.shape[0]):
        for k in range(maps.shape[1]):
            expected = maps[i, k].double().mean() + bias[k]
            torch.testing.assert_close(logits[i, k].double(), expected)
    maps, logits = _maps(model, "ecg", batch)
    bias = model.encoders["ecg"].findings.logit_bias.detach().double()
    for i in range(maps.shape[0]):
        present = batch.ecg_leads[i]
        for k in range(maps.shape[1]):
            edge = model.encoders["ecg"].findings.edge_cells
            expected = maps[i, k][present][:, edge:-edge].double().mean() + bias[k]
            torch.testing.assert_close(logits[i, k].double(), expected)


def test_echo_logits_average_present_views_only(model: FusionModel, batch) -> None:
    enc = model.encoders["echo"]
    maps, logits = _maps(model, "echo", batch)
    b, v = batch.echo_views.shape
    per_frame = maps.mean(dim=(3, 4))
    per_view = per_frame.mean(-1) + enc.motion_weight * per_frame.std(-1, unbiased=False)
    per_view = per_view.reshape(b, v, -1)
    for i in range(b):
        present = batch.echo_views[i]
        expected = per_view[i, present].mean(0) + enc.findings.logit_bias
        torch.testing.assert_close(logits[i], expected)


@pytest.mark.parametrize("modality", CAM_ENCODERS)
def test_tokens_see_the_input_only_through_the_finding_maps(
    model: FusionModel, batch, modality: str
) -> None:
    enc = model.encoders[modality]
    x = getattr(batch, modality)
    extra = {"ecg": (batch.ecg_leads,), "echo": (batch.echo_views,), "cxr": ()}[modality]
    weight = enc.findings.conv.weight
    saved = weight.detach().clone()
    try:
        with torch.no_grad():
            before = enc(x, *extra)
            changed = enc(x.flip(-1) * 2.0 + 0.5, *extra)
            assert not torch.allclose(before, changed)
            weight.zero_()  # the maps are then softplus(bias), whatever the input
            a = enc(x, *extra)
            c = enc(x.flip(-1) * 2.0 + 0.5, *extra)
        torch.testing.assert_close(a, c)
    finally:
        with torch.no_grad():
            weight.copy_(saved)


def test_finding_loss_ignores_unknown_labels_and_rewards_right_logits() -> None:
    tasks = ["heart_failure", "lbbb", "atrial_fibrillation", "lateral_st_t"]
    labels = torch.tensor([[1, 1, 0, -1], [0, 0, 1, 0], [1, -1, -1, -1]])
    rows = torch.tensor([0, 1, 2])
    right = torch.tensor([[5.0, -5.0, 0.0], [-5.0, 5.0, -5.0], [0.0, 0.0, 0.0]])
    ecg = ["lbbb", "atrial_fibrillation", "lateral_st_t"]
    maps = torch.zeros(3, 3, 12, 4)

    def out(logits: torch.Tensor) -> dict[str, FindingOutput]:
        return {"ecg": FindingOutput(rows, logits, maps)}

    loss_right = finding_loss(out(right), {"ecg": ecg}, labels, tasks)
    loss_wrong = finding_loss(out(-right), {"ecg": ecg}, labels, tasks)
    assert loss_right < 0.01 < 4.0 < loss_wrong
    unknown_only = torch.full_like(right, 100.0)
    unknown_only[:2] = right[:2]
    same = finding_loss(out(unknown_only), {"ecg": ecg}, labels, tasks)
    torch.testing.assert_close(same, loss_right)
