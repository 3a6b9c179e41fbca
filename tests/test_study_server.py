"""The reader-study server over real HTTP (uvicorn in a subprocess, httpx clients in threads).

Ten readers answer concurrently (each answer posted twice at once), the server is killed with
SIGKILL mid-study and restarted, and readers try to reach what is not theirs.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select
from study_support import OWNER_PASSWORD, StudyServer, answer_for, make_study

from fuselens.app.storage.db import make_engine
from fuselens.app.storage.models import Answer, Assignment, Reader

pytestmark = pytest.mark.slow

ARMS = ["no_ai", "ai_explained"]


def _db_state(url: str, study_id: int) -> dict:
    """Per reader code: answered assignment ids and the first unanswered order index."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Reader.code, Assignment.id, Assignment.order_index, Assignment.answered)
                .join(Assignment, Assignment.reader_id == Reader.id)
                .where(Reader.study_id == study_id)
            ).all()
            answers = conn.execute(select(Answer.assignment_id)).scalars().all()
            n_answers = conn.execute(select(func.count(Answer.id))).scalar_one()
    finally:
        engine.dispose()
    state: dict = {"answers": list(answers), "n_answers": n_answers, "readers": {}}
    for code, aid, order, answered in rows:
        r = state["readers"].setdefault(code, {"answered": set(), "next_order": None})
        if answered:
            r["answered"].add(aid)
        elif r["next_order"] is None or order < r["next_order"]:
            r["next_order"] = order
    return state


@pytest.fixture
def study(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    return {"url": url, "tmp": tmp_path}


def test_ten_readers_concurrently_store_exactly_200_answers(study):
    study_id = make_study(study["url"], n_readers=10, n_cases=10, arms=ARMS)
    server = StudyServer(study_id, study["url"], study["tmp"])
    server.start()
    codes: dict[str, int] = {"201": 0, "409": 0, "other": 0}
    lock = threading.Lock()

    def read_all(i: int) -> int:
        rng = np.random.default_rng(i)
        served = 0
        with closing(server.client(f"reader{i:02d}")) as c, ThreadPoolExecutor(2) as pair:
            while True:
                view = c.get("/api/next").json()
                if view["done"]:
                    return served
                served += 1
                body = answer_for(view, rng)
                # the same answer posted twice at the same moment: one stored, one refused
                posts = [pair.submit(c.post, "/api/answers", json=body) for _ in range(2)]
                results = [f.result() for f in posts]
                with lock:
                    for r in results:
                        key = str(r.status_code) if r.status_code in (201, 409) else "other"
                        codes[key] += 1

    try:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(10) as pool:
            served = list(pool.map(read_all, range(10)))
        elapsed = time.perf_counter() - t0
        state = _db_state(study["url"], study_id)
        with closing(server.client("owner", OWNER_PASSWORD)) as owner:
            page = owner.get("/owner").text
            results = owner.get("/api/results").json()
    finally:
        server.stop()
    assert served == [20] * 10
    assert codes == {"201": 200, "409": 200, "other": 0}
    assert state["n_answers"] == 200
    assert len(set(state["answers"])) == 200
    assert all(
        len(r["answered"]) == 20 and r["next_order"] is None for r in state["readers"].values()
    )
    # the complete, fully crossed study: the owner sees every table and the ORH comparison
    assert results["answered"] == 200 and len(results["performance"]) == 20
    assert len(results["cohen_kappa"]) == 2 * 45
    auc = [r for r in results["orh"]["auc"] if r["analysis"] == "random readers, random cases"]
    assert len(auc) == 1 and 0 <= auc[0]["p_value"] <= 1
    for table in ("performance", "cohen_kappa", "fleiss_kappa", "time_per_case", "orh-auc"):
        assert f'id="{table}"' in page, table
    print(f"200 answers (+200 duplicate posts refused) in {elapsed:.2f} s")


def test_sigkill_mid_study_loses_nothing_and_readers_resume(study):
    study_id = make_study(study["url"], n_readers=6, n_cases=10, arms=ARMS)
    server = StudyServer(study_id, study["url"], study["tmp"])
    server.start()
    acknowledged: dict[str, set[int]] = {}
    stop = threading.Event()

    def read(i: int) -> None:
        rng = np.random.default_rng(100 + i)
        mine = acknowledged.setdefault(f"R{i + 1:02d}", set())
        try:
            with closing(server.client(f"reader{i:02d}")) as c:
                while not stop.is_set():
                    view = c.get("/api/next").json()
                    if view["done"]:
                        return
                    r = c.post("/api/answers", json=answer_for(view, rng))
                    if r.status_code == 201:
                        mine.add(view["assignment_id"])
        except httpx.TransportError:
            return  # the server died under us

    try:
        threads = [threading.Thread(target=read, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        deadline = time.perf_counter() + 30
        while sum(map(len, acknowledged.values())) < 25 and time.perf_counter() < deadline:
            time.sleep(0.01)
        server.kill()  # mid-study: readers are still submitting
        stop.set()
        for t in threads:
            t.join(timeout=30)
        n_ack = sum(map(len, acknowledged.values()))
        assert 25 <= n_ack < 120, n_ack
        restart_s = server.start()
        state = _db_state(study["url"], study_id)
        for code, acked in acknowledged.items():
            stored = state["readers"][code]["answered"]
            assert acked <= stored, f"{code}: acknowledged answers lost"
            # at most the one in flight at the kill can be stored without an acknowledgement
            assert len(stored - acked) <= 1
        assert state["n_answers"] == len(set(state["answers"]))
        for i in range(6):
            code = f"R{i + 1:02d}"
            with closing(server.client(f"reader{i:02d}")) as c:
                view = c.get("/api/next").json()
            if view["done"]:  # a fast reader may have finished before the kill
                assert len(state["readers"][code]["answered"]) == 10 * len(ARMS)
                continue
            assert view["position"] - 1 == state["readers"][code]["next_order"]
            assert view["position"] - 1 == len(state["readers"][code]["answered"])
    finally:
        server.stop()
    print(f"killed after {n_ack} acknowledged answers; restart in {restart_s:.2f} s")


def test_readers_reach_only_their_own_queue(study):
    study_id = make_study(
        study["url"], n_readers=2, n_cases=4, arms=["no_ai", "ai", "ai_explained"]
    )
    server = StudyServer(study_id, study["url"], study["tmp"])
    server.start()
    try:
        anon = server.client()
        for path in ("/api/next", "/api/progress", "/api/results", "/api/export.csv"):
            assert anon.get(path).status_code == 401, path
        assert anon.post("/api/answers", json={}).status_code in (401, 422)
        assert anon.get("/owner", headers={"accept": "text/html"}).status_code == 303
        bad = anon.post("/api/login", json={"username": "reader00", "password": "wrong-pass"})
        assert bad.status_code == 401

        a, b = server.client("reader00"), server.client("reader01")
        owner = server.client("owner", OWNER_PASSWORD)
        for path in (
            "/owner",
            "/api/progress",
            "/api/results",
            "/api/export.csv",
            "/api/export.imrmc",
        ):
            assert a.get(path).status_code == 403, path
            assert owner.get(path).status_code == 200, path
        assert owner.get("/api/next").status_code == 403
        assert (
            owner.post(
                "/api/answers", json={"assignment_id": 1, "diagnosis": 1, "confidence": 50}
            ).status_code
            == 403
        )

        rng = np.random.default_rng(0)
        view_b = b.get("/api/next").json()
        # A cannot answer B's served case, nor a case of their own not served yet
        stolen = {**answer_for(view_b, rng)}
        assert a.post("/api/answers", json=stolen).status_code == 404
        view_a = a.get("/api/next").json()
        ahead = {**answer_for(view_a, rng), "assignment_id": view_a["assignment_id"] + 1}
        assert a.post("/api/answers", json=ahead).status_code == 403
        assert b.post("/api/answers", json=answer_for(view_b, rng)).status_code == 201
        # nothing a reader can reach carries another reader's answer
        again = a.get("/api/next").json()
        assert again["assignment_id"] == view_a["assignment_id"]
        assert "answer" not in again and "diagnosis" not in str(again.get("case"))

        # a tampered session cookie is no login at all
        forged = httpx.Client(base_url=server.base)
        cookie = a.cookies.get("fuselens_study")
        forged.cookies.set(
            "fuselens_study", cookie[:-4] + ("AAAA" if cookie[-4:] != "AAAA" else "BBBB")
        )
        assert forged.get("/api/next").status_code == 401
        assert a.post("/logout").status_code == 303
        assert a.get("/api/next").status_code == 401
    finally:
        server.stop()


def test_the_arm_decides_what_the_reader_is_sent(study):
    arms = ["no_ai", "ai", "ai_explained"]
    caveat = "Untrained <example> model: its answers mean nothing."
    study_id = make_study(study["url"], n_readers=1, n_cases=2, arms=arms, caveat=caveat)
    server = StudyServer(study_id, study["url"], study["tmp"])
    server.start()
    seen = {}
    try:
        with closing(server.client("reader00")) as c:
            rng = np.random.default_rng(1)
            while not (view := c.get("/api/next").json())["done"]:
                seen.setdefault(view["arm"]["name"], view)
                html = c.get("/read").text
                seen.setdefault(view["arm"]["name"] + ":html", html)
                assert c.post("/api/answers", json=answer_for(view, rng)).status_code == 201
    finally:
        server.stop()
    assert "prediction" not in seen["no_ai"] and "explanation" not in seen["no_ai"]
    assert seen["no_ai"]["questions"]["usefulness"] == {}
    assert "ai-prediction" not in seen["no_ai:html"] and "probability" not in seen["no_ai:html"]
    assert "prediction" in seen["ai"] and "explanation" not in seen["ai"]
    assert seen["ai"]["prediction"]["caveat"] == caveat  # the study's model's own caveat
    assert list(seen["ai"]["questions"]["usefulness"]) == ["prediction"]
    assert "ai-prediction" in seen["ai:html"] and "ai-explanation" not in seen["ai:html"]
    assert set(seen["ai_explained"]["explanation"]["modality_shapley"]) == {"labs", "ecg"}
    assert "ai-explanation" in seen["ai_explained:html"]
    assert "Untrained &lt;example&gt; model" in seen["ai_explained:html"]
    assert "synthetic data" not in seen["ai:html"] + seen["ai_explained:html"]
