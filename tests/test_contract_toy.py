"""The model contract on a toy two-modality model (no MiniLM), checked against values worked
out by hand, as captum's ``basic_models`` tests do; and every registered map method on the
toy model, on the demo ``FusionModel`` and on the torchxrayvision adapter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_model_support import make_case, tiny_model
from torch import nn

from fuselens import Batch, ExplainableModel, GradientModel, capabilities, standard_batch
from fuselens.explain.context import CaseContext
from fuselens.explain.methods import REGISTRY
from fuselens.explain.modalities import CXR_CELLS
from fuselens.explain.pipeline import explain_case
from fuselens.model_zoo.case import CXR, ECG, PatientCase
from fuselens.model_zoo.contract import check_model
from fuselens.model_zoo.fusion_explainable import FusionExplainable
from fuselens.model_zoo.synth.reports import HEADERS

W_ECG, W_CXR, BIAS = 2.0, 3.0, -0.5
SIDE = 32


class Toy(nn.Module):
    """z = W_ECG * mean(ECG) + W_CXR * mean(CXR) + BIAS over the present modalities, through
    1x1 identity convolutions (the Grad-CAM target layers). ``finding`` logits ``[0, z]``,
    ``grade`` logits ``[z, 0, -z]``."""

    name = "toy"
    caveat = "Toy model for tests."
    tasks = {"finding": ["no", "yes"], "grade": ["a", "b", "c"]}
    modalities = ("ecg", "cxr")

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.ModuleDict({m: nn.Conv2d(1, 1, 1, bias=False) for m in self.modalities})
        for c in self.conv.values():
            nn.init.ones_(c.weight)
        self.answer_prevalence = {"finding": {"yes": 1 / (1 + math.exp(-BIAS))}}

    @property
    def device(self) -> torch.device:
        return self.conv["ecg"].weight.device

    def prepare(self, cases) -> Batch:
        return standard_batch(cases, self.modalities, cxr_size=SIDE)

    def predict(self, batch: Batch) -> dict[str, torch.Tensor]:
        z = torch.full((len(batch),), BIAS)
        for i, (m, w) in enumerate(zip(self.modalities, (W_ECG, W_CXR), strict=True)):
            z = z + w * self.conv[m](batch.tensors[m]).mean(dim=(1, 2, 3)) * batch.present[:, i]
        zero = torch.zeros_like(z)
        return {
            "finding": torch.stack([zero, z], 1),
            "grade": torch.stack([z, zero, -z], 1),
        }

    def target_layer(self, modality: str) -> nn.Module:
        return self.conv[modality]

    def reshape_transform(self, modality: str):
        return None


def toy_case() -> PatientCase:
    """Six limb leads at 500 Hz (the chest leads missing) and a radiograph with a bright
    square in its upper left."""
    rng = np.random.default_rng(3)
    t = np.arange(5000) / 500.0
    signal = np.stack([0.3 * np.sin(2 * np.pi * (k + 1) * t) for k in range(6)]).astype(np.float32)
    image = rng.uniform(0.1, 0.3, (64, 64)).astype(np.float32)
    image[4:20, 4:20] = 0.9
    return PatientCase(
        case_id="toy-1",
        ecg=ECG(signal, 500.0, ["I", "II", "III", "aVR", "aVL", "aVF"]),
        cxr=CXR(image, "PA"),
    )


@pytest.fixture(scope="module")
def toy():
    return Toy().eval(), toy_case()


def test_toy_meets_the_contract_tiers(toy):
    model, _ = toy
    check_model(model)
    assert isinstance(model, ExplainableModel) and isinstance(model, GradientModel)
    caps = capabilities(model)
    assert caps["gradients"] and not caps["cached_features"] and not caps["attention"]
    assert not caps["report"] and not caps["text"]


def test_prediction_is_the_hand_computed_logit(toy):
    model, case = toy
    batch = model.prepare([case])
    e = float(batch.tensors["ecg"].mean())
    c = float(batch.tensors["cxr"].mean())
    z = W_ECG * e + W_CXR * c + BIAS
    bundle = explain_case(model, case, "finding", "yes")
    assert bundle.probability == pytest.approx(1 / (1 + math.exp(-z)), abs=1e-6)
    grade = bundle.prediction["grade"]["probabilities"]
    norm = math.exp(z) + 1 + math.exp(-z)
    assert grade["a"] == pytest.approx(math.exp(z) / norm, abs=1e-6)
    assert bundle.prediction["grade"]["answer"] == ("a" if z > 0 else "c")


def test_modality_shapley_is_each_additive_term(toy):
    """With f(empty) = BIAS (the stated prevalence), an additive model's Shapley values are
    its terms, W * mean, and their interaction is zero."""
    model, case = toy
    batch = model.prepare([case])
    bundle = explain_case(model, case, "finding", "yes")
    sh = bundle.shapley
    assert sh.base_value == pytest.approx(BIAS, abs=1e-6)
    assert sh.values["ecg"] == pytest.approx(W_ECG * float(batch.tensors["ecg"].mean()), abs=1e-5)
    assert sh.values["cxr"] == pytest.approx(W_CXR * float(batch.tensors["cxr"].mean()), abs=1e-5)
    assert abs(sh.interactions[0, 1]) < 1e-5 and sh.efficiency_error < 1e-9
    assert "prevalence" in sh.baseline
    other = explain_case(model, case, "grade", "b")  # no prevalence stated: uniform prior
    assert other.shapley.base_value == pytest.approx(math.log(1 / 3 / (2 / 3)), abs=1e-6)
    assert "uniform" in other.shapley.baseline


def _heat(a: np.ndarray) -> np.ndarray:
    a = np.clip(a, 0, None)
    return a / a.max()


def test_occlusion_is_each_cells_drop_in_log_odds(toy):
    """Occluding a CXR cell (to the image mean mu) lowers z by W * sum(cell - mu) / N."""
    model, case = toy
    ctx = CaseContext.build(model, case, "finding", "yes")
    x = ctx.modality_input("cxr")[0, 0].numpy().astype(np.float64)
    mu, cell = x.mean(), SIDE // CXR_CELLS
    drop = (x - mu).reshape(CXR_CELLS, cell, CXR_CELLS, cell).sum(axis=(1, 3)) * W_CXR / x.size
    expected = _heat(np.kron(drop, np.ones((cell, cell))))
    got = REGISTRY["occlusion"].attribute(ctx, "cxr")[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_integrated_gradients_is_exact_on_a_linear_model(toy):
    """IG from the mean image: (x - mu) * W / N per pixel, exact for a linear model."""
    model, case = toy
    ctx = CaseContext.build(model, case, "finding", "yes")
    x = ctx.modality_input("cxr")[0, 0].numpy().astype(np.float64)
    expected = _heat((x - x.mean()) * W_CXR / x.size)
    got = REGISTRY["integrated_gradients"].attribute(ctx, "cxr")[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_gradcam_pp_on_an_identity_layer_is_the_min_max_image(toy):
    """One channel, activations = the input, constant positive gradient: Grad-CAM++ is the
    input min-max scaled (pytorch-grad-cam's own scaling)."""
    model, case = toy
    ctx = CaseContext.build(model, case, "finding", "yes")
    x = ctx.modality_input("cxr")[0, 0].numpy().astype(np.float64)
    got = REGISTRY["gradcam_pp"].attribute(ctx, "cxr")[0]
    np.testing.assert_allclose(got, (x - x.min()) / (x.max() - x.min()), atol=1e-4)


def test_missing_leads_get_no_map_and_maps_return_to_the_case_geometry(toy):
    model, case = toy
    bundle = explain_case(model, case, "finding", "yes", methods=list(REGISTRY))
    for method, maps in bundle.maps.items():
        assert maps.ecg.shape == case.ecg.signal.shape, method
        assert maps.ecg_leads == case.ecg.lead_names and maps.ecg_rate_hz == 500.0
        assert maps.cxr.shape == case.cxr.image.shape, method
        assert maps.cxr[4:20, 4:20].mean() > maps.cxr[40:, 40:].mean(), method
    ctx = CaseContext.build(model, case, "finding", "yes")
    raw = REGISTRY["occlusion"].attribute(ctx, "ecg")
    assert raw[0, 6:].max() == 0.0 and raw[0, :6].max() > 0.0  # V1-V6 absent
    assert set(bundle.unavailable) == {"attention", "report"}


class Predictor:
    """Tier 1 only: the toy's prediction, no gradients, no target layers (not a Module)."""

    name = "toy-predictor"
    caveat = "Tier-1 toy."
    tasks = Toy.tasks
    modalities = Toy.modalities
    device = torch.device("cpu")

    def __init__(self) -> None:
        self.toy = Toy().eval()

    def prepare(self, cases) -> Batch:
        return self.toy.prepare(cases)

    @torch.no_grad()
    def predict(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.toy.predict(batch)


def test_a_tier_one_model_gets_occlusion_and_shapley_and_says_why_not_the_rest(toy):
    _, case = toy
    model = Predictor()
    assert isinstance(model, ExplainableModel) and not isinstance(model, GradientModel)
    bundle = explain_case(model, case, "finding", "yes", methods=list(REGISTRY))
    assert bundle.maps["occlusion"].cxr is not None and bundle.maps["occlusion"].ecg is not None
    assert bundle.maps["gradcam_pp"].cxr is None
    assert "no target layer" in bundle.unavailable["gradcam_pp:cxr"]
    assert "not a differentiable" in bundle.unavailable["integrated_gradients:ecg"]
    assert bundle.shapley is not None and bundle.shapley.efficiency_error < 1e-9


def _models():
    tiny = tiny_model(0)
    yield "fusion", FusionExplainable(tiny, "tiny", "tiny caveat", None, dict(HEADERS)), None
    yield "toy", Toy().eval(), toy_case()


@pytest.mark.parametrize("method", sorted(REGISTRY))
def test_every_method_runs_on_the_toy_and_the_fusion_model(method):
    for label, model, case in _models():
        case = case or make_case(7, hf=True)
        ctx = CaseContext.build(model, case)
        for modality in ctx.modalities:
            if REGISTRY[method].unavailable(ctx, modality) is not None:
                continue
            a = REGISTRY[method].attribute(ctx, modality)
            assert a.shape == ctx.modality_input(modality).shape[1:], (label, modality)
            assert np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1 + 1e-6
            assert a.max() > 0, (label, method, modality)


def test_every_method_runs_on_the_torchxrayvision_adapter(tmp_path, testdata):
    xrv = pytest.importorskip("torchxrayvision")
    import shutil

    from fuselens.app.ingest import load_case
    from fuselens.model_zoo.adapters.torchxrayvision import build

    torch.manual_seed(0)
    net = xrv.models.DenseNet(weights=None)
    path = tmp_path / "xrv.pt"
    torch.save(net.state_dict(), path)
    model = build(str(path))
    folder = tmp_path / "case"
    folder.mkdir()
    shutil.copy(testdata("RG1_UNCR.dcm"), folder / "cxr.dcm")
    case, _ = load_case(folder)
    ctx = CaseContext.build(model, case, model_task(model))
    for name, method in REGISTRY.items():
        assert method.unavailable(ctx, "cxr") is None, name
        a = method.attribute(ctx, "cxr")
        assert a.shape == (1, 224, 224) and np.isfinite(a).all(), name


def model_task(model) -> str:
    return next(iter(model.tasks))
