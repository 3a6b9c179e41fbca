"""The layout's import rules and the installed package: imports flow app -> explain ->
model_zoo and never back, explain never names the demo model, and the distribution adds no
top-level ``app``, ``explain`` or ``model_zoo`` to a user's environment."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"model_zoo": 0, "explain": 1, "app": 2}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
    return out


def _sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", sorted(LAYERS))
def test_imports_never_flow_back(folder):
    bad = []
    for path in _sources(folder):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] in LAYERS:
                bad.append(f"{path.relative_to(ROOT)}: bare import {name}")
            elif parts[0] == "fuselens" and len(parts) > 1 and parts[1] in LAYERS:
                if LAYERS[parts[1]] > LAYERS[folder]:
                    bad.append(f"{path.relative_to(ROOT)}: imports {name}")
    assert not bad, "\n".join(bad)


def test_explain_knows_only_the_contract():
    bad = []
    for path in _sources("explain"):
        text = path.read_text(encoding="utf-8")
        if "FusionModel" in text or "FusionExplainable" in text:
            bad.append(f"{path.relative_to(ROOT)} names the demo model")
        for name in _imports(path):
            if name.startswith("fuselens.model_zoo.") and name.split(".")[2] in (
                "model",
                "fusion_explainable",
                "registry",
                "encoders",
            ):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_installed_package_has_no_bare_top_level_modules(tmp_path):
    """Run from an empty folder, so only what is installed can be imported."""
    code = (
        "import importlib.util as u, fuselens, fuselens.app.cli, fuselens.explain.pipeline\n"
        "print(sorted(n for n in ('app', 'explain', 'model_zoo') if u.find_spec(n)))\n"
        "print(fuselens.load_model.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    found, module = out.stdout.split("\n")[:2]
    assert found == "[]"
    assert module == "fuselens"
