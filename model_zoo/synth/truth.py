"""Read a synthetic case's planted truth back: labels, findings, report and evidence masks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fuselens.model_zoo.case import GroundTruth
from fuselens.model_zoo.tasks import TASK_MODALITY


def load_truth(case_dir: str | Path) -> GroundTruth:
    """The case's :class:`GroundTruth`.

    ``masks`` holds ``"labs"`` (evidence item names), ``"ecg"`` (bool (12, samples), leads
    I, II, III, aVR, aVL, aVF, V1..V6 at the file's 500 Hz), ``"echo"`` (view -> bool
    (frames, H, W)) and ``"cxr"`` (bool (H, W) in stored image geometry), each only for the
    modalities present. A planted spurious cue's region (``synth.cues``) comes as
    ``"cue_ecg"``, ``"cue_echo"`` (view -> mask) or ``"cue_cxr"`` in the same geometry, only
    where the case has that cue; evidence supervision does not read these keys.
    """
    folder = Path(case_dir)
    meta = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    masks: dict[str, Any] = {}
    if "labs" in meta["modalities"]:
        masks["labs"] = list(meta["lab_evidence"])
    with np.load(folder / "evidence.npz", allow_pickle=False) as npz:
        for key in npz.files:
            group = next((g for g in ("echo", "cue_echo") if key.startswith(f"{g}_")), None)
            if group is not None:
                view = key.removeprefix(f"{group}_")
                masks.setdefault(group, {})[view] = npz[key].astype(bool)
            else:
                masks[key] = npz[key].astype(bool)
    return GroundTruth(
        labels={k: int(v) for k, v in meta["labels"].items()},
        findings={m: list(fs) for m, fs in meta["findings"].items()},
        report=meta["report"],
        masks=masks,
        cues={m: bool(v) for m, v in meta.get("cues", {}).items()},
        measurements={k: float(v) for k, v in meta.get("measurements", {}).items()},
    )


def load_manifest(cohort_dir: str | Path) -> dict[str, Any]:
    """The cohort's ``manifest.json`` (seed, n, generator_version, cases)."""
    return json.loads((Path(cohort_dir) / "manifest.json").read_text(encoding="utf-8"))


def case_folders(cohort_dir: str | Path) -> list[Path]:
    """The cohort's case folders (those with a ``truth.json``), sorted by name."""
    root = Path(cohort_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    folders = sorted(p for p in root.iterdir() if (p / "truth.json").is_file())
    if not folders:
        raise FileNotFoundError(
            f"{root}: no case folders with truth.json (a `fuselens synth` cohort)"
        )
    return folders


def truth_answers(meta: Mapping[str, Any]) -> dict[str, str]:
    """Task -> "yes"/"no" from one ``truth.json``: its labels, and each finding task where
    the finding's modality is present (a finding is unknown without its modality)."""
    labels = {t: "yes" if int(v) else "no" for t, v in meta.get("labels", {}).items()}
    present = set(meta.get("modalities", ()))
    findings = meta.get("findings", {})
    for task, modality in TASK_MODALITY.items():
        if modality is not None and modality in present:
            labels[task] = "yes" if task in findings.get(modality, ()) else "no"
    return labels
