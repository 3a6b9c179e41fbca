"""The shipped demo cases: synthetic patients listed by (seed, index), written on first use.

``assets/demo_cases.json`` lists each case's key, title and story. Synthetic cases are
rendered deterministically by :func:`fuselens.model_zoo.synth.cohort.write_case` into a cache
folder (no generated DICOM is shipped); the real ECG case is pydicom's own
``waveform_ecg.dcm`` copied into its own folder. A folder is written to a temporary
name and renamed when complete, so a half-written case is never read.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fuselens.model_zoo.synth import GENERATOR_VERSION
from fuselens.model_zoo.synth.cohort import write_case
from fuselens.model_zoo.synth.latent import case_id_for

CATALOGUE = Path(__file__).resolve().parents[1] / "assets" / "demo_cases.json"
STAMP = ".fuselens-demo.json"


@dataclass(frozen=True)
class DemoCase:
    """One entry of the catalogue: a synthetic patient or a file shipped by pydicom."""

    key: str
    title: str
    story: str
    seed: int | None = None
    index: int | None = None
    testdata: str | None = None

    @property
    def folder_name(self) -> str:
        if self.testdata is not None:
            return self.key
        return f"s{self.seed}-{case_id_for(int(self.index))}"

    def stamp(self) -> dict[str, object]:
        """What must match for a cached folder to be reused."""
        if self.testdata is not None:
            return {"testdata": self.testdata}
        return {"seed": self.seed, "index": self.index, "generator": GENERATOR_VERSION}


def load_catalogue(path: str | Path = CATALOGUE) -> list[DemoCase]:
    """The demo cases listed in ``path``, in catalogue order."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    cases = [DemoCase(**entry) for entry in data["cases"]]
    for case in cases:
        synthetic = case.seed is not None or case.index is not None
        partial = case.seed is None or case.index is None
        if synthetic == (case.testdata is not None) or (synthetic and partial):
            raise ValueError(f"demo case {case.key!r}: give seed+index or testdata, not both")
    keys = [c.key for c in cases]
    if len(set(keys)) != len(keys):
        raise ValueError("demo case keys must be unique")
    return cases


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/fuselens/demo_cases`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fuselens" / "demo_cases"


def _is_current(folder: Path, demo: DemoCase) -> bool:
    stamp = folder / STAMP
    if not stamp.is_file():
        return False
    try:
        return json.loads(stamp.read_text(encoding="utf-8")) == demo.stamp()
    except (OSError, ValueError):
        return False


def _write(demo: DemoCase, folder: Path) -> None:
    if demo.testdata is not None:
        from pydicom.data import get_testdata_file

        source = get_testdata_file(demo.testdata)
        if source is None:
            raise FileNotFoundError(f"{demo.testdata} is not installed with pydicom")
        folder.mkdir(parents=True)
        shutil.copyfile(source, folder / Path(str(source)).name)
        return
    write_case(folder.parent, int(demo.seed), int(demo.index))
    (folder.parent / case_id_for(int(demo.index))).rename(folder)


def materialise(demo: DemoCase, cache_dir: str | Path | None = None) -> Path:
    """The case folder of ``demo`` under ``cache_dir``, written on first use."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / demo.folder_name
    if _is_current(folder, demo):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".writing-") as tmp:
        staged = Path(tmp) / demo.folder_name
        _write(demo, staged)
        (staged / STAMP).write_text(json.dumps(demo.stamp()) + "\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        staged.rename(folder)
    return folder
