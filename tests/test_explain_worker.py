"""The workstation's explanation worker: one thread, newest request per session first."""

from __future__ import annotations

import threading
import time

import pytest

from fuselens.app.explain_worker import ExplainWorker, RequestKey


def key(case: str) -> RequestKey:
    return RequestKey(case, "heart_failure", "yes", "gradcam_pp", "tiny")


def stages(name: str, n: int, gate: threading.Event | None = None, log: list | None = None):
    """A fake explanation: ``n`` stages, the first waiting for ``gate``."""

    def run():
        for i in range(n):
            if i == 0 and gate is not None:
                gate.wait(5)
            if log is not None:
                log.append((name, i, threading.current_thread().name))
            yield f"{name}:{i}"

    return run


@pytest.fixture
def worker():
    w = ExplainWorker()
    yield w
    w.close()


def test_results_arrive_in_order_on_the_worker_thread(worker) -> None:
    log: list = []
    job = worker.submit("tab-1", key("a"), stages("a", 3, log=log))
    assert list(job.results()) == ["a:0", "a:1", "a:2"]
    assert {thread for _, _, thread in log} == {"fuselens-explain"}


def test_a_newer_request_supersedes_the_older_one_of_its_session(worker) -> None:
    gate, log = threading.Event(), []
    old = worker.submit("tab-1", key("a"), stages("a", 50, gate, log))
    new = worker.submit("tab-1", key("b"), stages("b", 2, log=log))
    assert old.cancelled.is_set() and not worker.is_latest(old) and worker.is_latest(new)
    gate.set()
    assert list(new.results()) == ["b:0", "b:1"]
    assert list(old.results()) == []
    assert sum(1 for name, _, _ in log if name == "a") <= 2  # stopped after its current stage


def test_another_sessions_request_is_not_cancelled(worker) -> None:
    first = worker.submit("tab-1", key("a"), stages("a", 2))
    second = worker.submit("tab-2", key("b"), stages("b", 2))
    assert list(first.results()) == ["a:0", "a:1"]
    assert list(second.results()) == ["b:0", "b:1"]


def test_an_error_reaches_the_session_that_asked_and_the_worker_goes_on(worker) -> None:
    def broken():
        yield "ok"
        raise RuntimeError("stage failed")

    job = worker.submit("tab-1", key("a"), broken)
    got = []
    with pytest.raises(RuntimeError, match="stage failed"):
        for item in job.results():
            got.append(item)
    assert got == ["ok"]
    assert list(worker.submit("tab-1", key("b"), stages("b", 1)).results()) == ["b:0"]


def test_closing_a_session_cancels_its_job(worker) -> None:
    gate = threading.Event()
    job = worker.submit("tab-1", key("a"), stages("a", 100, gate))
    worker.cancel_session("tab-1")
    gate.set()
    t0 = time.perf_counter()
    assert list(job.results()) == [] and time.perf_counter() - t0 < 5
