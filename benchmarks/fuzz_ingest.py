"""Fuzz the ingest entry points with mutated valid files; any exception other than the
ingest error types is a crash.

    python benchmarks/fuzz_ingest.py [--examples 3000] [--seconds 600] [--seed 0] [--out FILE]

Seeds: a synthetic case (``fuselens synth``: labs CSV, DICOM ECG, echo and CXR), pydicom's
``waveform_ecg.dcm`` and ``examples_ybr_color.dcm``, pydicom-data's ``RG1_UNCR.dcm``, and
small ECG CSV, WFDB, NPY, PNG and zip files written here. Hypothesis draws a seed and a few
byte mutations (flips, overwrites with boundary values, insertions, truncation), biased to the
first 4 KB where headers live; each input goes through ``detect`` and the reader it picks,
zips through ``extract_zip`` and then every unpacked file. A crash is an exception other than
``IngestError`` escaping ``detect``, ``extract_zip`` or a reader; library exceptions that
only the readers' catch-all guard stops (the user sees the library's own words) are counted
apart. Prints a summary and writes it as JSON (default
``benchmarks/results/fuzz_ingest.json``).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
import time
import traceback
import warnings
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import wfdb
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.data import get_testdata_file

from fuselens.app.ingest.archive import case_root, extract_zip
from fuselens.app.ingest.case_folder import case_inputs
from fuselens.app.ingest.detect import detect
from fuselens.app.ingest.errors import IngestError
from fuselens.model_zoo.case import STANDARD_LEADS, CaseValidationError
from fuselens.model_zoo.synth.cohort import write_case

HANDLED = (IngestError, CaseValidationError)
BOUNDARY = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80", b"-1"]
DEFAULT_OUT = Path(__file__).parent / "results" / "fuzz_ingest.json"


def _ecg_csv() -> bytes:
    signal = 0.5 * np.sin(np.linspace(0, 20, 500))
    rows = [",".join([f"{v:.3f}"] * 12) for v in signal]
    return ("# sampling_rate=250\n" + ",".join(STANDARD_LEADS) + "\n" + "\n".join(rows)).encode()


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(f"case/{name}", data)
    return buffer.getvalue()


def build_seeds(folder: Path) -> dict[str, dict[str, bytes]]:
    """Seed name -> the files (name -> bytes) of one input; the first file is mutated."""
    truth = write_case(folder / "synth", seed=0, index=0)
    synth = folder / "synth" / truth["case_id"]
    seeds = {
        p.name: {p.name: p.read_bytes()}
        for p in sorted(synth.iterdir())
        if p.suffix in {".csv", ".dcm"}
    }
    for name in ("waveform_ecg.dcm", "examples_ybr_color.dcm", "RG1_UNCR.dcm"):
        path = get_testdata_file(name)
        if path is not None:
            seeds[name] = {name: Path(path).read_bytes()}
    seeds["ecg.csv"] = {"ecg.csv": _ecg_csv()}
    wfdb.wrsamp(
        "rec", fs=250, units=["mV"] * 2, sig_name=["I", "II"], fmt=["16", "16"],
        p_signal=np.zeros((500, 2)), write_dir=str(folder),
    )  # fmt: skip
    dat, hea = (folder / "rec.dat").read_bytes(), (folder / "rec.hea").read_bytes()
    seeds["rec.hea"] = {"rec.hea": hea, "rec.dat": dat}
    seeds["rec.dat"] = {"rec.dat": dat, "rec.hea": hea}
    npy = io.BytesIO()
    np.save(npy, np.zeros((12, 500), np.float32))
    seeds["ecg.npy"] = {"ecg.npy": npy.getvalue(), "ecg.json": b'{"sampling_rate": 500}'}
    png = io.BytesIO()
    Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (256, 1))).save(png, format="PNG")
    seeds["cxr.png"] = {"cxr.png": png.getvalue()}
    members = {**seeds["labs.csv"], **seeds["ecg.csv"], **seeds["cxr.png"]}
    seeds["case.zip"] = {"case.zip": _zip(members)}
    return seeds


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with one to four byte-level mutations, mostly in its first 4 KB."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not out:
            break
        top = len(out) - 1 if draw(st.booleans()) else min(len(out) - 1, 4095)
        at = draw(st.integers(0, top))
        kind = draw(st.sampled_from(["flip", "boundary", "insert", "truncate", "random"]))
        if kind == "flip":
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "boundary":
            value = draw(st.sampled_from(BOUNDARY))
            out[at : at + len(value)] = value
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "truncate":
            del out[at:]
        else:
            value = draw(st.binary(min_size=1, max_size=8))
            out[at : at + len(value)] = value
    return bytes(out)


def _where(exc: BaseException) -> str:
    """The innermost frame of a traceback, as ``file:line``."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno}"


def read_one(path: Path) -> Exception | None:
    """Detect and read one file as ingest does; the library exception the reader's guard
    would have turned into an :class:`IngestError`, if any. Anything else raised is a crash."""
    try:
        _, reader = detect(path)
    except HANDLED:
        return None
    try:
        getattr(reader, "__wrapped__", reader)(path)
    except HANDLED:
        return None
    except Exception as exc:  # caught by the guard in the app: counted, not a crash
        return exc
    return None


def read_input(folder: Path, first: str) -> list[Exception]:
    """Run one input through its entry point (zips unpacked, then each file read); the
    library exceptions the readers' guard caught."""
    path = folder / first
    if path.suffix != ".zip":
        return [exc for exc in [read_one(path)] if exc is not None]
    out = folder / "unpacked"
    out.mkdir()
    try:
        extract_zip(path, out)
    except HANDLED:
        return []
    found = (read_one(entry) for entry in case_inputs(case_root(out)))
    return [exc for exc in found if exc is not None]


def _record(kinds: dict[str, dict[str, Any]], exc: BaseException, name: str) -> int:
    """Count ``exc`` under its type and place; how often that kind has been seen."""
    entry = kinds.setdefault(
        f"{type(exc).__name__} at {_where(exc)}",
        {"count": 0, "seed": name, "example": str(exc)[:200]},
    )
    entry["count"] += 1
    return entry["count"]


class Run:
    """Counts inputs, time, crashes and guard-caught library errors over one fuzzing run."""

    def __init__(self, seeds: dict[str, dict[str, bytes]], work: Path, seconds: float):
        self.seeds, self.work, self.deadline = seeds, work, time.monotonic() + seconds
        self.tried: Counter[str] = Counter()
        self.crashes: dict[str, dict[str, Any]] = {}
        self.guarded: dict[str, dict[str, Any]] = {}
        self.slowest: list[tuple[float, str]] = []

    def attempt(self, name: str, data: bytes) -> None:
        if time.monotonic() > self.deadline:
            return
        folder = Path(tempfile.mkdtemp(dir=self.work))
        files = dict(self.seeds[name])
        files[name] = data
        for file, content in files.items():
            (folder / file).write_bytes(content)
        self.tried[name] += 1
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for exc in read_input(folder, name):
                    _record(self.guarded, exc, name)
        except Exception as exc:  # a crash: record it and keep the input, keep fuzzing
            if _record(self.crashes, exc, name) == 1:
                (self.work / f"crash-{len(self.crashes)}-{name}").write_bytes(data)
        finally:
            self.slowest = sorted([*self.slowest, (time.perf_counter() - start, name)])[-5:]
            shutil.rmtree(folder, ignore_errors=True)


def fuzz(run: Run, examples: int, rng_seed: int) -> None:
    names = sorted(run.seeds)

    @seed(rng_seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def one(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(names))
        run.attempt(name, data.draw(mutated(run.seeds[name][name])))

    one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fuzz-ingest-"))
    run = Run(build_seeds(work), work, args.seconds)
    start = time.perf_counter()
    fuzz(run, args.examples, args.seed)
    summary = {
        "inputs_tried": sum(run.tried.values()),
        "seconds": round(time.perf_counter() - start, 1),
        "per_seed": dict(sorted(run.tried.items())),
        "crashes": len(run.crashes),
        "crash_kinds": run.crashes,
        "guard_caught": sum(e["count"] for e in run.guarded.values()),
        "guard_caught_kinds": run.guarded,
        "slowest_inputs_s": [[round(t, 3), name] for t, name in reversed(run.slowest)],
        "crash_inputs_in": str(work),
        "hypothesis_seed": args.seed,
    }
    print(json.dumps(summary, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
