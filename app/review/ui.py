"""The Error review tab: run picker, filtered cohort table, confusion matrix, calibration,
tags and notes, CSV export, the taxonomy editor, and "Open in Case view".

:func:`declare_review_tab` places the components (inside a ``gr.Tab``);
:func:`wire_review_events` connects them to thin callbacks over :mod:`fuselens.app.review.views`
and :mod:`fuselens.app.review.store`, and returns the :class:`CaseOpener` the workstation wires
into its Case view.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from fuselens.app.review import store, views  # noqa: E402
from fuselens.app.review.table import SORTABLE, for_display  # noqa: E402
from fuselens.app.session import LoadedCase  # noqa: E402
from fuselens.app.storage.models import ALL_OUTCOMES  # noqa: E402
from fuselens.model_zoo.case import MODALITIES  # noqa: E402

DEFAULT_ACTOR = "reviewer"
# Every event that writes the case table runs in one queue, one at a time, so the table
# always ends on the newest request's filters (a slow older request cannot land last).
IN_ORDER: dict[str, Any] = {"concurrency_id": "review-table", "concurrency_limit": 1}


@dataclass
class CaseOpener:
    """Another tab's way into the Case view: ``trigger`` opens ``load(*inputs)`` there;
    ``picked`` (optional) fires when the user picks a case, before asking to open it;
    ``shown`` (optional) is a component of that tab whose value is ``nothing`` until a case
    is picked (the browser then stays on that tab)."""

    trigger: Callable[..., Any]
    load: Callable[..., LoadedCase]
    inputs: list[Any]
    picked: Callable[..., Any] | None = None
    shown: Any = None
    nothing: str | None = None


@dataclass
class ReviewLayout:
    """Every component of the Error review tab."""

    tab: Any
    caveat: Any
    run: Any
    refresh: Any
    actor: Any
    outcomes: Any
    low: Any
    high: Any
    present: Any
    missing: Any
    tag_filter: Any
    warnings: Any
    sort_by: Any
    descending: Any
    summary: Any
    table: Any
    confusion: Any
    calibration: Any
    selected: Any
    case_md: Any
    tags: Any
    note: Any
    save: Any
    status: Any
    open_case: Any
    export: Any
    csv: Any
    tax_pick: Any
    tax_name: Any
    tax_add: Any
    tax_rename: Any
    tax_remove: Any
    tax_status: Any
    strategies: Any
    cluster: Any
    patterns_md: Any
    pattern_modality: Any
    outcome_maps: Any
    cluster_maps: Any
    embedding: Any
    shapley: Any

    @property
    def filters(self) -> list[Any]:
        return [
            self.outcomes,
            self.low,
            self.high,
            self.present,
            self.missing,
            self.tag_filter,
            self.warnings,
            self.sort_by,
            self.descending,
            self.cluster,
        ]


def _filter_controls(tags: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with gr.Row(equal_height=False):
        out["outcomes"] = gr.CheckboxGroup(
            list(ALL_OUTCOMES), label="Outcome", elem_id="fl-review-outcomes"
        )
        out["present"] = gr.CheckboxGroup(
            list(MODALITIES), label="Modalities present (all of)", elem_id="fl-review-present"
        )
        out["missing"] = gr.CheckboxGroup(
            list(MODALITIES), label="Modalities missing (any of)", elem_id="fl-review-missing"
        )
        out["tag_filter"] = gr.CheckboxGroup(
            tags, label="Tagged (any of)", elem_id="fl-review-tag-filter"
        )
    with gr.Row(equal_height=False):
        out["low"] = gr.Slider(
            0, 1, value=0, step=0.01, label="Confidence from", elem_id="fl-review-low"
        )
        out["high"] = gr.Slider(
            0, 1, value=1, step=0.01, label="Confidence to", elem_id="fl-review-high"
        )
        out["sort_by"] = gr.Dropdown(
            list(SORTABLE), value="confidence", label="Sort by", elem_id="fl-review-sort"
        )
        out["descending"] = gr.Checkbox(True, label="Descending", elem_id="fl-review-desc")
        out["warnings"] = gr.Checkbox(
            False, label="Only cases with input warnings", elem_id="fl-review-warnings"
        )
    return out


def _annotation_controls(tags: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["case_md"] = gr.Markdown(views.case_markdown(None), elem_id="fl-review-case")
    out["tags"] = gr.CheckboxGroup(tags, label="Error tags", elem_id="fl-review-tags")
    out["note"] = gr.Textbox(label="Add a note", lines=3, elem_id="fl-review-note")
    with gr.Row():
        out["save"] = gr.Button("Save tags and note", variant="primary", elem_id="fl-review-save")
        out["open_case"] = gr.Button("Open in Case view", elem_id="fl-review-open")
    out["status"] = gr.Markdown(elem_id="fl-review-status")
    with gr.Accordion("Edit the error taxonomy", open=False):
        out["tax_pick"] = gr.Dropdown(tags, label="Tag", elem_id="fl-review-tax-pick")
        out["tax_name"] = gr.Textbox(label="New tag / new name", elem_id="fl-review-tax-name")
        with gr.Row():
            out["tax_add"] = gr.Button("Add", elem_id="fl-review-tax-add")
            out["tax_rename"] = gr.Button("Rename", elem_id="fl-review-tax-rename")
            out["tax_remove"] = gr.Button("Remove", variant="stop", elem_id="fl-review-tax-remove")
        out["tax_status"] = gr.Markdown(elem_id="fl-review-tax-status")
    return out


def declare_review_tab(sessions: store.Sessions) -> ReviewLayout:
    """Place the tab and its components (call inside a ``gr.Tabs``)."""
    with gr.Tab("Error review", id="review", elem_id="fl-tab-review") as tab:
        return _declare(sessions, tab)


def _declare(sessions: store.Sessions, tab: Any) -> ReviewLayout:
    runs = views.run_choices(sessions)
    tags = store.tag_names(sessions)
    first = runs[0][1] if runs else None
    caveat = gr.Markdown(
        views.caveat_markdown(sessions, first),
        elem_classes=["fl-caveat"],
        elem_id="fl-review-caveat",
    )
    with gr.Row(equal_height=False):
        run = gr.Dropdown(
            runs,
            value=first,
            label="Review run",
            scale=4,
            elem_id="fl-review-run",
        )
        refresh = gr.Button("Refresh runs", scale=1, elem_id="fl-review-refresh")
        actor = gr.Textbox(
            DEFAULT_ACTOR, label="Your name (audit log)", scale=2, elem_id="fl-review-actor"
        )
    filters = _filter_controls(tags)
    summary = gr.Markdown(views.NO_RUN if not runs else "", elem_id="fl-review-summary")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            table = gr.Dataframe(
                interactive=False, wrap=True, max_height=520, elem_id="fl-review-table"
            )
            with gr.Row():
                export = gr.Button("Export the table shown (CSV)", elem_id="fl-review-export")
                csv = gr.File(label="CSV", interactive=False, elem_id="fl-review-csv")
        with gr.Column(scale=2):
            notes = _annotation_controls(tags)
    with gr.Row(equal_height=False):
        confusion = gr.Plot(label="Confusion matrix", elem_id="fl-review-confusion")
        calibration = gr.Plot(label="Calibration", elem_id="fl-review-calibration")
    patterns = _pattern_controls()
    return ReviewLayout(
        tab=tab,
        caveat=caveat,
        run=run,
        refresh=refresh,
        actor=actor,
        summary=summary,
        table=table,
        confusion=confusion,
        calibration=calibration,
        selected=gr.State(None),
        export=export,
        csv=csv,
        **filters,
        **notes,
        **patterns,
    )


def _pattern_controls() -> dict[str, Any]:
    """The cohort view: explanation patterns across the run's stored bundles."""
    out: dict[str, Any] = {}
    with gr.Accordion("Explanation patterns across the cohort", open=True):
        out["patterns_md"] = gr.Markdown(elem_id="fl-review-patterns-md")
        with gr.Row(equal_height=False):
            out["pattern_modality"] = gr.Radio(
                [("ECG", "ecg"), ("Echo", "echo"), ("Chest X-ray", "cxr")],
                value="cxr",
                label="Heat maps of",
                elem_id="fl-review-pattern-modality",
            )
            out["strategies"] = gr.Dropdown(
                views.STRATEGY_CHOICES,
                value=0,
                label="Strategies (SpRAy clusters) of these maps",
                elem_id="fl-review-strategies",
            )
            out["cluster"] = gr.Dropdown(
                [("All cases", "")],
                value="",
                label="Show in the table only the cases of",
                elem_id="fl-review-cluster",
            )
        out["outcome_maps"] = gr.Plot(label="Mean map by outcome", elem_id="fl-review-outcome-maps")
        out["cluster_maps"] = gr.Plot(label="Strategies (SpRAy)", elem_id="fl-review-cluster-maps")
        with gr.Row(equal_height=False):
            out["embedding"] = gr.Plot(label="Spectral embedding", elem_id="fl-review-embedding")
            out["shapley"] = gr.Plot(label="Shapley by outcome", elem_id="fl-review-shapley")
    return out


def _filters(sessions: store.Sessions, run_id: int, *values: Any) -> views.Filters:
    """The filter controls' values (the cluster last) as :class:`Filters`."""
    *controls, cluster = values
    try:
        filters = views.make_filters(*controls)
        if cluster:
            patterns = views.patterns_of(sessions, run_id, views.cluster_strategies(cluster))
            filters.cases = views.cluster_cases(patterns, cluster)
        return filters
    except ValueError as exc:
        raise gr.Error(str(exc), print_exception=False) from exc


def _show_table(
    sessions: store.Sessions, rl: ReviewLayout, run_id: int | None, *filter_values: Any
) -> dict[Any, Any]:
    """The summary line and the filtered table of the run."""
    if run_id is None:
        return {rl.summary: views.NO_RUN, rl.table: None}
    table, shown = views.tables(sessions, run_id, _filters(sessions, run_id, *filter_values))
    return {rl.summary: views.summary_markdown(table, shown), rl.table: for_display(shown)}


def _wire_table(sessions: store.Sessions, rl: ReviewLayout) -> None:
    def show_table(run_id: int | None, *filter_values: Any) -> dict[Any, Any]:
        return _show_table(sessions, rl, run_id, *filter_values)

    def show_overview(run_id: int | None, *filter_values: Any) -> dict[Any, Any]:
        out = show_table(run_id, *filter_values)
        figures = (None, None)
        if run_id is not None:
            task = store.get_run(sessions, run_id).task
            figures = views.cohort_figures(views.run_table(sessions, run_id), task)
        return {**out, rl.confusion: figures[0], rl.calibration: figures[1]}

    def show_patterns(
        run_id: int | None, modality: str, k: int | None, cluster: str | None
    ) -> dict[Any, Any]:
        plots = [rl.outcome_maps, rl.cluster_maps, rl.embedding, rl.shapley]
        if run_id is None:
            empty = gr.update(choices=[("All cases", "")], value="")
            return {rl.patterns_md: views.NO_RUN, rl.cluster: empty, **dict.fromkeys(plots)}
        strategies = {modality: int(k)} if k else {}
        patterns = views.patterns_of(sessions, run_id, strategies)
        figures = views.pattern_figures(patterns, modality)
        choices = views.cluster_choices(patterns, strategies)
        value = cluster if cluster in {v for _, v in choices} else ""
        return {
            rl.patterns_md: views.patterns_markdown(patterns)
            + "\n\n"
            + views.clusters_markdown(patterns, modality),
            rl.cluster: gr.update(choices=choices, value=value),
            **dict(zip(plots, figures, strict=True)),
        }

    def show_run(run_id: int | None, *filter_values: Any) -> dict[Any, Any]:
        *controls, _ = filter_values
        out = show_overview(run_id, *controls, "")
        out.update({rl.selected: None, rl.case_md: views.case_markdown(None), rl.tags: []})
        out[rl.cluster] = gr.update(value="")
        out[rl.caveat] = views.caveat_markdown(sessions, run_id)
        return out

    def refresh_runs(run_id: int | None) -> Any:
        runs = views.run_choices(sessions)
        ids = [i for _, i in runs]
        return gr.update(choices=runs, value=run_id if run_id in ids else (ids or [None])[0])

    inputs = [rl.run, *rl.filters]
    table_out = [rl.summary, rl.table]
    run_out = [*table_out, rl.confusion, rl.calibration, rl.selected, rl.case_md, rl.tags]
    run_out += [rl.cluster, rl.caveat]
    pattern_out = [rl.patterns_md, rl.outcome_maps, rl.cluster_maps, rl.embedding, rl.shapley]
    pattern_out.append(rl.cluster)
    pattern_in = [rl.run, rl.pattern_modality, rl.strategies, rl.cluster]
    # Progress shows on one component of each: Gradio's frontend updates the loading status
    # of every component that was ever an event's progress target on every status message.
    on_table = {"show_progress_on": [rl.summary], **IN_ORDER}
    patterns = {
        "fn": show_patterns,
        "inputs": pattern_in,
        "outputs": pattern_out,
        "show_progress_on": [rl.patterns_md],
    }
    rl.run.change(show_run, inputs, run_out, **on_table).then(**patterns)
    rl.refresh.click(refresh_runs, [rl.run], [rl.run]).then(
        show_run, inputs, run_out, **on_table
    ).then(**patterns)
    rl.pattern_modality.change(**patterns)
    rl.strategies.change(**patterns)

    def refresh_choices(run_id: int | None, picked: list[str], wanted: list[str]) -> tuple:
        """New runs and taxonomy edits made elsewhere (another reviewer, the CLI)."""
        tags = store.tag_names(sessions)
        keep = [t for t in picked or () if t in tags], [t for t in wanted or () if t in tags]
        return (
            refresh_runs(run_id),
            gr.update(choices=tags, value=keep[0]),
            gr.update(choices=tags, value=keep[1]),
            gr.update(choices=tags),
        )

    overview_out = [*table_out, rl.confusion, rl.calibration]
    rl.tab.select(
        refresh_choices,
        [rl.run, rl.tags, rl.tag_filter],
        [rl.run, rl.tags, rl.tag_filter, rl.tax_pick],
        show_progress_on=[rl.run],
    ).then(show_overview, inputs, overview_out, **on_table).then(**patterns)
    for control in rl.filters:
        event = control.release if isinstance(control, gr.Slider) else control.change
        event(show_table, inputs, table_out, show_progress="hidden", **on_table)

    def export(run_id: int | None, *filter_values: Any) -> str:
        if run_id is None:
            raise gr.Error(views.NO_RUN, print_exception=False)
        _, shown = views.tables(sessions, run_id, _filters(sessions, run_id, *filter_values))
        return str(views.export_path(shown, run_id))

    rl.export.click(export, inputs, [rl.csv])


def _wire_annotations(sessions: store.Sessions, rl: ReviewLayout) -> None:
    def select(run_id: int | None, evt: gr.SelectData) -> dict[Any, Any]:
        if run_id is None or not evt.row_value:
            return {}
        row = store.result(sessions, run_id, str(evt.row_value[0]))
        return {
            rl.selected: row["case_id"],
            rl.case_md: views.case_markdown(row),
            rl.tags: row["tags"],
            rl.status: "",
        }

    rl.table.select(
        select,
        [rl.run],
        [rl.selected, rl.case_md, rl.tags, rl.status],
        show_progress_on=[rl.case_md],
    )

    def save(
        request: gr.Request, run_id, case_id, tags, note, actor, *filter_values
    ) -> dict[Any, Any]:
        if run_id is None or not case_id:
            raise gr.Error("Select a case in the table first.", print_exception=False)
        try:
            change = store.save_annotation(
                sessions, run_id, case_id, tags or [], note, acting_user(request, actor)
            )
        except (KeyError, ValueError) as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        return {
            rl.status: views.annotation_status(change),
            rl.note: "",
            rl.case_md: views.case_markdown(store.result(sessions, run_id, case_id)),
            **_show_table(sessions, rl, run_id, *filter_values),
        }

    rl.save.click(
        save,
        [rl.run, rl.selected, rl.tags, rl.note, rl.actor, *rl.filters],
        [rl.status, rl.note, rl.case_md, rl.summary, rl.table],
        **IN_ORDER,
    )


def acting_user(request: gr.Request | None, typed: str | None) -> str:
    """Who the audit log names: the logged-in user; the typed name only without a login."""
    username = getattr(request, "username", None)
    if username:
        return str(username)
    return (typed or DEFAULT_ACTOR).strip()


def _wire_taxonomy(sessions: store.Sessions, rl: ReviewLayout) -> None:
    def edit(
        action: Callable[[], str], picked: list[str], wanted: list[str], renamed: tuple = ()
    ) -> dict[Any, Any]:
        """Apply a taxonomy edit; the case's unsaved picks and the filter follow it."""
        try:
            message = action()
        except ValueError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        tags = store.tag_names(sessions)

        def follow(values: list[str] | None) -> list[str]:
            moved = [renamed[1] if renamed and v == renamed[0] else v for v in values or ()]
            return [v for v in moved if v in tags]

        return {
            rl.tax_status: message,
            rl.tax_pick: gr.update(choices=tags, value=None),
            rl.tax_name: "",
            rl.tags: gr.update(choices=tags, value=follow(picked)),
            rl.tag_filter: gr.update(choices=tags, value=follow(wanted)),
        }

    def add(
        request: gr.Request, name: str, actor: str, picked: list[str], wanted: list[str]
    ) -> dict[Any, Any]:
        actor = acting_user(request, actor)
        return edit(lambda: f"Added {store.add_tag(sessions, name, actor)!r}.", picked, wanted)

    def rename(
        request: gr.Request, old: str | None, new: str, actor: str, picked, wanted
    ) -> dict[Any, Any]:
        actor = acting_user(request, actor)
        if not old:
            raise gr.Error("Choose the tag to rename.", print_exception=False)
        return edit(
            lambda: f"Renamed {old!r} to {store.rename_tag(sessions, old, new, actor)!r}.",
            picked,
            wanted,
            (old, " ".join(str(new or "").split())),
        )

    def remove(request: gr.Request, name: str | None, actor: str, picked, wanted) -> dict[Any, Any]:
        actor = acting_user(request, actor)
        if not name:
            raise gr.Error("Choose the tag to remove.", print_exception=False)
        return edit(
            lambda: f"Removed {name!r} (from {store.remove_tag(sessions, name, actor)} cases).",
            picked,
            wanted,
        )

    outputs = [rl.tax_status, rl.tax_pick, rl.tax_name, rl.tags, rl.tag_filter]
    inputs = [rl.run, *rl.filters]
    current = [rl.actor, rl.tags, rl.tag_filter]
    for button, fn, args in (
        (rl.tax_add, add, [rl.tax_name, *current]),
        (rl.tax_rename, rename, [rl.tax_pick, rl.tax_name, *current]),
        (rl.tax_remove, remove, [rl.tax_pick, *current]),
    ):
        button.click(fn, args, outputs).success(
            lambda run_id, *f: _show_table(sessions, rl, run_id, *f),
            inputs,
            [rl.summary, rl.table],
            **IN_ORDER,
        )


def wire_review_events(sessions: store.Sessions, rl: ReviewLayout) -> CaseOpener:
    """Connect the tab's callbacks; returns how its "Open in Case view" opens a case."""
    _wire_table(sessions, rl)
    _wire_annotations(sessions, rl)
    _wire_taxonomy(sessions, rl)

    def logged_in(request: gr.Request) -> Any:
        """With a login, the audit log's name is the login's and cannot be typed over."""
        if getattr(request, "username", None):
            return gr.update(value=request.username, interactive=False)
        return gr.update()

    rl.tab.select(logged_in, None, [rl.actor])

    def load(run_id: int | None, case_id: str | None) -> LoadedCase:
        if run_id is None or not case_id:
            raise gr.Error("Select a case in the table first.", print_exception=False)
        try:
            return views.open_result(sessions, run_id, case_id)
        except (KeyError, ValueError) as exc:
            raise gr.Error(str(exc), print_exception=False) from exc

    return CaseOpener(
        rl.open_case.click,
        load,
        [rl.run, rl.selected],
        picked=rl.selected.change,
        shown=rl.case_md,
        nothing=views.case_markdown(None),
    )
