"""The workstation asks for a login, serves no upload back, and leaves nothing on disk
(issue 17, finding 2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from browser_support import ROOT, free_port

from fuselens.app.login import read_users, token_check, users_check, users_line
from fuselens.app.workstation import serve


def test_no_auth_is_refused_off_this_machine(capsys) -> None:
    assert serve(host="0.0.0.0", no_auth=True) == 2
    assert "--no-auth is allowed only on 127.0.0.1" in capsys.readouterr().err


def test_users_file_checks_name_and_password(tmp_path) -> None:
    users = tmp_path / "users.txt"
    users.write_text(users_line("dr_lee", "s3cret-pass") + "\n# a comment\n", encoding="utf-8")
    check = users_check(read_users(users))
    assert check("dr_lee", "s3cret-pass")
    assert not check("dr_lee", "wrong") and not check("nobody", "s3cret-pass")
    users.write_text("dr_lee:plaintext\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        read_users(users)
    with pytest.raises(ValueError, match="no spaces"):
        users_line("dr lee", "x")


def test_token_login_takes_only_the_printed_token() -> None:
    check = token_check("tok-123")
    assert check("fuselens", "tok-123")
    assert not check("fuselens", "tok-124") and not check("admin", "tok-123")


def _leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if "fuselens" in p.name or "gradio" in p.name)


@pytest.mark.slow
def test_login_required_uploads_not_served_and_folders_removed_on_sigterm(tmp_path) -> None:
    from test_browser import _model_arg  # a tiny random model, or the demo one

    users = tmp_path / "users.txt"
    users.write_text(users_line("dr_lee", "s3cret-pass") + "\n", encoding="utf-8")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = free_port()
    model = _model_arg(_Factory(tmp_path))
    env = {**os.environ, "TMPDIR": str(tmp), "GRADIO_ANALYTICS_ENABLED": "False"}
    cmd = [sys.executable, "-m", "fuselens.app.cli", "serve", "--port", str(port)]
    cmd += ["--users", str(users), "--model", model, "--cases", str(tmp_path / "cases")]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(proc.stdout), daemon=True).start()
    try:
        deadline = time.perf_counter() + 180
        while not any("warmed up" in line for line in log):
            assert proc.poll() is None and time.perf_counter() < deadline, "".join(log)
            time.sleep(0.2)
        assert any("log in with an account of" in line for line in log)
        url = f"http://127.0.0.1:{port}"
        assert _leftovers(tmp), "the server's folders are where TMPDIR says"
        with httpx.Client(base_url=url) as anonymous:
            assert anonymous.get("/config").status_code in (401, 403)
            bad = anonymous.post("/login", data={"username": "dr_lee", "password": "nope"})
            assert bad.status_code >= 400
        with httpx.Client(base_url=url) as user:
            ok = user.post("/login", data={"username": "dr_lee", "password": "s3cret-pass"})
            assert ok.status_code == 200, ok.text
            assert user.get("/config").status_code == 200
            files = {"files": ("ecg.csv", b"I,II\n0.1,0.2\n", "text/csv")}
            uploaded = user.post("/gradio_api/upload", files=files).json()[0]
            assert user.get(f"/gradio_api/file={uploaded}").status_code == 200
        with httpx.Client(base_url=url) as anonymous:  # no session, no file
            assert anonymous.get(f"/gradio_api/file={uploaded}").status_code in (401, 403)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _leftovers(tmp) == [], "".join(log)


class _Factory:
    """Enough of pytest's tmp_path_factory for :func:`test_browser._model_arg`."""

    def __init__(self, root: Path):
        self.root = root

    def mktemp(self, name: str) -> Path:
        path = self.root / name
        path.mkdir()
        return path


def test_review_actor_is_the_logged_in_user_not_what_was_typed() -> None:
    from types import SimpleNamespace

    from fuselens.app.review.ui import acting_user

    assert acting_user(SimpleNamespace(username="dr_lee"), "Dr House") == "dr_lee"
    assert acting_user(SimpleNamespace(username=None), " Dr House ") == "Dr House"
    assert acting_user(None, "") == "reviewer"
