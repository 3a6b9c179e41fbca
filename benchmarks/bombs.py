"""Time and memory of refusing decompression bombs: each must be refused in at most 2 s with at
most 300 MB above the idle process.

    python benchmarks/bombs.py [--out FILE]

Builds each bomb in a temporary folder (streaming, where it is large), then refuses it in a
fresh subprocess that imports ingest, notes its resident memory (idle), refuses the bomb the
way an upload is read (``extract_zip`` then ``load_case`` for zips, ``read_file`` otherwise)
and reports the seconds and the peak resident memory above idle (``VmHWM``, Linux; unlike
``ru_maxrss`` it does not carry over the parent's memory from the fork). Writes JSON (default
``benchmarks/results/bombs.json``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

from fuselens.model_zoo.case import STANDARD_LEADS

MAX_SECONDS = 2.0
MAX_ABOVE_IDLE_MB = 300.0
DEFAULT_OUT = Path(__file__).parent / "results" / "bombs.json"
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
CHILD = """
import json, sys, tempfile, time
from pathlib import Path
import psutil
from fuselens.app.ingest import load_case, read_file, IngestError
from fuselens.app.ingest.archive import case_root, extract_zip

path = Path(sys.argv[1])
idle = psutil.Process().memory_info().rss
start = time.perf_counter()
if path.suffix == ".zip":
    out = Path(tempfile.mkdtemp(dir=path.parent))
    try:
        errors = [r.error for r in extract_zip(path, out)]
        errors += [r.error for r in load_case(case_root(out))[1] if not r.ok]
    except IngestError as exc:
        errors = [str(exc)]
else:
    report = read_file(path)[2]
    errors = [] if report.ok else [report.error]
seconds = time.perf_counter() - start
status = Path("/proc/self/status").read_text().split("VmHWM:")[1]
peak = int(status.split()[0]) * 1024  # the high-water mark of this process's own memory
print(json.dumps({"seconds": seconds, "idle_mb": idle / 2**20,
                  "above_idle_mb": max(peak - idle, 0) / 2**20, "errors": errors}))
"""


def _stream_member(zf: zipfile.ZipFile, name: str, head: bytes, block: bytes, size: int) -> None:
    """Write a member of ``size`` bytes (``head`` then ``block`` repeated) without holding it."""
    with zf.open(name, "w", force_zip64=True) as member:
        member.write(head)
        written = len(head)
        while written < size:
            chunk = block[: size - written]
            member.write(chunk)
            written += len(chunk)


def ecg_csv_zip(folder: Path) -> Path:
    """A zip that unpacks to a 150 MB 12-lead ECG CSV at 500 Hz."""
    head = ("# sampling_rate=500\n" + ",".join(STANDARD_LEADS) + "\n").encode()
    row = (",".join(["0.000"] * len(STANDARD_LEADS)) + "\n").encode()
    path = folder / "ecg_csv.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        _stream_member(zf, "case/ecg.csv", head, row * 14_000, 150 * 2**20)
    return path


def deflated_dicom(folder: Path) -> Path:
    """A Deflated Explicit VR Little Endian ultrasound cine of 60 frames of 2000 x 2000."""
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = US_MULTIFRAME
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = US_MULTIFRAME
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.set_pixel_data(np.zeros((60, 2000, 2000), np.uint8), "MONOCHROME2", 8)
    path = folder / "echo_A4C.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def zeros_zip(folder: Path) -> Path:
    """A zip that unpacks to one 1.9 GiB file of zeros, written streaming."""
    path = folder / "zeros.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        _stream_member(zf, "case/zeros.dat", b"", bytes(1 << 20), int(1.9 * 2**30))
    return path


def nested_zip(folder: Path) -> Path:
    """A zip whose one file lies 1,100 folders deep."""
    path = folder / "nested.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("d/" * 1100 + "labs.csv", "name,value,unit\nSodium,140,mmol/L\n")
    return path


def big_png(folder: Path) -> Path:
    """A black 6300 x 6300 grey PNG."""
    path = folder / "cxr.png"
    Image.new("L", (6300, 6300)).save(path, optimize=True)
    return path


BOMBS: dict[str, Callable[[Path], Path]] = {
    "zip_to_150MB_ecg_csv": ecg_csv_zip,
    "deflated_dicom_60x2000x2000": deflated_dicom,
    "zip_to_1.9GiB_zeros": zeros_zip,
    "zip_1100_nested_folders": nested_zip,
    "png_6300x6300": big_png,
}


def refuse(path: Path) -> dict:
    """Refuse ``path`` in a fresh interpreter; its seconds, memory above idle and errors."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bombs-") as tmp:
        for name, build in BOMBS.items():
            folder = Path(tmp) / name
            folder.mkdir()
            path = build(folder)
            outcome = refuse(path)
            results[name] = {
                "bomb_bytes": path.stat().st_size,
                "seconds": round(outcome["seconds"], 3),
                "above_idle_mb": round(outcome["above_idle_mb"], 1),
                "idle_mb": round(outcome["idle_mb"], 1),
                "refused": bool(outcome["errors"]),
                "within_budget": bool(outcome["errors"])
                and outcome["seconds"] <= MAX_SECONDS
                and outcome["above_idle_mb"] <= MAX_ABOVE_IDLE_MB,
                "errors": outcome["errors"],
            }
            row = results[name]
            print(
                f"{name:30} {row['bomb_bytes'] / 1024:9.0f} KB  {row['seconds']:6.3f} s  "
                f"{row['above_idle_mb']:6.1f} MB above idle  ok={row['within_budget']}\n"
                f"    {'; '.join(row['errors'])}"
            )
    summary = {"max_seconds": MAX_SECONDS, "max_above_idle_mb": MAX_ABOVE_IDLE_MB, **results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
