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


@pytest.fixture(scope="module")
def cohort30(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort30")
    write_cohort(out, n=30, seed=4, progress=False)
    return out


def test_operating_points_are_chosen_on_the_validation_split_written_and_answered_at(
    cohort30, tiny_model, tmp_path, capsys
):
    import shutil

    from fuselens.model_zoo.loading import load_explainable

    model_dir = shutil.copytree(tiny_model, tmp_path / "m")
    args = ["operating-points", "--cohort", str(cohort30), "--model", str(model_dir)]
    assert main([*args, "--split-seed", "0", "--val-fraction", "0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "validation split" in out["chosen_on"] and "15 cases" in out["chosen_on"]
    hf = out["operating_points"]["heart_failure"]
    assert hf["n"] == 15 and 0.05 <= hf["yes_at"] <= 0.95 and hf["f1"] >= hf["f1_at_0.5"]
    assert main([*args, "--task", "heart_failure", "--write"]) == 0
    assert "heart_failure" in capsys.readouterr().out
    card = json.loads((model_dir / "card.json").read_text())
    assert list(card["operating_points"]) == ["heart_failure"]
    at = card["operating_points"]["heart_failure"]["yes_at"]
    assert load_explainable(model_dir).operating_points == {"heart_failure": at}
    for case in ("P00000", "P00001", "P00002"):
        assert main(["predict", str(cohort30 / case), "--model", str(model_dir), "--json"]) == 0
        task = json.loads(capsys.readouterr().out)["tasks"]["heart_failure"]
        assert task["yes_at"] == at
        assert task["answer"] == ("yes" if task["probabilities"]["yes"] >= at else "no")
    with pytest.raises(SystemExit, match="not a yes/no task"):
        main([*args, "--task", "no_such_task"])
