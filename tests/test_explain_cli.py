"""fuselens explain / bench / bench-xai on rendered synthetic case folders with a tiny model."""

from __future__ import annotations

import json

import pytest
import torch
from test_model_support import tiny_config

from fuselens.app.cli import _evaluation_order, main
from fuselens.app.cohort import open_cohort
from fuselens.explain.bench_xai import format_table, summarise
from fuselens.explain.bundle import ExplanationBundle
from fuselens.explain.methods import DEFAULT_METHOD, REGISTRY
from fuselens.model_zoo.fusion_explainable import DEMO_CAVEAT
from fuselens.model_zoo.model import FusionModel
from fuselens.model_zoo.registry import save_model
from fuselens.model_zoo.synth.cohort import write_case

MODALITY_KEYS = {
    "pointing_game",
    "mass_in_mask",
    "deletion_auc",
    "random_deletion_auc",
    "deletion_below_random_fraction",
    "sanity_spearman_median",
}
TOP_KEYS = {
    "modalities",
    "text_fidelity_spearman",
    "shapley_planted_first",
    "shapley_efficiency_max_error",
    "cases",
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    vocab = ["<pad>", "<bos>", "<eos>", "<unk>", "ecg", ":", "echo", "lbbb", ".", "\n"]
    return save_model(FusionModel(tiny_config(report_vocab=vocab)), tmp_path_factory.mktemp("m"))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    for index in (0, 1, 5):  # P00005: heart failure with its evidence in the CXR alone
        write_case(out, 3, index)
    return out


def test_explain_writes_bundle_and_offline_html(cohort, tiny_model, tmp_path, capsys) -> None:
    case_dir = sorted(p for p in cohort.iterdir() if p.is_dir())[0]
    out = tmp_path / "exp"
    args = ["explain", str(case_dir), "--out", str(out), "--model", str(tiny_model), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    # A synthetic case folder is named like its patient (PatientName SYNTH^P00000): pseudonym.
    assert summary["case_id"].startswith("case-") and case_dir.name not in summary["case_id"]
    assert summary["caveat"] == DEMO_CAVEAT
    assert summary["stages"][0] == "prediction" and DEFAULT_METHOD in summary["stages"]
    assert summary["unavailable"] == {}
    bundle = ExplanationBundle.load(out)
    assert bundle.case_id == summary["case_id"] and bundle.stages == summary["stages"]
    assert list(bundle.maps) == [DEFAULT_METHOD]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page and "data:image/png;base64," in page


def test_explain_runs_each_chosen_map_method(cohort, tiny_model, tmp_path, capsys) -> None:
    case_dir = sorted(p for p in cohort.iterdir() if p.is_dir())[0]
    out = tmp_path / "exp"
    args = ["explain", str(case_dir), "--out", str(out), "--model", str(tiny_model)]
    methods = ["occlusion", "gradcam_pp"]
    assert main([*args, "--method", methods[0], "--method", methods[1], "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["stages"][:4] == ["prediction", "text_lines", *methods]
    bundle = ExplanationBundle.load(out)
    assert list(bundle.maps) == methods
    assert [bundle.maps[m].method for m in methods] == methods
    assert bundle.shown_maps().method == "occlusion"
    with pytest.raises(SystemExit, match="unknown map methods"):
        main([*args, "--method", "no_such_method"])


def test_evaluation_order_puts_single_evidence_heart_failure_first(cohort) -> None:
    data = open_cohort(cohort)
    ids = _evaluation_order(data, list(data.case_ids))
    assert sorted(ids) == sorted(data.case_ids) and len(ids) == 3
    metas = [json.loads((data.folder(c) / "truth.json").read_text()) for c in ids]
    flags = [
        m["labels"]["heart_failure"] == 1 and len(m["evidence_modalities"]) == 1 for m in metas
    ]
    assert flags == sorted(flags, reverse=True)
    assert flags == [True, False, False]
    assert ids == ["P00005", "P00000", "P00001"]  # the rest keep their id order


def test_bench_xai_json_has_the_issue_keys() -> None:
    rec = {
        "pointing_game": 1.0,
        "top_k_hit": 0.5,
        "mass_in_mask": 0.4,
        "deletion_auc": 0.1,
        "random_deletion_auc": 0.3,
        "insertion_auc": 0.5,
        "random_insertion_auc": 0.2,
        "sanity_spearman": 0.1,
        "seconds": 2.0,
    }
    unplanted = {k: v for k, v in rec.items() if k not in ("pointing_game", "top_k_hit")}
    unplanted.pop("mass_in_mask")
    records = [
        {
            "modalities": {
                "ecg": {
                    "gradcam_pp": {**rec, "findings": "lbbb"},
                    "occlusion": {**rec, "seconds": 6.0, "findings": "lbbb"},
                }
            },
            "shapley_efficiency_error": 1e-9,
            "text_fidelity": 0.95,
        },
        {
            "modalities": {
                "ecg": {
                    "gradcam_pp": {
                        **rec,
                        "deletion_auc": 0.5,
                        "pointing_game": 0.0,
                        "findings": "lbbb",
                    }
                },
                "labs": {"text_shap": {**unplanted, "sanity_spearman": 0.3}},
            },
            "shapley_efficiency_error": 2e-9,
            "shapley_planted_first": True,
        },
    ]
    out = summarise(records, 1.0)
    assert TOP_KEYS <= set(out)
    assert set(out["modalities"]) == {"labs", "ecg"}
    assert set(out["modalities"]["ecg"]) == {"gradcam_pp", "occlusion"}
    assert set(out["modalities"]["labs"]) == {"text_shap"}
    for per_method in out["modalities"].values():
        for m in per_method.values():
            assert MODALITY_KEYS <= set(m)
    ecg = out["modalities"]["ecg"]["gradcam_pp"]
    assert ecg["deletion_below_random_fraction"] == 0.5 and ecg["pointing_game"] == 0.5
    assert ecg["pointing_game_by_findings"] == {"lbbb": {"pointing_game": 0.5, "cases": 2}}
    assert ecg["cases"] == 2 and ecg["seconds_per_case"] == 2.0
    occ = out["modalities"]["ecg"]["occlusion"]
    assert occ["cases"] == 1 and occ["seconds_per_case"] == 6.0 and occ["pointing_game"] == 1.0
    labs = out["modalities"]["labs"]["text_shap"]
    assert labs["sanity_spearman_median"] == 0.3
    assert labs["pointing_game"] is None and labs["localisation_cases"] == 0
    assert out["shapley_efficiency_max_error"] == 2e-9 and out["shapley_planted_first"] == 1.0
    assert out["cases"] == 2 and out["text_fidelity_spearman"] == 0.95
    table = format_table(out).splitlines()
    rows = [line.split()[:2] for line in table[2:]]
    assert rows == [["ecg", "gradcam_pp"], ["ecg", "occlusion"], ["labs", "text_shap"]]
    assert "pointing" in table[0] and table[4].split()[2] == "-"  # labs: no localisation


@pytest.mark.slow
def test_bench_xai_end_to_end(cohort, tiny_model, capsys) -> None:
    args = ["bench-xai", "--cohort", str(cohort), "--model", str(tiny_model), "--limit", "2"]
    assert main([*args, "--fidelity-cases", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cases"] == 2 and out["shapley_efficiency_max_error"] < 1e-5
    assert out["text_fidelity_cases"] == 1
    assert out["methods"] == list(REGISTRY)
    for modality in ("ecg", "echo", "cxr"):
        if modality in out["modalities"]:
            assert set(out["modalities"][modality]) == set(REGISTRY)
    assert set(out["modalities"].get("labs", {})) <= {"text_shap"}
    assert main([*args, "--method", DEFAULT_METHOD, "--fidelity-cases", "0"]) == 0
    table = capsys.readouterr().out
    assert "sanity rho" in table and DEFAULT_METHOD in table and "occlusion" not in table


@pytest.mark.slow
def test_bench_json(tiny_model, capsys) -> None:
    args = ["bench", "--model", str(tiny_model), "--repeats", "1", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"stages", "total_p50_s", "baseline_total_p50_s", "speedup", "device"} <= set(out)
    assert out["speedup"] > 1.0
