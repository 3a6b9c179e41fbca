"""The torchxrayvision DenseNet adapter on a real chest radiograph (pydicom-data's RG1_UNCR),
with a randomly initialised DenseNet saved in torchxrayvision's own formats."""

from __future__ import annotations

import importlib.util
import shutil
import sys

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from fuselens.app.ingest import load_case
from fuselens.model_zoo.adapters import torchxrayvision as adapter
from fuselens.model_zoo.case import PatientCase
from fuselens.model_zoo.contract import GradientModel, check_model, probabilities

xrv = adapter.import_xrv()  # the xrv extra is in the test extra: fail, never skip

NIH_FILE = xrv.models.model_urls["densenet121-res224-nih"]["weights_url"].rsplit("/", 1)[-1]


def random_densenet() -> nn.Module:
    """A random xrv DenseNet (18 default pathologies) whose batch-norm statistics are set from
    one batch, so its logits are moderate rather than saturated."""
    torch.manual_seed(0)
    net = xrv.models.DenseNet(weights=None)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.momentum = 1.0
    net.train()
    with torch.no_grad():
        net(torch.rand(2, 1, 96, 96) * 2048 - 1024)
    for m in norms:
        m.momentum = 0.1
    return net.eval()


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict:
    """The same random model saved as torchxrayvision saves it (the whole model), in torch's
    legacy format under the published NIH file name (with op_threshs), and as a state_dict."""
    folder = tmp_path_factory.mktemp("xrv")
    net = random_densenet()
    whole = folder / "random-densenet.pt"
    torch.save(net, whole)
    net.op_threshs = torch.full((18,), 0.2)
    (folder / "nih").mkdir()
    legacy = folder / "nih" / NIH_FILE
    torch.save(net, legacy, _use_new_zipfile_serialization=False)
    net.op_threshs = None
    state = folder / "state.pt"
    torch.save(net.state_dict(), state)
    return {"whole": whole, "legacy": legacy, "state": state}


@pytest.fixture(scope="module")
def model(weights):
    return adapter.build(weights["whole"], device="cpu")


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> PatientCase:
    from pydicom.data import get_testdata_file

    folder = tmp_path_factory.mktemp("rg1")
    shutil.copy(get_testdata_file("RG1_UNCR.dcm"), folder / "RG1_UNCR.dcm")
    case, reports = load_case(folder)
    assert reports[0].ok and case.cxr is not None
    return case


@pytest.fixture(scope="module")
def batch(model, case):
    return model.prepare([case])


@pytest.fixture(scope="module")
def reference(weights, batch) -> torch.Tensor:
    """torchxrayvision's own raw outputs on xrv.utils.normalize of the prepared image."""
    net = torch.load(weights["whole"], map_location="cpu", weights_only=False).eval()
    assert net.op_threshs is None and not net.apply_sigmoid
    img = xrv.utils.normalize(batch.tensors["cxr"].numpy(), 1)
    with torch.no_grad():
        return net(torch.from_numpy(img))


def test_contract_and_tasks(model, batch):
    assert isinstance(model, GradientModel)
    check_model(model)
    assert list(model.tasks) == list(xrv.datasets.default_pathologies)
    assert all(a == ["no", "yes"] for a in model.tasks.values())
    assert model.modalities == ("cxr",)
    assert "research model" in model.caveat and "not validated for clinical use" in model.caveat
    assert model.device == torch.device("cpu") and not model.training
    assert model.reshape_transform("cxr") is None
    assert model.target_layer("cxr") is model.net.features.norm5
    assert model.target_layer("ecg") is None
    x = batch.tensors["cxr"]
    assert x.shape == (1, 1, 224, 224) and 0.0 <= x.min() and x.max() <= 1.0
    assert bool(batch.present.all())


def test_predict_matches_xrv_raw_output(model, batch, reference):
    with torch.no_grad():
        logits = model.predict(batch)
    probs = probabilities(logits)
    yes = torch.stack([probs[t][:, 1] for t in model.tasks], dim=-1)
    assert torch.allclose(yes, torch.sigmoid(reference), atol=1e-5)
    for i, task in enumerate(model.tasks):
        assert logits[task].shape == (1, 2)
        assert torch.equal(logits[task][:, 0], torch.zeros(1))
        assert torch.allclose(logits[task][:, 1], reference[:, i], atol=1e-4)
    assert ((yes > 0.02) & (yes < 0.98)).any()  # not saturated: a double sigmoid would show
    assert yes.std() > 1e-3


def test_absent_cxr_row_is_not_read(model, case, batch, reference):
    two = model.prepare([case, PatientCase(case_id="no-cxr")])
    assert two.present[:, 0].tolist() == [True, False]
    two.tensors["cxr"][1] = float("nan")  # reading it would spread NaN
    with torch.no_grad():
        logits = model.predict(two)
    for i, task in enumerate(model.tasks):
        assert torch.allclose(logits[task][0, 1], reference[0, i], atol=1e-4)
        assert torch.equal(logits[task][1], torch.zeros(2))  # P(yes) = 0.5
    assert probabilities(logits)["Effusion"][1, 1].item() == pytest.approx(0.5)


def test_gradcam_plusplus_on_target_layer(model, batch):
    class Task(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return model.predict(batch.with_input("cxr", x))["Cardiomegaly"]

    with torch.enable_grad(), GradCAMPlusPlus(Task(), [model.target_layer("cxr")]) as cam:
        maps = cam(batch.tensors["cxr"].clone(), targets=[ClassifierOutputTarget(1)])
    model.zero_grad(set_to_none=True)
    assert maps.shape == (1, 224, 224)
    assert np.isfinite(maps).all() and maps.min() >= 0.0 and maps.max() <= 1.0 + 1e-6
    assert maps.max() > 0.0


def test_published_format_and_labels(weights, batch, reference):
    """xrv's downloaded files: a whole model in torch's legacy format, named by the URL."""
    with pytest.warns(UserWarning, match="weights_only=False"):
        nih = adapter.build(weights["legacy"], device="cpu")
    labels = xrv.models.model_urls["densenet121-res224-nih"]["labels"]
    assert "" in labels
    assert list(nih.tasks) == [p for p in labels if p] and len(nih.tasks) == 14
    assert "densenet121-res224-nih" in nih.caveat
    assert nih.net.op_threshs is None  # raw logits: no sigmoid + op_norm
    with torch.no_grad():
        logits = nih.predict(batch)
    for task in nih.tasks:
        assert torch.allclose(logits[task][:, 1], reference[:, labels.index(task)], atol=1e-4)


def test_state_dict_and_env_var(weights, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("the adapter must never download weights")

    monkeypatch.setattr(xrv.models, "get_weights", no_download)
    monkeypatch.setattr(xrv.utils, "download", no_download)
    monkeypatch.setenv(adapter.WEIGHTS_ENV, str(weights["state"]))
    from_env = adapter.build(device="cpu")
    assert list(from_env.tasks) == list(xrv.datasets.default_pathologies)
    assert "state" in from_env.name
    monkeypatch.delenv(adapter.WEIGHTS_ENV)
    with pytest.raises(ValueError, match=adapter.WEIGHTS_ENV):
        adapter.build()


def test_bad_weights_files_name_the_file(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        adapter.build(missing)
    linear = tmp_path / "linear.pt"
    torch.save(nn.Linear(3, 2).state_dict(), linear)
    with pytest.raises(ValueError, match="linear.pt.*not a torchxrayvision DenseNet"):
        adapter.build(linear)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a torch file")
    with pytest.raises(ValueError, match="garbage.pt"):
        adapter.build(garbage)
    small = tmp_path / "small.pt"
    torch.save(xrv.models.DenseNet(weights=None, num_classes=3).state_dict(), small)
    with pytest.raises(ValueError, match="small.pt: 3 outputs and no pathology names"):
        adapter.build(small)
    named = adapter.build(small, device="cpu", pathologies=["A", "", "C"])
    assert list(named.tasks) == ["A", "C"]


def test_imports_without_the_extra(monkeypatch, weights):
    monkeypatch.setitem(sys.modules, "torchxrayvision", None)
    spec = importlib.util.spec_from_file_location("xrv_adapter_copy", adapter.__file__)
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)  # the module itself never imports torchxrayvision
    with pytest.raises(ImportError, match=r'pip install "fuselens\[xrv\]"'):
        copy.build(weights["whole"])
