"""Helpers for the reader-study tests: a study without media, and a real server subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from fuselens.app.storage.db import open_database
from fuselens.app.study.config import parse_config, resolve_passwords
from fuselens.app.study.service import CaseSpec, create_study

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "pass-word-1"
OWNER_PASSWORD = "owner-pass-1"


def study_config(n_readers: int, arms: list, seed: int = 11) -> dict:
    return {
        "name": "Test study",
        "seed": seed,
        "arms": arms,
        "readers": [{"username": f"reader{i:02d}", "password": PASSWORD} for i in range(n_readers)],
        "owner": {"username": "owner", "password": OWNER_PASSWORD},
    }


def fake_cases(n: int, seed: int = 0) -> list[CaseSpec]:
    """Case keys with truths and a stored model answer, no images (the model is right ~70%)."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        truth = i % 2
        p = float(np.clip(rng.normal(0.7 if truth else 0.3, 0.25), 0.01, 0.99))
        shapley = {"labs": float(rng.normal()), "ecg": float(rng.normal())}
        cases.append(
            CaseSpec(
                f"C{i:03d}",
                truth,
                ["labs", "ecg"],
                probability=p,
                prediction=int(p >= 0.5),
                explanation={
                    "modality_shapley": shapley,
                    "base_value": 0.0,
                    "full_value": sum(shapley.values()),
                    "scale": "log-odds of heart_failure = yes",
                    "baseline": "test",
                },
            )
        )
    return cases


def make_study(
    url: str, n_readers: int, n_cases: int, arms: list, seed: int = 11, caveat: str | None = None
) -> int:
    """A study of fake cases; ``caveat`` as ``fuselens study create`` keeps the model's (None:
    a study stored before it was kept)."""
    config, _ = resolve_passwords(parse_config(study_config(n_readers, arms, seed)))
    engine, sessions = open_database(url)
    try:
        with sessions() as session:
            extra = {"caveat": caveat} if caveat else None
            return create_study(session, config, fake_cases(n_cases, seed), extra).id
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StudyServer:
    """``fuselens study serve`` in a subprocess on a free port."""

    def __init__(self, study_id: int, url: str, data_dir: Path):
        self.study_id, self.url, self.data_dir = study_id, url, data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / f"serve-{self.port}.log"

    def start(self, timeout: float = 60) -> float:
        """Start and wait for the login page; returns the seconds it took."""
        env = {**os.environ, "FUSELENS_DATA_DIR": str(self.data_dir), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "fuselens.app.cli", "study", "serve", str(self.study_id)]
        cmd += ["--port", str(self.port), "--db", self.url]
        t0 = time.perf_counter()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.base}/login", timeout=2).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer in {timeout} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def client(self, username: str | None = None, password: str = PASSWORD) -> httpx.Client:
        """An HTTP client, logged in as ``username`` when given."""
        client = httpx.Client(base_url=self.base, timeout=30)
        if username is not None:
            r = client.post("/api/login", json={"username": username, "password": password})
            assert r.status_code == 200, r.text
            client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return client


def answer_for(view: dict, rng: np.random.Generator) -> dict:
    """A plausible answer to the served case (every usefulness panel shown is rated)."""
    return {
        "assignment_id": view["assignment_id"],
        "diagnosis": int(rng.integers(0, 2)),
        "confidence": int(rng.integers(0, 101)),
        "usefulness": {p: int(rng.integers(1, 6)) for p in view["questions"]["usefulness"]},
        "free_text": "",
    }
