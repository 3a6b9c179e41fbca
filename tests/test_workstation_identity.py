"""Never the wrong patient: a result is shown only for the case, task, class, method and model
on screen now, and a newer request supersedes an older one (issue 17, finding 1)."""

from __future__ import annotations

import gradio as gr
import pytest
from app_support import tiny_workstation

from fuselens.app import image_views
from fuselens.app.session import Current, Workstation
from fuselens.app.workstation import _explanation_updates, _opened, declare_layout
from fuselens.explain.methods import DEFAULT_METHOD


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workstation:
    w = tiny_workstation(0, tmp_path_factory.mktemp("cases"))
    yield w
    w.close()


@pytest.fixture(scope="module")
def ui(ws):
    with gr.Blocks():
        return declare_layout(ws)


def settings(ws):
    return ws.settings([0.5] * image_views.ECHO_SLOTS, 0.5, DEFAULT_METHOD)


def current(ws, ui, key: str, session: str) -> Current:
    return _opened(ws, ui, ws.open_demo(key), session)[ui.current]


def texts(updates: list[dict], component) -> list:
    return [u[component] for u in updates if component in u]


def test_switching_case_mid_explanation_drops_the_old_cases_results(ws, ui) -> None:
    old = current(ws, ui, "hf-clear", "tab-1")
    stream = _explanation_updates(ws, ui, old, "heart_failure", "yes", settings(ws), "tab-1")
    first = next(stream)
    assert "Clear heart failure" in first[ui.panels["identity"]]
    new = current(ws, ui, "none-clear", "tab-1")  # the user picks another case
    rest = list(stream)
    assert rest == [], "no panel of the old case may arrive after the new case is open"
    done = list(_explanation_updates(ws, ui, new, "heart_failure", "yes", settings(ws), "tab-1"))
    prediction = texts(done, ui.panels["prediction"])
    shown = [u[ui.current].loaded.key for u in done if ui.current in u]
    assert prediction and shown and set(shown) == {new.loaded.key}
    assert "Clearly no heart failure" in texts(done, ui.panels["identity"])[0]
    assert "done" in texts(done, ui.progress)[-1]


def test_a_queued_request_for_a_case_no_longer_shown_shows_nothing(ws, ui) -> None:
    old = current(ws, ui, "ckd-confounder", "tab-2")
    current(ws, ui, "none-clear", "tab-2")  # opened before the old request ran
    stale = list(_explanation_updates(ws, ui, old, "heart_failure", "no", settings(ws), "tab-2"))
    assert stale == []


def test_a_newer_request_of_the_same_case_supersedes_the_older(ws, ui) -> None:
    cur = current(ws, ui, "missing-modalities", "tab-3")
    older = _explanation_updates(ws, ui, cur, "heart_failure", "yes", settings(ws), "tab-3")
    next(older)
    newer = _explanation_updates(ws, ui, cur, "heart_failure", "no", settings(ws), "tab-3")
    first = next(newer)
    assert "class **no**" in first[ui.panels["identity"]]
    assert list(older) == []
    assert "done" in texts(list(newer), ui.progress)[-1]


def test_two_tabs_each_see_only_their_own_case(ws, ui) -> None:
    a = current(ws, ui, "hf-clear", "tab-a")
    b = current(ws, ui, "none-clear", "tab-b")
    stream_a = _explanation_updates(ws, ui, a, "heart_failure", "yes", settings(ws), "tab-a")
    stream_b = _explanation_updates(ws, ui, b, "heart_failure", "yes", settings(ws), "tab-b")
    got_a, got_b = list(stream_a), list(stream_b)
    assert all(u[ui.current].loaded.key == a.loaded.key for u in got_a if ui.current in u)
    assert all(u[ui.current].loaded.key == b.loaded.key for u in got_b if ui.current in u)
    assert "done" in texts(got_a, ui.progress)[-1] and "done" in texts(got_b, ui.progress)[-1]


def test_a_loop_of_unknown_view_says_read_but_not_used_where_the_user_looks(ws, ui, tmp_path):
    """Issue 17, finding 8: pydicom's A4C clip (no view in its tags) is flagged, with the fix."""
    import shutil

    from pydicom.data import get_testdata_file

    from fuselens.app.session import status_table

    clip = tmp_path / "loop.dcm"
    shutil.copyfile(get_testdata_file("examples_ybr_color.dcm"), clip)
    loaded = ws.open_uploads([str(clip)])
    assert not clip.exists(), "the upload is moved into the private folder, not kept"
    assert ws.upload_dir in loaded.folder.parents
    table = status_table(loaded.reports)
    assert list(table["Status"]) == ["read, NOT USED"]
    assert table["Details"][0].startswith("read but not used: view unknown")
    story = _opened(ws, ui, loaded, "tab-u")[ui.story]
    assert "Read but not used" in story and "loop.dcm" in story and "views.json" in story


def test_reopening_a_cached_case_sends_every_panel_with_the_opening_and_not_again(ws, ui):
    """A cached bundle's panels come in the opening response (one round trip, one redraw);
    the explanation request that follows sends none of them again."""
    request = ("heart_failure", "yes", DEFAULT_METHOD)
    computed = current(ws, ui, "hf-clear", "tab-r")
    list(_explanation_updates(ws, ui, computed, *request[:2], settings(ws), "tab-r"))
    opened = _opened(ws, ui, ws.open_demo("hf-clear"), "tab-r", request, settings(ws))
    cur = opened[ui.current]
    assert cur.bundle is not None and cur.method == DEFAULT_METHOD
    assert opened[ui.panels["shapley"]] is not None and opened[ui.panels["ecg"]] is not None
    assert opened[ui.panels["echo_video:0"]] and opened[ui.panels["echo_frame:0"]] is not None
    assert "done" in opened[ui.progress] and "(from cache)" in opened[ui.progress]
    rest = list(_explanation_updates(ws, ui, cur, *request[:2], settings(ws), "tab-r"))
    sent = {component for update in rest for component in update}
    assert rest and not sent & set(ui.panels.values()), "the opening showed every panel"
    other = ws.settings([0.9] * image_views.ECHO_SLOTS, 0.5, DEFAULT_METHOD)
    redrawn = list(_explanation_updates(ws, ui, cur, *request[:2], other, "tab-r"))
    assert ui.panels["shapley"] in {c for u in redrawn for c in u}, "other settings: all again"
    assert "(from cache)" in texts(redrawn, ui.progress)[-1]
