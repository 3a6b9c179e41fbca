"""fuselens train / predict / eval on a few synthetic case folders."""

from __future__ import annotations

import json

import pytest
import torch
from test_model_support import tiny_config

from fuselens.app.cli import main
from fuselens.model_zoo.model import FusionModel
from fuselens.model_zoo.registry import save_model
from fuselens.model_zoo.synth.cohort import write_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    write_cohort(out, n=6, seed=3, progress=False)
    return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    vocab = ["<pad>", "<bos>", "<eos>", "<unk>", "ecg", ":", "echo", "lbbb", "."]
    return save_model(FusionModel(tiny_config(report_vocab=vocab)), tmp_path_factory.mktemp("m"))


def test_predict_json_reports_every_task_device_time_and_caveat(cohort, tiny_model, capsys):
    assert main(["predict", str(cohort / "P00000"), "--model", str(tiny_model), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0.0 <= out["tasks"]["heart_failure"]["probability"] <= 1.0
    assert out["tasks"]["heart_failure"]["answer"] in ("no", "yes")
    assert out["modalities_used"] and out["device"] == "cpu" and out["seconds"] > 0
    assert "not for clinical use" in out["caveat"]


def test_eval_json_has_15_subsets_report_and_retrieval(cohort, tiny_model, capsys):
    args = ["eval", "--cohort", str(cohort), "--model", str(tiny_model), "--json"]
    assert main([*args, "--bootstrap", "20"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["subsets"]) == 15
    assert {"modalities", "auc", "accuracy", "n"} <= set(out["subsets"][0])
    assert {"bleu4", "rouge_l", "finding_f1"} <= set(out["report"])
    facts = out["report"]["factuality"]  # the reports as the workstation shows them
    assert facts["reports_contradicting_the_model"] == 0.0
    assert facts["ef"]["stated"] == 0 and facts["ctr"]["stated"] == 0  # its words hold no number
    estimates = out["estimates"]  # the untrained estimate heads against the planted values
    assert set(estimates) == {"ef", "ctr"} and all(e["n"] > 0 for e in estimates.values())
    assert all(e["mae"] > 0 and 0 <= e["within"] <= 1 for e in estimates.values())
    lab = facts["lab_values_equal_to_input"]
    assert lab["within"] in (None, 1.0)
    assert out["report"]["factuality_decoded"]["n"] == facts["n"]
    assert out["retrieval"] and {"recall_at_1", "lrap"} <= set(out["retrieval"][0])


def test_train_writes_a_loadable_checkpoint(cohort, tmp_path, capsys):
    args = ["train", "--cohort", str(cohort), "--out", str(tmp_path), "--epochs", "1"]
    assert main([*args, "--val-fraction", "0.34"]) == 0
    assert "checkpoint" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["train_cases"] == 4 and metrics["val_cases"] == 2
    assert (tmp_path / "model" / "model.safetensors").is_file()
