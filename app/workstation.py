"""The Gradio workstation: the layout, declared once, and thin callbacks.

:func:`declare_layout` places every component; :func:`wire_events` connects them to
callbacks that only call :mod:`fuselens.app.session`, :mod:`fuselens.app.views`,
:mod:`fuselens.app.image_views`,
:mod:`fuselens.app.report_views` and :mod:`fuselens.app.exports`, so every value a panel shows can
be
computed from a test without a browser.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from fuselens.app import exports, image_views, login, report_views, views  # noqa: E402
from fuselens.app.demo_cases import load_catalogue  # noqa: E402
from fuselens.app.figures.text_highlight import HIGHLIGHT_CLASS, HIGHLIGHT_CSS  # noqa: E402
from fuselens.app.page_warm_up import warm_up_js  # noqa: E402
from fuselens.app.review import ui as review_ui  # noqa: E402
from fuselens.app.review.store import Sessions  # noqa: E402
from fuselens.app.review.workers import explained_class  # noqa: E402
from fuselens.app.session import (  # noqa: E402
    CACHED,
    PANELS,
    STATUS_COLUMNS,
    Current,
    LoadedCase,
    Workstation,
    load_workstation_model,
    status_table,
)
from fuselens.explain.bundle import ExplanationBundle  # noqa: E402
from fuselens.explain.context import PREDICTED  # noqa: E402
from fuselens.explain.methods import DEFAULT_METHOD, REGISTRY  # noqa: E402
from fuselens.explain.pipeline import stage_names  # noqa: E402
from fuselens.model_zoo.contract import capabilities  # noqa: E402

CSS = (
    HIGHLIGHT_CSS
    + """
.fl-caveat {border-left: 4px solid #d62728; padding-left: 8px;}
.fl-header h1 {margin-bottom: 0;}
"""
)
PICK_A_CASE = "Pick a demo case or open files."
LOG = logging.getLogger("fuselens.workstation")
CASE_TAB = "case"
CASE_TAB_ELEM = "fl-tab-case"
FIRST_RESULT_WAIT_S = 1.0  # how long opening a case waits for its prediction
PANELS_WAIT_S = 2.0  # and then for a cached bundle's panels, built on the worker thread
EXPLAIN_WAITERS = 16  # browser sessions waiting for their explanation at once
SELECTED_COLOUR = "#ffd54f"


@dataclass
class Layout:
    """Every component the callbacks read or write; ``panels`` by :mod:`fuselens.app.views` name."""

    current: Any
    demo_pick: Any
    story: Any
    uploads: Any
    open_btn: Any
    task: Any
    target: Any
    method: Any
    progress: Any
    status: Any
    cxr_opacity: Any
    export_btn: Any
    html_file: Any
    zip_file: Any
    panels: dict[str, Any] = field(default_factory=dict)
    echo_col: list[Any] = field(default_factory=list)
    echo_title: list[Any] = field(default_factory=list)
    echo_opacity: list[Any] = field(default_factory=list)
    echo_scrub: list[Any] = field(default_factory=list)


def header_markdown(ws: Workstation) -> str:
    """The header: what model runs on which device."""
    m = ws.model
    return (
        f"# FuseLens workstation\n"
        f"Model: **{m.name}** · device: **{m.device}** · tasks: {len(m.model.tasks)}\n\n"
    )


def _case_controls(ws: Workstation) -> dict[str, Any]:
    tasks = list(ws.model.model.tasks)
    answers = list(ws.model.model.tasks[tasks[0]])
    out: dict[str, Any] = {}
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=280):
            out["demo_pick"] = gr.Dropdown(
                choices=[(d.title, d.key) for d in ws.catalogue.values()],
                value=None,
                label="Demo case",
                elem_id="fl-demo",
            )
            out["story"] = gr.Markdown(elem_id="fl-story")
            with gr.Accordion("Open your own files (or a zip of a case folder)", open=False):
                out["uploads"] = gr.File(file_count="multiple", label="Files", elem_id="fl-upload")
                out["open_btn"] = gr.Button("Open uploaded files", elem_id="fl-open")
        with gr.Column(scale=3, min_width=260):
            out["task"] = gr.Dropdown(
                choices=views.task_choices(tasks), value=tasks[0], label="Task", elem_id="fl-task"
            )
            out["target"] = gr.Radio(
                choices=views.target_choices(answers),
                value=PREDICTED,
                label="Class to explain",
                elem_id="fl-target",
            )
            out["method"] = gr.Radio(
                choices=[(m.label, name) for name, m in REGISTRY.items()],
                value=DEFAULT_METHOD,
                label="Map method (ECG, echo, X-ray)",
                elem_id="fl-method",
            )
            out["progress"] = gr.Markdown(PICK_A_CASE, elem_id="fl-progress")
        with gr.Column(scale=5, min_width=360):
            out["status"] = gr.Dataframe(
                headers=STATUS_COLUMNS,
                label="Files read",
                interactive=False,
                wrap=True,
                max_height=320,
                elem_id="fl-status",
            )
    return out


NOT_READ = {
    "labs": "this model does not read labs",
    "ecg": "this model does not read the ECG",
    "echo": "this model does not read echo",
    "cxr": "this model does not read X-rays",
}


def panel_label(label: str, modality: str, reads: Sequence[str], plain: str) -> str:
    """A panel's ``label``, or ``plain (why)`` for a modality the model does not read: its
    input is shown, with no map or SHAP colours."""
    return label if modality in reads else f"{plain} ({NOT_READ[modality]})"


def _echo_slot(i: int, panels: dict[str, Any], reads: Sequence[str]) -> tuple[Any, Any, Any, Any]:
    """One echo view: its loop, opacity slider, frame scrubber and frame; hidden until used."""
    with gr.Column(scale=2, min_width=220, visible=False) as col:
        title = gr.Markdown(f"**Echo view {i + 1}**")
        panels[f"echo_video:{i}"] = gr.Video(
            label=panel_label("Cine loop with the chosen map", "echo", reads, "Cine loop"),
            autoplay=True,
            loop=True,
            interactive=False,
            height=260,
            elem_id=f"fl-echo-video-{i}",
        )
        opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Overlay opacity")
        scrub = gr.Slider(0, 1, value=0, step=1, label="Frame")
        panels[f"echo_frame:{i}"] = gr.Image(
            label="Frame", interactive=False, height=260, elem_id=f"fl-echo-frame-{i}"
        )
    return col, title, opacity, scrub


def declare_layout(ws: Workstation) -> Layout:
    """Place every component (call inside a ``gr.Blocks`` context)."""
    current = gr.State(None)
    reads = tuple(ws.model.model.modalities)
    with gr.Row(elem_classes=["fl-header"]):
        gr.Markdown(header_markdown(ws), elem_id="fl-header")
        gr.Markdown(
            f"⚠️ **{ws.model.model.caveat}**", elem_classes=["fl-caveat"], elem_id="fl-caveat"
        )
        gr.Button("Log out", link="/logout", size="sm", scale=0, elem_id="fl-logout")
    controls = _case_controls(ws)
    p: dict[str, Any] = {}

    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=280):
            p["identity"] = gr.Markdown(elem_id="fl-identity")
            p["prediction"] = gr.Markdown(elem_id="fl-prediction")
            p["prediction_context"] = gr.Markdown(elem_id="fl-prediction-context")
            p["unavailable"] = gr.Markdown(elem_id="fl-unavailable")
        with gr.Column(scale=4, min_width=320):
            p["shapley"] = gr.Plot(label="Modality contributions", elem_id="fl-shapley")
        with gr.Column(scale=3, min_width=280):
            p["interactions"] = gr.Plot(label="Interactions", elem_id="fl-interactions")

    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            p["lab_text"] = gr.HighlightedText(
                label=panel_label(
                    "Lab text (SHAP: red raises, blue lowers the explained answer)",
                    "labs",
                    reads,
                    "Lab text",
                ),
                show_legend=True,
                combine_adjacent=False,
                elem_classes=[HIGHLIGHT_CLASS],
                elem_id="fl-lab-text",
            )
        with gr.Column(scale=2):
            p["lab_table"] = gr.Dataframe(
                label=panel_label(
                    "Lab items by contribution (log-odds)", "labs", reads, "Lab items"
                ),
                interactive=False,
                wrap=True,
                elem_id="fl-lab-table",
            )

    p["ecg"] = gr.Plot(
        label=panel_label("12-lead ECG with the chosen map", "ecg", reads, "12-lead ECG"),
        elem_id="fl-ecg",
    )
    p["ecg_measurements"] = gr.Markdown(elem_id="fl-ecg-measurements")

    with gr.Row(equal_height=False):
        slots = [_echo_slot(i, p, reads) for i in range(image_views.ECHO_SLOTS)]
        with gr.Column(scale=3, min_width=300):
            p["cxr"] = gr.Image(
                label=panel_label("Chest X-ray with the chosen map", "cxr", reads, "Chest X-ray"),
                interactive=False,
                height=460,
                elem_id="fl-cxr",
            )
            cxr_opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Overlay opacity")

    # a model without attention or a report gets no empty panels for them (its one-line
    # reasons are in "Not shown for this model")
    caps = capabilities(ws.model.model)
    with gr.Row(equal_height=False, visible=caps["attention"]):
        p["attention_modality"] = gr.Plot(label="Cross-modal attention", elem_id="fl-attention")
        p["attention_guidance"] = gr.Plot(label="Task guidance attention", elem_id="fl-guidance")

    with gr.Row(equal_height=False, visible=caps["report"]):
        with gr.Column(scale=1):
            p["report_sentences"] = gr.Radio(
                choices=[],
                type="index",
                label="Generated report: choose a sentence to see its evidence",
                elem_id="fl-sentences",
            )
            p["report_text"] = gr.HighlightedText(
                label="Report",
                show_legend=False,
                show_inline_category=False,
                color_map={report_views.SELECTED: SELECTED_COLOUR},
                elem_classes=[HIGHLIGHT_CLASS],
                elem_id="fl-report",
            )
            p["report_checks"] = gr.Markdown(elem_id="fl-report-checks")
        with gr.Column(scale=1):
            p["evidence_md"] = gr.Markdown(elem_id="fl-evidence")
            p["evidence_image"] = gr.Image(
                label="Evidence", interactive=False, height=320, elem_id="fl-evidence-image"
            )
            p["evidence_ecg"] = gr.Plot(label="ECG evidence", elem_id="fl-evidence-ecg")

    with gr.Row():
        export_btn = gr.Button("Export HTML report and JSON bundle", elem_id="fl-export")
        html_file = gr.File(label="HTML report", interactive=False, elem_id="fl-html")
        zip_file = gr.File(label="JSON bundle (zip)", interactive=False, elem_id="fl-zip")
    col, title, opacity, scrub = (list(x) for x in zip(*slots, strict=True))
    return Layout(
        current=current,
        cxr_opacity=cxr_opacity,
        export_btn=export_btn,
        html_file=html_file,
        zip_file=zip_file,
        panels=p,
        echo_col=col,
        echo_title=title,
        echo_opacity=opacity,
        echo_scrub=scrub,
        **controls,
    )


def _to_updates(ui: Layout, values: dict[str, Any]) -> dict[Any, Any]:
    """Panel name -> value, as component -> Gradio update."""
    out: dict[Any, Any] = {}
    for name, value in values.items():
        comp = ui.panels[name]
        if name == "report_sentences":
            out[comp] = gr.update(choices=value, value=value[0] if value else None)
        elif name in ("evidence_image", "evidence_ecg"):
            out[comp] = gr.update(value=value, visible=value is not None)
        else:
            out[comp] = value
    return out


def _slot_updates(ui: Layout, cur: Current) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for i in range(image_views.ECHO_SLOTS):
        present = i < len(cur.slots)
        out[ui.echo_col[i]] = gr.update(visible=present)
        if present:
            cine = cur.loaded.case.echo[cur.slots[i]]
            out[ui.echo_title[i]] = f"**Echo {cur.slots[i]}** · {cine.frame_rate:g} frames/s"
            out[ui.echo_scrub[i]] = gr.update(maximum=cine.frames.shape[0] - 1, value=0)
    return out


def _opened(
    ws: Workstation,
    ui: Layout,
    loaded: LoadedCase,
    session: str,
    request: tuple[str, str, str] | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[Any, Any]:
    """Every update of a newly opened case: file table, story, echo slots, cleared panels;
    the session's explanation of the case it showed before stops, and the explanation of
    ``request`` (task, class, method) starts at once, and what it gives within a moment
    comes with this response: the prediction, or every panel of a cached bundle, drawn with
    ``settings`` on the worker thread."""
    ws.show(session, loaded)
    if request is not None:
        ws.prefetch(session, loaded, *request, settings=settings)
    cur = Current(loaded, None, image_views.echo_slots(loaded.case))
    story = f"**{loaded.title}**" + (f" — {loaded.story}" if loaded.story else "")
    out: dict[Any, Any] = {
        ui.current: cur,
        ui.status: status_table(loaded.reports),
        ui.story: f"{story}\n\nHolds: {views.present_modalities(loaded.case)}"
        + views.unused_markdown(loaded.reports),
        ui.progress: "Case opened; explaining…",
        ui.html_file: None,
        ui.zip_file: None,
    }
    out.update(_slot_updates(ui, cur))
    out.update(_to_updates(ui, views.opened_panels(loaded.case)))
    shown = []
    if request is not None:
        shown = ws.opening_results(session, loaded, FIRST_RESULT_WAIT_S, PANELS_WAIT_S)
    if shown:  # one round trip sooner: the prediction, or a cached bundle's every panel
        stage, bundle, built = shown[-1]
        out[ui.panels["identity"]] = views.identity_markdown(
            ws.request_key(loaded, *request), loaded.title
        )
        if stage == PANELS:
            cur.bundle, cur.method = bundle, request[2]
            out.update(_to_updates(ui, built))
            out[ui.progress] = _cached_note(bundle, request[2])
        else:
            out.update(_to_updates(ui, views.stage_panels("prediction", loaded.case, bundle)))
    return out


def _cached_note(bundle: ExplanationBundle, method: str) -> str:
    """The progress line of a finished explanation taken from the cache."""
    return views.progress_markdown(bundle, finished=True, methods=[method]) + " (from cache)"


def _review_request(ws: Workstation, loaded: LoadedCase) -> tuple[str, str, str] | None:
    """A case opened from an explained review run asks for what the run explained (its
    task, the class every case was explained for, its first method), so the stored bundle
    is drawn instead of computed anew; None when the run's task is not this model's."""
    task = loaded.extras.get("review_task")
    method = next(iter(loaded.extras.get("review_methods", ())), None)
    if task not in ws.model.model.tasks or method not in REGISTRY:
        return None
    return task, explained_class(ws.model.model.tasks[task]), method


def _request_updates(
    ws: Workstation, ui: Layout, request: tuple[str, str, str] | None
) -> dict[Any, Any]:
    """The task, class and method pickers set to ``request`` (nothing when None)."""
    if request is None:
        return {}
    task, target, method = request
    return {
        ui.task: task,
        ui.target: _class_picker(ws.model.model.tasks[task], target),
        ui.method: method,
    }


def _class_picker(answers: Sequence[str], value: str) -> Any:
    """The class picker offering ``answers`` (after "the model's answer") with ``value`` chosen."""
    return gr.update(choices=views.target_choices(list(answers)), value=value)


def show_case_tab(n_plots: int, nothing: str | None = None) -> str:
    """The browser's part of opening another tab's case, before its request: show the Case
    tab and clear its ``n_plots`` plots; unless the other tab's ``shown`` value is ``nothing``.

    As an output, the Tabs would be updated on every later event's status message, each time
    walking every component of the app (Gradio 6.31's frontend); and a plot updated in the
    response that switches to its tab stays empty.
    """
    guard = "" if nothing is None else f"if (shown === {json.dumps(nothing)}) return skip;"
    return (
        f"(shown) => {{ const skip = Array({n_plots}).fill(undefined); {guard}"
        f" document.getElementById('{CASE_TAB_ELEM}-button')?.click();"
        f" return Array({n_plots}).fill(null); }}"
    )


def _explanation_updates(
    ws: Workstation,
    ui: Layout,
    cur: Current | None,
    task: str,
    target: str,
    settings: dict,
    session: str,
) -> Iterator[dict[Any, Any]]:
    """Each finished stage's panels as soon as it is done (a cached case all at once), each
    with the identity it was computed for; nothing once another case or request replaced it."""
    if cur is None:
        yield {ui.progress: PICK_A_CASE}
        return
    if not ws.on_screen(session, cur.loaded):
        return  # a request for a case this tab no longer shows
    if not cur.loaded.case.modalities():
        yield {ui.progress: "Nothing readable in this case: see the file table."}
        return
    method = settings.get("method", DEFAULT_METHOD)
    methods = [method]
    identity = views.identity_markdown(
        ws.request_key(cur.loaded, task, target, method), cur.loaded.title
    )
    job = ws.submit(session, cur.loaded, task, target, method, settings)
    if job.delivered:  # the opening showed its first results: change nothing yet (a Gradio
        yield {ui.progress: gr.skip()}  # generator that yields nothing sets every output None)
    else:
        yield {
            ui.progress: views.progress_markdown(None, "prediction", methods=methods),
            ui.panels["identity"]: identity,
        }
    stage, stages = "prediction", stage_names(methods)
    try:
        for i, (stage, bundle, built) in enumerate(job.results()):
            if not ws.is_shown(job, cur.loaded):
                return
            cur.bundle, cur.method = bundle, method
            if stage == CACHED or i < job.delivered:
                continue  # its panels come next, or the case's opening already showed them
            if stage == PANELS:
                values, note = built, _cached_note(bundle, method)
            else:
                values = views.stage_panels(stage, cur.loaded.case, bundle, settings)
                nxt = stages.index(stage) + 1
                running = stages[nxt] if nxt < len(stages) else None
                note = views.progress_markdown(bundle, running, methods=methods)
            yield {**_to_updates(ui, values), ui.progress: note, ui.current: cur}
        finished = cur.bundle is not None and ws.is_finished(cur.loaded, cur.bundle)
        if finished and stage != PANELS and ws.is_shown(job, cur.loaded):  # a cached one said
            done = views.progress_markdown(cur.bundle, finished=True, methods=methods)
            yield {ui.progress: done}
    except Exception as exc:
        LOG.exception("explanation of %s stopped after %s", cur.loaded.key, stage)
        message = f"Explanation stopped after {stage}: {type(exc).__name__}: {exc}"
        yield {ui.progress: message}
        raise gr.Error(message, print_exception=False) from exc
    finally:
        job.cancel()


def _wire_case_events(
    ws: Workstation, ui: Layout, openers: Sequence[review_ui.CaseOpener] = ()
) -> None:
    open_outputs = [ui.current, ui.status, ui.story, ui.progress, ui.html_file, ui.zip_file]
    open_outputs += list(ui.panels.values()) + ui.echo_col + ui.echo_title + ui.echo_scrub
    overlays = [ui.cxr_opacity, *ui.echo_opacity]
    explain_inputs = [ui.current, ui.task, ui.target, ui.method, *overlays]
    explain_outputs = [ui.current, ui.progress, *ui.panels.values()]
    request = [ui.task, ui.target, ui.method]

    def asked(values: Sequence[Any]) -> tuple[tuple[str, str, str], dict[str, Any]]:
        """The request and panel settings of ``[*request, *overlays]`` values."""
        task, target, method, cxr_opacity, *echo_opacity = values
        return (task, target, method), ws.settings(echo_opacity, cxr_opacity, method)

    def open_demo_case(request: gr.Request, key: str | None, *explain: Any) -> dict[Any, Any]:
        if not key:
            return {ui.progress: PICK_A_CASE}
        return _opened(ws, ui, ws.open_demo(key), request.session_hash, *asked(explain))

    def open_uploaded(request: gr.Request, files: list[str] | None, *explain: Any):
        if not files:
            return {ui.progress: "Choose files to upload first."}
        loaded = ws.open_uploads([str(f) for f in files])  # the uploads are moved, not kept
        opened = _opened(ws, ui, loaded, request.session_hash, *asked(explain))
        return {**opened, ui.uploads: None}

    def run_explanations(
        request: gr.Request, cur, task: str, target: str, method: str, co: float, *eo: float
    ):
        settings = asked([task, target, method, co, *eo])[1]
        session = request.session_hash
        yield from _explanation_updates(ws, ui, cur, task, target, settings, session)

    def choose_task(task: str) -> dict[Any, Any]:
        return {ui.target: _class_picker(ws.model.model.tasks[task], PREDICTED)}

    # Their progress shows on the progress line only: Gradio's frontend updates the loading
    # status of every component that was ever an event's progress target, on every status
    # message of any event, so each target costs a little on every later call.
    opening = dict(show_progress="minimal", show_progress_on=[ui.progress])
    # The computing runs one job at a time on the workstation's worker thread; these
    # callbacks only wait for its results, so a newer request never queues behind an older.
    explain_args = dict(
        fn=run_explanations,
        inputs=explain_inputs,
        outputs=explain_outputs,
        show_progress="hidden",
        show_progress_on=[ui.progress],
        concurrency_id="explain",
        concurrency_limit=EXPLAIN_WAITERS,
    )
    running = [
        ui.demo_pick.change(
            open_demo_case,
            [ui.demo_pick, *request, *overlays],
            open_outputs,
            **opening,
        ).then(**explain_args),
        ui.open_btn.click(
            open_uploaded,
            [ui.uploads, *request, *overlays],
            [*open_outputs, ui.uploads],
            **opening,
        ).then(**explain_args),
        ui.task.input(choose_task, [ui.task], [ui.target]).then(**explain_args),
        ui.target.input(**explain_args),
        ui.method.input(**explain_args),
    ]

    def read_other(
        opener: review_ui.CaseOpener, values: Sequence[Any]
    ) -> tuple[LoadedCase, Any, Any]:
        """The case ``opener`` reads from ``values`` (its inputs, then the overlay values),
        with an explained review case's request (:func:`_review_request`) and its panel
        settings; (case, None, None) for any other case."""
        n = len(opener.inputs)
        loaded = opener.load(*values[:n])
        run = _review_request(ws, loaded)
        return (loaded, run, asked([*run, *values[n:]])[1]) if run else (loaded, None, None)

    # Its plots are cleared in the browser as it opens: Gradio's Plot draws a changed figure
    # twice (on the old plot, then on a new one), an empty one once.
    plots = [c for c in ui.panels.values() if isinstance(c, gr.Plot)]
    for opener in openers:  # another tab's case: the browser shows the Case tab, then it opens

        def open_other(
            request: gr.Request, *values: Any, opener: review_ui.CaseOpener = opener
        ) -> dict[Any, Any]:
            loaded, run, settings = read_other(opener, values)
            opened = _opened(ws, ui, loaded, request.session_hash, run, settings)
            return {**opened, **_request_updates(ws, ui, run)}

        def prepare_other(
            request: gr.Request, *values: Any, opener: review_ui.CaseOpener = opener
        ) -> None:
            try:
                loaded, run, settings = read_other(opener, values)
            except gr.Error:  # nothing picked (yet)
                return
            if run is not None:
                ws.prepare(request.session_hash, loaded, run, settings)

        if opener.picked is not None:  # build a picked case's stored panels before it opens
            opener.picked(
                prepare_other,
                [*opener.inputs, *overlays],
                None,
                show_progress="hidden",
                trigger_mode="always_last",
            )
        shown = [opener.shown] if opener.shown is not None else []
        opener.trigger(None, shown, plots, js=show_case_tab(len(plots), opener.nothing))
        opened = opener.trigger(
            open_other,
            [*opener.inputs, *overlays],
            [*open_outputs, *request],
            **opening,
        )
        running.append(opened.success(**explain_args))
    triggers = (
        ui.demo_pick.change,
        ui.open_btn.click,
        ui.task.input,
        ui.target.input,
        ui.method.input,
    )
    for trigger in (*triggers, *(o.trigger for o in openers)):
        trigger(None, None, None, cancels=running)


def _wire_overlay_events(ws: Workstation, ui: Layout) -> None:
    def slot(cur: Current, i: int):
        gradcam = cur.shown_maps()
        return cur.loaded.case.echo[cur.slots[i]], image_views.echo_cam(gradcam, cur.slots[i])

    def redraw_loop(cur: Current | None, opacity: float, frame: int, i: int, media):
        if cur is None or i >= len(cur.slots):
            return gr.skip(), gr.skip()
        cine, cam = slot(cur, i)
        video = image_views.echo_loop_file(cine, cam, opacity, media)
        return str(video), image_views.echo_frame_image(cine, cam, opacity, frame)

    def redraw_frame(cur: Current | None, opacity: float, frame: int, i: int):
        if cur is None or i >= len(cur.slots):
            return gr.skip()
        cine, cam = slot(cur, i)
        return image_views.echo_frame_image(cine, cam, opacity, frame)

    for i in range(image_views.ECHO_SLOTS):
        inputs = [ui.current, ui.echo_opacity[i], ui.echo_scrub[i]]
        video, frame = ui.panels[f"echo_video:{i}"], ui.panels[f"echo_frame:{i}"]
        ui.echo_opacity[i].release(
            lambda c, o, f, i=i: redraw_loop(c, o, f, i, ws.media_dir), inputs, [video, frame]
        )
        ui.echo_scrub[i].input(
            lambda c, o, f, i=i: redraw_frame(c, o, f, i),
            inputs,
            [frame],
            show_progress="hidden",
            trigger_mode="always_last",
        )

    def redraw_cxr(cur: Current | None, opacity: float):
        if cur is None:
            return gr.skip()
        gradcam = cur.shown_maps()
        return image_views.cxr_panel(cur.loaded.case, gradcam, opacity)

    ui.cxr_opacity.release(redraw_cxr, [ui.current, ui.cxr_opacity], [ui.panels["cxr"]])


LOOPS_PLAY_WHEN_DONE = """(progress) => {
  const done = String(progress || '').includes('done');
  document.querySelectorAll('[id^=fl-echo-video] video').forEach((v) => {
    if (done) { v.play().catch(() => {}); } else { v.pause(); }
  });
}"""


LOOPS_PAUSE = """() => {
  document.querySelectorAll('[id^=fl-echo-video] video').forEach((v) => v.pause());
}"""


def _wire_loop_pausing(ui: Layout) -> None:
    """Echo loops pause while stages run and play once the case is done, so the page's
    decoding does not take CPU from the explanation (benchmarks/browser_walk.py); picking
    or opening another case pauses them at once, before the server answers."""
    ui.progress.change(None, [ui.progress], None, js=LOOPS_PLAY_WHEN_DONE)
    ui.demo_pick.change(None, None, None, js=LOOPS_PAUSE)
    ui.open_btn.click(None, None, None, js=LOOPS_PAUSE)


def _wire_report_and_export(ws: Workstation, ui: Layout) -> None:
    def choose_sentence(cur: Current | None, index: int | None) -> dict[Any, Any]:
        if cur is None or cur.bundle is None:
            return {}
        evidence = report_views.sentence_evidence(cur.loaded.case, cur.bundle, index)
        return _to_updates(ui, evidence)

    names = ["report_text", "evidence_md", "evidence_image", "evidence_ecg"]
    sentences = ui.panels["report_sentences"]
    sentences.input(choose_sentence, [ui.current, sentences], [ui.panels[n] for n in names])

    def export(cur: Current | None):
        if cur is None or cur.bundle is None or not ws.is_finished(cur.loaded, cur.bundle):
            raise gr.Error(
                "Open a case and let its explanations finish first.", print_exception=False
            )
        try:
            html, bundle_zip = exports.export_all(cur.loaded.case, cur.bundle, ws.media_dir)
        except exports.IdentifierLeak as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        return str(html), str(bundle_zip)

    ui.export_btn.click(export, [ui.current], [ui.html_file, ui.zip_file])


def wire_events(ws: Workstation, ui: Layout, openers: Sequence[review_ui.CaseOpener] = ()) -> None:
    """Connect the layout's components to their callbacks (``openers``: other tabs' ways
    into the Case view, which show the Case tab)."""
    _wire_case_events(ws, ui, openers)
    _wire_overlay_events(ws, ui)
    _wire_loop_pausing(ui)
    _wire_report_and_export(ws, ui)


def build_app(ws: Workstation, review: Sessions | None = None) -> gr.Blocks:
    """The workstation: layout plus callbacks, wired to ``ws``; with ``review`` (a session
    factory of the review database) the Case view and an Error review tab."""
    with gr.Blocks(title="FuseLens workstation", analytics_enabled=False) as app:

        def closed(request: gr.Request) -> None:
            ws.forget(request.session_hash)

        app.unload(closed)
        if review is None:
            wire_events(ws, declare_layout(ws))
            return app
        with gr.Tabs():
            with gr.Tab("Case", id=CASE_TAB, elem_id=CASE_TAB_ELEM):
                ui = declare_layout(ws)
            review_layout = review_ui.declare_review_tab(review)
        wire_events(ws, ui, [review_ui.wire_review_events(review, review_layout)])
    return app


def _login(host: str, users: str | None, no_auth: bool) -> tuple[Any, str]:
    """Gradio's ``auth`` and the line telling the user how to log in."""
    if no_auth:
        if not login.is_loopback(host):
            raise ValueError(f"--no-auth is allowed only on 127.0.0.1, not on {host}")
        return None, "no login (--no-auth, this machine only)"
    if users:
        return login.users_check(login.read_users(users)), f"log in with an account of {users}"
    token = login.new_token()
    return login.token_check(token), f"log in as {login.TOKEN_USER!r} with the token {token}"


def _stop_on_sigterm() -> None:
    """SIGTERM ends the server the way Ctrl-C does, so every folder it made is removed."""

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def serve(
    host: str = "127.0.0.1",
    port: int = 7860,
    model: str = "demo",
    cases_dir: str | None = None,
    device: str = "auto",
    review_db: str | None = None,
    users: str | None = None,
    no_auth: bool = False,
    gradio_cache: str | None = None,
) -> int:
    """Load the model and the review database, build the app and serve it until interrupted
    (Ctrl-C or SIGTERM); its upload, media and Gradio cache (``gradio_cache``, else a new
    one) folders go with it."""
    from fuselens.app.storage.db import open_database

    t0 = time.perf_counter()
    try:
        auth, how = _login(host, users, no_auth)
        loaded = load_workstation_model(model, device)
    except (FileNotFoundError, ValueError) as exc:
        print(f"fuselens serve: {exc}", file=sys.stderr)
        if gradio_cache:
            shutil.rmtree(gradio_cache, ignore_errors=True)
        return 2
    cache = gradio_cache or tempfile.mkdtemp(prefix="fuselens-gradio-")
    os.environ["GRADIO_TEMP_DIR"] = cache
    ws = Workstation(loaded, load_catalogue(), cases_dir)
    print(f"FuseLens: {loaded.name} on {loaded.device} ({time.perf_counter() - t0:.1f} s)")
    engine, review = open_database(review_db)
    _stop_on_sigterm()
    app = build_app(ws, review)
    app.queue(default_concurrency_limit=1)
    try:
        app.launch(
            server_name=host,
            server_port=port,
            css=CSS,
            js=warm_up_js(),
            show_error=True,
            footer_links=[],
            run_history=False,  # Gradio's run history keeps every call's inputs and outputs
            auth=auth,
            allowed_paths=[str(ws.media_dir)],
            blocked_paths=[str(ws.upload_dir)],
            prevent_thread_lock=True,
        )
        print(f"FuseLens: serving on http://{host}:{port} ({time.perf_counter() - t0:.1f} s)")
        print(f"FuseLens: {how}", flush=True)
        print(f"FuseLens: model warmed up on a demo case ({ws.warm_up():.1f} s)", flush=True)
        app.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
        engine.dispose()
        ws.close()
        shutil.rmtree(cache, ignore_errors=True)
    return 0
