"""The reader-study web server: login, each reader's queue, the owner's progress and exports.

A FastAPI app over the study database. The signed cookie holds only a random token of a
login kept on the server (:class:`~fuselens.app.storage.models.LoginSession`), so logout, an
idle spell or the login's lifetime ends it for every copy of the cookie; every endpoint loads
the login again and checks its role and study on the server, so a reader can reach only their
own queue and the media of cases served to them, never the owner's pages or other readers'
answers. Readers get plain HTML forms (``/read``) or JSON (``/api/next``, ``/api/answers``).

Hardening for a hospital network: a state-changing request must come from this server's own
origin (``Origin``, else ``Referer``) and carry the login's CSRF token (a form field, or the
``X-CSRF-Token`` header of a JSON post; the login form has a token of its own); failed logins
are counted per username and per client address and answered 429 past a limit, and at most
:data:`PASSWORD_THREADS` scrypt verifications run at once; every response carries a strict
Content-Security-Policy, no framing, ``nosniff`` and ``no-store``; every value put into HTML
is escaped.
"""

import hashlib
import html
import json
import math
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.sessions import SessionMiddleware

from fuselens.app.storage.db import data_dir
from fuselens.app.storage.models import Reader, Study
from fuselens.app.study.auth import LoginThrottle, PasswordVerifier, VerifierBusy
from fuselens.app.study.config import PANELS
from fuselens.app.study.export import csv_text, imrmc_text
from fuselens.app.study.panels import file_panel
from fuselens.app.study.reader_page import CAVEAT, case_html
from fuselens.app.study.service import (
    CONFIDENCE_RANGE,
    MAX_FREE_TEXT,
    MAX_ID,
    MAX_MARKS,
    SESSION_LIFETIME,
    USEFULNESS_RANGE,
    AnswerIn,
    InvalidAnswer,
    StudyError,
    answer_rows,
    arm_method,
    arm_panels,
    audit,
    authenticate,
    case_view,
    current_arms,
    current_login,
    end_login,
    get_study,
    next_assignment,
    open_login,
    progress,
    queue_size,
    record_event,
    served_case,
    shown_usefulness,
    submit_answer,
)

STATIC = Path(__file__).parent / "static"
FAILED_LOGINS_PER_USERNAME = 5
FAILED_LOGINS_PER_CLIENT = 20
FAILED_LOGIN_WINDOW_S = 15 * 60
PASSWORD_THREADS = 2  # scrypt verifications at once: each holds 16 MiB (N = 2^14, r = 8)
PASSWORD_QUEUE = 14  # logins waiting for one; more at once are answered 429
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # the page's own style block; plotly's styles
        "img-src 'self' data:",
        "media-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # not "no-referrer": with it a browser sends "Origin: null" on this server's own form
    # posts, and the origin check could not tell them from a sandboxed attacker's page
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC_CACHE = "private, max-age=86400"


class LoginIn(BaseModel):
    username: str = Field(max_length=100)
    password: str = Field(max_length=200)


class AnswerBody(BaseModel):
    assignment_id: int = Field(ge=1, le=MAX_ID)
    diagnosis: int = Field(ge=0, le=1)
    confidence: int = Field(ge=CONFIDENCE_RANGE[0], le=CONFIDENCE_RANGE[1])
    usefulness: dict[str, Annotated[int, Field(ge=USEFULNESS_RANGE[0], le=USEFULNESS_RANGE[1])]] = (
        Field(default_factory=dict, max_length=len(PANELS))
    )
    free_text: str = Field(default="", max_length=MAX_FREE_TEXT)
    marks: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_MARKS)


class EventBody(BaseModel):
    assignment_id: int = Field(ge=1, le=MAX_ID)
    panel: str = Field(max_length=60)
    action: str = Field(max_length=10)


def secret_key() -> str:
    """``FUSELENS_SECRET_KEY``, else a key kept in the data folder (so restarts keep logins)."""
    if os.environ.get("FUSELENS_SECRET_KEY"):
        return os.environ["FUSELENS_SECRET_KEY"]
    path = data_dir() / "session_secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def secure_cookie_default() -> bool:
    """``FUSELENS_SECURE_COOKIE=1``: the server is reached over https, cookies get ``Secure``."""
    return os.environ.get("FUSELENS_SECURE_COOKIE", "").lower() in ("1", "true", "yes")


def _same_token(given: Any, expected: Any) -> bool:
    return (
        isinstance(given, str)
        and isinstance(expected, str)
        and bool(expected)
        and (secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8")))
    )


def cross_site(request: Request) -> bool:
    """Whether a request names an origin other than this server's (``Origin``, else
    ``Referer``); a client sending neither is no browser and passes (tokens still apply)."""
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if not referer:
            return False
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin != f"{request.url.scheme}://{request.url.netloc}"


def json_only(request: Request) -> None:
    """A JSON endpoint takes JSON only: a form or a typeless body can be posted cross-site."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "send JSON (Content-Type: application/json)")


def _too_many(seconds: float, why: str) -> HTTPException:
    return HTTPException(429, why, headers={"Retry-After": str(max(1, math.ceil(seconds)))})


def _page(title: str, body: str, status: int = 200, headers: dict | None = None) -> HTMLResponse:
    return HTMLResponse(
        status_code=status,
        headers=headers,
        content=f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:1em auto;padding:0 1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}
.caveat{{color:#8a4b00;font-weight:600}}.panel{{border:1px solid #ddd;padding:.6em;margin:.6em 0}}
.bar{{display:inline-block;height:12px}}.error{{color:#b00020;font-weight:600}}</style>
</head><body>{body}</body></html>""",
    )


def _secured(response: Response, path: str) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if path.startswith("/static/"):
        response.headers["Cache-Control"] = STATIC_CACHE
    return response


def create_app(
    study_id: int,
    sessions: sessionmaker[Session],
    media_dir: Path | None,
    key: str | None = None,
    secure_cookie: bool | None = None,
) -> FastAPI:
    """The server of one study; ``media_dir`` holds the rendered case media per case key
    (``None``: a study of case keys and truths only, no media); ``secure_cookie``: the
    cookie only over https (default: :func:`secure_cookie_default`)."""
    app = FastAPI(title="FuseLens reader study", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(
        SessionMiddleware,
        secret_key=key or secret_key(),
        session_cookie="fuselens_study",
        max_age=int(SESSION_LIFETIME.total_seconds()),
        same_site="strict",
        https_only=secure_cookie_default() if secure_cookie is None else secure_cookie,
    )

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.method not in SAFE_METHODS and cross_site(request):
            response: Response = JSONResponse(
                {"detail": "refused: the request comes from another site"}, status_code=403
            )
        else:
            response = await call_next(request)
        return _secured(response, request.url.path)

    media_root = media_dir.resolve() if media_dir is not None else None
    per_username = LoginThrottle(FAILED_LOGINS_PER_USERNAME, FAILED_LOGIN_WINDOW_S)
    per_client = LoginThrottle(FAILED_LOGINS_PER_CLIENT, FAILED_LOGIN_WINDOW_S)
    verifier = PasswordVerifier(PASSWORD_THREADS, PASSWORD_QUEUE)
    with sessions() as s:
        get_study(s, study_id)

    def db() -> Iterator[Session]:
        with sessions() as session:
            yield session

    DB = Annotated[Session, Depends(db)]

    def login_of(request: Request, session: DB) -> Reader:
        token = request.session.get("sid")
        login = current_login(session, token) if isinstance(token, str) else None
        if login is None or login.reader.study_id != study_id:
            request.session.clear()
            raise HTTPException(401, "log in first")
        request.state.csrf_token = login.csrf_token
        return login.reader

    Login = Annotated[Reader, Depends(login_of)]

    def reader_only(reader: Login) -> Reader:
        if reader.role != "reader":
            raise HTTPException(403, "readers only")
        return reader

    def owner_only(reader: Login) -> Reader:
        if reader.role != "owner":
            raise HTTPException(403, "the study owner only")
        return reader

    ReaderLogin = Annotated[Reader, Depends(reader_only)]
    OwnerLogin = Annotated[Reader, Depends(owner_only)]

    def csrf_header(request: Request, reader: ReaderLogin) -> Reader:
        if not _same_token(request.headers.get("x-csrf-token"), request.state.csrf_token):
            raise HTTPException(403, "missing or wrong X-CSRF-Token header")
        return reader

    ReaderPost = Annotated[Reader, Depends(csrf_header)]

    @app.exception_handler(StudyError)
    def study_error(_request: Request, err: StudyError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=err.status)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, err: HTTPException) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")
        if err.status_code == 401 and wants_html and not request.url.path.startswith("/api/"):
            return RedirectResponse("/login", status_code=303)
        detail = {"detail": err.detail}
        return JSONResponse(detail, status_code=err.status_code, headers=err.headers)

    # ---- login ---------------------------------------------------------------------------

    def _count_attempt(keys: tuple[str, str]) -> None:
        """The attempt counted against the client and the username, or 429 if either waits."""
        wait = per_client.attempt(keys[0])
        if wait == 0:
            wait = per_username.attempt(keys[1])
            if wait > 0:
                per_client.forgive(keys[0])
        if wait > 0:
            raise _too_many(wait, "too many failed logins: try again later")

    def _login(
        request: Request, session: Session, username: str, password: str
    ) -> tuple[Reader, str]:
        """Log in (a new server-side login in the cookie); the reader and the login's CSRF
        token."""
        client = request.client.host if request.client else ""
        user = hashlib.sha256(username.encode("utf-8")).hexdigest()  # no typed text kept
        keys = (f"client:{client}", f"user:{user}")
        _count_attempt(keys)
        try:
            reader = authenticate(session, study_id, username, password, client, verifier)
        except VerifierBusy as err:
            per_client.forgive(keys[0])
            per_username.forgive(keys[1])
            raise _too_many(1, "the server is busy with other logins: try again") from err
        if reader is None:
            raise HTTPException(401, "wrong username or password")
        per_client.forgive(keys[0])
        per_username.clear(keys[1])
        previous = request.session.get("sid")
        if isinstance(previous, str):
            end_login(session, previous)  # a login over a login: the old one ends
        token, login = open_login(session, reader)
        request.session.clear()
        request.session["sid"] = token
        return reader, login.csrf_token

    def _login_token(request: Request) -> str:
        """The login form's own CSRF token, kept in the cookie before any login."""
        token = request.session.get("login_csrf")
        if not isinstance(token, str):
            token = request.session["login_csrf"] = secrets.token_urlsafe(32)
        return token

    def _login_page(
        request: Request, error: str = "", status: int = 200, headers: dict | None = None
    ) -> HTMLResponse:
        with sessions() as session:
            name = get_study(session, study_id).name
        msg = f'<p class="error">{html.escape(error)}</p>' if error else ""
        token = html.escape(_login_token(request))
        return _page(
            "Log in",
            f"""<h1>{html.escape(name)}</h1>{msg}<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{token}">
<p><label>Username <input name="username" autocomplete="username" required></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password"
required></label></p><p><button type="submit">Log in</button></p></form>""",
            status,
            headers,
        )

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, error: str = "") -> HTMLResponse:
        return _login_page(request, error)

    @app.post("/login")
    def login_form(
        request: Request,
        username: Annotated[str, Form(max_length=100)],
        password: Annotated[str, Form(max_length=200)],
        session: DB,
        csrf_token: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        if not _same_token(csrf_token, request.session.get("login_csrf")):
            return _login_page(request, "The login form had expired: log in again.", 403)
        try:
            reader, _ = _login(request, session, username, password)
        except HTTPException as err:
            if err.status_code == 429:
                return _login_page(request, str(err.detail), 429, err.headers)
            return RedirectResponse("/login?error=Wrong+username+or+password", status_code=303)
        return RedirectResponse("/owner" if reader.role == "owner" else "/read", status_code=303)

    @app.post("/api/login", dependencies=[Depends(json_only)])
    def login_json(body: LoginIn, request: Request, session: DB) -> dict:
        reader, csrf_token = _login(request, session, body.username, body.password)
        return {"role": reader.role, "reader": reader.code, "csrf_token": csrf_token}

    @app.post("/logout")
    def logout(request: Request, session: DB) -> Response:
        """Ends the login on the server (no token needed: the origin check still applies)."""
        token = request.session.get("sid")
        if isinstance(token, str):
            end_login(session, token)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/")
    def home(reader: Login) -> Response:
        return RedirectResponse("/owner" if reader.role == "owner" else "/read", status_code=303)

    # ---- reader --------------------------------------------------------------------------

    def _next(session: Session, reader: Reader) -> dict[str, Any] | None:
        assignment = next_assignment(session, reader)
        if assignment is None:
            return None
        view = case_view(assignment)
        view["total"] = queue_size(session, reader)
        folder = media_root / assignment.case.case_key if media_root else None
        files = sorted(p.name for p in folder.glob("*")) if folder and folder.is_dir() else []
        view["media"] = [n for n in files if _shows(assignment.arm, n)]
        config = get_study(session, study_id).config
        view["questions"] = _questions(config["questions"], view["arm"])
        view["caveat"] = config.get("caveat") or CAVEAT
        return view

    def _questions(q: dict[str, Any], arm: dict[str, Any]) -> dict[str, Any]:
        return {
            "diagnosis": q["diagnosis"],
            "confidence": "How confident are you in your answer? (0 = a guess, 100 = certain)",
            "usefulness": {p: PANELS[p] for p in shown_usefulness(q["usefulness"], arm["panels"])},
            "free_text": q["free_text"],
            "marks": bool(q.get("marks", False)),
        }

    @app.get("/api/next")
    def api_next(reader: ReaderLogin, session: DB) -> dict:
        view = _next(session, reader)
        if view is None:
            return {"done": True}
        if "prediction" in view:
            view["prediction"]["caveat"] = view["caveat"]
        return {"done": False, **view}

    @app.post("/api/answers", status_code=201, dependencies=[Depends(json_only)])
    def api_answer(body: AnswerBody, reader: ReaderPost, session: DB) -> dict:
        answer = submit_answer(
            session,
            reader,
            body.assignment_id,
            AnswerIn(body.diagnosis, body.confidence, body.usefulness, body.free_text, body.marks),
        )
        return {"assignment_id": body.assignment_id, "seconds": answer.seconds}

    @app.post("/api/events", status_code=204, dependencies=[Depends(json_only)])
    def api_event(body: EventBody, reader: ReaderPost, session: DB) -> Response:
        """A panel the reader opened or closed (``action`` "open" or "close"), timed by the
        server; only panels of the reader's arm are taken."""
        record_event(session, reader, body.assignment_id, body.panel, body.action)
        return Response(status_code=204)

    @app.get("/media/{case_key}/{name}")
    def media(case_key: str, name: str, reader: ReaderLogin, session: DB) -> FileResponse:
        """A file of a case served to this reader: the case's own media in any arm, a panel's
        file only while an assignment of that case whose arm shows the panel is open."""
        owner = file_panel(name)
        if media_root is None or owner is None:
            raise HTTPException(404, "no such media")
        if served_case(session, reader, case_key) is None:
            raise HTTPException(404, "no such media")
        if owner[0] is not None and not any(
            _shows(a, name) for a in current_arms(session, reader, case_key)
        ):
            raise HTTPException(404, "no such media")
        path = (media_root / case_key / name).resolve()
        if path.parent.parent != media_root:
            raise HTTPException(404, "no such media")
        if not path.is_file():
            raise HTTPException(404, "no such media")
        return FileResponse(path)

    @app.get("/static/plotly.min.js")
    def plotly_js(_: Login) -> FileResponse:
        import plotly

        return FileResponse(Path(plotly.__file__).parent / "package_data" / "plotly.min.js")

    @app.get("/static/reader.js")
    def reader_js(_: Login) -> FileResponse:
        return FileResponse(STATIC / "reader.js", media_type="text/javascript")

    @app.get("/read", response_class=HTMLResponse)
    def read_page(
        request: Request, reader: ReaderLogin, session: DB, error: str = ""
    ) -> HTMLResponse:
        view = _next(session, reader)
        head = _logout_form(reader)
        if view is None:
            return _page("Done", f"{head}<h1>All cases read</h1><p>Thank you.</p>")
        msg = f'<p class="error">{html.escape(error)}</p>' if error else ""
        view["csrf_token"] = request.state.csrf_token
        body = case_html(view, media_root, _method_label(view["arm"]["method"]))
        return _page(f"Case {view['position']}", head + msg + body)

    @app.post("/read")
    async def read_submit(request: Request, reader: ReaderLogin, session: DB) -> Response:
        form = await request.form()
        if not _same_token(form.get("csrf_token"), request.state.csrf_token):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page")
        try:
            usefulness = {
                k.removeprefix("usefulness_"): int(str(v))
                for k, v in form.items()
                if k.startswith("usefulness_")
            }
            body = AnswerIn(
                diagnosis=int(str(form.get("diagnosis", ""))),
                confidence=int(str(form.get("confidence", ""))),
                usefulness=usefulness,
                free_text=str(form.get("free_text", "")),
                marks=_form_marks(str(form.get("marks", "") or "[]")),
            )
            assignment_id = int(str(form.get("assignment_id", "")))
        except (ValueError, InvalidAnswer):
            return RedirectResponse("/read?error=Answer+every+question", status_code=303)
        try:
            submit_answer(session, reader, assignment_id, body)
        except StudyError as err:
            return RedirectResponse(f"/read?error={_q(str(err))}", status_code=303)
        return RedirectResponse("/read", status_code=303)

    # ---- owner ---------------------------------------------------------------------------

    @app.get("/api/progress")
    def api_progress(_: OwnerLogin, session: DB) -> list:
        return progress(session, study_id)

    @app.get("/api/results")
    def api_results(_: OwnerLogin, session: DB) -> dict:
        from fuselens.app.study.results import (
            study_results,  # the statistics stack loads on first use
        )

        return study_results(session, study_id)

    @app.get("/api/export.csv")
    def export_csv(owner: OwnerLogin, session: DB) -> Response:
        study = session.get(Study, study_id)
        rows = answer_rows(session, study_id)
        audit(session, owner.username, "export_csv", study_id, rows=len(rows))
        session.commit()
        return PlainTextResponse(
            csv_text(rows, study.config["questions"]["usefulness"]),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="study-{study_id}.csv"'},
        )

    @app.get("/api/export.imrmc")
    def export_imrmc(owner: OwnerLogin, session: DB) -> Response:
        study = session.get(Study, study_id)
        rows = answer_rows(session, study_id)
        audit(session, owner.username, "export_imrmc", study_id)
        session.commit()
        return PlainTextResponse(
            imrmc_text(rows, f"FuseLens reader study {study_id}: {study.name}"),
            headers={"Content-Disposition": f'attachment; filename="study-{study_id}.imrmc"'},
        )

    @app.get("/owner", response_class=HTMLResponse)
    def owner_page(owner: OwnerLogin, session: DB) -> HTMLResponse:
        study = session.get(Study, study_id)
        rows = "".join(
            f"<tr><td>{html.escape(p['reader'])}</td><td>{html.escape(p['username'])}</td>"
            f"<td>{p['answered']} / {p['total']}</td>"
            + "".join(
                f"<td>{html.escape(a)}: {v['answered']} / {v['total']}</td>"
                for a, v in p["arms"].items()
            )
            + "</tr>"
            for p in progress(session, study_id)
        )
        from fuselens.app.study.results import study_results

        results = study_results(session, study_id)
        perf = "".join(
            f"<tr><td>{html.escape(r['reader'])}</td><td>{html.escape(r['arm'])}</td>"
            f"<td>{r['n_cases']}</td>"
            f"<td>{_ci(r, 'accuracy')}</td><td>{_ci(r, 'sensitivity')}</td>"
            f"<td>{_ci(r, 'specificity')}</td><td>{_ci(r, 'auc')}</td></tr>"
            for r in results.get("performance", [])
        )
        return _page(
            "Study owner",
            f"""{_logout_form(owner)}<h1>{html.escape(study.name)}</h1>
<h2>Progress</h2><table id="progress"><tr><th>Reader</th><th>Login</th><th>Answered</th>
<th colspan="9">Per arm</th></tr>{rows}</table>
<h2>Results</h2><p>{results["answered"]} of {results["assignments"]} readings answered.</p>
<table id="performance"><tr><th>Reader</th><th>Arm</th><th>Cases</th><th>Accuracy</th>
<th>Sensitivity</th><th>Specificity</th><th>AUC</th></tr>{perf}</table>
{_more_tables(results)}<p><a href="/api/results">All results as JSON</a>.</p>
<h2>Export</h2><p><a id="export-csv" href="/api/export.csv" download>CSV</a> (one row per reader
&times; case &times; arm) &middot; <a id="export-imrmc" href="/api/export.imrmc" download>iMRMC
input file</a></p>""",
        )

    return app


def _q(text: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(text[:300])


def _ci(row: dict[str, Any], name: str) -> str:
    v, lo, hi = row.get(name), row.get(f"{name}_low"), row.get(f"{name}_high")
    if v is None:
        return "n/a"
    return f"{v:.2f} ({lo:.2f}&ndash;{hi:.2f})" if lo is not None and hi is not None else f"{v:.2f}"


MORE_TABLES = (
    ("cohen_kappa", "Agreement between reader pairs (Cohen's kappa)"),
    ("fleiss_kappa", "Agreement of all readers (Fleiss' kappa)"),
    ("time_per_case", "Time per case (seconds, measured by the server)"),
    ("wrong_ai_followed", "How often readers followed a wrong AI answer"),
    (
        "over_reliance_differences",
        "Over-reliance between arms: difference in following a wrong AI (Newcombe 95% CI)",
    ),
    ("mark_agreement", "Readers' marks in the model's heat-map region and in the truth"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    return html.escape(str(value))


def _table(records: list[dict[str, Any]], table_id: str) -> str:
    if not records:
        return "<p>none yet</p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in records[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r.values()) + "</tr>" for r in records
    )
    return f'<table id="{table_id}"><tr>{head}</tr>{body}</table>'


def _more_tables(results: dict[str, Any]) -> str:
    """Agreement, time, AI reliance and the ORH comparison as plain tables."""
    parts = [
        f"<h3>{title}</h3>{_table(results[key], key)}"
        for key, title in MORE_TABLES
        if key in results
    ]
    orh = results.get("orh")
    if orh is not None:
        parts.append("<h3>Comparison of arms (Obuchowski-Rockette-Hillis)</h3>")
        if "note" in orh:
            parts.append(f"<p>{html.escape(orh['note'])}</p>")
        for fom in ("auc", "accuracy"):
            if fom in orh:
                got = orh[fom]
                parts.append(f"<h4>{fom.upper() if fom == 'auc' else 'Accuracy'}</h4>")
                parts.append(
                    f"<p>{html.escape(got['note'])}</p>"
                    if isinstance(got, dict)
                    else _table(got, f"orh-{fom}")
                )
    return "".join(parts)


def _logout_form(reader: Reader) -> str:
    return (
        f'<form method="post" action="/logout" style="float:right">Logged in as '
        f'{html.escape(reader.username)} <button type="submit">Log out</button></form>'
    )


def _shows(arm: Any, name: str) -> bool:
    """Whether ``arm`` shows the media file ``name`` (the case's own media: every arm)."""
    owner = file_panel(name)
    if owner is None:
        return False
    panel, method = owner
    if panel is None:
        return True
    return panel in arm_panels(arm) and (method is None or method == arm_method(arm))


def _method_label(method: str) -> str:
    from fuselens.explain.methods import REGISTRY

    return REGISTRY[method].label if method in REGISTRY else method


def _form_marks(text: str) -> Any:
    """The marks field of the HTML form, at most 20 kB of JSON (checked by the service)."""
    if len(text) > 20_000:
        raise InvalidAnswer("marks too long")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidAnswer("marks are not valid JSON") from err
