"""One thread that runs every explanation of the workstation, newest request first per tab.

The model (its Grad-CAM++ hooks, torch's thread pool) is shared by every browser session, so
explanations run one at a time on a single long-lived thread, never on Gradio's changing
pool threads. Each request carries its :class:`RequestKey` (case, task, class, method,
model); a session's newer request supersedes its older one, which stops after its current
stage instead of holding the queue, and whatever it still produces is dropped.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

_DONE = object()


@dataclass(frozen=True)
class RequestKey:
    """What a result was computed for; a panel shows a result only for what is on screen."""

    case: str
    task: str
    target: str
    method: str
    model: str


class Job:
    """One session's explanation request: its stages' results as they are produced."""

    def __init__(
        self,
        session: str,
        key: RequestKey | None,
        run: Callable[[], Iterator[Any]],
        variant: Hashable = None,
    ):
        self.session = session
        self.key = key
        self.variant = variant  # what else its results depend on (e.g. the panels' settings)
        self.run = run
        self.cancelled = threading.Event()
        self.claimed = False  # a reader of its results has taken it
        self.delivered = 0  # how many of its first results a case's opening already showed
        self._produced: list[Any] = []  # its results so far, readable without taking them
        self._changed = threading.Condition()
        self._results: queue.Queue[Any] = queue.Queue()
        self._ended = False

    def cancel(self) -> None:
        self.cancelled.set()
        self._results.put(_DONE)
        self._wake()

    def put(self, item: Any) -> None:
        if not isinstance(item, BaseException):
            with self._changed:
                self._produced.append(item)
                self._changed.notify_all()
        self._results.put(item)

    def peek(self, count: int, wait_s: float) -> list[Any]:
        """Its first ``count`` results, waiting up to ``wait_s`` for them (fewer when the job
        ends, is cancelled or takes longer); they stay queued for its reader."""
        with self._changed:
            self._changed.wait_for(
                lambda: len(self._produced) >= count or self._ended or self.cancelled.is_set(),
                wait_s,
            )
            return self._produced[:count]

    def _wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def finish(self) -> None:
        self._ended = True
        self._results.put(_DONE)
        self._wake()

    def results(self) -> Iterator[Any]:
        """Each result as the worker produces it, until the job ends or is cancelled; an
        error raised by the run is raised here."""
        while not self.cancelled.is_set():
            item = self._results.get()
            if item is _DONE or self.cancelled.is_set():
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class ExplainWorker:
    """A daemon thread running :class:`Job` s in arrival order, skipping superseded ones."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._latest: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="fuselens-explain", daemon=True)
        self._thread.start()

    def submit(
        self,
        session: str,
        key: RequestKey | None,
        run: Callable[[], Iterator[Any]],
        reuse: bool = False,
        variant: Hashable = None,
    ) -> Job:
        """Queue ``run`` for ``session``; the session's previous job is cancelled, unless
        ``reuse`` and it is the same request (``key`` and ``variant``) that no reader has
        claimed yet (queued ahead, e.g. when the case opened): then that job is returned,
        now claimed."""
        job = Job(session, key, run, variant)
        with self._lock:
            previous = self._latest.get(session)
            if reuse and previous is not None and self._reusable(previous, key, variant):
                previous.claimed = True
                return previous
            job.claimed = reuse
            self._latest[session] = job
        if previous is not None:
            previous.cancel()
        self._jobs.put(job)
        return job

    @staticmethod
    def _reusable(job: Job, key: RequestKey | None, variant: Hashable) -> bool:
        return (
            job.key == key
            and job.variant == variant
            and not job.claimed
            and not job.cancelled.is_set()
        )

    def latest(self, session: str) -> Job | None:
        """The session's newest job."""
        with self._lock:
            return self._latest.get(session)

    def is_latest(self, job: Job) -> bool:
        """Whether ``job`` is still its session's newest request (and not cancelled)."""
        with self._lock:
            return self._latest.get(job.session) is job and not job.cancelled.is_set()

    def cancel_session(self, session: str) -> None:
        """Cancel the session's job (a new case opened, or the tab closed)."""
        with self._lock:
            job = self._latest.pop(session, None)
        if job is not None:
            job.cancel()

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            if not job.cancelled.is_set():
                self._run(job)

    @staticmethod
    def _run(job: Job) -> None:
        stages = job.run()
        try:
            for item in stages:
                if job.cancelled.is_set():
                    break
                job.put(item)
        except Exception as exc:  # handed to the session that asked, which shows it
            job.put(exc)
        finally:
            close = getattr(stages, "close", None)
            if close is not None:
                close()
            job.finish()
