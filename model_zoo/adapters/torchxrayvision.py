"""torchxrayvision's DenseNet behind the model contract (tier 2), an optional extra.

``pip install "fuselens[xrv]"``, then ``--model fuselens.model_zoo.adapters.torchxrayvision:build``
with ``FUSELENS_XRV_WEIGHTS`` set to a local weights file. FuseLens never downloads weights:
fetch them with torchxrayvision yourself (``xrv.models.DenseNet(weights="densenet121-res224-all")``
caches its file under ``~/.torchxrayvision/models_data/``) and point the path at that file.

Weights files are read in the format torchxrayvision itself reads: its published ``.pt`` files
are a ``torch.save`` of the whole model object, which ``xrv.models.DenseNet(weights=...)`` loads
with ``torch.load(..., weights_only=False)`` and copies over by ``state_dict()``. A plain
``state_dict`` of such a model is read too. Each file is first loaded with
``weights_only=True`` (allowing only torchxrayvision's DenseNet module classes); files that
need full unpickling (the published ones are in torch's legacy pre-1.6 format) are then loaded
as torchxrayvision does, with a warning: only use weights files you trust.

Each pathology the model was trained on (non-empty name in its label list; torchxrayvision
marks untrained outputs with ``""``) is one yes/no task with logits ``[0, z]``, ``z`` the
pathology's raw, pre-sigmoid output, so ``P(yes) = sigmoid(z)``. The operating-point
re-scaling torchxrayvision applies when ``op_threshs`` is set (``op_norm`` after a sigmoid) is
not applied: its output is no logit.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from fuselens.model_zoo.case import PatientCase
from fuselens.model_zoo.contract import Batch, Logits
from fuselens.model_zoo.standard_inputs import standard_batch

WEIGHTS_ENV = "FUSELENS_XRV_WEIGHTS"
INSTALL_HINT = 'pip install "fuselens[xrv]"'
CXR_SIZE = 224  # every published torchxrayvision DenseNet was trained at 224 x 224
ANSWERS = ["no", "yes"]


def import_xrv():
    """``torchxrayvision``, imported on first use (the module itself imports without it)."""
    try:
        # torchxrayvision's models module calls warnings.filterwarnings("ignore") on import,
        # silencing every warning in the process: keep the caller's filters as they were.
        with warnings.catch_warnings():
            import torchxrayvision as xrv
    except ImportError as exc:
        raise ImportError(
            f"the torchxrayvision adapter needs the xrv extra: {INSTALL_HINT} ({exc})"
        ) from exc
    return xrv


class XRVDenseNet(nn.Module):
    """A torchxrayvision DenseNet as an explainable model: one yes/no task per pathology."""

    modalities: tuple[str, ...] = ("cxr",)

    def __init__(
        self,
        net: nn.Module,
        pathologies: Sequence[str],
        name: str = "xrv-densenet",
        caveat: str = "torchxrayvision DenseNet: research model, not validated for clinical use.",
    ):
        super().__init__()
        pathologies = [str(p) for p in pathologies]
        n_out = net.classifier.out_features
        if len(pathologies) != n_out:
            raise ValueError(f"{len(pathologies)} pathology names for {n_out} model outputs")
        named = [p for p in pathologies if p]
        if len(set(named)) != len(named):
            raise ValueError(f"pathology names repeat: {named}")
        # torchxrayvision returns raw logits only with neither op_threshs nor apply_sigmoid
        net.op_threshs = None
        net.apply_sigmoid = False
        self.net = net
        self.name = name
        self.caveat = caveat
        self.pathologies = pathologies
        self.output_index = {p: i for i, p in enumerate(pathologies) if p}
        self.tasks: dict[str, list[str]] = {p: list(ANSWERS) for p in self.output_index}

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def prepare(self, cases: Sequence[PatientCase]) -> Batch:
        return standard_batch(cases, ("cxr",), cxr_size=CXR_SIZE, device=self.device)

    @staticmethod
    def to_xrv_range(x: torch.Tensor) -> torch.Tensor:
        """[0, 1] -> torchxrayvision's [-1024, 1024] (``xrv.utils.normalize(img, maxval=1)``)."""
        return (2.0 * x - 1.0) * 1024.0

    def raw_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """The DenseNet's pre-sigmoid outputs ``(B, n_outputs)`` for ``(B, 1, S, S)`` in [0, 1]."""
        dtype = self.net.classifier.weight.dtype
        return self.net(self.to_xrv_range(x.to(device=self.device, dtype=dtype)))

    def predict(self, batch: Batch) -> Logits:
        """Per task ``(B, 2)`` logits ``[0, z]``. Rows without a CXR (``batch.present`` False)
        are never run through the network: their logits are ``[0, 0]`` (P(yes) = 0.5)."""
        x = batch.tensors["cxr"]
        present = batch.present[:, batch.index("cxr")].to(x.device)
        n = len(batch)
        dtype = self.net.classifier.weight.dtype
        if bool(present.all()):
            z = self.raw_outputs(x)
        else:
            z = torch.zeros(n, len(self.pathologies), device=self.device, dtype=dtype)
            rows = present.nonzero().flatten()
            if rows.numel():
                z = z.index_copy(0, rows.to(self.device), self.raw_outputs(x.index_select(0, rows)))
        zero = z.new_zeros(n)
        return {t: torch.stack([zero, z[:, i]], dim=-1) for t, i in self.output_index.items()}

    def forward(self, batch: Batch) -> Logits:
        return self.predict(batch)

    def target_layer(self, modality: str) -> nn.Module | None:
        # features.norm5 is model.features[-1], the layer pytorch-grad-cam's README names for
        # DenseNets: the last (1024 x 7 x 7) feature map, after the final batch norm, that the
        # network only passes through ReLU and global average pooling into its linear
        # classifier, so a channel's gradient is its classifier weight (Grad-CAM's premise).
        # denseblock4 is the same map before that batch norm. As in torchvision's DenseNet,
        # the forward's ReLU is in place on this output.
        return self.net.features.norm5 if modality == "cxr" else None

    def reshape_transform(self, modality: str) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return None


def _densenet_config(state: Mapping[str, torch.Tensor], path: Path) -> dict:
    """The ``xrv.models.DenseNet`` arguments a state_dict was made with."""
    needed = ("features.conv0.weight", "classifier.weight")
    if any(k not in state for k in needed):
        raise ValueError(
            f"{path}: not a torchxrayvision DenseNet weights file "
            f"(no {' / '.join(k for k in needed if k not in state)})"
        )
    layers: dict[int, int] = {}
    for key in state:
        m = re.match(r"features\.denseblock(\d+)\.denselayer(\d+)\.", key)
        if m:
            block, layer = int(m.group(1)), int(m.group(2))
            layers[block] = max(layers.get(block, 0), layer)
    if not layers or sorted(layers) != list(range(1, len(layers) + 1)):
        raise ValueError(f"{path}: not a torchxrayvision DenseNet weights file (no dense blocks)")
    growth = state["features.denseblock1.denselayer1.conv2.weight"].shape[0]
    bottleneck = state["features.denseblock1.denselayer1.conv1.weight"].shape[0]
    conv0 = state["features.conv0.weight"]
    return {
        "growth_rate": int(growth),
        "block_config": tuple(layers[b] for b in sorted(layers)),
        "num_init_features": int(conv0.shape[0]),
        "bn_size": int(bottleneck // growth),
        "num_classes": int(state["classifier.weight"].shape[0]),
        "in_channels": int(conv0.shape[1]),
    }


def _load_file(path: Path, xrv) -> object:
    """``torch.load`` of a weights file: allow-listed ``weights_only=True`` first, then (for
    torch's legacy format and other whole-model pickles) ``weights_only=False`` as
    torchxrayvision itself loads its files."""
    m = xrv.models
    allowed = [m.DenseNet, m._DenseBlock, m._DenseLayer, m._Transition]
    allowed += [nn.Sequential, nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d]
    allowed += [nn.Linear]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass
    except Exception as exc:
        raise ValueError(f"{path}: not a readable torch weights file ({exc})") from exc
    warnings.warn(
        f"{path}: loading with torch.load(weights_only=False), as torchxrayvision does for its "
        "own weights files; unpickling can run code, so only use weights files you trust",
        stacklevel=3,
    )
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable torch weights file ({exc})") from exc


def _saved_labels(obj: nn.Module) -> list[str] | None:
    """Pathology names pickled with a whole model (instance attributes only: a bare
    ``DenseNet(weights=None)`` has only the class's default ``targets``)."""
    for attr in ("pathologies", "targets"):
        names = obj.__dict__.get(attr)
        if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
            return list(names)
    return None


def _published_labels(path: Path, xrv) -> tuple[str, list[str]] | None:
    """The weights name and labels of a file torchxrayvision downloaded, by its file name."""
    for key, entry in xrv.models.model_urls.items():
        url = str(entry.get("weights_url", ""))
        if key.startswith("densenet") and url.rsplit("/", 1)[-1] == path.name:
            return key, list(entry["labels"])
    return None


def build(
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    pathologies: Sequence[str] | None = None,
) -> XRVDenseNet:
    """A torchxrayvision DenseNet from a local weights file (nothing is ever downloaded).

    ``weights``: the file (a ``torch.save`` of the whole model, as torchxrayvision's own
    downloads, or its ``state_dict``); ``None`` reads the path from ``FUSELENS_XRV_WEIGHTS``.
    ``pathologies``: the output names, where neither torchxrayvision's published file name,
    nor a pathology list saved with the model, nor the default 18 outputs give them.
    The model comes in eval mode on ``device`` (CUDA when present by default).
    """
    source = "weights"
    if weights is None or str(weights) == "":
        weights, source = os.environ.get(WEIGHTS_ENV, ""), WEIGHTS_ENV
    if not str(weights):
        raise ValueError(
            f"no torchxrayvision weights: pass build(weights=PATH) or set {WEIGHTS_ENV} to a "
            "local weights file (FuseLens never downloads weights)"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"torchxrayvision weights file {path} ({source}) does not exist")
    xrv = import_xrv()
    obj = _load_file(path, xrv)
    if isinstance(obj, nn.Module):
        for mod in obj.modules():  # as torchxrayvision patches modules pickled by old torch
            if not hasattr(mod, "_non_persistent_buffers_set"):
                mod._non_persistent_buffers_set = set()
        saved = _saved_labels(obj)
        state = dict(obj.state_dict())
    elif isinstance(obj, Mapping) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        saved, state = None, dict(obj)
    else:
        raise ValueError(
            f"{path}: not a torchxrayvision DenseNet weights file "
            f"(holds a {type(obj).__name__}, not a model or a state_dict)"
        )
    state.pop("op_threshs", None)  # post-sigmoid calibration, not applied (see module doc)
    config = _densenet_config(state, path)
    net = xrv.models.DenseNet(weights=None, **config)  # weights=None: xrv downloads nothing
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: does not fit a torchxrayvision DenseNet ({exc})") from exc

    published = _published_labels(path, xrv)
    if pathologies is not None:
        labels, label_source = list(pathologies), "given"
    elif published is not None:
        labels, label_source = published[1], published[0]
    elif saved is not None and len(saved) == config["num_classes"]:
        labels, label_source = list(saved), "saved with the model"
    elif config["num_classes"] == len(xrv.datasets.default_pathologies):
        labels, label_source = list(xrv.datasets.default_pathologies), "default pathologies"
    else:
        raise ValueError(
            f"{path}: {config['num_classes']} outputs and no pathology names for them; "
            "pass build(..., pathologies=[...])"
        )
    if len(labels) != config["num_classes"]:
        raise ValueError(
            f"{path}: {len(labels)} pathology names for {config['num_classes']} outputs"
        )
    which = published[0] if published is not None else f"local file {path.name}"
    caveat = (
        f"torchxrayvision DenseNet ({which}; pathology names: {label_source}): a research "
        "model, not validated for clinical use; scores are uncalibrated."
    )
    model = XRVDenseNet(net, labels, name=f"xrv-densenet:{path.stem}", caveat=caveat)
    target = torch.device(device) if device is not None else _default_device()
    return model.to(target).eval()


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
