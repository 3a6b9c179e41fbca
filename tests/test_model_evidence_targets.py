"""Evidence supervision: planted masks land on the model's input grid where the preprocessing
puts the signal, and the evidence loss is the share of a present finding's map outside them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_model_support import make_case, tiny_config

from fuselens.model_zoo.case import ECHO_VIEWS, STANDARD_LEADS, GroundTruth
from fuselens.model_zoo.encoders.finding_maps import FindingOutput
from fuselens.model_zoo.evidence_targets import (
    ECHO_TARGET_SIZE,
    ecg_target,
    echo_target,
    evidence_batch,
    evidence_targets,
)
from fuselens.model_zoo.losses import evidence_loss, lab_evidence_loss

TASKS = ["heart_failure", "lbbb", "atrial_fibrillation"]
FINDING_TASKS = {"ecg": ["lbbb", "atrial_fibrillation"]}


def test_ecg_mask_moves_to_250_hz_in_canonical_leads() -> None:
    mask = np.zeros((12, 5000), dtype=bool)
    mask[STANDARD_LEADS.index("V5"), 1000:1100] = True  # 2.0-2.2 s at 500 Hz
    target = ecg_target(mask, 500.0)
    assert target.shape == (12, 2500)
    hot = np.flatnonzero(target[STANDARD_LEADS.index("V5")])
    assert hot.min() == 500 and hot.max() == 549
    assert target.sum() == 50


def test_echo_mask_is_sampled_over_the_loop_and_area_resized() -> None:
    frames = np.zeros((30, 112, 112), dtype=bool)
    frames[:15, :, :56] = True  # left half, first half of the loop
    target = echo_target({ECHO_VIEWS[1]: frames}, 4)
    assert target.shape == (len(ECHO_VIEWS), 4, ECHO_TARGET_SIZE, ECHO_TARGET_SIZE)
    assert not target[0].any() and not target[2].any()
    view = target[1].astype(np.float32)
    assert np.allclose(view[0, :, :8], 1.0) and np.allclose(view[0, :, 8:], 0.0)
    assert not view[-1].any()


def test_cases_without_truth_or_evidence_have_no_targets() -> None:
    case = make_case(0, 1)
    assert evidence_targets(case, tiny_config()) == {}
    case.truth = GroundTruth(masks={"cxr": np.zeros((64, 64), bool)})
    assert evidence_targets(case, tiny_config()) == {}
    case.truth.masks["cxr"][:8, :8] = True
    target = evidence_targets(case, tiny_config())["cxr"]
    assert target.shape == (64, 64) and target[:4, :4].min() == 1.0


def _ecg_findings(maps: torch.Tensor) -> dict[str, FindingOutput]:
    rows = torch.arange(maps.shape[0])
    return {"ecg": FindingOutput(rows, maps.mean(dim=(2, 3)), maps)}


@pytest.fixture
def ecg_mask() -> list[dict[str, np.ndarray]]:
    target = np.zeros((12, 2500), dtype=np.float16)
    target[:6, :1250] = 1.0  # limb leads, first 5 s
    return [{"ecg": target}, {}]


def _labels(lbbb: int) -> torch.Tensor:
    return torch.tensor([[1, lbbb, 0], [1, 1, 0]])


def test_evidence_loss_is_the_share_of_a_present_finding_outside_the_mask(ecg_mask) -> None:
    leads = torch.ones(2, 12, dtype=torch.bool)
    batch = evidence_batch(ecg_mask, [0, 1], torch.device("cpu"))
    inside = torch.zeros(2, 2, 12, 10)
    inside[:, :, :6, :5] = 1.0
    outside = torch.zeros(2, 2, 12, 10)
    outside[:, :, 6:, :] = 1.0
    half = inside + outside
    args = (FINDING_TASKS, _labels(1), TASKS, leads)
    assert evidence_loss(_ecg_findings(inside), batch, *args).item() == pytest.approx(0.0, abs=1e-5)
    assert evidence_loss(_ecg_findings(outside), batch, *args).item() == pytest.approx(1.0)
    assert evidence_loss(_ecg_findings(half), batch, *args).item() == pytest.approx(60 / 90)


def test_evidence_loss_skips_absent_findings_rows_without_masks_and_missing_leads(
    ecg_mask,
) -> None:
    batch = evidence_batch(ecg_mask, [0, 1], torch.device("cpu"))
    outside = torch.zeros(2, 2, 12, 10, requires_grad=True)
    with torch.no_grad():
        outside[:, :, 6:, :] = 1.0
    leads = torch.ones(2, 12, dtype=torch.bool)
    absent = evidence_loss(_ecg_findings(outside), batch, FINDING_TASKS, _labels(0), TASKS, leads)
    assert absent.item() == 0.0
    no_chest = leads.clone()
    no_chest[:, 6:] = False
    loss = evidence_loss(_ecg_findings(outside), batch, FINDING_TASKS, _labels(1), TASKS, no_chest)
    assert loss.item() == pytest.approx(0.0, abs=1e-5)
    loss = evidence_loss(_ecg_findings(outside), batch, FINDING_TASKS, _labels(1), TASKS, leads)
    loss.backward()
    assert outside.grad[0].abs().sum() > 0 and outside.grad[1].abs().sum() == 0


def test_lab_targets_mark_the_planted_lines_and_pad_to_the_longest_panel() -> None:
    case = make_case(0, 1)  # NT-proBNP, Sodium and maybe a History line
    case.truth = GroundTruth(masks={"labs": ["NT-proBNP"]})
    target = evidence_targets(case, tiny_config())["labs"]
    assert target.tolist() == [1.0] + [0.0] * (len(case.labs.line_names()) - 1)
    batch = evidence_batch([{"labs": np.ones(2, np.float16)}, {}, {"labs": target}], [0, 1, 2],
                           torch.device("cpu"))  # fmt: skip
    lines, has = batch["labs"]
    assert lines.shape == (3, max(2, len(target))) and has.tolist() == [True, False, True]
    assert lines[0].tolist()[:2] == [1.0, 1.0] and not lines[0, 2:].any()


def test_lab_evidence_loss_is_the_pool_attention_outside_the_planted_lines() -> None:
    lines = torch.tensor([[-1, 0, 0, 1, 1, -1], [-1, 0, 1, 2, -1, -1]])
    evidence = (torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), torch.tensor([True, False]))
    rows = torch.tensor([0, 1])
    on_line0 = torch.zeros(2, 2, 6)
    on_line0[:, :, 1:3] = 0.5
    assert lab_evidence_loss(on_line0, rows, lines, evidence).item() == pytest.approx(0.0)
    spread = torch.full((2, 2, 6), 1 / 6)
    assert lab_evidence_loss(spread, rows, lines, evidence).item() == pytest.approx(4 / 6)
    only_second = lab_evidence_loss(spread[1:], rows[1:], lines, evidence)
    assert only_second.item() == 0.0
