"""One ``--model`` for every command: ``demo``, a FuseLens checkpoint folder, or
``MODULE:FACTORY`` (an importable function returning a model that meets the contract)."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
from pathlib import Path

import torch

from fuselens.model_zoo.contract import ExplainableModel, check_model
from fuselens.model_zoo.fusion_explainable import DEMO_CAVEAT, FusionExplainable
from fuselens.model_zoo.operating_points import card_points
from fuselens.model_zoo.registry import CARD_FILE, load_model, resolve_model_dir


def is_factory_spec(spec: str) -> bool:
    """``"pkg.module:build"`` (a Windows drive letter or an existing path is not one)."""
    s = str(spec)
    module, sep, func = s.partition(":")
    return bool(sep) and module.replace(".", "").replace("_", "").isalnum() and func.isidentifier()


def load_card(folder: Path) -> dict:
    """What a checkpoint carries besides its weights: caveat, answer prevalence, headings,
    the estimate heads' measured error, the operating points chosen on validation."""
    path = folder / CARD_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def load_factory(spec: str, device: str | torch.device | None = None) -> ExplainableModel:
    """Import ``MODULE`` (the working folder first on the path, as uvicorn does for its
    ``MODULE:APP``) and call ``FACTORY`` (with ``device=`` when it takes one)."""
    module_name, _, func_name = str(spec).partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--model {spec}: cannot import {module_name!r}: {exc}") from exc
    factory = getattr(module, func_name, None)
    if not callable(factory):
        raise ValueError(f"--model {spec}: {module_name} has no function {func_name!r}")
    takes_device = "device" in inspect.signature(factory).parameters
    model = factory(device=device) if takes_device and device is not None else factory()
    check_model(model)
    if isinstance(model, torch.nn.Module):
        if device is not None and not takes_device:
            model.to(torch.device(device))
        model.eval()
    return model


def load_explainable(
    spec: str | Path = "demo", device: str | torch.device | None = None
) -> ExplainableModel:
    """The model ``spec`` names, in eval mode on ``device`` (CUDA when present by default)."""
    if is_factory_spec(str(spec)) and not Path(str(spec)).exists():
        return load_factory(str(spec), device)
    folder = resolve_model_dir(spec)
    net, _ = load_model(folder, device=device)
    card = load_card(folder)
    return FusionExplainable(
        net,
        name=str(spec),
        caveat=card.get("caveat", DEMO_CAVEAT),
        answer_prevalence=card.get("answer_prevalence"),
        report_headings=card.get("report_headings"),
        estimate_error=card.get("estimate_error"),
        operating_points=card_points(card),
    ).eval()
