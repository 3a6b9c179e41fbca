"""Write a synthetic cohort: one folder of real-format files per patient plus a manifest.

Layout of ``DIR/<case_id>/`` (files only for the modalities present)::

    labs.csv              name,value,unit,low,high (+ History and Medications rows)
    ecg.dcm               12-lead ECG waveform, 500 Hz, 10 s
    echo_<VIEW>.dcm       US multi-frame, VIEW in A4C, A2C, PLAX
    cxr.dcm               CR or DX PA chest radiograph
    evidence.npz          masks: ecg (12, 5000), echo_<VIEW> (F, 112, 112), cxr (H, W);
                          planted cues' regions: cue_ecg, cue_echo_<VIEW>, cue_cxr (same shapes)
    truth.json            labels, findings, evidence modalities, lab evidence, report, ...
                          (and "cues": modality -> planted, when cues were asked for)

``DIR/manifest.json`` lists every case's truth with its folder. Patients are independent
(their own random streams), so they can be written in parallel in any order.

Cues (``cues``, modality -> strength) plant a spurious, label-correlated artefact for the
shortcut benchmark (``synth.cues``); whether a case gets one comes from its own stream
``STREAM_CUES``, so a case without a cue is written byte for byte as without the option.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from fuselens.model_zoo.synth import GENERATOR_VERSION
from fuselens.model_zoo.synth.cues import (
    add_cxr_cue,
    add_ecg_cue,
    add_echo_cue,
    check_cues,
    cue_decisions,
)
from fuselens.model_zoo.synth.cxr import PIXEL_SPACING_MM, simulate_cxr
from fuselens.model_zoo.synth.dicom import PatientMeta, draw_style, write_cxr, write_ecg, write_echo
from fuselens.model_zoo.synth.ecg import RATE_HZ, drawn_intervals, simulate_ecg
from fuselens.model_zoo.synth.echo import simulate_echo
from fuselens.model_zoo.synth.echo_anatomy import MM_PER_PX
from fuselens.model_zoo.synth.labs import lab_evidence, labs_csv, make_labs
from fuselens.model_zoo.synth.latent import Latent, draw_latent, patient_rng
from fuselens.model_zoo.synth.npz import save_npz_deterministic
from fuselens.model_zoo.synth.reports import make_report

STREAM_LABS, STREAM_ECG, STREAM_ECHO, STREAM_CXR, STREAM_FILES, STREAM_CUES = 1, 2, 3, 4, 5, 6
CASE_FILES = (
    "labs.csv", "ecg.dcm", "echo_A4C.dcm", "echo_A2C.dcm", "echo_PLAX.dcm",
    "cxr.dcm", "evidence.npz", "truth.json",
)  # fmt: skip
ECG_SENSITIVITIES_UV = (1.0, 1.25, 2.5)
CASE_ID = re.compile(r"P\d{5,}")
MEASUREMENT_KEYS = ("ntprobnp", "sodium", "creatinine", "heart_rate", "qrs_ms", "ef", "ctr")


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def _truth(
    latent: Latent, lab_items: list[str], files: dict[str, Any], drawn: dict[str, float]
) -> dict[str, Any]:
    """The case's truth; ``drawn`` replaces planted measurements with the rendered ones."""
    measured = {k: float(latent.params[k]) for k in MEASUREMENT_KEYS} | drawn
    return {
        "case_id": latent.case_id,
        "labels": {"heart_failure": latent.heart_failure},
        "findings": {m: list(fs) for m, fs in latent.findings.items()},
        "modalities": list(latent.modalities),
        "echo_views": list(latent.echo_views),
        "evidence_modalities": list(latent.evidence_modalities),
        "confounders": list(latent.confounders),
        "lab_evidence": lab_items,
        "report": make_report(latent),
        "demographics": {"age": latent.age, "sex": latent.sex},
        "measurements": {k: round(v, 3) for k, v in measured.items()},
        "files": files,
    }


def write_case(
    out: Path, seed: int, index: int, cues: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """Render and write one patient, with the cues (modality -> strength) its draw plants;
    returns its truth (as in ``truth.json``)."""
    latent = draw_latent(seed, index)
    planted = {}
    if cues:
        check_cues(cues)
        drawn = cue_decisions(cues, latent.heart_failure, patient_rng(seed, index, STREAM_CUES))
        planted = {m: drawn[m] and m in latent.modalities for m in sorted(cues)}
    folder = Path(out) / latent.case_id
    folder.mkdir(parents=True, exist_ok=True)
    for name in CASE_FILES:
        (folder / name).unlink(missing_ok=True)
    meta = PatientMeta(seed, index, latent.case_id, latent.age, latent.sex)
    file_rng = patient_rng(seed, index, STREAM_FILES)
    masks: dict[str, np.ndarray] = {}
    files: dict[str, Any] = {}
    lab_items: list[str] = []
    drawn: dict[str, float] = {}

    if "labs" in latent.modalities:
        panel = make_labs(latent, patient_rng(seed, index, STREAM_LABS))
        (folder / "labs.csv").write_text(labs_csv(panel), encoding="utf-8")
        lab_items = lab_evidence(latent, panel)
        files["labs"] = "labs.csv"
    if "ecg" in latent.modalities:
        signal, masks["ecg"] = simulate_ecg(latent, patient_rng(seed, index, STREAM_ECG))
        drawn = drawn_intervals(latent, patient_rng(seed, index, STREAM_ECG))
        if planted.get("ecg"):
            signal, masks["cue_ecg"] = add_ecg_cue(signal, RATE_HZ)
        sensitivity = float(file_rng.choice(ECG_SENSITIVITIES_UV))
        write_ecg(folder / "ecg.dcm", meta, signal, RATE_HZ, sensitivity)
        files["ecg"] = "ecg.dcm"
    if "echo" in latent.modalities:
        files["echo"] = {}
        for clip in simulate_echo(latent, patient_rng(seed, index, STREAM_ECHO)):
            name = f"echo_{clip.view}.dcm"
            frames = clip.frames
            if planted.get("echo"):
                frames, masks[f"cue_echo_{clip.view}"] = add_echo_cue(frames)
            write_echo(
                folder / name,
                meta,
                clip.view,
                frames,
                clip.frame_time_ms,
                clip.heart_rate,
                MM_PER_PX,
            )
            masks[f"echo_{clip.view}"] = clip.mask
            files["echo"][clip.view] = name
    if "cxr" in latent.modalities:
        image, masks["cxr"] = simulate_cxr(latent, patient_rng(seed, index, STREAM_CXR))
        film = image
        if planted.get("cxr"):
            film, masks["cue_cxr"] = add_cxr_cue(image)
        style = draw_style(file_rng)
        write_cxr(
            folder / "cxr.dcm",
            meta,
            film,
            style,
            PIXEL_SPACING_MM,
            image if planted.get("cxr") else None,
        )
        files["cxr"] = "cxr.dcm"

    save_npz_deterministic(folder / "evidence.npz", masks)
    truth = _truth(latent, lab_items, files, drawn)
    if cues:
        truth["cues"] = planted
    (folder / "truth.json").write_text(_json(truth), encoding="utf-8")
    return truth


def _remove_stale_cases(out: Path, keep: set[str]) -> None:
    """Delete the files of synthetic case folders a previous, larger run left behind."""
    for folder in out.iterdir():
        stale = CASE_ID.fullmatch(folder.name) and folder.name not in keep
        if stale and folder.is_dir() and (folder / "truth.json").is_file():
            for name in CASE_FILES:
                (folder / name).unlink(missing_ok=True)
            if not any(folder.iterdir()):
                folder.rmdir()


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _cases(
    out: Path, n: int, seed: int, workers: int, cues: Mapping[str, float] | None
) -> Iterator[dict[str, Any]]:
    job = partial(write_case, out, seed, cues=dict(cues) if cues else None)
    if workers <= 1 or n < 2:
        yield from map(job, range(n))
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(job, range(n), chunksize=max(1, min(16, n // (4 * workers))))


def write_cohort(
    out: str | Path,
    n: int,
    seed: int,
    progress: bool = True,
    workers: int = 1,
    cues: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Write ``n`` patients of cohort ``seed`` under ``out`` and its ``manifest.json``, with
    the spurious ``cues`` (modality -> strength, see ``synth.cues``) if any."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if cues:
        check_cues(cues)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cases = []
    bar = tqdm(total=n, desc="synth", unit="case", disable=not progress, file=sys.stderr)
    for truth in _cases(out, n, seed, workers, cues):
        cases.append({**truth, "folder": truth["case_id"]})
        bar.update(1)
    bar.close()
    _remove_stale_cases(out, {c["folder"] for c in cases})
    manifest: dict[str, Any] = {
        "seed": int(seed),
        "n": int(n),
        "generator_version": GENERATOR_VERSION,
    }
    if cues:
        manifest["cues"] = {m: float(cues[m]) for m in sorted(cues)}
    manifest["cases"] = cases
    (out / "manifest.json").write_text(_json(manifest), encoding="utf-8")
    return manifest
