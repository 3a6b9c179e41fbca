"""The Gradio layout builds with every panel, and ``fuselens serve`` parses its options."""

from __future__ import annotations

import json

import gradio as gr
import pytest
from app_support import tiny_workstation

from fuselens.app import image_views
from fuselens.app.cli import build_parser
from fuselens.app.demo_cases import load_catalogue
from fuselens.app.page_warm_up import plotly_chunk, warm_up_js
from fuselens.app.session import Workstation
from fuselens.app.workstation import build_app, header_markdown
from fuselens.explain.methods import DEFAULT_METHOD, REGISTRY
from fuselens.model_zoo.fusion_explainable import DEMO_CAVEAT

PANEL_IDS = (
    "fl-demo",
    "fl-task",
    "fl-target",
    "fl-method",
    "fl-status",
    "fl-progress",
    "fl-prediction",
    "fl-unavailable",
    "fl-shapley",
    "fl-interactions",
    "fl-lab-text",
    "fl-lab-table",
    "fl-ecg",
    "fl-cxr",
    "fl-attention",
    "fl-guidance",
    "fl-sentences",
    "fl-report",
    "fl-evidence",
    "fl-export",
    "fl-html",
    "fl-zip",
    "fl-caveat",
)


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workstation:
    return tiny_workstation(0, tmp_path_factory.mktemp("cases"))


def test_layout_declares_every_panel(ws):
    app = build_app(ws)
    assert isinstance(app, gr.Blocks)
    ids = {b.elem_id for b in app.blocks.values() if getattr(b, "elem_id", None)}
    missing = [i for i in PANEL_IDS if i not in ids]
    assert not missing
    for i in range(image_views.ECHO_SLOTS):
        assert f"fl-echo-video-{i}" in ids and f"fl-echo-frame-{i}" in ids
    videos = [b for b in app.blocks.values() if isinstance(b, gr.Video)]
    assert len(videos) == image_views.ECHO_SLOTS and all(v.autoplay and v.loop for v in videos)
    demo = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "fl-demo")
    assert [value for _, value in demo.choices] == [d.key for d in load_catalogue()]
    method = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "fl-method")
    assert [value for _, value in method.choices] == list(REGISTRY)
    assert method.value == DEFAULT_METHOD
    caveat = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "fl-caveat")
    assert ws.model.model.caveat == DEMO_CAVEAT and DEMO_CAVEAT in caveat.value


def test_header_names_model_and_device(ws):
    text = header_markdown(ws)
    assert "tiny test model" in text and "cpu" in text
    assert f"tasks: {len(ws.model.model.tasks)}" in text


def test_serve_options_and_defaults():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.model, args.cases, args.device) == (
        "127.0.0.1",
        7860,
        "demo",
        None,
        "auto",
    )
    args = build_parser().parse_args(
        ["serve", "--port", "9000", "--model", "/m", "--cases", "/c", "--device", "cpu"]
    )
    assert (args.port, args.model, args.cases, args.device) == (9000, "/m", "/c", "cpu")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--device", "tpu"])


def test_warm_up_runs_the_model_on_a_demo_case_and_leaves_nothing_behind(ws):
    assert ws.warm_up() > 0
    assert len(ws.cache) == 0
    assert not any(ws.media_dir.iterdir())  # its loops were encoded in a folder it removed


def test_page_warm_up_imports_the_plotly_chunk_gradio_ships(tmp_path):
    chunk = plotly_chunk()
    assert chunk is not None and chunk.startswith("PlotlyPlot-") and chunk.endswith(".js")
    assert json.dumps(chunk) in warm_up_js()
    assert warm_up_js(tmp_path) is None  # a Gradio build without it: no script
