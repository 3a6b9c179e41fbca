"""What one workstation session holds: the model, the open case and explained results.

Everything here runs without a browser: the Gradio callbacks only call these functions.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from fuselens.app.demo_cases import DemoCase, materialise
from fuselens.app.explain_worker import ExplainWorker, Job, RequestKey
from fuselens.app.ingest import FileReport, load_case
from fuselens.app.ingest.archive import case_root, extract_zip
from fuselens.app.ingest.errors import IngestError
from fuselens.explain.bundle import ExplanationBundle, ModalityMaps
from fuselens.explain.context import PREDICTED
from fuselens.explain.methods import DEFAULT_METHOD
from fuselens.explain.pipeline import explain_stages
from fuselens.model_zoo.case import PatientCase

DEVICES = ("auto", "cpu", "cuda")
STATUS_COLUMNS = ["File", "Read as", "Status", "Details"]
WARM_UP_SESSION = "fuselens-warm-up"
CACHED = "cached"  # a finished bundle, from memory or the bundle store
PANELS = "panels"  # every panel of a cached bundle, built on the worker thread
PREPARING = "#picked"  # the worker-queue name of a session's picked, not yet opened, case
PREPARED_KEPT = 4  # picked cases whose built panels are kept until they are opened
DETAIL_KEYS = (
    ("view", "view {}"),
    ("frames", "{} frames"),
    ("frame_rate", "{:g} frames/s"),
    ("leads", "{} leads"),
    ("sampling_rate", "{:g} Hz"),
    ("duration_s", "{:g} s"),
    ("view_position", "{} view"),
    ("shape", "{}"),
    ("items", "{} lab items"),
    ("format", "{}"),
)


def settings_variant(settings: dict[str, Any] | None) -> Hashable:
    """What of the panels' ``settings`` their values depend on, hashable."""
    if settings is None:
        return None
    opacities = tuple(float(o) for o in settings.get("echo_opacity", ()))
    return opacities, settings.get("cxr_opacity"), settings.get("method")


def _picked_key(
    loaded: LoadedCase, request: tuple[str, str, str], settings: dict[str, Any]
) -> tuple:
    """What a picked case's prepared panels are kept under (and found by when it opens)."""
    return loaded.key, tuple(request), settings_variant(settings)


@dataclass
class LoadedModel:
    """A contract model ready for the workstation, with what the header shows about it."""

    model: Any
    name: str
    device: str


@dataclass
class LoadedCase:
    """An opened case: the patient, a report per input file, and where it came from."""

    case: PatientCase
    reports: list[FileReport]
    key: str
    title: str
    story: str = ""
    folder: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def resolve_device(choice: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; ``cuda`` must be present."""
    if choice not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {choice!r}")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    return choice


def model_display_name(name: str) -> str:
    """How the header names the model: the demo label or the checkpoint folder's name."""
    from fuselens.model_zoo.loading import is_factory_spec

    if name == "demo":
        return "FuseLens demo model (synthetic data)"
    if is_factory_spec(name) and not Path(name).exists():
        return f"model {name}"
    return f"checkpoint {Path(name).name}"


def load_workstation_model(name: str = "demo", device: str = "auto") -> LoadedModel:
    """Load ``name`` (``"demo"``, a checkpoint folder or ``MODULE:FACTORY``) on the resolved
    device."""
    from fuselens.model_zoo.loading import load_explainable

    resolved = resolve_device(device)
    model = load_explainable(name, device=resolved)
    return LoadedModel(model, model_display_name(str(name)), resolved)


def _digest_files(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.as_posix()):
        h.update(path.name.encode("utf-8", "surrogateescape"))
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:12]


def open_demo(demo: DemoCase, cache_dir: str | Path | None = None) -> LoadedCase:
    """Write (on first use) and read one demo case; synthetic cases get their planted truth."""
    folder = materialise(demo, cache_dir)
    case, reports = load_case(folder)
    if (folder / "truth.json").is_file():
        from fuselens.model_zoo.synth.truth import load_truth

        case.truth = load_truth(folder)
    case.case_id = f"demo-{demo.key}"
    return LoadedCase(
        case, reports, key=case.case_id, title=demo.title, story=demo.story, folder=folder
    )


def _copy_upload(path: Path, folder: Path) -> list[FileReport]:
    """Unpack an uploaded zip, or copy an uploaded file, into ``folder``; the reports of
    what was skipped or refused."""
    if path.suffix.lower() != ".zip":
        shutil.copyfile(path, folder / path.name)
        return []
    try:
        return extract_zip(path, folder)
    except IngestError as exc:
        return [FileReport(path.name, exc.modality, False, str(exc))]


def open_uploads(
    paths: Sequence[str | Path], work_dir: str | Path | None = None, delete: bool = False
) -> LoadedCase:
    """Read uploaded files (any mix of single files and zips of a case folder) as one case,
    unpacked under ``work_dir`` (``delete``: the uploaded files are removed once copied).

    The case is named by a digest of the uploaded bytes, never by file or patient names.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise ValueError("no files uploaded")
    digest = _digest_files(files)
    root = Path(tempfile.mkdtemp(prefix="fuselens-upload-", dir=work_dir))
    folder = root / "case"
    folder.mkdir()
    zip_reports: list[FileReport] = []
    for path in files:
        zip_reports.extend(_copy_upload(path, folder))
        if delete:
            path.unlink(missing_ok=True)
    case, reports = load_case(case_root(folder))
    case.case_id = f"upload-{digest}"
    reports = zip_reports + reports
    return LoadedCase(case, reports, key=case.case_id, title="Uploaded case", folder=folder)


def describe_report(report: FileReport) -> str:
    """One line saying what a file was read as (or why not), without identifying fields."""
    if not report.ok:
        return report.error
    parts = []
    for key, template in DETAIL_KEYS:
        value = report.details.get(key)
        if value is None or value == "":
            continue
        if key in ("leads", "items"):
            value = len(value)
        if key == "shape":
            value = " x ".join(str(v) for v in value)
        parts.append(template.format(value))
    parts.extend(f"warning: {w}" for w in report.warnings)
    if report.unused:
        parts.insert(0, report.unused)
    return "; ".join(parts)


def _status(report: FileReport) -> str:
    if not report.ok:
        return "error"
    return "read, NOT USED" if report.unused else "read"


def status_table(reports: Sequence[FileReport]) -> pd.DataFrame:
    """The per-file status table: file name, modality, read or error, and what was found."""
    rows = [
        [
            Path(r.path).name,
            r.modality.upper() if r.modality in ("ecg", "cxr") else r.modality,
            _status(r),
            describe_report(r),
        ]
        for r in reports
    ]
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


@dataclass
class ExplanationCache:
    """Finished explanation bundles by (case key, task, class), least recently used dropped."""

    capacity: int = 32
    _items: OrderedDict[tuple[str, ...], Any] = field(default_factory=OrderedDict)

    def get(self, key: tuple[str, ...]) -> Any | None:
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: tuple[str, ...], bundle: Any) -> None:
        self._items[key] = bundle
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def holds(self, bundle: Any) -> bool:
        """Whether this very bundle is cached (a finished explanation)."""
        return any(b is bundle for b in self._items.values())

    def __contains__(self, key: tuple[str, ...]) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Current:
    """One browser session's open case and its latest (possibly unfinished) bundle."""

    loaded: LoadedCase
    bundle: ExplanationBundle | None = None
    slots: list[str] = field(default_factory=list)
    method: str | None = None  # the map method its panels show (a bundle may hold several)

    def shown_maps(self) -> ModalityMaps | None:
        """The maps its overlays draw: the shown method's, once there is a bundle."""
        return self.bundle.shown_maps(self.method) if self.bundle is not None else None


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
        self.upload_dir = Path(tempfile.mkdtemp(prefix="fuselens-uploads-"))  # never served
        self.cache = ExplanationCache()
        self.worker = ExplainWorker()
        self._prepared: dict[tuple, dict[str, Any]] = {}  # panels built for a picked case
        self._on_screen: dict[str, str] = {}
        self._model_digest: str | None = None

    def show(self, session: str, loaded: LoadedCase) -> None:
        """``loaded`` is now on ``session``'s screen: its older explanation stops."""
        self.worker.cancel_session(session)
        self._on_screen[session] = loaded.key

    def forget(self, session: str) -> None:
        """The browser tab closed: stop its explanation and drop what it showed."""
        self.worker.cancel_session(session)
        self.worker.cancel_session(session + PREPARING)
        self._on_screen.pop(session, None)

    def on_screen(self, session: str, loaded: LoadedCase) -> bool:
        """Whether ``loaded`` is the case ``session`` shows now."""
        return self._on_screen.get(session) == loaded.key

    def request_key(self, loaded: LoadedCase, task: str, target: str, method: str) -> RequestKey:
        """What an explanation of ``loaded`` is computed for (the identity its panels show)."""
        return RequestKey(loaded.key, task, target, method, self.model.name)

    def _queue(
        self,
        session: str,
        loaded: LoadedCase,
        request: tuple[str, str, str],
        settings: dict[str, Any] | None,
        reuse: bool,
    ) -> Job:
        key = self.request_key(loaded, *request)
        variant = settings_variant(settings)
        run = lambda: self.explain(loaded, *request, settings=settings)  # noqa: E731
        return self.worker.submit(session, key, run, reuse, variant)

    def submit(
        self,
        session: str,
        loaded: LoadedCase,
        task: str,
        target: str,
        method: str,
        settings: dict[str, Any] | None = None,
    ) -> Job:
        """Queue the explanation on the worker thread (or take the one the case's opening
        already queued for the same request and settings); the session's older one is
        superseded. With ``settings``, a cached bundle's panels are built there too."""
        return self._queue(session, loaded, (task, target, method), settings, reuse=True)

    def prefetch(
        self,
        session: str,
        loaded: LoadedCase,
        task: str,
        target: str,
        method: str,
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Start explaining a just-opened case (and, for a cached bundle, building its
        panels) while the opening response travels to the browser; the session's request
        for it then takes this job (:meth:`submit`)."""
        if loaded.case.modalities():
            self._queue(session, loaded, (task, target, method), settings, reuse=False)

    def opening_results(
        self, session: str, loaded: LoadedCase, wait_s: float, panels_wait_s: float
    ) -> list[tuple[str, ExplanationBundle, Any]]:
        """What the opening of ``loaded`` can show at once, from the session's explanation of
        it: its first stage when ready within ``wait_s`` (the prediction, or a cached bundle),
        and then a cached bundle's built panels when ready within ``panels_wait_s``. They
        are marked as shown, so the explanation's reader does not send them again."""
        job = self.worker.latest(session)
        if job is None or job.key is None or job.key.case != loaded.key:
            return []
        shown = job.peek(1, wait_s)
        if shown and shown[0][0] == CACHED:
            both = job.peek(2, panels_wait_s)
            shown = both if len(both) == 2 and both[1][0] == PANELS else shown
        job.delivered = len(shown)
        return shown

    def prepare(
        self,
        session: str,
        loaded: LoadedCase,
        request: tuple[str, str, str],
        settings: dict[str, Any],
    ) -> None:
        """A case was picked (in a table) but not opened yet: when its explanation is stored,
        build its panels on the worker thread now, beside the session's own explanation
        (untouched), so opening it takes them; a newer pick replaces an older one."""

        def run() -> Iterator[str]:
            bundle = self._finished_bundle(loaded, *request)
            if bundle is not None:
                from fuselens.app.views import bundle_panels

                built = bundle_panels(loaded.case, bundle, settings)
                while len(self._prepared) >= PREPARED_KEPT:
                    self._prepared.pop(next(iter(self._prepared)))
                self._prepared[_picked_key(loaded, request, settings)] = built
                yield PANELS

        self.worker.submit(session + PREPARING, None, run)

    def is_shown(self, job: Job, loaded: LoadedCase) -> bool:
        """Whether ``job``'s results may still be shown: newest request, case on screen."""
        return self.worker.is_latest(job) and self.on_screen(job.session, loaded)

    def open_demo(self, key: str) -> LoadedCase:
        """Open the demo case ``key`` (written under ``cases_dir`` on first use)."""
        return open_demo(self.catalogue[key], self.cases_dir)

    def open_uploads(self, paths: list[str]) -> LoadedCase:
        """Open uploaded files: moved into the private upload folder, which is never served."""
        return open_uploads(paths, self.upload_dir, delete=True)

    def close(self) -> None:
        """Stop the worker; remove the media and upload folders."""
        self.worker.close()
        for folder in (self.media_dir, self.upload_dir):
            shutil.rmtree(folder, ignore_errors=True)

    def settings(
        self, echo_opacity: list[float], cxr_opacity: float, method: str = DEFAULT_METHOD
    ) -> dict[str, Any]:
        """The overlay settings, map method and media folder
        :func:`fuselens.app.views.stage_panels` takes."""
        return {
            "echo_opacity": list(echo_opacity),
            "cxr_opacity": float(cxr_opacity),
            "method": method,
            "media_dir": self.media_dir,
        }

    def explain(
        self,
        loaded: LoadedCase,
        task: str,
        target: str,
        method: str = DEFAULT_METHOD,
        settings: dict[str, Any] | None = None,
    ) -> Iterator[tuple[str, ExplanationBundle, Any]]:
        """``(stage, bundle, from_cache)``: the cached bundle at once, or each stage as done.
        With ``settings``, a cached bundle is followed by ``(PANELS, bundle, values)``, every
        panel of it built here (:func:`fuselens.app.views.bundle_panels`)."""
        key = (loaded.key, task, target, method)
        cached = self._finished_bundle(loaded, task, target, method)
        if cached is not None:
            yield CACHED, cached, True
            if settings is not None:
                from fuselens.app.views import bundle_panels

                picked = _picked_key(loaded, (task, target, method), settings)
                built = self._prepared.pop(picked, None)
                yield PANELS, cached, built or bundle_panels(loaded.case, cached, settings)
            return
        bundle = None
        m = self.model
        for stage, bundle in explain_stages(
            m.model, loaded.case, task, target, methods=(method,), model_name=m.name
        ):
            yield stage, bundle, False
        if bundle is not None:
            self.cache.put(key, bundle)
            self.cache.put((loaded.key, task, bundle.target, method), bundle)  # the answer itself

    def _finished_bundle(
        self, loaded: LoadedCase, task: str, target: str, method: str
    ) -> ExplanationBundle | None:
        """The finished explanation of this request, from memory or the bundle store (then
        kept in memory), or None."""
        key = (loaded.key, task, target, method)
        bundle = self.cache.get(key) or self.stored_bundle(loaded, task, target, method)
        if bundle is not None:
            self.cache.put(key, bundle)
        return bundle

    def model_digest(self) -> str:
        """The model's weights digest (computed once): half of a bundle-store key."""
        if self._model_digest is None:
            from fuselens.explain.bundle_store import model_digest

            self._model_digest = model_digest(self.model.model)
        return self._model_digest

    def stored_bundle(
        self, loaded: LoadedCase, task: str, target: str, method: str
    ) -> ExplanationBundle | None:
        """The explanation a review run stored for this very content, model and request
        (``loaded.extras["bundle_store"]``, set when the case was opened from the run; a run
        of several map methods stored one bundle holding them all)."""
        folder = loaded.extras.get("bundle_store")
        if not folder or not Path(folder).is_dir():
            return None
        if target == PREDICTED:  # the stored bundle of the answer the model gave, if any
            for answer in self.model.model.tasks[task]:
                stored = self.stored_bundle(loaded, task, answer, method)
                if stored is not None and stored.prediction[task]["answer"] == answer:
                    return stored
            return None
        from fuselens.app.review.workers import ExplainPlan
        from fuselens.explain.bundle_store import BundleStore, bundle_key

        run_methods = tuple(loaded.extras.get("review_methods", ()))
        methods = run_methods if method in run_methods else (method,)  # one bundle holds them
        settings = ExplainPlan(methods).settings()
        key = bundle_key(loaded.case, self.model_digest(), task, target, methods, settings)
        return BundleStore(folder).get(key, case_id=loaded.case.case_id)

    def is_finished(self, loaded: LoadedCase, bundle: ExplanationBundle) -> bool:
        """Whether ``bundle`` is the finished (cached) explanation of ``loaded``."""
        return bundle.case_id == loaded.case.case_id and self.cache.holds(bundle)

    def warm_up(self) -> float:
        """Explain the first synthetic demo case once on the worker thread and build its
        panels (every stage; the first text-encoder batches, the first figure and the first
        loop encoding cost seconds), leaving the cache and the media folder empty, so the
        first real request is as quick as the rest."""
        from fuselens.app.views import stage_panels

        t0 = time.perf_counter()
        synthetic = [d for d in self.catalogue.values() if d.seed is not None]
        if synthetic:
            case = self.open_demo(synthetic[0].key).case
            media = Path(tempfile.mkdtemp(prefix="warm-up-", dir=self.media_dir))
            settings = {"media_dir": media}

            def run() -> Iterator[str]:
                stages = explain_stages(self.model.model, case, model_name=self.model.name)
                for stage, bundle in stages:
                    stage_panels(stage, case, bundle, settings)
                    yield stage

            try:
                for _ in self.worker.submit(WARM_UP_SESSION, None, run).results():
                    pass
            finally:
                shutil.rmtree(media, ignore_errors=True)
        return time.perf_counter() - t0
