"""FusionModel: every modality subset, masking of absent modalities, checkpoints, encoders."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch
from test_model_support import make_case, tiny_batch, tiny_config, tiny_model
from torchvision.models import densenet121
from transformers import BertConfig, BertModel, BertTokenizer

from fuselens.model_zoo.case import MODALITIES
from fuselens.model_zoo.encoders.cxr import DenseNetCXREncoder
from fuselens.model_zoo.input_checks import InputError
from fuselens.model_zoo.inputs import case_to_arrays, collate
from fuselens.model_zoo.model import FusionModel
from fuselens.model_zoo.registry import load_model, save_model

SUBSETS = [s for k in range(1, 5) for s in itertools.combinations(MODALITIES, k)]


@pytest.fixture(scope="module")
def model() -> FusionModel:
    return tiny_model()


@pytest.fixture(scope="module")
def batch(model: FusionModel):
    return tiny_batch(model)


def _mask(subset: tuple[str, ...], b: int) -> torch.Tensor:
    return torch.tensor([[m in subset for m in MODALITIES]] * b)


@pytest.mark.parametrize("subset", SUBSETS, ids=["+".join(s) for s in SUBSETS])
def test_forward_on_every_modality_subset(model: FusionModel, batch, subset) -> None:
    with torch.no_grad():
        out = model(batch.with_present(_mask(subset, len(batch))))
    p = out.probabilities["heart_failure"]
    assert p.shape == (3, 2) and torch.isfinite(p).all()
    torch.testing.assert_close(p.sum(-1), torch.ones(3))
    absent = [i for i, m in enumerate(MODALITIES) if m not in subset]
    att = out.modality_attention
    assert torch.isfinite(att).all()
    assert torch.all(att[:, :, absent] == 0)  # nobody attends to an absent modality
    torch.testing.assert_close(att.sum(-1), torch.ones(3, 4))
    assert torch.all(out.gates[:, absent] == 0)
    n_t = model.config.tokens_per_modality
    for i in absent:
        assert not out.fused_mask[:, i * n_t : (i + 1) * n_t].any()
        cols = slice(i * n_t, (i + 1) * n_t)
        assert torch.all(out.guidance_attention[..., cols] == 0)


def test_changing_an_absent_modality_does_not_change_the_output(model: FusionModel, batch) -> None:
    present = _mask(("labs", "echo"), len(batch))
    x = batch.with_present(present)
    noisy = replace(
        x,
        ecg=torch.randn_like(x.ecg).clamp(-5, 5),
        cxr=torch.rand_like(x.cxr),
        ecg_leads=torch.zeros_like(x.ecg_leads),
    )
    with torch.no_grad():
        a, b = model(x), model(noisy)
    for task in model.task_names:
        torch.testing.assert_close(a.logits[task], b.logits[task], rtol=0, atol=0)
    with torch.no_grad():
        c = model(batch)
    assert not torch.allclose(a.logits["heart_failure"], c.logits["heart_failure"])


def test_fuse_on_cached_features_equals_forward(model: FusionModel, batch) -> None:
    with torch.no_grad():
        feats = model.encode(batch)
        direct = model(batch)
        cached = model.fuse({m: f.clone() for m, f in feats.items()}, batch.present)
    torch.testing.assert_close(direct.logits["lbbb"], cached.logits["lbbb"])
    assert set(feats) == set(MODALITIES) and feats["ecg"].shape == (3, 2, 32)


def test_tasks_attention_and_report_are_exposed(model: FusionModel, batch) -> None:
    assert model.tasks["heart_failure"] == ["no", "yes"] and "reduced_ef" in model.tasks
    with torch.no_grad():
        feats = model.encode(batch)
        out = model.fuse(feats, batch.present)
        rep = model.generate_report(feats, batch.present)
    n_tokens = 5 * model.config.tokens_per_modality
    assert out.fused_tokens.shape[1] == n_tokens == len(out.token_labels)
    assert out.guidance_attention.shape[:2] == (3, len(model.task_names))
    assert out.guidance_attention.shape[-1] == n_tokens
    assert len(rep.texts) == 3
    for words, att in zip(rep.words, rep.attention, strict=True):
        assert att.shape == (len(words), len(rep.memory_labels))
    assert rep.memory_labels[-1] == "task:pulmonary_edema"


def test_cam_target_layers_keep_spatial_resolution(model: FusionModel, batch) -> None:
    shapes = {}
    hooks = [
        model.cam_target_layer(m).register_forward_hook(
            lambda _m, _i, o, name=m: shapes.__setitem__(name, tuple(o.shape))
        )
        for m in ("ecg", "echo", "cxr")
    ]
    with torch.no_grad():
        model(batch)
    for h in hooks:
        h.remove()
    assert shapes["ecg"][0] == 3 and shapes["ecg"][2] == 12 and shapes["ecg"][3] > 1
    assert len(shapes["echo"]) == 5 and shapes["echo"][0] == 3 * 3 and shapes["echo"][2] == 4
    assert len(shapes["cxr"]) == 4 and shapes["cxr"][2] > 1
    with pytest.raises(ValueError, match="no convolutional layer"):
        model.cam_target_layer("labs")


def test_save_load_round_trip_gives_identical_outputs(model: FusionModel, batch, tmp_path) -> None:
    save_model(model, tmp_path / "ckpt")
    size = (tmp_path / "ckpt" / "model.safetensors").stat().st_size
    assert size < 12e6  # the frozen MiniLM layers are not stored
    loaded, config = load_model(tmp_path / "ckpt", device="cpu")
    assert config == model.config
    with torch.no_grad():
        a, b = model(batch), loaded(batch)
    for task in model.task_names:
        torch.testing.assert_close(a.logits[task], b.logits[task], rtol=0, atol=0)


def test_input_checks_raise_clear_errors(model: FusionModel, batch) -> None:
    with pytest.raises(InputError, match="ecg: values"):
        model(replace(batch, ecg=batch.ecg * 1000))
    with pytest.raises(InputError, match="echo: expected shape"):
        model(replace(batch, echo=batch.echo[:, :, :2]))
    with pytest.raises(InputError, match="at least one present modality"):
        model(replace(batch, present=torch.zeros_like(batch.present)))
    with pytest.raises(InputError, match="cxr: values"):
        model(replace(batch, cxr=batch.cxr + 10))


def test_a_local_bert_directory_works_as_text_encoder(tmp_path, batch) -> None:
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "of", "the", "patient", "is", "does"]
    (tmp_path / "vocab.txt").write_text("\n".join(words + [f"w{i}" for i in range(40)]) + "\n")
    BertTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(tmp_path)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(1)
    BertModel(cfg).save_pretrained(tmp_path)
    model = FusionModel(tiny_config(text_encoder=str(tmp_path))).eval()
    assert model.encoders["labs"].hidden_size == 32
    trainable = {n for n, p in model.named_parameters() if p.requires_grad and ".bert." in n}
    assert trainable and all(".layer.1." in n for n in trainable)
    x = collate([case_to_arrays(make_case(0, 1), model.config)], model.config)
    assert x.input_ids.max() < 50
    with torch.no_grad():
        out = model(x)
    assert torch.isfinite(out.probabilities["heart_failure"]).all()


def test_torchxrayvision_style_densenet_state_dict_loads(tmp_path) -> None:
    net = densenet121(weights=None, num_classes=18)
    net.features.conv0 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    state = net.state_dict()
    state["op_threshs"] = torch.rand(18)  # torchxrayvision keeps its thresholds in the dict
    torch.save(state, tmp_path / "xrv-densenet121.pth")
    enc = DenseNetCXREncoder(
        d_model=16,
        n_tokens=2,
        n_heads=2,
        n_findings=3,
        weights=str(tmp_path / "xrv-densenet121.pth"),
    )
    torch.testing.assert_close(enc.features.conv0.weight, net.features.conv0.weight)
    torch.testing.assert_close(
        enc.features.denseblock4.denselayer16.conv2.weight,
        net.features.denseblock4.denselayer16.conv2.weight,
    )
    enc.eval()
    with torch.no_grad():
        out = enc(torch.zeros(1, 1, 64, 64))
    assert out.shape == (1, 2, 16)
    torch.save({"classifier.weight": torch.zeros(18, 1024)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a DenseNet121"):
        DenseNetCXREncoder(16, 2, 2, 3, weights=str(tmp_path / "bad.pth"))
