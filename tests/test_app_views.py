"""Every workstation panel from a real (synthetic) case explained by a tiny model, no browser."""

from __future__ import annotations

import dataclasses

import imageio.v2 as iio2
import numpy as np
import pandas as pd
import pytest
from app_support import REPORTING_SEED, tiny_workstation

from fuselens.app import image_views, report_views, views
from fuselens.app.session import Workstation
from fuselens.explain.methods import DEFAULT_METHOD
from fuselens.explain.pipeline import STAGES


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workstation:
    return tiny_workstation(
        REPORTING_SEED, tmp_path_factory.mktemp("cases"), tmp_path_factory.mktemp("media")
    )


@pytest.fixture(scope="module")
def explained(ws):
    """The clear-HF demo case and each stage's bundle snapshot."""
    loaded = ws.open_demo("hf-clear")
    stages = [(stage, bundle) for stage, bundle, _ in ws.explain(loaded, "heart_failure", "yes")]
    return loaded, stages


@pytest.fixture(scope="module")
def final(explained):
    loaded, stages = explained
    return loaded.case, stages[-1][1]


def settings(ws, echo=0.5, cxr=0.5, method=DEFAULT_METHOD):
    return ws.settings([echo] * image_views.ECHO_SLOTS, cxr, method)


def loaded_case(explained):
    return explained[0].case


def test_stages_arrive_quick_ones_first(explained):
    _, stages = explained
    names = [s for s, _ in stages]
    assert names == list(STAGES)
    first, by_stage = stages[0][1], dict(stages)
    assert first.maps == {} and first.text is None and first.prediction
    assert by_stage["text_lines"].text.level == "line" and by_stage["text_lines"].maps == {}
    assert list(by_stage[DEFAULT_METHOD].maps) == [DEFAULT_METHOD]
    lines = views.stage_panels("text_lines", loaded_case(explained), by_stage["text_lines"])
    assert set(lines) == {"lab_text", "lab_table"}
    assert any(score for _, score in lines["lab_text"])


def test_explained_case_is_cached_by_case_task_and_class(ws, explained):
    loaded, stages = explained
    again = list(ws.explain(loaded, "heart_failure", "yes"))
    assert len(again) == 1 and again[0][0] == "cached" and again[0][2] is True
    assert again[0][1] is stages[-1][1]
    assert (loaded.key, "heart_failure", "yes", DEFAULT_METHOD) in ws.cache
    assert (loaded.key, "heart_failure", "no", DEFAULT_METHOD) not in ws.cache
    assert (loaded.key, "heart_failure", "yes", "occlusion") not in ws.cache
    assert ws.is_finished(loaded, stages[-1][1]) and not ws.is_finished(loaded, stages[1][1])


def test_prediction_panel_shows_probability_truth_and_caveat(final):
    case, bundle = final
    card = views.prediction_card(bundle)
    answer = bundle.prediction["heart_failure"]["answer"]
    p = bundle.prediction["heart_failure"]["probabilities"][answer]
    assert "Heart failure" in card and f"{p:.1%}" in card and "not for clinical use" in card
    context = views.prediction_context(bundle, case.truth)
    assert "Planted truth" in context and "**yes**" in context
    assert "Atrial fibrillation" in context
    panels = views.stage_panels("prediction", case, bundle)
    assert panels["prediction"] == card and panels["unavailable"] == ""  # every capability


def test_lab_panels_before_and_after_text_shap(explained):
    loaded, stages = explained
    case = loaded.case
    plain = views.lab_text_panel(case, stages[0][1])
    assert plain == [(case.labs.textualise(), None)]
    before = views.lab_table_panel(case, None)
    assert list(before.columns) == ["Lab item", "Value"] and "5201 pg/mL (H)" in set(before.Value)
    bundle = stages[-1][1]
    segments = views.lab_text_panel(case, bundle)
    assert "".join(t for t, _ in segments) == case.labs.textualise()
    scores = [s for _, s in segments if s is not None]
    assert scores and max(abs(s) for s in scores) == pytest.approx(1.0)
    table = views.lab_table_panel(case, bundle)
    assert set(table["Lab item"]) == {i.name for i in case.labs.items} | {"History", "Medications"}
    contrib = table["Contribution"].abs().to_numpy()
    assert (np.diff(contrib) <= 1e-9).all()


def test_gradcam_stage_fills_ecg_echo_and_cxr(ws, final):
    case, bundle = final
    assert views.stage_panels(DEFAULT_METHOD, case, bundle, settings(ws, method="occlusion")) == {}
    out = views.stage_panels(DEFAULT_METHOD, case, bundle, settings(ws))
    ecg = out["ecg"]
    kinds = [t.meta.get("kind") for t in ecg.data if isinstance(t.meta, dict)]
    assert kinds.count("lead") >= 12 and "shading" in kinds
    assert image_views.echo_slots(case) == ["A4C", "A2C", "PLAX"]
    for i in range(3):
        frames = iio2.mimread(out[f"echo_video:{i}"], format="FFMPEG")
        assert len(frames) == case.echo[image_views.echo_slots(case)[i]].frames.shape[0]
        assert out[f"echo_frame:{i}"].shape == (256, 256, 3)
        first = out[f"echo_frame:{i}"].astype(int)
        assert np.abs(first - first[..., :1]).max() > 30  # coloured overlay, not grey
    cxr = out["cxr"]
    assert cxr.shape == (512, 512, 3) and cxr.dtype == np.uint8


def test_overlay_opacity_and_frame_scrubber(final):
    case, bundle = final
    cine = case.echo["A4C"]
    maps = bundle.shown_maps(DEFAULT_METHOD)
    assert maps is bundle.maps[DEFAULT_METHOD]
    cam = image_views.echo_cam(maps, "A4C")
    assert cam is not None and cam.shape[0] == cine.frames.shape[0]
    clear = image_views.echo_frame_image(cine, cam, 0.0, 5)
    assert np.array_equal(clear[..., 0], clear[..., 1])  # opacity 0: the grey frame
    strong = image_views.echo_frame_image(cine, cam, 0.8, 5)
    assert np.abs(strong.astype(int) - clear.astype(int)).mean() > 5
    other = image_views.echo_frame_image(cine, cam, 0.0, 20)
    assert not np.array_equal(clear, other)
    last = image_views.echo_frame_image(cine, cam, 0.0, cine.frames.shape[0] - 1)
    assert np.array_equal(image_views.echo_frame_image(cine, cam, 0.0, 999), last)
    dim = image_views.cxr_panel(case, maps, 0.0)
    bright = image_views.cxr_panel(case, maps, 0.9)
    assert np.array_equal(dim[..., 0], dim[..., 2]) and not np.array_equal(dim, bright)


def test_shapley_and_attention_panels(final):
    case, bundle = final
    bars, matrix = views.shapley_panels(bundle)
    assert list(bars.data[0].y) and len(bars.data[0].x) == 4
    assert np.asarray(matrix.data[0].z).shape == (4, 4)
    fusion, guidance = views.attention_panels(bundle)
    assert np.asarray(fusion.data[0].z).shape == (4, 4)
    assert bundle.attention.titles[0] == "Cross-modal attention (MedFlexFusion)"
    assert np.asarray(guidance.data[0].z).shape == (
        len(bundle.attention.rows[1]),
        len(bundle.attention.columns[1]),
    )


def test_report_sentence_choice_highlights_its_evidence(final):
    case, bundle = final
    choices = report_views.report_sentences(bundle.report)
    assert choices and all(c.split(". ", 1)[1] for c in choices)
    for i, sentence in enumerate(bundle.report.sentences):
        out = report_views.sentence_evidence(case, bundle, i)
        marked = [t for t, label in out["report_text"] if label == report_views.SELECTED]
        assert marked == [sentence.text]
        assert sentence.text in out["evidence_md"]
        if sentence.modality in ("echo", "cxr") and sentence.evidence.get("bbox"):
            image = out["evidence_image"]
            assert image.ndim == 3 and (image == [255, 0, 160]).all(axis=-1).any()
        if sentence.modality == "ecg" and sentence.evidence.get("windows"):
            fig = out["evidence_ecg"]
            shown = [t.meta["lead"] for t in fig.data]
            windows = [w for w in sentence.evidence["windows"] if w["lead"] in shown]
            assert shown and len(fig.layout.shapes) == len(windows)
            assert fig.layout.shapes[0].x0 == pytest.approx(windows[0]["start_s"])
    none = report_views.sentence_evidence(case, bundle, None)
    assert none["evidence_md"] == "" and not any(label for _, label in none["report_text"])


def test_bundle_panels_match_stage_panels(ws, final):
    case, bundle = final
    every = views.bundle_panels(case, bundle, settings(ws))
    expected = {"prediction", "ecg", "cxr", "shapley", "interactions", "attention_modality"}
    expected |= {"lab_text", "lab_table", "report_sentences", "report_text", "echo_frame:2"}
    assert expected <= set(every)


def test_opened_panels_reset_everything(final):
    case, _ = final
    out = views.opened_panels(case)
    assert out["prediction"] == "" and out["ecg"] is None and out["shapley"] is None
    assert out["cxr"].shape[-1] == 3 and isinstance(out["lab_table"], pd.DataFrame)
    assert "Echo (A4C, A2C, PLAX)" in out["prediction_context"]


def test_progress_lists_every_stage(explained):
    _, stages = explained
    mid = views.progress_markdown(dict(stages)[DEFAULT_METHOD], "attention")
    assert "✓ prediction" in mid and "✓ Grad-CAM++" in mid and "▸ **attention…**" in mid
    assert "✓ lab lines (exact)" in mid and "○ lab text SHAP" in mid
    first = views.progress_markdown(stages[0][1], finished=True)
    assert "– Grad-CAM++ (not applicable)" in first and first.endswith(" s)")


def test_task_labels_cover_the_models_tasks(ws):
    for label, key in views.task_choices(list(ws.model.model.tasks)):
        assert label and "_" not in label and key in ws.model.model.tasks


def test_case_with_missing_modalities_runs_on_what_is_present(ws):
    loaded = ws.open_demo("missing-modalities")
    bundle = list(ws.explain(loaded, "heart_failure", "yes"))[-1][1]
    assert bundle.modalities == ["labs", "echo"]
    panels = views.bundle_panels(loaded.case, bundle, settings(ws))
    assert panels["ecg"] is None and panels["cxr"] is None
    assert [k for k in panels if k.startswith("echo_video")] == [
        "echo_video:0",
        "echo_video:1",
        "echo_video:2",
    ]
    assert set(bundle.shapley.values) == {"labs", "echo"}
    assert np.asarray(panels["interactions"].data[0].z).shape == (2, 2)
    assert any(s is not None for _, s in panels["lab_text"])


def test_ecg_measurements_and_report_checks_are_panels(ws, final):
    case, bundle = final
    ecg = bundle.measurements["ecg"]
    assert 40 <= ecg["heart_rate"] <= 150 and ecg["lead"] in case.ecg.lead_names
    every = views.bundle_panels(case, bundle, settings(ws))
    assert every["ecg_measurements"].startswith("**Measured:** HR ")
    assert "neurokit2" in every["ecg_measurements"]
    checks = every["report_checks"]
    assert checks == report_views.report_checks_markdown(bundle.report) and checks
    withheld = [c for c in bundle.report.checks if c["kind"] == "withheld"]
    for c in withheld:  # the untrained decoder's claims its own heads deny are shown, not hidden
        assert c["why"] in checks and c["text"] not in bundle.report.text


def test_the_default_class_is_the_models_own_answer(ws):
    from fuselens.explain.context import PREDICTED

    loaded = ws.open_demo("hf-clear")
    *_, (_, bundle, _) = ws.explain(loaded, "heart_failure", PREDICTED)
    answer = bundle.prediction["heart_failure"]["answer"]
    assert bundle.target == answer
    assert ws.cache.get((loaded.key, "heart_failure", answer, DEFAULT_METHOD)) is bundle
    assert views.target_choices(["no", "yes"])[0] == ("the model's answer", PREDICTED)


def test_the_models_estimates_are_shown_as_the_models(final):
    case, bundle = final
    estimates = bundle.measurements["model_estimates"]
    assert set(estimates) == {"ef", "ctr"} and case.echo and case.cxr is not None
    assert estimates["ef"]["source"] == "model estimate (echo head)"
    text = views.prediction_context(bundle, case.truth)
    assert "Model estimates (the model's, not measured on the case)" in text
    assert f"**{estimates['ef']['text']}**" in text and f"**{estimates['ctr']['text']}**" in text


def test_the_report_checks_panel_lists_heads_that_disagree(final):
    _, bundle = final
    split = {"kind": "disagreement", "finding": "reduced_ef", "why": "EF estimate is 62% but"}
    report = dataclasses.replace(bundle.report, checks=[*bundle.report.checks, split])
    text = report_views.report_checks_markdown(report)
    heading = "**The model disagrees with itself or with the case's values**\n"
    assert heading in text
    assert "- ⚠️ EF estimate is 62% but" in text.split(heading, 1)[1]
