"""The staged pipeline, the bundle's save/load round trip, grounding and the HTML report."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from test_model_support import make_case, tiny_explainable

from fuselens.explain.bundle import FORMAT_VERSION, ExplanationBundle
from fuselens.explain.context import CaseContext
from fuselens.explain.grounding import ground_report, heading_modality, sentence_spans
from fuselens.explain.html_report import render_html
from fuselens.explain.methods import DEFAULT_METHOD
from fuselens.explain.pipeline import STAGES, explain_stages, map_evidence
from fuselens.model_zoo.fusion_explainable import DEMO_CAVEAT
from fuselens.model_zoo.synth.reports import HEADERS

VOCAB = ["<pad>", "<bos>", "<eos>", "<unk>", ".", ":", "\n", "ecg", "echo", "labs", "lbbb"]


@pytest.fixture(scope="module")
def case():
    return make_case(7, 1)


@pytest.fixture(scope="module")
def model():
    return tiny_explainable(0, name="tiny model", report_vocab=VOCAB)


@pytest.fixture(scope="module")
def staged(model, case):
    return list(explain_stages(model, case, text_max_evals=40, model_name="tiny"))


def test_stages_run_quick_ones_first_and_the_bundle_grows(staged) -> None:
    assert [s for s, _ in staged] == list(STAGES)
    by_stage = dict(staged)
    first, last, maps = staged[0][1], staged[-1][1], by_stage[DEFAULT_METHOD]
    assert first.maps == {} and first.shown_maps() is None
    assert first.text is first.shapley is first.report is None
    assert by_stage["text_lines"].text.level == "line" and by_stage["text_lines"].maps == {}
    assert list(maps.maps) == [DEFAULT_METHOD] and maps.shapley is None
    assert maps.shown_maps().method == DEFAULT_METHOD
    assert last.stages == list(STAGES)
    assert set(STAGES) <= set(last.timings)
    assert {f"{DEFAULT_METHOD}:{m}" for m in ("ecg", "echo", "cxr")} <= set(last.timings)
    assert last.unavailable == {}  # the demo model has every capability
    assert last.caveat == DEMO_CAVEAT and last.model_name == "tiny"
    assert (last.task, last.target) == ("heart_failure", "yes")
    assert 0.0 <= last.probability <= 1.0
    assert last.probability == pytest.approx(last.prediction["heart_failure"]["probability"])
    assert by_stage["report"].report is not None


def test_lab_evidence_is_exact_at_line_level_until_text_shap_refines(model, case, staged) -> None:
    ctx = CaseContext.build(model, case)
    quick = map_evidence(ctx, dict(staged)["report"])
    final = map_evidence(ctx, staged[-1][1])
    assert quick["labs"]["source"] == "text_lines" and final["labs"]["source"] == "text_shap"
    lines, words = dict(staged)["text_lines"].text, staged[-1][1].text
    assert (lines.level, words.level) == ("line", "word")
    np.testing.assert_allclose(lines.item_values, words.item_values, rtol=1e-4, atol=1e-5)
    assert "tokens" not in quick["labs"] and "tokens" in final["labs"]
    assert {"ecg", "echo", "cxr", "labs"} == set(final)
    top = final["labs"]["items"]
    values = dict(zip(staged[-1][1].text.items, staged[-1][1].text.item_values, strict=True))
    assert [i["name"] for i in top] == sorted(
        (k for k, v in values.items() if v > 0), key=lambda k: -values[k]
    )[:3]


def test_maps_are_shaped_like_the_case(staged, case) -> None:
    b = staged[-1][1]
    maps = b.maps[DEFAULT_METHOD]
    assert maps is b.shown_maps() and maps.method == DEFAULT_METHOD
    assert maps.ecg.shape == case.ecg.signal.shape
    assert maps.ecg_leads == case.ecg.lead_names and maps.ecg_rate_hz == 500.0
    assert set(maps.echo) == set(case.echo)
    for v, cam in maps.echo.items():
        assert cam.shape == case.echo[v].frames.shape
    assert maps.cxr.shape == case.cxr.image.shape
    assert b.text.token_values.shape == (len(b.text.tokens),)
    att = b.attention
    assert att.titles == [
        "Cross-modal attention (MedFlexFusion)",
        "Task guidance over the fused tokens",
        "Lambda mixing weights",
    ]
    assert att.matrices[0].shape == (4, 4) and att.matrices[2].shape == (4, 4)
    assert att.rows[0] == att.columns[0] == ["labs", "ecg", "echo", "cxr"]
    assert att.matrices[1].shape == (len(att.rows[1]), len(att.columns[1]))
    assert sum(att.block_shares.values()) == pytest.approx(1.0)
    assert len(b.shapley.coalitions) == 16


def _assert_same(a, b, path="bundle") -> None:
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            _assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, path
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{path}.{i}")
    else:
        assert type(a) is type(b) and a == b, path


def test_save_and_load_give_an_identical_bundle(staged, tmp_path) -> None:
    for stage, bundle in (staged[0], staged[-1]):
        folder = bundle.save(tmp_path / stage)
        assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "bundle.json"]
        _assert_same(bundle, ExplanationBundle.load(folder))


def test_load_rejects_other_formats(tmp_path, staged) -> None:
    folder = staged[0][1].save(tmp_path / "b")
    text = (folder / "bundle.json").read_text()
    version = f'"format_version": {FORMAT_VERSION}'
    assert version in text
    (folder / "bundle.json").write_text(text.replace(version, '"format_version": 9'))
    with pytest.raises(ValueError):
        ExplanationBundle.load(folder)


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


def test_html_report_is_self_contained(staged, case) -> None:
    page = render_html(staged[-1][1], case)
    parser = _Refs()
    parser.feed(page)
    assert "script" not in parser.tags and "link" not in parser.tags
    assert parser.refs and all(r.startswith("data:image/png;base64,") for r in parser.refs)
    assert parser.tags.count("img") >= 4  # ECG, two echo views, CXR
    assert "<svg" in page
    without_data = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"(?:https?:)?//[a-z]", without_data)
    assert page.count(DEMO_CAVEAT.replace("—", "&mdash;")) + page.count(DEMO_CAVEAT) >= 2


def test_sentences_follow_headings_then_attention() -> None:
    words = ["ecg", ":", "lbbb", ".", "\n", "impression", ":", "lbbb", ".", "x"]
    assert sentence_spans(words) == [(0, 4), (5, 9), (9, 10)]
    assert heading_modality(["chest", "x-ray", ":", "edema"], HEADERS) == "cxr"
    assert heading_modality(["echo", "normal"], HEADERS) is None
    assert heading_modality(["chest", "x-ray", ":", "edema"], {}) is None
    labels = ["labs:0", "ecg:0", "echo:0", "cxr:0", "shared:0", "task:heart_failure"]
    att = np.zeros((len(words), len(labels)))
    att[:, 2] = 1.0  # every word looks at echo
    evidence = {"ecg": {"leads": []}, "echo": {"view": "A4C"}}
    rep = ground_report(words, att, labels, ["ecg", "echo"], evidence, HEADERS)
    assert [s.modality for s in rep.sentences] == ["ecg", "echo", "echo"]
    assert [s.basis for s in rep.sentences] == ["section", "attention", "attention"]
    assert rep.sentences[0].evidence == {"leads": []}
    assert rep.sentences[1].attention["echo"] == pytest.approx(1.0)
    assert rep.sentences[0].text == "Ecg: lbbb."
    # a model that states no report headings: every sentence is grounded by attention
    bare = ground_report(words, att, labels, ["ecg", "echo"], evidence)
    assert [s.modality for s in bare.sentences] == ["echo", "echo", "echo"]
    assert {s.basis for s in bare.sentences} == {"attention"}
