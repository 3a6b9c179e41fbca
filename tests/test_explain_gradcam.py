"""Grad-CAM++ through the shared path: the library's weights on 1-D and video activations,
map shapes on the model grid, and the mapping back to each case's own geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAMPlusPlus
from test_model_support import make_case, tiny_explainable

from fuselens.explain.context import CaseContext
from fuselens.explain.geometry import cxr_to_native, ecg_to_native, echo_to_native
from fuselens.explain.methods import REGISTRY
from fuselens.model_zoo.case import ECG, STANDARD_LEADS, EchoCine
from fuselens.model_zoo.fusion_explainable import echo_views_to_depth

GRADCAM_PP = REGISTRY["gradcam_pp"]


def gradcam_plusplus(ctx: CaseContext, modality: str) -> np.ndarray:
    """The registered Grad-CAM++ map of one modality (shaped like its model input)."""
    return GRADCAM_PP.attribute(ctx, modality)


def hand_gradcampp_weights(acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM++ channel weights (Chattopadhay et al., Eq. 19) with explicit loops over
    every spatial position of every (sample, channel)."""
    b, c = acts.shape[:2]
    out = np.zeros((b, c))
    for i in range(b):
        for k in range(c):
            a, g = acts[i, k].ravel(), grads[i, k].ravel()
            total = a.sum()
            w = 0.0
            for gij in g:
                if gij == 0:
                    continue
                alpha = gij**2 / (2 * gij**2 + total * gij**3 + 1e-6)
                w += alpha * max(gij, 0.0)
            out[i, k] = w
    return out


@pytest.mark.parametrize("shape", [(2, 3, 1, 17), (1, 4, 3, 5, 6)], ids=["1d-as-2d", "video"])
def test_gradcampp_weights_sum_over_every_spatial_axis(shape) -> None:
    rng = np.random.default_rng(0)
    acts = np.maximum(rng.normal(size=shape), 0).astype(np.float32)
    grads = rng.normal(size=shape).astype(np.float32)
    grads[..., 0] = 0.0  # zero gradients must drop out
    cam = GradCAMPlusPlus(torch.nn.Linear(1, 1), [])
    got = cam.get_cam_weights(None, None, None, acts, grads)
    assert got.shape == shape[:2]
    np.testing.assert_allclose(got, hand_gradcampp_weights(acts, grads), rtol=1e-4, atol=1e-6)


def test_echo_reshape_transform_stacks_views_in_depth() -> None:
    b, v, c, f, h, w = 2, 3, 4, 5, 2, 2
    t = torch.arange(b * v * c * f * h * w, dtype=torch.float32).reshape(b * v, c, f, h, w)
    out = echo_views_to_depth(v)(t)
    assert out.shape == (b, c, v * f, h, w)
    torch.testing.assert_close(out[1, 2, 2 * f + 3], t[1 * v + 2, 2, 3])


@pytest.fixture(scope="module")
def ctx() -> CaseContext:
    return CaseContext.build(tiny_explainable(0), make_case(1, 1))


def test_cams_are_shaped_like_the_model_inputs_in_unit_range(ctx) -> None:
    cfg = ctx.model.config
    for m in ("ecg", "echo", "cxr"):
        assert GRADCAM_PP.unavailable(ctx, m) is None
    ecg = gradcam_plusplus(ctx, "ecg")
    echo = gradcam_plusplus(ctx, "echo")
    cxr = gradcam_plusplus(ctx, "cxr")
    assert ecg.shape == (1, 12, 2500) == ctx.modality_input("ecg").shape[1:]
    assert echo.shape == (3, cfg.echo_frames, cfg.echo_size, cfg.echo_size)
    assert cxr.shape == (1, cfg.cxr_size, cfg.cxr_size)
    for m in (ecg, echo, cxr):
        assert m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1
        assert m.max() > 0.99  # normalised to its peak
    assert not echo[2].any(), "the missing PLAX view must carry no attribution"
    assert echo[:2].max() > 0.99


def test_other_modalities_come_from_the_cache(ctx, monkeypatch) -> None:
    calls = []
    for name in ("labs", "echo", "cxr"):
        enc = ctx.model.net.encoders[name]
        monkeypatch.setattr(enc, "forward", lambda *a, n=name, **k: calls.append(n))
    gradcam_plusplus(ctx, "ecg")
    assert calls == []


def test_gradcam_rejects_labs_and_absent_modalities() -> None:
    c = CaseContext.build(tiny_explainable(0), make_case(2, 0, ("labs", "ecg")))
    assert "does not apply to labs" in GRADCAM_PP.unavailable(c, "labs")
    assert c.model.target_layer("labs") is None
    with pytest.raises(ValueError, match="not present"):
        gradcam_plusplus(c, "cxr")


def test_ecg_map_returns_to_native_lead_order_and_rate() -> None:
    order = ["V6", "I", "aVR", "II"]
    sig = np.zeros((4, 3000), dtype=np.float32)  # 1000 Hz, 3 s: only 3 s of the 10 s grid
    ecg = ECG(sig, 1000.0, order)
    cam = np.zeros((12, 2500), dtype=np.float32)
    for i in range(12):
        cam[i] = i / 11.0
    cam[STANDARD_LEADS.index("I")] = 0.0
    cam[STANDARD_LEADS.index("I"), :500] = 1.0  # lead I hot only in its first 2 s (250 Hz)
    out = ecg_to_native(cam, ecg)
    assert out.shape == (4, 3000)
    for row, name in enumerate(order):
        if name != "I":
            np.testing.assert_allclose(out[row], STANDARD_LEADS.index(name) / 11.0, atol=1e-6)
    i_row = out[order.index("I")]
    assert i_row[:1990].min() == 1.0 and i_row[2010:].max() == 0.0  # 2 s = sample 2000


def test_ecg_map_beyond_the_model_window_is_zero() -> None:
    ecg = ECG(np.zeros((12, 6000), dtype=np.float32), 500.0, list(STANDARD_LEADS))
    out = ecg_to_native(np.ones((12, 2500), dtype=np.float32), ecg)
    assert out.shape == (12, 6000)
    assert out[:, :4990].min() == 1.0 and out[:, 5000:].max() == 0.0


def test_echo_and_cxr_maps_return_to_stored_geometry() -> None:
    cine = EchoCine(np.zeros((10, 48, 40), dtype=np.uint8), 30.0, view="A4C")
    cam = np.zeros((4, 32, 32), dtype=np.float32)
    cam[:, :16, :] = 1.0  # top half hot in every sampled frame
    cam[3] = 0.0  # the last sampled frame (stored frame 9) cold
    out = echo_to_native(cam, cine)
    assert out.shape == (10, 48, 40)
    assert out[0, :20].min() > 0.99 and out[0, 28:].max() < 0.01
    assert out[9].max() == 0.0
    assert 0.0 < out[8, 0, 0] < 1.0  # between sampled frames 6 and 9: interpolated
    from fuselens.model_zoo.case import CXR

    img = CXR(np.zeros((90, 120), dtype=np.float32))
    cmap = np.zeros((64, 64), dtype=np.float32)
    cmap[:, 32:] = 1.0
    native = cxr_to_native(cmap, img)
    assert native.shape == (90, 120)
    assert native[:, :55].max() < 0.01 and native[:, 65:].min() > 0.99


def test_uncached_baseline_computes_the_same_maps_and_scores(ctx) -> None:
    naive = CaseContext.build(ctx.model, ctx.case, cached=False)
    x = ctx.modality_input("ecg").repeat(3, 1, 1, 1) * 0.5
    torch.testing.assert_close(naive.scores("ecg", x), ctx.scores("ecg", x))
    np.testing.assert_allclose(
        gradcam_plusplus(naive, "cxr"), gradcam_plusplus(ctx, "cxr"), atol=1e-4
    )
