"""Shared test helpers: the real files shipped by pydicom / pydicom-data, and a DICOM writer;
how many pytest-xdist workers share the machine."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

GIB_PER_WORKER = 8
"""Memory allowed per test worker: a worker may run a Ray review (driver and two actors)
beside a workstation server and chromium. On a 2-core machine the whole suite on two
workers peaked at 6.3 GB in use (``free -m`` every 3 s)."""


def pytest_xdist_auto_num_workers() -> int:
    """``-n auto``: one worker per usable core, but no more than memory allows."""
    cores = len(os.sched_getaffinity(0))
    gib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    return max(1, min(cores, int(gib // GIB_PER_WORKER)))


@pytest.fixture
def testdata() -> Callable[[str], str]:
    """Path of a real file shipped by pydicom or pydicom-data."""

    def find(name: str) -> str:
        path = get_testdata_file(name)
        assert path is not None, f"{name} not installed (pip install pydicom-data)"
        return str(path)

    return find


@pytest.fixture
def write_dicom() -> Callable[..., Path]:
    """Write a DICOM file: ``(path, sop_class_uid, modality, pixels=None, photometric, **tags)``."""

    def write(
        path: Path,
        sop_class: str,
        modality: str,
        pixels: np.ndarray | None = None,
        photometric: str = "MONOCHROME2",
        **tags: Any,
    ) -> Path:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.Modality = modality
        ds.PatientName = "Testperson^Alice"
        ds.PatientID = "ID-998877"
        if pixels is not None:
            bits = 8 if pixels.dtype == np.uint8 else 16
            ds.set_pixel_data(pixels, photometric, bits)
        for key, value in tags.items():
            setattr(ds, key, value)
        ds.save_as(path, enforce_file_format=True)
        return path

    return write


@pytest.fixture
def db(tmp_path):
    """A session on a fresh SQLite study database (migrated); test files may override."""
    from fuselens.app.storage.db import open_database

    engine, sessions = open_database(f"sqlite:///{tmp_path / 'study.db'}")
    with sessions() as session:
        yield session
    engine.dispose()


@pytest.fixture(autouse=True, scope="session")
def private_data_dir(tmp_path_factory):
    """Every test, and every server a test starts, writes to a fresh data folder (database,
    bundle store, study media), never the user's: a store left by an earlier run must not
    change what a test sees."""
    folder = tmp_path_factory.mktemp("fuselens-data")
    patch = pytest.MonkeyPatch()
    patch.setenv("FUSELENS_DATA_DIR", str(folder))
    patch.delenv("FUSELENS_BUNDLE_DIR", raising=False)
    patch.delenv("FUSELENS_DB_URL", raising=False)
    yield folder
    patch.undo()
