"""Load and exercise plotly in the browser while the user is still choosing a case.

Gradio fetches its plotly chunk (1.3 MB compressed) only when the first figure arrives,
then evaluates it and draws for the first time: on this 2-core machine that made the first
case after a page load take twice the browser CPU of every later one
(``benchmarks/browser_walk.py``). The page's load script imports the same chunk, by the same
URL Gradio's plot component imports it from (so the browser holds one module), once the
page is idle, and draws one scatter, bar and heat map off screen before removing them.
"""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

_ASSETS = Path(gr.__file__).resolve().parent / "templates" / "frontend" / "assets"

_WARM_UP = """() => {
  const chunk = %s;
  const idle = window.requestIdleCallback || ((f) => setTimeout(f, 200));
  idle(async () => {
    const module = [...document.querySelectorAll('script[src*="/assets/"]')][0];
    const base = module ? module.src : new URL('assets/', document.baseURI).href;
    try {
      await import(new URL(chunk, base).href);
      const Plotly = window.Plotly;
      if (!Plotly) { return; }
      const div = document.createElement('div');
      div.setAttribute('aria-hidden', 'true');
      div.style.cssText = 'position:fixed;left:-10000px;top:0;width:400px;height:300px';
      document.body.append(div);
      await Plotly.newPlot(div, [
        {type: 'scatter', mode: 'lines', y: [0, 1, 0]},
        {type: 'bar', x: ['a'], y: [1]},
        {type: 'heatmap', z: [[0, 1], [1, 0]], showscale: false},
      ], {margin: {l: 0, r: 0, t: 0, b: 0}}, {staticPlot: true});
      Plotly.purge(div);
      div.remove();
    } catch (err) {
      console.debug('fuselens: plotly warm-up skipped', err);
    }
  });
}"""


def plotly_chunk(assets: Path = _ASSETS) -> str | None:
    """The file name of Gradio's plotly chunk in its built frontend, if there is one."""
    found = sorted(p.name for p in assets.glob("PlotlyPlot-*.js"))
    return found[0] if found else None


def warm_up_js(assets: Path = _ASSETS) -> str | None:
    """The page-load script that warms plotly up (None when Gradio ships no plotly chunk)."""
    chunk = plotly_chunk(assets)
    return _WARM_UP % json.dumps(chunk) if chunk else None
