"""Print a checkpoint card's ``answer_prevalence``: each task's answer shares in a cohort.

python benchmarks/training_prevalence.py COHORT [--card assets/demo_model/card.json]

With ``--card``, the card's ``answer_prevalence`` (the modality-Shapley baseline the
checkpoint carries) is replaced by the cohort's; ``fuselens train`` writes it for the cases
it trains on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fuselens.explain.baseline import cohort_prevalence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cohort")
    parser.add_argument("--card", help="a checkpoint's card.json to update")
    args = parser.parse_args()
    shares = cohort_prevalence(args.cohort)
    n = len(list(Path(args.cohort).glob("*/truth.json")))
    prevalence = {t: {"no": 1.0 - p, "yes": p} for t, p in shares.items()}
    if args.card:
        card = json.loads(Path(args.card).read_text(encoding="utf-8"))
        card["answer_prevalence"] = prevalence
        card["answer_prevalence_source"] = f"{Path(args.cohort).name} ({n} cases)"
        Path(args.card).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({"source": Path(args.cohort).name, "cases": n, "prevalence": prevalence}))


if __name__ == "__main__":
    main()
