"""Issue 17, the reader-study server on a hospital network: each attack of the review, run
against the app in-process (FastAPI's TestClient), refused.

Sessions end on logout and when idle or old; forms and JSON posts need the login's CSRF
token and the server's own origin; pages forbid framing and caching; logins are throttled;
HTML escapes the study's own texts; ids out of range are a 4xx; media go only to the reader a
case was served to; the database and the data folder are private to their owner.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from study_support import OWNER_PASSWORD, PASSWORD, make_study

from fuselens.app.storage.db import data_dir, open_database
from fuselens.app.storage.models import Answer, AuditLog
from fuselens.app.study import service
from fuselens.app.study.server import create_app

ARMS = ["no_ai", "ai"]
COOKIE = "fuselens_study"
OWN_ORIGIN = "http://testserver"  # TestClient's base URL
ECG_FIGURE = '{"data": [], "layout": {}}'


def _build(tmp_path, arms: list, n_readers: int = 2, **app_options) -> SimpleNamespace:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study_id = make_study(url, n_readers=n_readers, n_cases=3, arms=arms)
    media = tmp_path / "media"
    for key in ("C000", "C001", "C002"):
        (media / key).mkdir(parents=True)
        (media / key / "cxr.png").write_bytes(b"\x89PNG not really")
        (media / key / "ecg.json").write_text(ECG_FIGURE)
    engine, sessions = open_database(url)
    app = create_app(study_id, sessions, media, key="test-key-" * 4, **app_options)
    return SimpleNamespace(app=app, engine=engine, sessions=sessions)


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELENS_DATA_DIR", str(tmp_path / "data"))
    built = _build(tmp_path, ARMS)
    yield built
    built.engine.dispose()


def _client(study) -> TestClient:
    return TestClient(study.app, raise_server_exceptions=False)


def _login(client: TestClient, username: str = "reader00", password: str = PASSWORD) -> str:
    """Log in over JSON; returns the login's CSRF token ("" when the server gives none)."""
    r = client.post("/api/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    token = r.json().get("csrf_token", "")
    client.headers["X-CSRF-Token"] = token
    return token


def _form_login(client: TestClient, username: str, password: str):
    page = client.get("/login").text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    data = {"username": username, "password": password}
    if found:
        data["csrf_token"] = found.group(1)
    return client.post("/login", data=data, headers={"Origin": OWN_ORIGIN}, follow_redirects=False)


def _answer_form(view: dict, token: str) -> dict:
    form = {"assignment_id": str(view["assignment_id"]), "diagnosis": "1", "confidence": "60"}
    form.update({f"usefulness_{p}": "4" for p in view["questions"]["usefulness"]})
    return {**form, "csrf_token": token}


def _answers(study) -> int:
    with study.sessions() as s:
        return s.scalar(select(func.count(Answer.id)))


def _age_logins(study, **column_ago: timedelta) -> None:
    from fuselens.app.storage.models import LoginSession  # the server-side login of issue 17

    with study.sessions() as s:
        for login in s.scalars(select(LoginSession)):
            for column, ago in column_ago.items():
                setattr(login, column, datetime.now(UTC) - ago)
        s.commit()


# ---- 1. sessions ---------------------------------------------------------------------------


def test_logout_ends_the_session_for_a_copied_cookie(study):
    reader = _client(study)
    _login(reader)
    copied = reader.cookies.get(COOKIE)
    assert reader.post("/logout", follow_redirects=False).status_code == 303
    thief = _client(study)
    thief.cookies.set(COOKIE, copied)
    assert thief.get("/api/next").status_code == 401


def test_idle_session_expires_after_the_idle_timeout(study):
    reader = _client(study)
    _login(reader)
    assert reader.get("/api/next").status_code == 200
    _age_logins(study, last_seen_at=service.IDLE_TIMEOUT + timedelta(minutes=1))
    assert reader.get("/api/next").status_code == 401


def test_active_session_expires_after_its_absolute_lifetime(study):
    reader = _client(study)
    _login(reader)
    _age_logins(study, created_at=service.SESSION_LIFETIME + timedelta(minutes=1))
    assert reader.get("/api/next").status_code == 401


# ---- 2. CSRF -------------------------------------------------------------------------------


def test_csrf_answer_posted_by_another_sites_page_is_refused(study):
    reader = _client(study)
    token = _login(reader)
    view = reader.get("/api/next").json()
    form = _answer_form(view, token)
    # a page of another (same-site) origin posts the reader's form, token and all
    evil = {"Origin": "http://intranet.hospital.example"}
    assert reader.post("/read", data=form, headers=evil, follow_redirects=False).status_code == 403
    # the Referer names the foreign page when a browser sends no Origin
    referer = {"Referer": "http://intranet.hospital.example/page"}
    r = reader.post("/read", data=form, headers=referer, follow_redirects=False)
    assert r.status_code == 403
    # a form without the login's token (what another page can build)
    tokenless = {k: v for k, v in form.items() if k != "csrf_token"}
    r = reader.post("/read", data=tokenless, headers={"Origin": OWN_ORIGIN}, follow_redirects=False)
    assert r.status_code == 403
    # JSON without the X-CSRF-Token header
    body = {"assignment_id": view["assignment_id"], "diagnosis": 1, "confidence": 60}
    body["usefulness"] = {p: 4 for p in view["questions"]["usefulness"]}
    del reader.headers["X-CSRF-Token"]
    assert reader.post("/api/answers", json=body).status_code == 403
    assert _answers(study) == 0
    # the reader's own form, from the server's own page, is stored
    r = reader.post("/read", data=form, headers={"Origin": OWN_ORIGIN}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/read"
    assert _answers(study) == 1


def test_csrf_login_into_the_attackers_account_is_refused(study):
    victim = _client(study)
    # a foreign page posts the login form without the form's own token
    r = victim.post(
        "/login", data={"username": "reader01", "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 403
    assert victim.get("/api/next").status_code == 401
    # nor as a typeless or text body (what a no-cors fetch can send)
    r = victim.post(
        "/api/login",
        content=f'{{"username": "reader01", "password": "{PASSWORD}"}}',
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 415
    assert victim.get("/api/next").status_code == 401
    # from another origin, even with a token
    page = victim.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = victim.post(
        "/login",
        data={"username": "reader01", "password": PASSWORD, "csrf_token": token},
        headers={"Origin": "http://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert victim.get("/api/next").status_code == 401
    # the real login form still logs in
    r = _form_login(victim, "reader00", PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/read"
    assert victim.get("/read").status_code == 200


# ---- 3. clickjacking and security headers --------------------------------------------------


def test_clickjacking_and_caching_are_forbidden_by_headers(study):
    reader = _client(study)
    login_page = reader.get("/login")
    _login(reader)
    reader.get("/api/next")
    read_page = reader.get("/read")
    for response in (login_page, read_page, reader.get("/api/next")):
        h = response.headers
        csp = h["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert "script-src 'self'" in csp and "unsafe-eval" not in csp
        assert h["x-frame-options"] == "DENY"
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] in ("no-referrer", "same-origin")
        assert "no-store" in h["cache-control"]
    # every script of the case page is a file of the server (the CSP allows no inline script)
    scripts = re.findall(r"<script[^>]*>", read_page.text)
    assert scripts and all('src="/static/' in s for s in scripts)
    assert reader.get("/static/reader.js").status_code == 200


def test_session_cookie_is_httponly_strict_and_secure_over_https(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELENS_DATA_DIR", str(tmp_path / "data"))
    built = _build(tmp_path, ARMS, secure_cookie=True)
    try:
        client = TestClient(built.app, base_url="https://testserver")
        cookie = (
            client.post("/api/login", json={"username": "reader00", "password": PASSWORD})
            .headers["set-cookie"]
            .lower()
        )
    finally:
        built.engine.dispose()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie


# ---- 4. login throttling -------------------------------------------------------------------


def test_brute_force_login_is_answered_429_with_retry_after(study):
    client = _client(study)
    codes = [
        client.post("/api/login", json={"username": "reader00", "password": f"guess-{i}"})
        for i in range(6)
    ]
    assert [r.status_code for r in codes] == [401] * 5 + [429]
    assert int(codes[-1].headers["retry-after"]) > 0
    # locked: even the right password waits, over JSON and through the form
    right = client.post("/api/login", json={"username": "reader00", "password": PASSWORD})
    assert right.status_code == 429
    assert _form_login(client, "reader00", PASSWORD).status_code == 429
    # another reader is not locked out by it
    assert (
        client.post("/api/login", json={"username": "reader01", "password": PASSWORD}).status_code
        == 200
    )


def test_brute_force_across_usernames_from_one_client_is_answered_429(study):
    client = _client(study)
    codes = [
        client.post("/api/login", json={"username": f"user{i}", "password": "guess"}).status_code
        for i in range(25)
    ]
    assert 429 in codes and codes.index(429) <= 20
    assert (
        client.post("/api/login", json={"username": "reader01", "password": PASSWORD}).status_code
        == 429
    )


def _count_scrypt(monkeypatch) -> dict:
    """Every scrypt run from now on: the threads it ran on and the most at once."""
    seen: dict = {"threads": set(), "calls": 0, "running": 0, "peak": 0}
    lock = threading.Lock()
    scrypt = hashlib.scrypt

    def counted(*args, **kwargs) -> bytes:
        with lock:
            seen["threads"].add(threading.get_ident())
            seen["calls"] += 1
            seen["running"] += 1
            seen["peak"] = max(seen["peak"], seen["running"])
        try:
            time.sleep(0.02)
            return scrypt(*args, **kwargs)
        finally:
            with lock:
                seen["running"] -= 1

    monkeypatch.setattr(hashlib, "scrypt", counted)
    return seen


def _parallel_logins(study, logins: list[tuple[str, str]]) -> list[int]:
    def login(username_password: tuple[str, str]) -> int:
        username, password = username_password
        r = _client(study).post("/api/login", json={"username": username, "password": password})
        return r.status_code

    with ThreadPoolExecutor(len(logins)) as pool:
        return list(pool.map(login, logins))


def test_parallel_logins_run_scrypt_on_a_bounded_set_of_threads(tmp_path, monkeypatch):
    # scrypt holds 16 MiB, and each thread that ever ran it keeps its grown memory arena:
    # 16 parallel logins took the server from 298 to 668 MiB
    monkeypatch.setenv("FUSELENS_DATA_DIR", str(tmp_path / "data"))
    built = _build(tmp_path, ARMS, n_readers=16)
    try:
        seen = _count_scrypt(monkeypatch)
        codes = _parallel_logins(built, [(f"reader{i:02d}", PASSWORD) for i in range(16)])
    finally:
        built.engine.dispose()
    assert codes == [200] * 16
    assert len(seen["threads"]) <= 2 and seen["peak"] <= 2, seen


def test_parallel_password_guesses_cannot_overtake_the_limit(study, monkeypatch):
    seen = _count_scrypt(monkeypatch)
    codes = _parallel_logins(study, [("reader00", f"guess-{i}") for i in range(16)])
    assert sorted(set(codes)) == [401, 429]
    assert seen["calls"] == codes.count(401) <= 5, seen


def test_failed_login_does_not_store_the_typed_username(study):
    typed = "Winter-2026-password"  # a password typed into the username box
    client = _client(study)
    assert (
        client.post("/api/login", json={"username": typed, "password": "whatever"}).status_code
        == 401
    )
    assert (
        client.post(
            "/api/login", json={"username": "reader00", "password": "wrong-one"}
        ).status_code
        == 401
    )
    with study.sessions() as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.action == "login_failed")).all()
    assert len(rows) == 2
    assert all(typed not in f"{r.actor} {r.detail}" for r in rows)
    assert "reader00" in [r.actor for r in rows]  # a login's own username is no secret


# ---- 5. stored XSS -------------------------------------------------------------------------


def test_stored_xss_in_an_arm_name_is_escaped_on_the_owner_page(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELENS_DATA_DIR", str(tmp_path / "data"))
    evil = "<img src=x onerror=alert(document.cookie)>"
    arm = {"name": evil, "show_prediction": False, "show_explanations": False}
    built = _build(tmp_path, [arm, "ai"])
    try:
        owner = TestClient(built.app)
        _login(owner, "owner", OWNER_PASSWORD)
        page = owner.get("/owner").text
    finally:
        built.engine.dispose()
    assert evil not in page and "<img" not in page
    assert html.escape(evil) in page


# ---- 6. ids out of range -------------------------------------------------------------------


def test_huge_assignment_id_is_a_4xx_not_a_500(study):
    reader = _client(study)
    token = _login(reader)
    view = reader.get("/api/next").json()
    for huge in (2**63, 2**64 + 1, -(2**63) - 1):
        body = {"assignment_id": huge, "diagnosis": 1, "confidence": 50, "usefulness": {}}
        r = reader.post("/api/answers", json=body)
        assert 400 <= r.status_code < 500, (huge, r.status_code)
        form = {**_answer_form(view, token), "assignment_id": str(huge)}
        r = reader.post("/read", data=form, headers={"Origin": OWN_ORIGIN}, follow_redirects=False)
        assert r.status_code == 303 and "error=" in r.headers["location"], (huge, r.status_code)
    assert _answers(study) == 0


# ---- 7. media of cases not served ----------------------------------------------------------


def test_media_of_a_case_not_yet_served_is_refused(study):
    reader, other = _client(study), _client(study)
    _login(reader)
    _login(other, "reader01")
    served = reader.get("/api/next").json()["case"]["key"]
    assert reader.get(f"/media/{served}/cxr.png").status_code == 200
    for key in {"C000", "C001", "C002"} - {served}:
        assert reader.get(f"/media/{key}/cxr.png").status_code == 404, key
        assert reader.get(f"/media/{key}/ecg.json").status_code == 404, key
    # served to one reader is not served to another, nor to the owner
    if other.get("/api/next").json()["case"]["key"] != served:
        assert other.get(f"/media/{served}/cxr.png").status_code == 404
    owner = _client(study)
    _login(owner, "owner", OWNER_PASSWORD)
    assert owner.get(f"/media/{served}/cxr.png").status_code in (403, 404)


# ---- 8. file modes -------------------------------------------------------------------------


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_world_readable_database_and_data_folder_are_not_created(tmp_path, monkeypatch):
    old_umask = os.umask(0o022)  # the usual umask: files 0644 unless created otherwise
    try:
        monkeypatch.setenv("FUSELENS_DATA_DIR", str(tmp_path / "data" / "fuselens"))
        folder = data_dir()
        db = tmp_path / "new" / "study.db"
        engine, sessions = open_database(f"sqlite:///{db}")
        with sessions() as s:
            s.add(AuditLog(actor="test", action="test", study_id=None, detail={}))
            s.commit()
            wal = db.with_name(db.name + "-wal")
            assert wal.exists()
            wal_mode = _mode(wal)
        engine.dispose()
    finally:
        os.umask(old_umask)
    assert _mode(folder) == 0o700 and _mode(folder.parent) == 0o700
    assert _mode(db) == 0o600 and wal_mode == 0o600
    assert _mode(db.parent) == 0o700
