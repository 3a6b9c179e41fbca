"""The ``fuselens`` command line: one subcommand per job, each a thin call into a module."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fuselens.model_zoo.config import ModelConfig

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

Handler = Callable[[argparse.Namespace], int]
MODEL_HELP = "demo, a checkpoint folder, or MODULE:FACTORY (default: the demo model)"


def _inspect(args: argparse.Namespace) -> int:
    from fuselens.app.inspect import run_inspect

    return run_inspect(args.paths, as_json=args.json, show_identifiers=args.show_identifiers)


def _synth(args: argparse.Namespace) -> int:
    from fuselens.model_zoo.synth.cohort import default_workers, write_cohort
    from fuselens.model_zoo.synth.cues import parse_cue

    cues: dict[str, float] = {}
    for spec in args.cue:
        try:
            modality, strength = parse_cue(spec)
        except ValueError as exc:
            raise SystemExit(f"fuselens synth: --cue {spec}: {exc}") from exc
        if modality in cues:
            raise SystemExit(f"fuselens synth: --cue {modality} given twice")
        cues[modality] = strength
    workers = args.workers if args.workers > 0 else default_workers()
    write_cohort(
        args.out, n=args.n, seed=args.seed, progress=not args.quiet, workers=workers, cues=cues
    )
    return 0


def _load_cohort(cohort: str, progress: bool = True, grid: ModelConfig | None = None) -> list:
    """Every case folder of a cohort as a PatientCase with its planted truth attached; with a
    ModelConfig ``grid``, the evidence masks kept on that model's input grid."""
    from tqdm.auto import tqdm

    from fuselens.app.ingest import load_case
    from fuselens.model_zoo.evidence_targets import evidence_targets
    from fuselens.model_zoo.synth.truth import case_folders, load_truth

    try:
        folders = case_folders(cohort)
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from exc
    cases = []
    for folder in tqdm(folders, desc="load cases", disable=not progress, unit="case"):
        case, _ = load_case(folder)
        case.truth = load_truth(folder)
        if grid is not None:
            case.truth.grid_masks = evidence_targets(case, grid)
        case.truth.masks = {}  # full-size masks are ~1.5 MB/case; training needs only the grid
        cases.append(case)
    return cases


def _train(args: argparse.Namespace) -> int:
    from fuselens.model_zoo.splits import validation_split
    from fuselens.model_zoo.training import TrainingConfig, train_model

    cfg = TrainingConfig(epochs=args.epochs, seed=args.seed, threads=args.threads)
    if args.report_epochs is not None:
        cfg.report_epochs = args.report_epochs
    if args.no_evidence_supervision:
        cfg.evidence_weight = 0.0
    cases = _load_cohort(args.cohort, grid=cfg.model if cfg.evidence_weight else None)
    split = args.seed if args.split_seed is None else args.split_seed
    train_idx, val_idx = validation_split(len(cases), split, args.val_fraction)
    val = [cases[i] for i in val_idx]
    train = [cases[i] for i in train_idx]
    result = train_model(train, val, cfg, args.out)
    print(f"checkpoint: {result.out_dir / 'model'} ({result.metrics['train_s']:.0f} s)")
    return 0


def _predict(args: argparse.Namespace) -> int:

    from fuselens.app.ingest import load_case
    from fuselens.model_zoo.loading import load_explainable
    from fuselens.model_zoo.predict import predict_case

    model = load_explainable(args.model)
    case, _ = load_case(args.case_dir)
    result = predict_case(model, case)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"case {result['case_id']}: modalities used {', '.join(result['modalities_used'])}")
    for task, r in result["tasks"].items():
        which = "yes" if "yes" in r["probabilities"] else r["answer"]
        print(f"  {task:<20} {r['answer']:<4} p({which})={r['probability']:.3f}")
    print(f"device {result['device']}, {result['seconds']:.3f} s; {result['caveat']}")
    return 0


def _labelled_probabilities(
    model,
    cohort,
    case_ids: Sequence[str],
    tasks: Sequence[str],
    desc: str,
    quiet: bool,
    batch_size: int = 1,
) -> tuple[dict[str, list[str]], dict[str, list[list[float]]]]:
    """Per task, the labels of the cases in ``case_ids`` labelled for it and the model's
    probabilities of its answers (in the model's order) on them; a case labelled for no
    task is not run."""
    from tqdm.auto import tqdm

    from fuselens.model_zoo.predict import predict_cases

    truth: dict[str, list[str]] = {t: [] for t in tasks}
    probs: dict[str, list[list[float]]] = {t: [] for t in tasks}
    labelled = [(c, {t: cohort.label(c, t) for t in tasks}) for c in case_ids]
    labelled = [
        (c, labels) for c, labels in labelled if any(v is not None for v in labels.values())
    ]
    with tqdm(total=len(labelled), desc=desc, disable=quiet, unit="case") as bar:
        for start in range(0, len(labelled), batch_size):
            chunk = labelled[start : start + batch_size]
            results = predict_cases(model, [cohort.load(c) for c, _ in chunk], batch_size)
            for (_, labels), result in zip(chunk, results, strict=True):
                for t, answer in labels.items():
                    if answer is not None:
                        truth[t].append(answer)
                        p = result["tasks"][t]["probabilities"]
                        probs[t].append([p[a] for a in model.tasks[t]])
            bar.update(len(chunk))
    return truth, probs


def _eval_labelled(args: argparse.Namespace) -> dict:
    """Any model on a labelled (or synthetic) cohort, per task: accuracy and AUC with CIs."""
    import numpy as np

    from fuselens.app.cohort import open_cohort
    from fuselens.model_zoo.labelled_eval import task_metrics

    model = _model(args.model)
    try:
        cohort = open_cohort(args.cohort, args.labels)
        tasks = [args.task] if args.task else [t for t in model.tasks if t in cohort.tasks]
        for task in tasks:
            cohort.check_labels(model.tasks, task)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"fuselens eval: {exc}") from exc
    truth, probs = _labelled_probabilities(model, cohort, cohort.case_ids, tasks, "eval", args.json)
    return {
        "model": model.name,
        "caveat": model.caveat,
        "cohort": str(args.cohort),
        "labels": str(cohort.source),
        "tasks": {
            t: task_metrics(truth[t], np.array(probs[t]), model.tasks[t], args.bootstrap)
            for t in tasks
            if truth[t]
        },
    }


def _eval(args: argparse.Namespace) -> int:

    from fuselens.model_zoo.loading import is_factory_spec

    if args.labels or args.task or is_factory_spec(args.model):
        from fuselens.model_zoo.labelled_eval import format_labelled

        result = _eval_labelled(args)
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2) if args.json else format_labelled(result))
        return 0

    from fuselens.explain.report_factuality import fact_check
    from fuselens.model_zoo.dataset import add_text_states, build_cohort_data
    from fuselens.model_zoo.evaluation import evaluate_model, format_tables
    from fuselens.model_zoo.loading import load_card
    from fuselens.model_zoo.operating_points import card_points, thresholds
    from fuselens.model_zoo.registry import load_model, resolve_model_dir

    model, config = load_model(args.model)
    points = card_points(load_card(resolve_model_dir(args.model)))
    cases = _load_cohort(args.cohort)
    data = build_cohort_data(cases, config, model.task_names)
    add_text_states(data, model)
    check = fact_check(model, cases, thresholds(model) | points)
    result = evaluate_model(model, data, n_boot=args.bootstrap, check=check)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2) if args.json else format_tables(result))
    return 0


def _operating_points(args: argparse.Namespace) -> int:
    """Choose each yes/no task's threshold on a validation cohort; print it, ``--write`` it
    into the checkpoint's card."""
    from fuselens.app.cohort import open_cohort
    from fuselens.model_zoo.loading import is_factory_spec, load_card
    from fuselens.model_zoo.operating_points import (
        choose_operating_points,
        format_points,
        is_yes_no,
    )
    from fuselens.model_zoo.registry import resolve_model_dir, save_card
    from fuselens.model_zoo.splits import validation_split

    if args.write and is_factory_spec(args.model):
        raise SystemExit("fuselens operating-points: --write needs a checkpoint folder")
    model = _model(args.model)
    try:
        cohort = open_cohort(args.cohort, args.labels)
        yes_no = [t for t, a in model.tasks.items() if is_yes_no(a)]
        tasks = args.task or [t for t in yes_no if t in cohort.tasks]
        for task in tasks:
            if task not in yes_no:
                raise ValueError(f"{task} is not a yes/no task of {model.name}")
            cohort.check_labels(model.tasks, task)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"fuselens operating-points: {exc}") from exc
    case_ids = cohort.case_ids
    where = f"{cohort.root} ({len(case_ids)} cases)"
    if args.split_seed is not None:
        _, val_idx = validation_split(len(case_ids), args.split_seed, args.val_fraction)
        case_ids = [case_ids[i] for i in val_idx]
        where = (
            f"the validation split of {cohort.root} ({len(case_ids)} cases: split seed "
            f"{args.split_seed}, fraction {args.val_fraction})"
        )
    truth, probs = _labelled_probabilities(
        model, cohort, case_ids, tasks, "operating points", args.json, batch_size=8
    )
    p_yes = {t: [p[list(model.tasks[t]).index("yes")] for p in probs[t]] for t in tasks}
    points = choose_operating_points(truth, p_yes)
    out = {"model": model.name, "chosen_on": where, "operating_points": points}
    if args.write:
        folder = resolve_model_dir(args.model)
        card = load_card(folder)
        card["operating_points"] = points
        card["operating_points_source"] = f"F1-best threshold per task on {where}"
        save_card(folder, card)
    print(json.dumps(out, indent=2) if args.json else format_points(out))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import tempfile

    # Gradio fixes its cache folder when imported: a private one, removed when serve ends.
    cache = tempfile.mkdtemp(prefix="fuselens-gradio-")
    os.environ["GRADIO_TEMP_DIR"] = cache
    from fuselens.app.workstation import serve

    return serve(
        host=args.host,
        port=args.port,
        model=args.model,
        cases_dir=args.cases,
        device=args.device,
        review_db=args.review_db,
        users=args.users,
        no_auth=args.no_auth,
        gradio_cache=cache,
    )


def _passwd(args: argparse.Namespace) -> int:
    import getpass

    from fuselens.app.login import users_line

    password = getpass.getpass(f"password for {args.name}: ")
    if password != getpass.getpass("again: "):
        print("fuselens passwd: the passwords differ", file=sys.stderr)
        return 2
    try:
        print(users_line(args.name, password))
    except ValueError as exc:
        print(f"fuselens passwd: {exc}", file=sys.stderr)
        return 2
    return 0


def _explain(args: argparse.Namespace) -> int:

    from fuselens.app.exports import IdentifierLeak, safe_case_id, write_explanation
    from fuselens.app.ingest import load_case
    from fuselens.explain.pipeline import explain_case

    model = _model(args.model)
    case, reports = load_case(args.case_dir)
    for r in reports:
        if not r.ok:
            print(f"  not read: {r.error}", file=sys.stderr)
    if not args.allow_identifiers and (pseudonym := safe_case_id(case)) != case.case_id:
        print(
            f"  the folder's name identifies the patient: the case is {pseudonym}", file=sys.stderr
        )
        case.case_id = pseudonym
    try:
        bundle = explain_case(model, case, task=args.task, target=args.target, methods=args.method)
        out, html = write_explanation(case, bundle, args.out, args.allow_identifiers)
    except IdentifierLeak as exc:
        raise SystemExit(f"fuselens explain: {exc} (--allow-identifiers writes them)") from exc
    except ValueError as exc:
        raise SystemExit(f"fuselens explain: {exc}") from exc
    summary = {**bundle.summary(), "bundle": str(out), "html": str(html)}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"case {bundle.case_id}: P({bundle.task}={bundle.target}) = {bundle.probability:.3f}")
    for stage in bundle.stages:
        print(f"  {stage:<20} {bundle.timings[stage]:.3f} s")
    for panel, reason in bundle.unavailable.items():
        print(f"  {panel:<20} not available: {reason}")
    print(f"bundle {out}, report {html}; {bundle.caveat}")
    return 0


def _model(spec: str, device: str | None = None):
    """The model ``--model`` names, or exit with why it cannot be loaded."""
    from fuselens.model_zoo.loading import load_explainable

    try:
        return load_explainable(spec, device)
    except (FileNotFoundError, ValueError, TypeError, ImportError) as exc:
        raise SystemExit(f"fuselens: --model {spec}: {exc}") from exc


def _bench_case(case_dir: str | None):
    """The case to time: a case folder, or the 'hf-clear' demo patient rendered afresh."""
    import tempfile

    from fuselens.app.ingest import load_case
    from fuselens.model_zoo.synth.cohort import write_case

    if case_dir:
        return load_case(case_dir)[0]
    tmp = Path(tempfile.mkdtemp(prefix="fuselens-bench-"))
    meta = write_case(tmp, 505, 21)
    return load_case(tmp / meta["case_id"])[0]


def _bench(args: argparse.Namespace) -> int:

    from fuselens.explain.bench import speed_benchmark

    model = _model(args.model)
    result = speed_benchmark(
        model, _bench_case(args.case), repeats=args.repeats, baseline_repeats=args.baseline_repeats
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for stage, s in result["stages"].items():
        print(f"  {stage:<14} p50 {s:.3f} s")
    print(
        f"total p50 {result['total_p50_s']:.2f} s vs baseline {result['baseline_total_p50_s']:.2f}"
        f" s: {result['speedup']:.1f}x faster ({result['device']})"
    )
    return 0


def _evaluation_order(cohort, case_ids: list[str]) -> list[str]:
    """Synthetic heart-failure cases with a single evidence modality first (the Shapley test
    needs them), then the rest, each in id order; a labelled cohort keeps its order."""

    def single(case_id: str) -> bool:
        path = cohort.folder(case_id) / "truth.json"
        if not path.is_file():
            return False
        meta = json.loads(path.read_text(encoding="utf-8"))
        return meta["labels"].get("heart_failure") == 1 and len(meta["evidence_modalities"]) == 1

    flags = {c: single(c) for c in case_ids}
    return [c for c in case_ids if flags[c]] + [c for c in case_ids if not flags[c]]


def _bench_xai(args: argparse.Namespace) -> int:

    from fuselens.app.cohort import open_cohort
    from fuselens.explain.bench_xai import bench_xai, format_table

    model = _model(args.model)
    try:
        cohort = open_cohort(args.cohort, args.labels)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"fuselens bench-xai: {exc}") from exc
    ids = _evaluation_order(cohort, list(cohort.case_ids))
    ids = ids[: args.limit] if args.limit else ids
    cases = (cohort.load(c) for c in ids)
    try:
        result = bench_xai(
            model,
            cases,
            task=args.task,
            methods=args.method,
            fidelity_cases=args.fidelity_cases,
            progress=not args.json,
        )
    except ValueError as exc:
        raise SystemExit(f"fuselens bench-xai: {exc}") from exc
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


def _explained(args: argparse.Namespace) -> Any:
    """The review's explanation settings (``None`` with ``--no-explain``)."""
    from fuselens.app.review.runner import Explained
    from fuselens.app.review.workers import ExplainPlan
    from fuselens.app.storage.db import bundle_dir
    from fuselens.explain.methods import DEFAULT_METHOD, REGISTRY

    if args.no_explain:
        return None
    methods = tuple(m.strip() for m in (args.methods or DEFAULT_METHOD).split(",") if m.strip())
    unknown = [m for m in methods if m not in REGISTRY]
    if unknown or not methods:
        raise ValueError(f"--methods: unknown {unknown}; registered: {', '.join(REGISTRY)}")
    if args.workers < 1:
        raise ValueError(f"--workers must be 1 or more, got {args.workers}")
    store = Path(args.store).expanduser() if args.store else bundle_dir()
    device = None if args.device == "auto" else args.device
    return Explained(store, ExplainPlan(methods), args.workers, args.address, device=device)


def _print_patterns(args: argparse.Namespace, run_id: int) -> None:
    from fuselens.app.review.patterns import cohort_patterns
    from fuselens.app.storage.db import open_database

    engine, sessions = open_database(args.db)
    try:
        patterns = cohort_patterns(sessions, run_id)
    finally:
        engine.dispose()
    print(patterns.text())
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(patterns.to_json(), indent=2) + "\n")


def _print_input_warnings(warnings: dict[str, list[str]], shown: int = 10) -> None:
    """The first ``shown`` stored cases whose files were not all read cleanly, and a count."""
    for case in list(warnings)[:shown]:
        print(f"  {case}: stored with input warnings: {'; '.join(warnings[case])}", file=sys.stderr)
    if len(warnings) > shown:
        print(
            f"  ... and {len(warnings) - shown} more case(s) with input warnings "
            "(the Error review's input warnings column lists them all)",
            file=sys.stderr,
        )


def _review(args: argparse.Namespace) -> int:
    from fuselens.app.review.runner import review_cohort

    try:
        explained = _explained(args)
        summary = review_cohort(
            args.cohort,
            args.model,
            args.db,
            args.run_name,
            args.threshold,
            args.limit,
            labels=args.labels,
            task=args.task,
            device=None if args.device == "auto" else args.device,
            explained=explained,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"fuselens review: {exc}", file=sys.stderr)
        return 2
    for case, error in summary.failed.items():
        print(f"  {case}: not reviewed: {error}", file=sys.stderr)
    _print_input_warnings(summary.input_warnings)
    if summary.unlabelled:
        shown = ", ".join(summary.unlabelled[:5]) + (" ..." if len(summary.unlabelled) > 5 else "")
        print(
            f"  {len(summary.unlabelled)} case(s) unlabelled for {summary.task}, left out: {shown}",
            file=sys.stderr,
        )
    state = "complete" if summary.complete else "incomplete (rerun to resume)"
    print(
        f"review run {summary.name!r} (id {summary.run_id}, task {summary.task}): "
        f"{summary.added} new, "
        f"{summary.stored_before} already stored, {summary.stored_after}/{summary.total} cases"
        f" stored; {state}"
    )
    if explained is not None and (summary.added or summary.cached):
        rate = (summary.added + len(summary.failed)) / max(summary.seconds, 1e-9) * 3600
        peaks = ", ".join(f"{w['peak_rss_mb']:.0f}" for w in summary.workers)
        print(
            f"explained on {explained.workers} worker(s) in {summary.seconds:.1f} s "
            f"({rate:.0f} cases/h): {summary.bundles_written} bundles written, "
            f"{summary.cached} found in {explained.store_dir}; peak MB per worker: {peaks}"
            + (
                f"; {len(summary.retried)} case(s) rerun after a worker died"
                if summary.retried
                else ""
            )
        )
    if args.summary:
        _print_patterns(args, summary.run_id)
    return 0 if not summary.failed else 1


def _study_create(args: argparse.Namespace) -> int:
    from fuselens.app.study.commands import create_from_folder
    from fuselens.app.study.config import StudyConfigError
    from fuselens.app.study.service import StudyError

    try:
        study_id, generated = create_from_folder(
            args.cases,
            args.config,
            args.db,
            args.model,
            progress=not args.quiet,
            labels=args.labels,
            task=args.task,
        )
    except (FileNotFoundError, ValueError, StudyConfigError, StudyError) as exc:
        print(f"fuselens study create: {exc}", file=sys.stderr)
        return 2
    for username, password in generated.items():
        print(f"generated password for {username}: {password}", file=sys.stderr)
    print(study_id)
    return 0


def _study_export(args: argparse.Namespace) -> int:
    from fuselens.app.study.commands import export
    from fuselens.app.study.service import StudyError

    try:
        n = export(args.study_id, args.out, args.imrmc, args.db)
    except StudyError as exc:
        print(f"fuselens study export: {exc}", file=sys.stderr)
        return 2
    print(f"{n} rows -> {args.out}" + (f"; iMRMC -> {args.imrmc}" if args.imrmc else ""))
    return 0


def _study_serve(args: argparse.Namespace) -> int:
    from fuselens.app.study.commands import serve
    from fuselens.app.study.service import StudyError

    try:
        return serve(args.study_id, args.host, args.port, args.db)
    except StudyError as exc:
        print(f"fuselens study serve: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fuselens",
        description="FuseLens: explain a multimodal (labs, ECG, echo, CXR) fusion model.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inspect", help="what a file or case folder holds, or why it cannot be read")
    p.add_argument("paths", nargs="+")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--show-identifiers",
        action="store_true",
        help="also print identifying DICOM fields (off by default)",
    )
    p.set_defaults(handler=_inspect)

    p = sub.add_parser("synth", help="write a synthetic cohort with planted evidence")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--workers", type=int, default=0, help="parallel processes (0: one per CPU, up to 8)"
    )
    p.add_argument(
        "--cue",
        action="append",
        default=[],
        metavar="MODALITY[:STRENGTH]",
        help="plant a spurious cue that follows the label in cxr, ecg or echo (repeatable); "
        "STRENGTH in [0.5, 1], default 0.9: P(cue | heart failure), 1 - STRENGTH otherwise",
    )
    p.set_defaults(handler=_synth)

    p = sub.add_parser("train", help="train the fusion model on a synthetic cohort")
    p.add_argument("--cohort", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="seed of the train/validation split (default: --seed); fix it to compare "
        "training seeds on one validation split",
    )
    p.add_argument(
        "--no-evidence-supervision",
        action="store_true",
        help="train without the planted evidence masks (evidence weight 0)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--report-epochs",
        type=int,
        default=None,
        help="epochs of the report decoder stage (default: the training default, 10)",
    )
    p.set_defaults(handler=_train)

    p = sub.add_parser("predict", help="probability and answer per task for one case folder")
    p.add_argument("case_dir")
    p.add_argument("--model", default="demo", help="demo, a checkpoint folder, or MODULE:FACTORY")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_predict)

    p = sub.add_parser("eval", help="held-out evaluation: subsets, reports, retrieval")
    p.add_argument("--cohort", required=True)
    p.add_argument(
        "--labels", help="labels.csv: any model's accuracy and AUC per task on these labels"
    )
    p.add_argument("--task", help="evaluate this task only (with --labels or any model)")
    p.add_argument("--model", default="demo", help=MODEL_HELP)
    p.add_argument("--json", action="store_true")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs")
    p.add_argument("--out", help="also write the JSON here")
    p.set_defaults(handler=_eval)

    p = sub.add_parser(
        "operating-points",
        help="each yes/no task's threshold, chosen on validation cases (F1-best)",
    )
    p.add_argument("--cohort", required=True)
    p.add_argument("--labels", help="labels.csv (default: the cohort's own labels or truth)")
    p.add_argument("--model", default="demo", help=MODEL_HELP)
    p.add_argument("--task", action="append", help="this task only (repeatable; default: all)")
    p.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="use only the validation split `fuselens train --split-seed` made of this cohort",
    )
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--write", action="store_true", help="store them in the checkpoint's card")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_operating_points)

    p = sub.add_parser("serve", help="the workstation: a Gradio app in the browser")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--model", default="demo", help=MODEL_HELP)
    p.add_argument("--cases", help="folder for the demo cases (default: ~/.cache/fuselens)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument(
        "--review-db", help="error-review database (default: FUSELENS_DB_URL or the data folder)"
    )
    login = p.add_mutually_exclusive_group()
    login.add_argument(
        "--users", help="users file (lines NAME:HASH from `fuselens passwd NAME`); default: a token"
    )
    login.add_argument(
        "--no-auth", action="store_true", help="no login (only with --host 127.0.0.1)"
    )
    p.set_defaults(handler=_serve)

    p = sub.add_parser("passwd", help="a users-file line for `fuselens serve --users`")
    p.add_argument("name")
    p.set_defaults(handler=_passwd)

    p = sub.add_parser("explain", help="explanation bundle and offline HTML report of a case")
    p.add_argument("case_dir")
    p.add_argument("--out", required=True, help="folder for bundle.json, arrays.npz, report.html")
    p.add_argument("--model", default="demo", help=MODEL_HELP)
    p.add_argument("--task", help="the task to explain (default: the model's first)")
    p.add_argument("--target", help="the answer to explain (default: the task's last)")
    p.add_argument(
        "--method",
        action="append",
        help="map method for the ECG, echo and X-ray, repeatable (default: gradcam_pp; "
        "also integrated_gradients, occlusion)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--allow-identifiers",
        action="store_true",
        help="write the outputs even when they hold the patient's DICOM identifiers "
        "(default: refuse, and a folder named after the patient gets a pseudonym)",
    )
    p.set_defaults(handler=_explain)

    p = sub.add_parser("bench", help="explanation speed vs a naive baseline on one case")
    p.add_argument("--case", help="case folder (default: a rendered four-modality demo case)")
    p.add_argument("--model", default="demo", help=MODEL_HELP)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--baseline-repeats", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_bench)

    p = sub.add_parser("bench-xai", help="explanation quality of every map method on a cohort")
    p.add_argument("--cohort", required=True, help="folder of case folders")
    p.add_argument("--labels", help="labels.csv (default: the cohort's own, or truth.json)")
    p.add_argument("--task", help="the task whose answer the maps explain (default: first)")
    p.add_argument(
        "--method", action="append", help="map method, repeatable (default: every registered)"
    )
    p.add_argument("--model", default="demo", help=MODEL_HELP)
    p.add_argument("--limit", type=int, help="evaluate at most N cases")
    p.add_argument("--fidelity-cases", type=int, default=10, help="cases given a SHAP reference")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--json", action="store_true", help="JSON, not the table (no progress bar)")
    p.set_defaults(handler=_bench_xai)

    p = sub.add_parser("review", help="error review: the model over a cohort, results stored")
    p.add_argument(
        "--cohort",
        required=True,
        help="folder of case folders (with a labels.csv, or a `fuselens synth` cohort)",
    )
    p.add_argument(
        "--labels", help="labels.csv: case_id and one column per task (default: COHORT/labels.csv)"
    )
    p.add_argument("--model", default="demo", help="demo, a checkpoint folder, or MODULE:FACTORY")
    p.add_argument("--task", help="the model's task to review (default: its first task)")
    p.add_argument("--db", help="database URL (default: FUSELENS_DB_URL or the data folder)")
    p.add_argument("--run-name", help="name of the run to create or resume")
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="P(yes) from which a yes/no task is called 'yes' (other tasks: the top answer)",
    )
    p.add_argument("--limit", type=int, help="review at most N new cases this time")
    p.add_argument(
        "--no-explain", action="store_true", help="predictions only, no explanation bundles"
    )
    p.add_argument(
        "--methods", help="map methods of every bundle, comma-separated (default: Grad-CAM++)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="Ray workers (default: one per CPU)",
    )
    p.add_argument(
        "--address",
        help="an existing Ray cluster, host:port or 'auto' (RAY_ADDRESS, else the one `ray start`"
        " began); default: a new local one, whatever RAY_ADDRESS says",
    )
    p.add_argument(
        "--store", help="bundle store folder (default: FUSELENS_BUNDLE_DIR or the data folder)"
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--summary", action="store_true", help="print the cohort's explanation patterns")
    p.add_argument("--summary-json", help="also write the patterns' digest here")
    p.set_defaults(handler=_review)

    study = sub.add_parser("study", help="reader studies: create, serve, export")
    study_sub = study.add_subparsers(dest="study_command", required=True)
    db_help = "database URL (default: FUSELENS_DB_URL or the data folder)"
    p = study_sub.add_parser("create", help="a study from case folders and study.yaml")
    p.add_argument(
        "--cases",
        required=True,
        help="folder of case folders (with a labels.csv, or a `fuselens synth` cohort)",
    )
    p.add_argument("--config", required=True, help="study.yaml")
    p.add_argument(
        "--labels", help="labels.csv: case_id and one column per task (default: CASES/labels.csv)"
    )
    p.add_argument("--task", help="the yes/no task readers diagnose (default: the config's task)")
    p.add_argument("--db", help=db_help)
    p.add_argument(
        "--model",
        help="model for the AI arms: demo, a checkpoint folder, or MODULE:FACTORY "
        "(default: the config's model)",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=_study_create)
    p = study_sub.add_parser("export", help="CSV (and iMRMC file) of a study's answers")
    p.add_argument("study_id", type=int)
    p.add_argument("--out", required=True, help="CSV: one row per reader x case x arm")
    p.add_argument("--imrmc", help="also write the FDA iMRMC input file here")
    p.add_argument("--db", help=db_help)
    p.set_defaults(handler=_study_export)
    p = study_sub.add_parser("serve", help="the reader and owner web server of a study")
    p.add_argument("study_id", type=int)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7870)
    p.add_argument("--db", help=db_help)
    p.set_defaults(handler=_study_serve)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
