"""Explaining the cases of a cohort on Ray: one actor per worker, each holding one loaded model.

A local cluster on the machine's cores starts by default (one CPU, one torch thread per
worker; one GPU each where ``device`` is ``cuda``); ``address`` joins a running cluster,
whose workers must see the cohort and the bundle store at the same paths. An actor that dies
is restarted and its unfinished cases are run again (``max_attempts`` times in all); the
caller stores each result, so a case retried is still stored once.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuselens.explain.methods import DEFAULT_METHOD
from fuselens.explain.text_shap import DEFAULT_MAX_EVALS

IN_FLIGHT_PER_WORKER = 2
OBJECT_STORE_BYTES = 512 * 2**20


def explained_class(answers: Sequence[str]) -> str:
    """The class a review explains in every case: the task's last answer ("yes" of a yes/no
    task), whatever the model answered, so the cohort's maps are of one class."""
    return list(answers)[-1]


@dataclass(frozen=True)
class ExplainPlan:
    """Which explanation every case gets: the map methods and the text SHAP budget."""

    methods: tuple[str, ...] = (DEFAULT_METHOD,)
    text_max_evals: int = DEFAULT_MAX_EVALS

    def settings(self) -> dict[str, Any]:
        """What the bundle store keys on besides case, model, task, class and methods."""
        from fuselens.explain.bundle import FORMAT_VERSION

        return {"text_max_evals": self.text_max_evals, "bundle_format": FORMAT_VERSION}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), MB."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class CaseExplainer:
    """One worker: the model loaded once, explaining cases of one cohort into store entries."""

    def __init__(
        self,
        model: Any,
        device: str | None,
        cohort_root: str,
        labels: str | None,
        task: str,
        plan: ExplainPlan,
        store_root: str,
        model_name: str,
        threads: int = 1,
    ) -> None:
        import torch

        from fuselens.app.cohort import open_cohort
        from fuselens.explain.bundle_store import BundleStore, model_digest
        from fuselens.model_zoo.loading import load_explainable

        if threads:
            torch.set_num_threads(threads)
        self.model = load_explainable(model, device) if isinstance(model, str | Path) else model
        self.digest = model_digest(self.model)
        self.cohort = open_cohort(cohort_root, labels)
        self.task, self.plan, self.model_name = task, plan, model_name
        self.target = explained_class(self.model.tasks[task])
        self.store = BundleStore(store_root)

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "peak_rss_mb": peak_rss_mb()}

    def explain(self, case_id: str) -> dict[str, Any]:
        """``case_id``'s prediction and store key, and the entry's files unless the store
        already holds it; ``error`` when the case cannot be read or the model fails on it."""
        from fuselens.app.identifier_text import redacted_warnings
        from fuselens.app.review.runner import load_case_of, model_error
        from fuselens.explain.bundle_store import bundle_key, entry_files
        from fuselens.explain.pipeline import explain_case

        t0 = time.perf_counter()
        out: dict[str, Any] = {"case_id": case_id, "pid": os.getpid()}
        try:
            case = load_case_of(self.cohort, case_id)
        except (OSError, ValueError) as exc:
            return {**out, "error": str(exc)}
        out["case_modalities"] = case.modalities()
        out["case_warnings"] = redacted_warnings(case)
        plan = self.plan
        key = bundle_key(case, self.digest, self.task, self.target, plan.methods, plan.settings())
        out["key"] = key
        if self.store.has(key):
            head = self.store.header(key)
            return {**out, "prediction": head["prediction"], "modalities": head["modalities"],
                    "cached": True, "seconds": time.perf_counter() - t0}  # fmt: skip
        try:
            bundle = explain_case(
                self.model,
                case,
                self.task,
                self.target,
                methods=plan.methods,
                model_name=self.model_name,
                text_max_evals=plan.text_max_evals,
            )
        except Exception as exc:  # noqa: BLE001 - a user's model: report the case, go on
            return {**out, "error": model_error(exc)}
        return {**out, "prediction": bundle.prediction, "modalities": bundle.modalities,
                "files": entry_files(bundle), "cached": False,
                "seconds": time.perf_counter() - t0}  # fmt: skip


@dataclass
class Pool:
    """The actors of one run and what the run learnt about them."""

    actors: list[Any]
    started_ray: bool
    retried: list[str] = field(default_factory=list)

    def info(self) -> list[dict[str, Any]]:
        """Each live actor's pid and peak memory."""
        import ray

        out = []
        for actor in self.actors:
            try:
                out.append(ray.get(actor.info.remote(), timeout=30))
            except Exception:  # noqa: BLE001 - a dead actor has nothing to say
                continue
        return out

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        if self.started_ray:
            ray.shutdown()


def _driver_path() -> str:
    """The driver's import path, so local workers import what it can (``MODULE:FACTORY``
    models next to the user's working folder)."""
    return os.pathsep.join(os.path.abspath(p) if p else os.getcwd() for p in sys.path)


def start_pool(
    workers: int,
    address: str | None,
    device: str | None,
    explainer_args: tuple[Any, ...],
    max_attempts: int = 3,
) -> Pool:
    """Ray (a local cluster of ``workers`` CPUs unless ``address``) and ``workers`` actors."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(
                address="local",  # not a cluster RAY_ADDRESS or `ray start` left behind
                num_cpus=workers,
                num_gpus=1 if device == "cuda" else 0,
                include_dashboard=False,
                log_to_driver=False,
                object_store_memory=OBJECT_STORE_BYTES,
                runtime_env={"env_vars": {"PYTHONPATH": _driver_path()}},
            )
        started = True
    gpus = 1 / workers if device == "cuda" else 0
    remote = ray.remote(CaseExplainer).options(
        num_cpus=1, num_gpus=gpus, max_restarts=max_attempts, max_task_retries=max_attempts
    )
    return Pool([remote.remote(*explainer_args) for _ in range(workers)], started)


def explain_on_pool(
    pool: Pool,
    case_ids: list[str],
    max_attempts: int = 3,
    on_output: Callable[[dict[str, Any]], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Each case's :meth:`CaseExplainer.explain` output, in the order they finish; a case
    whose worker died ``max_attempts`` times comes back with an ``error``."""
    import ray
    from ray.exceptions import RayActorError, RayTaskError

    queue = deque(case_ids)
    attempts: dict[str, int] = {}
    pending: dict[Any, tuple[str, int]] = {}
    load = [0] * len(pool.actors)

    def feed() -> None:
        while queue:
            i = min(range(len(load)), key=load.__getitem__)
            if load[i] >= IN_FLIGHT_PER_WORKER:
                return
            case_id = queue.popleft()
            attempts[case_id] = attempts.get(case_id, 0) + 1
            pending[pool.actors[i].explain.remote(case_id)] = (case_id, i)
            load[i] += 1

    feed()
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        case_id, i = pending.pop(ref)
        load[i] -= 1
        try:
            out = ray.get(ref)
        except (RayActorError, RayTaskError) as exc:
            if attempts[case_id] < max_attempts:
                pool.retried.append(case_id)
                queue.appendleft(case_id)
                feed()
                continue
            out = {
                "case_id": case_id,
                "error": f"its worker failed {attempts[case_id]} times: {exc}",
            }
        if on_output is not None:
            on_output(out)
        yield out
        feed()
