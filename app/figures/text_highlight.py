"""Token attributions as ``gr.HighlightedText`` values, and the per-lab-item table.

``highlighted_tokens`` returns ``[(text, score), ...]`` with scores in [-1, 1] (positive
raises the chosen answer, negative lowers it) and ``(gap, None)`` for unhighlighted
spaces and newlines, so the text reads as written. WordPiece ``##`` pieces are merged into
their word and their scores summed (SHAP values are additive). Given the original
``text``, words are located in it (case- and accent-insensitively) and the original
spelling, spaces and newlines are kept; without it, spacing follows punctuation rules.

Gradio 6 lays score tokens out as flex items, which swallows newlines and pads every
token: give the component ``elem_classes=[HIGHLIGHT_CLASS]`` and launch with
``css=HIGHLIGHT_CSS`` so the text flows as written, lines break, and "lowers" is blue.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

SPECIAL_TOKENS = frozenset({"[CLS]", "[SEP]", "[PAD]", "[MASK]", "<s>", "</s>", "<pad>"})
UNKNOWN_TOKENS = frozenset({"[UNK]", "<unk>"})
CONTINUATION = "##"
NO_SPACE_BEFORE = frozenset(".,;:!?)]}%/-'")
NO_SPACE_AFTER = frozenset("([{/-")

Segment = tuple[str, float | None]
HIGHLIGHT_CLASS = "fl-tokens"
CONTRIBUTION_DIGITS = 4  # log-odds as the lab table shows them
HIGHLIGHT_CSS = (
    f".{HIGHLIGHT_CLASS} .textfield {{display: block !important; line-height: 1.9;}}\n"
    # Gradio breaks its text anywhere ("redu ced"): break at spaces, long words only if
    # they cannot fit.
    f".{HIGHLIGHT_CLASS} .textfield {{word-break: normal !important; "
    f"overflow-wrap: break-word;}}\n"
    f".{HIGHLIGHT_CLASS} .token-container {{display: inline;}}\n"
    f".{HIGHLIGHT_CLASS} .token.highlighted "
    f"{{margin: 0 !important; padding: 0 !important;}}\n"
    # Gradio's template puts a space after every token: size it to nothing so only the
    # text's own spaces show, and paint each token's colour on its text.
    f".{HIGHLIGHT_CLASS} .textfield {{font-size: 0 !important;}}\n"
    f".{HIGHLIGHT_CLASS} .token .text {{font-size: var(--text-md, 14px); "
    f"background-color: inherit; border-radius: 3px;}}\n"
    f".{HIGHLIGHT_CLASS} .token.highlighted .text {{padding: 2px 0;}}\n"
    # Gradio paints negative scores purple (128, 90, 213); turn them blue.
    f'.{HIGHLIGHT_CLASS} .token[style*="128, 90, 213"] {{filter: hue-rotate(-45deg);}}\n'
    f".{HIGHLIGHT_CLASS} .score-legend {{background: linear-gradient(to right, "
    f"rgb(50, 100, 230), transparent, rgb(239, 68, 60)) !important;}}\n"
)


@dataclass
class _Word:
    text: str
    score: float
    unknown: bool = False


def _merge_pieces(tokens: Sequence[str], scores: Sequence[float]) -> list[_Word]:
    if len(tokens) != len(scores):
        raise ValueError(f"{len(tokens)} tokens but {len(scores)} scores")
    words: list[_Word] = []
    glued = False
    for tok, score in zip(tokens, scores, strict=True):
        score = float(score)
        if not math.isfinite(score):
            raise ValueError(f"score for token {tok!r} is not finite")
        if tok in SPECIAL_TOKENS:
            glued = False
            continue
        if tok == "\n":
            words.append(_Word("\n", 0.0))
            glued = False
            continue
        if tok.startswith(CONTINUATION) and len(tok) > 2 and words and glued:
            words[-1].text += tok[2:]
            words[-1].score += score
            continue
        words.append(_Word(tok, score, unknown=tok in UNKNOWN_TOKENS))
        glued = True
    return words


def _fold(text: str) -> str:
    """Lower-case and strip accents character by character (keeps string length)."""
    return "".join(unicodedata.normalize("NFD", c)[0].lower() for c in text)


def _needs_space(prev: str, cur: str, before_prev: str) -> bool:
    if prev == "\n" or cur == "\n":
        return False
    if cur[0] in NO_SPACE_BEFORE or prev[-1] in NO_SPACE_AFTER:
        return False
    decimal = prev in {".", ","} and before_prev[-1:].isdigit() and cur[0].isdigit()
    return not decimal


def _segments_by_rules(words: list[_Word]) -> list[Segment]:
    out: list[Segment] = []
    for i, w in enumerate(words):
        if w.text == "\n":
            out.append(("\n", None))
            continue
        if i > 0 and _needs_space(words[i - 1].text, w.text, words[i - 2].text if i > 1 else ""):
            out.append((" ", None))
        out.append((w.text, w.score))
    return out


def _segments_in_text(words: list[_Word], text: str) -> list[Segment]:
    folded = _fold(text)
    out: list[Segment] = []
    cursor = 0
    pending: list[_Word] = []

    def flush_pending(end: int) -> None:
        chunk = text[cursor:end]
        stripped = chunk.lstrip()
        lead = chunk[: len(chunk) - len(stripped)]
        body = stripped.rstrip()
        if lead:
            out.append((lead, None))
        if body:
            out.append((body, sum(w.score for w in pending)))
        tail = stripped[len(body) :]
        if tail:
            out.append((tail, None))

    for w in words:
        if w.text == "\n":
            continue
        if w.unknown:
            pending.append(w)
            continue
        pos = folded.find(_fold(w.text), cursor)
        if pos < 0:
            pending.append(w)
            continue
        if pending:
            flush_pending(pos)
            pending = []
        elif pos > cursor:
            out.append((text[cursor:pos], None))
        out.append((text[pos : pos + len(w.text)], w.score))
        cursor = pos + len(w.text)
    if pending:
        flush_pending(len(text))
    elif cursor < len(text):
        out.append((text[cursor:], None))
    return out


def _merge_gaps(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for seg in segments:
        if seg[1] is None and out and out[-1][1] is None:
            out[-1] = (out[-1][0] + seg[0], None)
        else:
            out.append(seg)
    return out


def highlighted_tokens(
    tokens: Sequence[str],
    scores: Sequence[float],
    text: str | None = None,
    min_abs: float = 0.02,
) -> list[Segment]:
    """``gr.HighlightedText`` value for token ``scores``: words with scores in [-1, 1].

    Words whose normalised score is within ``min_abs`` of 0 (invisible as a colour anyway)
    become plain text, so unremarkable stretches read as ordinary prose.
    """
    words = _merge_pieces(tokens, scores)
    segments = _segments_in_text(words, text) if text is not None else _segments_by_rules(words)
    peak = max((abs(s) for _, s in segments if s is not None), default=0.0)
    scale = 1.0 / peak if peak > 0 else 0.0
    scaled = [
        (t, None if s is None or abs(s * scale) <= min_abs else s * scale) for t, s in segments
    ]
    return _merge_gaps(scaled)


def lab_item_table(
    items: Sequence[str], scores: Sequence[float], values: Sequence[str]
) -> pd.DataFrame:
    """Lab items with their value and contribution (rounded to ``CONTRIBUTION_DIGITS``),
    largest |contribution| first; a contribution shown as 0 has no direction."""
    if not len(items) == len(scores) == len(values):
        raise ValueError(f"{len(items)} items, {len(scores)} scores, {len(values)} values")
    if not all(math.isfinite(float(s)) for s in scores):
        raise ValueError("lab item contributions must be finite")
    contrib = [round(float(s), CONTRIBUTION_DIGITS) + 0.0 for s in scores]
    direction = ["raises" if s > 0 else "lowers" if s < 0 else "none" for s in contrib]
    table = pd.DataFrame(
        {
            "Lab item": list(items),
            "Value": list(values),
            "Contribution": contrib,
            "Direction": direction,
        }
    )
    order = table["Contribution"].abs().sort_values(ascending=False, kind="stable").index
    return table.loc[order].reset_index(drop=True)
