"""Write ``explain/prevalence.json``: each task's positive share in the training cohort.

python benchmarks/training_prevalence.py /work/data/cohort_seed1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fuselens.explain.baseline import PREVALENCE_FILE, cohort_prevalence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cohort")
    args = parser.parse_args()
    prevalence = cohort_prevalence(args.cohort)
    n = len(list(Path(args.cohort).glob("*/truth.json")))
    blob = {"source": Path(args.cohort).name, "cases": n, "prevalence": prevalence}
    PREVALENCE_FILE.write_text(json.dumps(blob, indent=2) + "\n")
    print(json.dumps(blob, indent=2))


if __name__ == "__main__":
    main()
