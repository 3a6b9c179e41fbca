"""The written cohort: reproducible bytes, valid DICOM, masks where the findings are."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from fuselens.app.cli import main
from fuselens.model_zoo.case import STANDARD_LEADS, GroundTruth
from fuselens.model_zoo.synth.cohort import write_case, write_cohort
from fuselens.model_zoo.synth.dicom import (
    CR_SOP_CLASS,
    DX_PRESENTATION_SOP_CLASS,
    ECG_SOP_CLASS,
    US_MULTIFRAME_SOP_CLASS,
)
from fuselens.model_zoo.synth.latent import draw_latent
from fuselens.model_zoo.synth.truth import load_manifest, load_truth
from fuselens.model_zoo.synth.vocab import ALL_FINDINGS, ECHO_VIEW_CODES

SEED = 23


def _covering_indices(seed: int, limit: int = 400) -> list[int]:
    """A few patients that together carry every finding, plus one without any."""
    chosen, covered, clean = [], set(), None
    for i in range(limit):
        lat = draw_latent(seed, i)
        found = {f for fs in lat.findings.values() for f in fs}
        if found - covered:
            chosen.append(i)
            covered |= found
        if clean is None and not found and len(lat.modalities) == 4:
            clean = i
        if covered == set(ALL_FINDINGS) and clean is not None:
            break
    assert covered == set(ALL_FINDINGS)
    return sorted({*chosen, clean})


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("synth")
    return out, [write_case(out, SEED, i) for i in _covering_indices(SEED)]


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_cohort(a, n=3, seed=5, progress=False, workers=1)
    write_cohort(b, n=3, seed=5, progress=False, workers=2)
    write_cohort(c, n=3, seed=6, progress=False, workers=1)
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert fa == fb
    assert len(fa) > 10
    common = set(fa) & set(fc)
    assert any(fa[k] != fc[k] for k in common if k.endswith(".dcm"))
    assert fa["manifest.json"] != fc["manifest.json"]


def test_manifest_and_truth_files(tmp_path):
    write_cohort(tmp_path, n=2, seed=9, progress=False, workers=1)
    manifest = load_manifest(tmp_path)
    assert manifest["seed"] == 9 and manifest["n"] == 2 and manifest["generator_version"]
    assert [c["folder"] for c in manifest["cases"]] == ["P00000", "P00001"]
    for case in manifest["cases"]:
        on_disk = json.loads((tmp_path / case["folder"] / "truth.json").read_text())
        assert {**on_disk, "folder": case["folder"]} == case
        assert set(on_disk) >= {
            "case_id", "labels", "findings", "modalities", "evidence_modalities",
            "confounders", "lab_evidence", "report", "demographics",
        }  # fmt: skip


def test_dicom_files_are_the_right_sop_classes(cohort):
    out, truths = cohort
    photometrics = set()
    for truth in truths:
        folder = out / truth["case_id"]
        if "ecg" in truth["modalities"]:
            ds = pydicom.dcmread(folder / "ecg.dcm")
            assert ds.SOPClassUID == ECG_SOP_CLASS and ds.Modality == "ECG"
            group = ds.WaveformSequence[0]
            assert group.MultiplexGroupLabel == "RHYTHM"
            assert float(group.SamplingFrequency) == 500 and group.NumberOfWaveformSamples == 5000
            meanings = [
                ch.ChannelSourceSequence[0].CodeMeaning for ch in group.ChannelDefinitionSequence
            ]
            assert meanings == [f"Lead {lead}" for lead in STANDARD_LEADS]
            assert (
                group.ChannelDefinitionSequence[0].ChannelSensitivityUnitsSequence[0].CodeValue
                == "uV"
            )
            uv = ds.waveform_array(0)
            assert uv.shape == (5000, 12)
            assert 300 < np.abs(uv).max() < 5000
            assert np.abs(uv[:, 2] - (uv[:, 1] - uv[:, 0])).max() < 10
            assert str(ds.PatientName) == f"SYNTH^{truth['case_id']}"
        for view in truth["echo_views"]:
            ds = pydicom.dcmread(folder / f"echo_{view}.dcm")
            assert ds.SOPClassUID == US_MULTIFRAME_SOP_CLASS and ds.Modality == "US"
            assert ds.PhotometricInterpretation == "MONOCHROME2"
            assert ds.ViewCodeSequence[0].CodeMeaning == ECHO_VIEW_CODES[view][1]
            frames = ds.pixel_array
            assert frames.shape == (32, 112, 112) and frames.dtype == np.uint8
            assert 1000 / float(ds.FrameTime) == pytest.approx(float(ds.CineRate), abs=1)
            assert frames[:, 0, 0].max() == 0 and frames.max() > 200
            assert frames.std(axis=0).mean() > 3
        if "cxr" in truth["modalities"]:
            ds = pydicom.dcmread(folder / "cxr.dcm")
            assert ds.SOPClassUID in (CR_SOP_CLASS, DX_PRESENTATION_SOP_CLASS)
            assert ds.Modality in ("CR", "DX") and ds.ViewPosition == "PA"
            pixels = ds.pixel_array
            assert pixels.dtype == np.uint16 and pixels.shape == (512, 512)
            assert pixels.max() < 2**ds.BitsStored and float(ds.WindowWidth) > 0
            photometrics.add(ds.PhotometricInterpretation)
            bright = (
                pixels.astype(float)
                if ds.PhotometricInterpretation == "MONOCHROME2"
                else pixels.max() - pixels.astype(float)
            )
            spine_band = bright[150:350, 250:262].mean()
            lung_band = bright[150:300, 110:150].mean()
            assert spine_band > lung_band + 0.1 * bright.max()
    assert photometrics <= {"MONOCHROME1", "MONOCHROME2"} and photometrics


def test_masks_are_nonempty_exactly_where_findings_were_planted(cohort):
    out, truths = cohort
    for truth in truths:
        gt = load_truth(out / truth["case_id"])
        assert isinstance(gt, GroundTruth)
        assert gt.labels == truth["labels"]
        findings = truth["findings"]
        if "ecg" in truth["modalities"]:
            assert gt.masks["ecg"].shape == (12, 5000) and gt.masks["ecg"].dtype == bool
            assert gt.masks["ecg"].any() == bool(findings["ecg"])
        else:
            assert "ecg" not in gt.masks
        assert set(gt.masks.get("echo", {})) == set(truth["echo_views"])
        for view, mask in gt.masks.get("echo", {}).items():
            assert mask.shape == (32, 112, 112)
            assert mask.any() == bool(findings["echo"]), (truth["case_id"], view)
            if findings["echo"]:
                assert mask.any(axis=(1, 2)).all()
        if "cxr" in truth["modalities"]:
            assert gt.masks["cxr"].shape == (512, 512)
            assert gt.masks["cxr"].any() == bool(findings["cxr"])
        if "labs" in truth["modalities"]:
            assert bool(gt.masks["labs"]) == bool(findings["labs"])
            with open(out / truth["case_id"] / "labs.csv", newline="") as fh:
                names = {row["name"] for row in csv.DictReader(fh)}
            assert set(gt.masks["labs"]) <= names and {"History", "Medications"} <= names


def test_ecg_masks_cover_the_right_leads(cohort):
    out, truths = cohort
    lead = {name: i for i, name in enumerate(STANDARD_LEADS)}
    for truth in truths:
        ecg = set(truth["findings"]["ecg"])
        if "ecg" not in truth["modalities"] or not ecg:
            continue
        mask = load_truth(out / truth["case_id"]).masks["ecg"]
        rows = mask.any(axis=1)
        if "atrial_fibrillation" in ecg:
            assert rows.all()
        if ecg == {"lbbb"}:
            assert {STANDARD_LEADS[i] for i in np.where(rows)[0]} == {"I", "aVL", "V1", "V5", "V6"}
            on = mask[lead["V1"]].astype(int)
            widths = np.diff(np.flatnonzero(np.diff(on)))[::2] / 500
            assert widths.size and widths.min() >= 0.13
        if ecg == {"lateral_st_t"}:
            assert {STANDARD_LEADS[i] for i in np.where(rows)[0]} == {"I", "aVL", "V5", "V6"}


def test_rewriting_a_smaller_cohort_removes_stale_cases(tmp_path):
    write_cohort(tmp_path, n=3, seed=1, progress=False, workers=1)
    (tmp_path / "notes.txt").write_text("mine")
    write_cohort(tmp_path, n=1, seed=1, progress=False, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["P00000", "manifest.json", "notes.txt"]
    assert len(load_manifest(tmp_path)["cases"]) == 1


def test_cli_synth_writes_a_cohort(tmp_path):
    assert (
        main(
            [
                "synth",
                "--out",
                str(tmp_path),
                "--n",
                "1",
                "--seed",
                "2",
                "--quiet",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert load_manifest(tmp_path)["cases"][0]["case_id"] == "P00000"
    assert (tmp_path / "P00000" / "truth.json").is_file()
