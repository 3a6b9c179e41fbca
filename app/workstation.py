"""The Gradio workstation: the layout, declared once, and thin callbacks.

Callbacks only call :mod:`app.session`, :mod:`app.views` and :mod:`app.exports`; every
value a panel shows can be computed from a test without a browser.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from app import exports, image_views, report_views, views  # noqa: E402
from app.demo_cases import DemoCase, load_catalogue  # noqa: E402
from app.figures.prediction import DEMO_CAVEAT  # noqa: E402
from app.figures.text_highlight import HIGHLIGHT_CLASS, HIGHLIGHT_CSS  # noqa: E402
from app.session import (  # noqa: E402
    STATUS_COLUMNS,
    ExplanationCache,
    LoadedCase,
    LoadedModel,
    load_workstation_model,
    open_demo,
    open_uploads,
    status_table,
)
from explain.bundle import ExplanationBundle  # noqa: E402
from explain.pipeline import explain_stages  # noqa: E402

CSS = (
    HIGHLIGHT_CSS
    + """
.fl-caveat {border-left: 4px solid #d62728; padding-left: 8px;}
.fl-header h1 {margin-bottom: 0;}
"""
)


@dataclass
class Current:
    """One browser session's open case and its latest (possibly unfinished) bundle."""

    loaded: LoadedCase
    bundle: ExplanationBundle | None = None
    slots: list[str] = field(default_factory=list)


class Workstation:
    """The model, demo catalogue, explanation cache and media folder shared by sessions."""

    def __init__(
        self,
        loaded_model: LoadedModel,
        catalogue: list[DemoCase],
        cases_dir: str | Path | None = None,
        media_dir: str | Path | None = None,
    ):
        self.model = loaded_model
        self.catalogue = {d.key: d for d in catalogue}
        self.cases_dir = cases_dir
        self.media_dir = Path(media_dir or tempfile.mkdtemp(prefix="fuselens-media-"))
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.cache = ExplanationCache()

    # ---------------------------------------------------------------- cases

    def open_demo(self, key: str) -> LoadedCase:
        return open_demo(self.catalogue[key], self.cases_dir)

    def open_uploads(self, paths: list[str]) -> LoadedCase:
        return open_uploads(paths, self.media_dir)

    def settings(self, echo_opacity: list[float], cxr_opacity: float) -> dict[str, Any]:
        return {
            "echo_opacity": list(echo_opacity),
            "cxr_opacity": float(cxr_opacity),
            "media_dir": self.media_dir,
        }

    # ---------------------------------------------------------------- explanations

    def explain(
        self, loaded: LoadedCase, task: str, target: str
    ) -> Iterator[tuple[str, ExplanationBundle, bool]]:
        """``(stage, bundle, from_cache)``: the cached bundle at once, or each stage as done."""
        key = (loaded.key, task, target)
        cached = self.cache.get(key)
        if cached is not None:
            yield "cached", cached, True
            return
        bundle = None
        m = self.model
        for stage, bundle in explain_stages(
            m.model, m.config, loaded.case, task, target, model_name=m.name
        ):
            yield stage, bundle, False
        if bundle is not None:
            self.cache.put(key, bundle)

    def warm_up(self) -> float:
        """Run the model once on the first demo case so the first real request is quick."""
        t0 = time.perf_counter()
        synthetic = [d for d in self.catalogue.values() if d.seed is not None]
        if synthetic:
            from model_zoo.predict import predict_case

            predict_case(self.model.model, self.open_demo(synthetic[0].key).case)
        return time.perf_counter() - t0


def header_markdown(ws: Workstation) -> str:
    m = ws.model
    return (
        f"# FuseLens workstation\n"
        f"Model: **{m.name}** · device: **{m.device}**"
        f" · tasks: {len(m.model.tasks)}\n\n"
    )


def build_app(ws: Workstation) -> gr.Blocks:
    """The workstation layout with its callbacks wired to ``ws``."""
    tasks = list(ws.model.model.tasks)
    panels: dict[str, Any] = {}
    echo_opacity: list[gr.Slider] = []
    echo_scrub: list[gr.Slider] = []
    echo_title: list[gr.Markdown] = []
    echo_col: list[gr.Column] = []

    with gr.Blocks(title="FuseLens workstation", analytics_enabled=False) as app:
        current = gr.State(None)
        with gr.Row(elem_classes=["fl-header"]):
            gr.Markdown(header_markdown(ws), elem_id="fl-header")
            gr.Markdown(f"⚠️ **{DEMO_CAVEAT}**", elem_classes=["fl-caveat"], elem_id="fl-caveat")

        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=280):
                demo_pick = gr.Dropdown(
                    choices=[(d.title, d.key) for d in ws.catalogue.values()],
                    value=None,
                    label="Demo case",
                    elem_id="fl-demo",
                )
                story = gr.Markdown(elem_id="fl-story")
                with gr.Accordion("Open your own files (or a zip of a case folder)", open=False):
                    uploads = gr.File(file_count="multiple", label="Files", elem_id="fl-upload")
                    open_btn = gr.Button("Open uploaded files", elem_id="fl-open")
            with gr.Column(scale=3, min_width=260):
                task = gr.Dropdown(
                    choices=views.task_choices(tasks),
                    value=tasks[0],
                    label="Task",
                    elem_id="fl-task",
                )
                target = gr.Radio(
                    choices=list(ws.model.model.tasks[tasks[0]]),
                    value=ws.model.model.tasks[tasks[0]][-1],
                    label="Class to explain",
                    elem_id="fl-target",
                )
                progress = gr.Markdown("Pick a demo case or open files.", elem_id="fl-progress")
            with gr.Column(scale=5, min_width=360):
                status = gr.Dataframe(
                    headers=STATUS_COLUMNS,
                    label="Files read",
                    interactive=False,
                    wrap=True,
                    max_height=320,
                    elem_id="fl-status",
                )

        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=280):
                panels["prediction"] = gr.Markdown(elem_id="fl-prediction")
                panels["prediction_context"] = gr.Markdown(elem_id="fl-prediction-context")
            with gr.Column(scale=4, min_width=320):
                panels["shapley"] = gr.Plot(label="Modality contributions", elem_id="fl-shapley")
            with gr.Column(scale=3, min_width=280):
                panels["interactions"] = gr.Plot(label="Interactions", elem_id="fl-interactions")

        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                panels["lab_text"] = gr.HighlightedText(
                    label="Lab text (SHAP: red raises, blue lowers the explained answer)",
                    show_legend=True,
                    combine_adjacent=False,
                    elem_classes=[HIGHLIGHT_CLASS],
                    elem_id="fl-lab-text",
                )
            with gr.Column(scale=2):
                panels["lab_table"] = gr.Dataframe(
                    label="Lab items by contribution (log-odds)",
                    interactive=False,
                    wrap=True,
                    elem_id="fl-lab-table",
                )

        panels["ecg"] = gr.Plot(label="12-lead ECG with Grad-CAM++", elem_id="fl-ecg")

        with gr.Row(equal_height=False):
            for i in range(image_views.ECHO_SLOTS):
                with gr.Column(scale=2, min_width=220, visible=False) as col:
                    echo_col.append(col)
                    echo_title.append(gr.Markdown(f"**Echo view {i + 1}**"))
                    panels[f"echo_video:{i}"] = gr.Video(
                        label="Cine loop with Grad-CAM++",
                        autoplay=True,
                        loop=True,
                        interactive=False,
                        height=260,
                        elem_id=f"fl-echo-video-{i}",
                    )
                    echo_opacity.append(
                        gr.Slider(0, 1, value=0.5, step=0.05, label="Overlay opacity")
                    )
                    echo_scrub.append(gr.Slider(0, 1, value=0, step=1, label="Frame"))
                    panels[f"echo_frame:{i}"] = gr.Image(
                        label="Frame",
                        interactive=False,
                        height=260,
                        elem_id=f"fl-echo-frame-{i}",
                    )
            with gr.Column(scale=3, min_width=300):
                panels["cxr"] = gr.Image(
                    label="Chest X-ray with Grad-CAM++",
                    interactive=False,
                    height=460,
                    elem_id="fl-cxr",
                )
                cxr_opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Overlay opacity")

        with gr.Row(equal_height=False):
            panels["attention_modality"] = gr.Plot(
                label="Cross-modal attention", elem_id="fl-attention"
            )
            panels["attention_guidance"] = gr.Plot(
                label="Task guidance attention", elem_id="fl-guidance"
            )

        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                panels["report_sentences"] = gr.Radio(
                    choices=[],
                    type="index",
                    label="Generated report: choose a sentence to see its evidence",
                    elem_id="fl-sentences",
                )
                panels["report_text"] = gr.HighlightedText(
                    label="Report",
                    show_legend=False,
                    show_inline_category=False,
                    color_map={report_views.SELECTED: "#ffd54f"},
                    elem_classes=[HIGHLIGHT_CLASS, "fl-report"],
                    elem_id="fl-report",
                )
            with gr.Column(scale=1):
                panels["evidence_md"] = gr.Markdown(elem_id="fl-evidence")
                panels["evidence_image"] = gr.Image(
                    label="Evidence", interactive=False, height=320, elem_id="fl-evidence-image"
                )
                panels["evidence_ecg"] = gr.Plot(label="ECG evidence", elem_id="fl-evidence-ecg")

        with gr.Row():
            export_btn = gr.Button("Export HTML report and JSON bundle", elem_id="fl-export")
            html_file = gr.File(label="HTML report", interactive=False, elem_id="fl-html")
            zip_file = gr.File(label="JSON bundle (zip)", interactive=False, elem_id="fl-zip")

        panel_names = list(panels)
        panel_outputs = [panels[n] for n in panel_names]
        slot_outputs = echo_col + echo_title + echo_scrub

        def to_updates(values: dict[str, Any]) -> dict[Any, Any]:
            out: dict[Any, Any] = {}
            for name, value in values.items():
                comp = panels[name]
                if name == "report_sentences":
                    out[comp] = gr.update(choices=value, value=0 if value else None)
                elif name in ("evidence_image", "evidence_ecg"):
                    out[comp] = gr.update(value=value, visible=value is not None)
                else:
                    out[comp] = value
            return out

        def slot_updates(cur: Current) -> dict[Any, Any]:
            out: dict[Any, Any] = {}
            for i in range(image_views.ECHO_SLOTS):
                present = i < len(cur.slots)
                out[echo_col[i]] = gr.update(visible=present)
                if present:
                    cine = cur.loaded.case.echo[cur.slots[i]]
                    out[echo_title[i]] = f"**Echo {cur.slots[i]}** · {cine.frame_rate:g} frames/s"
                    out[echo_scrub[i]] = gr.update(
                        maximum=cine.frames.shape[0] - 1, value=0, visible=True
                    )
            return out

        def on_open(loaded: LoadedCase) -> dict[Any, Any]:
            cur = Current(loaded, None, image_views.echo_slots(loaded.case))
            out = {current: cur, status: status_table(loaded.reports)}
            out[story] = (
                f"**{loaded.title}** — {loaded.story}\n\n"
                f"Holds: {views.present_modalities(loaded.case)}"
            )
            out.update(slot_updates(cur))
            out.update(to_updates(views.opened_panels(loaded.case)))
            out[progress] = "Case opened; explaining…"
            out[html_file] = None
            out[zip_file] = None
            return out

        open_outputs = [current, status, story, progress, html_file, zip_file]
        open_outputs += panel_outputs + slot_outputs

        def open_demo_case(key: str | None) -> dict[Any, Any]:
            if not key:
                return {progress: "Pick a demo case or open files."}
            return on_open(ws.open_demo(key))

        def open_uploaded(files: list[str] | None) -> dict[Any, Any]:
            if not files:
                return {progress: "Choose files to upload first."}
            return on_open(ws.open_uploads([str(f) for f in files]))

        def run_explanations(
            cur: Current | None, task_key: str, target_key: str, co: float, *eo: float
        ) -> Iterator[dict[Any, Any]]:
            if cur is None:
                yield {progress: "Pick a demo case or open files."}
                return
            if not cur.loaded.case.modalities():
                yield {progress: "Nothing readable in this case: see the file table."}
                return
            settings = ws.settings(list(eo), co)
            yield {progress: views.progress_markdown(None, "prediction")}
            from explain.pipeline import STAGES

            for stage, bundle, cached in ws.explain(cur.loaded, task_key, target_key):
                cur.bundle = bundle
                if cached:
                    values = views.bundle_panels(cur.loaded.case, bundle, settings)
                    note = views.progress_markdown(bundle) + " · (from cache)"
                else:
                    values = views.stage_panels(stage, cur.loaded.case, bundle, settings)
                    nxt = STAGES.index(stage) + 1
                    note = views.progress_markdown(
                        bundle, STAGES[nxt] if nxt < len(STAGES) else None
                    )
                out = to_updates(values)
                out[progress] = note
                out[current] = cur
                yield out
            if cur.bundle is not None:
                total = sum(cur.bundle.timings.values())
                yield {progress: views.progress_markdown(cur.bundle) + f" · done ({total:.1f} s)"}

        explain_inputs = [current, task, target, cxr_opacity, *echo_opacity]
        explain_outputs = [current, progress, *panel_outputs]

        opened = demo_pick.change(
            open_demo_case, [demo_pick], open_outputs, show_progress="minimal"
        )
        explaining = opened.then(
            run_explanations, explain_inputs, explain_outputs, show_progress="hidden"
        )
        uploaded = open_btn.click(open_uploaded, [uploads], open_outputs)
        explaining_upload = uploaded.then(
            run_explanations, explain_inputs, explain_outputs, show_progress="hidden"
        )

        def choose_task(task_key: str) -> dict[Any, Any]:
            answers = list(ws.model.model.tasks[task_key])
            return {target: gr.update(choices=answers, value=answers[-1])}

        task_changed = task.input(choose_task, [task], [target]).then(
            run_explanations, explain_inputs, explain_outputs, show_progress="hidden"
        )
        target_changed = target.input(
            run_explanations, explain_inputs, explain_outputs, show_progress="hidden"
        )
        running = [explaining, explaining_upload, task_changed, target_changed]
        for trigger in (demo_pick.change, open_btn.click, task.input, target.input):
            trigger(None, None, None, cancels=running)

        def slot_cam(cur: Current, i: int):
            cine = cur.loaded.case.echo[cur.slots[i]]
            gradcam = cur.bundle.gradcam if cur.bundle is not None else None
            return cine, image_views.echo_cam(gradcam, cur.slots[i])

        for i in range(image_views.ECHO_SLOTS):

            def redraw_loop(cur: Current | None, opacity: float, frame: int, i: int = i):
                if cur is None or i >= len(cur.slots):
                    return gr.skip(), gr.skip()
                cine, cam = slot_cam(cur, i)
                video = image_views.echo_loop_file(cine, cam, opacity, ws.media_dir)
                return str(video), image_views.echo_frame_image(cine, cam, opacity, frame)

            def redraw_frame(cur: Current | None, opacity: float, frame: int, i: int = i):
                if cur is None or i >= len(cur.slots):
                    return gr.skip()
                cine, cam = slot_cam(cur, i)
                return image_views.echo_frame_image(cine, cam, opacity, frame)

            loop_outputs = [panels[f"echo_video:{i}"], panels[f"echo_frame:{i}"]]
            echo_opacity[i].release(
                redraw_loop, [current, echo_opacity[i], echo_scrub[i]], loop_outputs
            )
            echo_scrub[i].input(
                redraw_frame,
                [current, echo_opacity[i], echo_scrub[i]],
                [panels[f"echo_frame:{i}"]],
                show_progress="hidden",
            )

        def redraw_cxr(cur: Current | None, opacity: float):
            if cur is None:
                return gr.skip()
            gradcam = cur.bundle.gradcam if cur.bundle is not None else None
            return image_views.cxr_panel(cur.loaded.case, gradcam, opacity)

        cxr_opacity.release(redraw_cxr, [current, cxr_opacity], [panels["cxr"]])

        def choose_sentence(cur: Current | None, index: int | None) -> dict[Any, Any]:
            if cur is None or cur.bundle is None:
                return {}
            return to_updates(report_views.sentence_evidence(cur.loaded.case, cur.bundle, index))

        evidence_names = ["report_text", "evidence_md", "evidence_image", "evidence_ecg"]
        panels["report_sentences"].input(
            choose_sentence,
            [current, panels["report_sentences"]],
            [panels[n] for n in evidence_names],
        )

        def export(cur: Current | None):
            if cur is None or cur.bundle is None:
                raise gr.Error("Open a case and let its explanations finish first.")
            html, bundle_zip = exports.export_all(cur.loaded.case, cur.bundle, ws.media_dir)
            return str(html), str(bundle_zip)

        export_btn.click(export, [current], [html_file, zip_file])
    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 7860,
    model: str = "demo",
    cases_dir: str | None = None,
    device: str = "auto",
) -> int:
    """Load the model, build the app and serve it until interrupted."""
    t0 = time.perf_counter()
    try:
        loaded = load_workstation_model(model, device)
    except (FileNotFoundError, ValueError) as exc:
        print(f"fuselens serve: {exc}", file=sys.stderr)
        return 2
    ws = Workstation(loaded, load_catalogue(), cases_dir)
    print(f"FuseLens: {loaded.name} on {loaded.device} ({time.perf_counter() - t0:.1f} s)")
    app = build_app(ws)
    app.queue(default_concurrency_limit=1)
    app.launch(
        server_name=host,
        server_port=port,
        css=CSS,
        show_error=True,
        footer_links=[],
        allowed_paths=[str(ws.media_dir)],
        prevent_thread_lock=True,
    )
    print(f"FuseLens: serving on http://{host}:{port} ({time.perf_counter() - t0:.1f} s)")
    warm = ws.warm_up()
    print(f"FuseLens: model warmed up on a demo case ({warm:.1f} s)")
    try:
        app.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return 0
