"""Latency of ``fuselens predict`` on one case: warm model vs the full pipeline (prints JSON).

    python benchmarks/bench_predict.py CASE_DIR [--model demo] [--repeats 20]

- ``predict_p50_s``: preprocessing + model on an already-read case, model loaded (the target);
- ``model_only_p50_s``: the model on already-preprocessed tensors;
- baseline ``pipeline_p50_s``: reading the case folder (DICOM/CSV) + predict, model loaded;
- baseline ``cold_s``: loading the model + reading the case + predict, once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from fuselens.app.ingest import load_case
from fuselens.model_zoo.inputs import case_to_inputs
from fuselens.model_zoo.predict import predict_case
from fuselens.model_zoo.registry import load_model


def _p50(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("case_dir")
    parser.add_argument("--model", default="demo")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    t0 = time.perf_counter()
    model, _ = load_model(args.model)
    case, _ = load_case(args.case_dir)
    predict_case(model, case)
    cold = time.perf_counter() - t0

    inputs = case_to_inputs(case, model.config, model.tokenizer).to(model.device)
    with torch.no_grad():
        model_only = _p50(lambda: model(inputs), args.repeats)
    predict = _p50(lambda: predict_case(model, case), args.repeats)
    pipeline = _p50(lambda: predict_case(model, load_case(args.case_dir)[0]), args.repeats)
    print(
        json.dumps(
            {
                "case": args.case_dir,
                "modalities": case.modalities(),
                "device": str(model.device),
                "torch_threads": torch.get_num_threads(),
                "repeats": args.repeats,
                "predict_p50_s": round(predict, 4),
                "model_only_p50_s": round(model_only, 4),
                "baseline_pipeline_p50_s": round(pipeline, 4),
                "baseline_cold_s": round(cold, 4),
                "target_s": 0.5,
                "meets_target": predict < 0.5,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
