"""Shared parts of the browser tests: chromium, a ``fuselens serve`` subprocess, a page."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    """Skip the test when Debian's chromium is not installed; make the artifacts folder."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium is not installed at {CHROMIUM}")
    ARTIFACTS.mkdir(exist_ok=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_workstation(args: list[str], log_name: str, cwd: Path = ROOT) -> Iterator[dict[str, Any]]:
    """``fuselens serve ARGS`` on a free port (``--no-auth`` unless ARGS give ``--users``)
    until it answers HTTP 200 and has warmed up;
    yields its ``url``, ``http_s`` (seconds to HTTP 200), ``log`` and ``pid``; the log is saved to
    ``test-artifacts/LOG_NAME`` when the server stops."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    login = [] if "--users" in args else ["--no-auth"]
    cmd = [sys.executable, "-m", "fuselens.app.cli", "serve", "--port", str(port), *login, *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    log: list[str] = []

    def pump() -> None:
        for line in proc.stdout:
            log.append(line)

    threading.Thread(target=pump, daemon=True).start()
    url = f"http://127.0.0.1:{port}/"
    http_s = None
    while time.perf_counter() - t0 < 120 and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    http_s = time.perf_counter() - t0
                    break
        except OSError:
            time.sleep(0.25)
    if http_s is None:
        proc.kill()
        pytest.fail("fuselens serve did not answer:\n" + "".join(log))
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline and not any("warmed up" in x for x in log):
        time.sleep(0.2)
    try:
        yield {"url": url, "http_s": http_s, "log": log, "pid": proc.pid}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        (ARTIFACTS / log_name).write_text("".join(log))


@contextmanager
def workstation_page(url: str) -> Iterator[Any]:
    """A 1920 x 1080 chromium page on the workstation, once its demo-case picker is there."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport={"width": 1920, "height": 1080}, accept_downloads=True
        )
        pg = context.new_page()
        pg.set_default_timeout(120_000)
        pg.goto(url)
        pg.wait_for_selector("#fl-demo input")
        try:
            yield pg
        finally:
            browser.close()


# Every drawn plot whose margins plotly.js had to widen for a label or colour bar (which
# draws the figure again): [panel id, side, margin asked, margin drawn]; and how many plots.
PUSHED_MARGINS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')].filter((g) => g._fullLayout);
  const pushed = plots.flatMap((g) => {
    const asked = g.layout.margin || {}, drawn = g._fullLayout._size;
    return ['l', 'r', 't', 'b'].filter((k) => Math.round(drawn[k]) > (asked[k] ?? 80))
      .map((k) => [(g.closest('[id^=fl-]') || {}).id, k, asked[k], Math.round(drawn[k])]);
  });
  return {plots: plots.length, pushed};
}"""

# Marks every plot on the page, then records each Plotly draw as (panel, drawn on a marked plot)
# in ``window.__draws``: a figure of a newly opened case must not be drawn on a plot of the last.
REDRAWS = """() => {
  document.querySelectorAll('[data-testid=plotly]').forEach((g) => { g.__before = true; });
  window.__draws = [];
  if (window.__drawsWrapped) return;
  const react = window.Plotly.react;
  window.Plotly.react = function (g, ...rest) {
    window.__draws.push([(g.closest('[id^=fl-]') || {}).id, Boolean(g.__before)]);
    return react.call(this, g, ...rest);
  };
  window.__drawsWrapped = true;
}"""
