"""The prediction card: task, answer, probability, device, model and the model's caveat."""

from __future__ import annotations

import math

BAR_CELLS = 20


def _escape(text: str) -> str:
    """Keep user-visible strings from being read as Markdown or HTML."""
    out = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\`*_[]|#":
        out = out.replace(ch, "\\" + ch)
    return out


def prediction_markdown(
    task_label: str,
    answer: str,
    probability: float,
    device: str,
    model_name: str,
    caveat: str,
    yes_at: float | None = None,
) -> str:
    """Markdown for the prediction panel; always ends with the model's ``caveat``. A yes/no
    answer given at an operating point other than 0.5 (``yes_at``) says so."""
    p = float(probability)
    if not math.isfinite(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {probability!r}")
    filled = round(p * BAR_CELLS)
    bar = "█" * filled + "░" * (BAR_CELLS - filled)
    return "\n".join(
        [
            f"### {_escape(task_label)}",
            f"**{_escape(answer)}** — probability **{p:.1%}**",
            *_operating_point(yes_at),
            "",
            f"`{bar}`",
            "",
            f"Model: {_escape(model_name)} · device: {_escape(device)}",
            "",
            f"> ⚠️ {_escape(caveat)}",
        ]
    )


def _operating_point(yes_at: float | None) -> list[str]:
    if yes_at is None or yes_at == 0.5:
        return []
    return ["", f"Answers yes at P(yes) ≥ {yes_at:.0%} (its operating point, chosen on validation)"]
