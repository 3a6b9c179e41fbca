"""Spurious cues for the shortcut benchmark: planted where and when asked, nowhere else,
reproducible and ignored by evidence supervision; and the training flags of a model meant to
learn them (no evidence supervision, threads, report epochs) reach its training config."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_model_support import make_case, tiny_config

from fuselens.app.cli import build_parser, main
from fuselens.app.ingest import load_case
from fuselens.model_zoo.case import GroundTruth
from fuselens.model_zoo.dataset import add_text_states, build_cohort_data
from fuselens.model_zoo.evidence_targets import evidence_targets
from fuselens.model_zoo.model import FusionModel
from fuselens.model_zoo.synth.cohort import CASE_FILES, write_case, write_cohort
from fuselens.model_zoo.synth.cues import (
    CUE_MODALITIES,
    cue_decisions,
    cxr_cue_mask,
    echo_cue_mask,
    parse_cue,
)
from fuselens.model_zoo.synth.echo import SECTOR
from fuselens.model_zoo.synth.truth import load_manifest, load_truth
from fuselens.model_zoo.training import TrainingConfig, train_step

SEED, N = 3, 8
ALL_CUES = {"cxr": 1.0, "ecg": 1.0, "echo": 1.0}


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    """The same patients without cues and with every cue at strength 1."""
    clean, cued = tmp_path_factory.mktemp("clean"), tmp_path_factory.mktemp("cued")
    write_cohort(clean, n=N, seed=SEED, progress=False)
    write_cohort(cued, n=N, seed=SEED, progress=False, cues=ALL_CUES)
    return clean, cued


def _files(folder) -> dict[str, bytes]:
    return {n: (folder / n).read_bytes() for n in CASE_FILES if (folder / n).is_file()}


def test_cue_frequency_follows_the_strength() -> None:
    rng = np.random.default_rng(0)
    for hf in (0, 1):
        got = [cue_decisions({"ecg": 1.0}, hf, rng)["ecg"] for _ in range(200)]
        assert all(got) if hf else not any(got)
    for strength in (0.5, 0.8):
        for hf, p in ((1, strength), (0, 1.0 - strength)):
            share = np.mean([cue_decisions({"cxr": strength}, hf, rng)["cxr"] for _ in range(4000)])
            assert share == pytest.approx(p, abs=0.03)


def test_one_cues_decision_does_not_depend_on_the_others_being_asked_for() -> None:
    alone = [cue_decisions({"echo": 0.7}, 1, np.random.default_rng(i))["echo"] for i in range(50)]
    every = {m: 0.7 for m in CUE_MODALITIES}
    joint = [cue_decisions(every, 1, np.random.default_rng(i))["echo"] for i in range(50)]
    assert alone == joint


def test_parse_cue_defaults_and_rejects() -> None:
    assert parse_cue("cxr") == ("cxr", 0.9) and parse_cue("ecg:0.75") == ("ecg", 0.75)
    for bad in ("labs", "cxr:0.4", "cxr:1.5", "echo:x"):
        with pytest.raises(ValueError):
            parse_cue(bad)


def test_at_strength_one_a_case_has_the_cue_iff_heart_failure(cohorts) -> None:
    clean, cued = cohorts
    manifest = load_manifest(cued)
    assert manifest["cues"] == ALL_CUES and "cues" not in load_manifest(clean)
    assert {c["heart_failure"] for c in (m["labels"] for m in manifest["cases"])} == {0, 1}
    for entry in manifest["cases"]:
        truth = json.loads((cued / entry["folder"] / "truth.json").read_text())
        hf = truth["labels"]["heart_failure"]
        assert truth["cues"] == entry["cues"]
        assert truth["cues"] == {m: bool(hf) and m in truth["modalities"] for m in CUE_MODALITIES}
        gt = load_truth(cued / entry["folder"])
        assert gt.cues == truth["cues"]
        assert ("cue_cxr" in gt.masks) == truth["cues"]["cxr"]
        assert ("cue_ecg" in gt.masks) == truth["cues"]["ecg"]
        assert sorted(gt.masks.get("cue_echo", {})) == (
            sorted(truth["echo_views"]) if truth["cues"]["echo"] else []
        )
        words = truth["report"].lower()
        assert not any(w in words for w in ("portable", "pacing", "spike", "marker", "cue"))
        assert "cues" not in json.loads((clean / entry["folder"] / "truth.json").read_text())


def test_a_case_without_a_cue_is_written_as_without_the_option(cohorts) -> None:
    clean, cued = cohorts
    checked = 0
    for entry in load_manifest(cued)["cases"]:
        if any(entry["cues"].values()):
            continue
        a, b = _files(clean / entry["folder"]), _files(cued / entry["folder"])
        truth_a, truth_b = json.loads(a.pop("truth.json")), json.loads(b.pop("truth.json"))
        assert a == b
        assert truth_b.pop("cues") == dict.fromkeys(CUE_MODALITIES, False)
        assert truth_a == truth_b
        checked += 1
    assert checked >= 2


def test_a_cue_changes_its_region_strongly_and_nothing_else(cohorts) -> None:
    clean, cued = cohorts
    seen = set()
    for entry in load_manifest(cued)["cases"]:
        if not any(entry["cues"].values()):
            continue
        before, _ = load_case(clean / entry["folder"])
        after, _ = load_case(cued / entry["folder"])
        masks = load_truth(cued / entry["folder"]).masks
        if entry["cues"]["cxr"]:
            diff = np.abs(after.cxr.image - before.cxr.image)
            assert masks["cue_cxr"].shape == masks["cxr"].shape == after.cxr.image.shape
            assert np.array_equal(masks["cue_cxr"], cxr_cue_mask(after.cxr.image.shape))
            assert diff[masks["cue_cxr"]].mean() > 0.2 and diff[masks["cue_cxr"]].max() > 0.5
            assert diff[~masks["cue_cxr"]].max() == 0.0  # windowed as the film without the tag
            seen.add("cxr")
        if entry["cues"]["ecg"]:
            diff = np.abs(after.ecg.signal - before.ecg.signal)
            assert masks["cue_ecg"].shape == masks["ecg"].shape == after.ecg.signal.shape
            assert (diff[masks["cue_ecg"]].reshape(12, -1).max(axis=1) > 0.9).all()  # every lead
            assert diff[~masks["cue_ecg"]].max() == 0.0
            seen.add("ecg")
        if entry["cues"]["echo"]:
            for view, cine in after.echo.items():
                mask = masks["cue_echo"][view]
                assert mask.shape == masks["echo"][view].shape == cine.frames.shape
                assert np.array_equal(mask, echo_cue_mask(cine.frames.shape[0]))
                diff = np.abs(cine.frames.astype(int) - before.echo[view].frames)
                assert (cine.frames[mask] == 255).all() and diff[mask].mean() > 100
                assert diff[~mask].max() == 0
            seen.add("echo")
    assert seen == set(CUE_MODALITIES)


def test_the_echo_marker_lies_outside_the_sector() -> None:
    assert not (echo_cue_mask(1)[0] & SECTOR).any()


def test_cues_are_reproducible(cohorts, tmp_path) -> None:
    _, cued = cohorts
    for entry in load_manifest(cued)["cases"][:3]:
        write_case(tmp_path, SEED, int(entry["folder"][1:]), cues=ALL_CUES)
        assert _files(tmp_path / entry["folder"]) == _files(cued / entry["folder"])


def test_evidence_supervision_ignores_the_cue_masks(cohorts) -> None:
    clean, cued = cohorts
    config = tiny_config()
    for entry in load_manifest(cued)["cases"]:
        targets = []
        for root in (clean, cued):
            case, _ = load_case(root / entry["folder"])
            case.truth = load_truth(root / entry["folder"])
            targets.append(evidence_targets(case, config))
        assert targets[0].keys() == targets[1].keys()
        assert all(np.array_equal(targets[0][k], targets[1][k]) for k in targets[0])


def test_synth_cli_cue_option(tmp_path) -> None:
    out = tmp_path / "c"
    args = ["synth", "--out", str(out), "--n", "2", "--seed", "1", "--quiet", "--workers", "1"]
    assert main([*args, "--cue", "cxr", "--cue", "ecg:1"]) == 0
    manifest = load_manifest(out)
    assert manifest["cues"] == {"cxr": 0.9, "ecg": 1.0}
    assert all(set(c["cues"]) == {"cxr", "ecg"} for c in manifest["cases"])
    for bad in (["--cue", "lungs"], ["--cue", "cxr:0.2"], ["--cue", "cxr", "--cue", "cxr:1"]):
        with pytest.raises(SystemExit):
            main([*args, *bad])


def test_train_cli_flags_parse_with_unchanged_defaults() -> None:
    base = ["train", "--cohort", "c", "--out", "o"]
    args = build_parser().parse_args(base)
    assert not args.no_evidence_supervision and args.threads is None and args.report_epochs is None
    args = build_parser().parse_args(
        [*base, "--no-evidence-supervision", "--threads", "1", "--report-epochs", "2"]
    )
    assert args.no_evidence_supervision and args.threads == 1 and args.report_epochs == 2


def test_train_cli_without_evidence_supervision_records_its_settings(cohorts, tmp_path) -> None:
    _, cued = cohorts
    args = ["train", "--cohort", str(cued), "--out", str(tmp_path), "--epochs", "1"]
    flags = ["--no-evidence-supervision", "--threads", "1", "--report-epochs", "1"]
    assert main([*args, "--val-fraction", "0.25", *flags]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["evidence_weight"] == 0.0
    assert metrics["config"]["threads"] == 1 and metrics["torch_threads"] == 1
    assert metrics["config"]["report_epochs"] == 1 and len(metrics["report_history"]) == 1
    assert not {"evidence", "lab_evidence"} & set(metrics["history"][0])


def test_train_step_computes_no_evidence_loss_at_weight_zero() -> None:
    torch.manual_seed(0)
    model = FusionModel(tiny_config())
    cases = [make_case(i, 1) for i in range(4)]
    for case in cases:
        mask = np.zeros((96, 96), dtype=bool)
        mask[40:70, 30:66] = True
        case.truth = GroundTruth(
            labels={"heart_failure": 1}, findings={"cxr": ["cardiomegaly"]}, masks={"cxr": mask}
        )
    data = build_cohort_data(cases, model.config, model.task_names, progress=False)
    add_text_states(data, model, progress=False)
    evidence = [evidence_targets(c, model.config) for c in cases]
    assert all("cxr" in e for e in evidence)
    device = torch.device("cpu")
    for weight, expected in ((1.0, True), (0.0, False)):
        cfg = TrainingConfig(model=model.config, evidence_weight=weight)
        losses = train_step(model, data, [0, 1, 2, 3], cfg, torch.Generator(), device, evidence)
        assert ("evidence" in losses) == expected and "lab_evidence" not in losses
