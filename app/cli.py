"""The ``fuselens`` command line: one subcommand per job, each a thin call into a module."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

Handler = Callable[[argparse.Namespace], int]


def _inspect(args: argparse.Namespace) -> int:
    from app.inspect import run_inspect

    return run_inspect(args.paths, as_json=args.json, show_identifiers=args.show_identifiers)


def _synth(args: argparse.Namespace) -> int:
    from model_zoo.synth.cohort import write_cohort

    write_cohort(args.out, n=args.n, seed=args.seed, progress=not args.quiet)
    return 0


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
    p.set_defaults(handler=_synth)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
