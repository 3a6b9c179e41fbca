"""A workstation on a tiny random model, for app tests that need no trained weights."""

from __future__ import annotations

from pathlib import Path

from test_model_support import tiny_explainable

from fuselens.app.demo_cases import load_catalogue
from fuselens.app.session import LoadedModel, Workstation

REPORTING_SEED = 0
"""A seed whose untrained tiny model writes a report sentence for the demo cases that the
fact checks keep (most seeds' decoders end at once or state findings their heads deny), for
tests of the report panels."""


def tiny_workstation(seed: int, cases_dir: Path, media_dir: Path | None = None) -> Workstation:
    """The demo catalogue served by ``FusionModel(tiny_config())`` seeded with ``seed``, behind
    the model contract (:func:`test_model_support.tiny_explainable`)."""
    model = tiny_explainable(seed, name="tiny test model")
    loaded = LoadedModel(model, "tiny test model", "cpu")
    return Workstation(loaded, load_catalogue(), cases_dir=cases_dir, media_dir=media_dir)
