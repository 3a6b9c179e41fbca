"""SHAP on the lab text: shap's Partition explainer with a masker that groups each lab line.

The features are the word pieces the model reads (``[CLS]``/``[SEP]`` always kept); a masked
piece becomes ``[MASK]``, so every masked text keeps its length and a whole batch runs as one
tensor. The partition tree splits each line's pieces into balanced halves and joins the lines
in a balanced tree above them, so a lab line's pieces form one group and its value is an Owen
value of the line. Only the text encoder and the fusion head run for masked texts; the other
modalities come from the context's cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shap
import torch

from fuselens.explain.context import CaseContext

# Texts beyond the exact line level; benchmarks/text_shap_budget.py: token-level Spearman 0.58 at
# 64 (0.65 at 96) against a 1000-text reference, for ~20% less time.
DEFAULT_MAX_EVALS = 64
BATCH_SIZE = 64


@dataclass
class LabTokens:
    """The lab text as the model reads it, with each word piece's line."""

    text: str
    ids: np.ndarray  # (L,) int64, specials included
    feature_pos: np.ndarray  # (n,) positions in ids of the explained pieces
    tokens: list[str]
    spans: np.ndarray  # (n, 2) character spans in text
    lines: np.ndarray  # (n,) int64 line of each piece


def lab_tokens(ctx: CaseContext) -> LabTokens:
    """Tokenise the case's lab text exactly as the model did, keeping character spans."""
    tok = ctx.model.tokenizer
    text = ctx.case.labs.textualise()
    model_ids = ctx.batch.tensors["labs"][0].cpu().numpy()
    enc = tok(
        text,
        truncation=True,
        max_length=len(model_ids),
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    if not np.array_equal(ids, model_ids[: len(ids)]) or len(ids) != len(model_ids):
        raise RuntimeError("lab text tokenisation differs from the model's input")
    special = np.asarray(enc["special_tokens_mask"], dtype=bool)
    pos = np.nonzero(~special)[0]
    spans = np.asarray(enc["offset_mapping"], dtype=np.int64)[pos]
    lines = ctx.batch.tensors["labs.lines"][0].cpu().numpy()[pos]
    return LabTokens(
        text=text,
        ids=ids,
        feature_pos=pos,
        tokens=tok.convert_ids_to_tokens(ids[pos].tolist()),
        spans=spans,
        lines=lines.astype(np.int64),
    )


class _TreeBuilder:
    """Rows of a scipy-style linkage matrix (children always before their parent)."""

    def __init__(self, n_leaves: int):
        self.n = n_leaves
        self.rows: list[list[float]] = []
        self.size = {i: 1 for i in range(n_leaves)}

    def join(self, a: int, b: int, height: float) -> int:
        node = self.n + len(self.rows)
        self.size[node] = self.size[a] + self.size[b]
        self.rows.append([a, b, height, self.size[node]])
        return node

    def pair_up(self, groups: list[list[int]], height: float) -> list[list[int]]:
        """One level: adjacent nodes of each group join in pairs (an odd last one waits)."""
        out = []
        for nodes in groups:
            nxt = [self.join(nodes[i], nodes[i + 1], height) for i in range(0, len(nodes) - 1, 2)]
            out.append(nxt + nodes[-1:] if len(nodes) % 2 else nxt)
        return out

    def halving(self, nodes: list[int], base: float) -> None:
        """Join ``nodes`` by recursive halving (the shallowest, most even binary tree, which
        keeps the Partition explainer's number of coalitions lowest), lowest joins first."""
        joins: list[tuple[float, int, tuple]] = []

        def plan(span: tuple[int, int]) -> float:
            lo, hi = span
            if hi - lo == 1:
                return 0.0
            mid = lo + (hi - lo + 1) // 2
            h = max(plan((lo, mid)), plan((mid, hi))) + 1.0
            joins.append((h, len(joins), (lo, mid, hi)))
            return h

        plan((0, len(nodes)))
        made: dict[tuple[int, int], int] = {(i, i + 1): n for i, n in enumerate(nodes)}
        for h, _, (lo, mid, hi) in sorted(joins):
            made[(lo, hi)] = self.join(made[(lo, mid)], made[(mid, hi)], base + h)


def line_partition(lines: np.ndarray, within_lines: bool = True) -> np.ndarray:
    """A linkage matrix over pieces: each line's pieces join first (balanced), then the lines
    (recursive halving). ``within_lines=False`` gives the within-line joins a negative
    height, which makes shap's Partition explainer stop at whole lines."""
    if len(lines) < 2:
        raise ValueError("text SHAP needs at least two word pieces")
    tree = _TreeBuilder(len(lines))
    groups = [np.nonzero(lines == k)[0].tolist() for k in np.unique(lines)]
    height = 0.0
    while any(len(g) > 1 for g in groups):
        height += 1.0
        groups = tree.pair_up(groups, height if within_lines else -1.0)
    tree.halving([g[0] for g in groups], height)
    return np.asarray(tree.rows, dtype=np.float64)


class LabLineMasker(shap.maskers.Masker):
    """Masks word pieces with ``[MASK]``; its clustering is a :func:`line_partition`."""

    def __init__(self, tokens: LabTokens, mask_id: int, within_lines: bool = True):
        self.base = tokens.ids
        self.pos = tokens.feature_pos
        self.mask_id = mask_id
        self.shape = (1, len(self.pos))
        self.clustering = line_partition(tokens.lines, within_lines)

    def __call__(self, mask: np.ndarray, x: np.ndarray) -> np.ndarray:
        mask = self._standardize_mask(mask, x)
        out = self.base.copy()
        out[self.pos] = np.where(mask, x, self.mask_id)
        return out[None]


@dataclass
class TextShapResult:
    tokens: LabTokens
    values: np.ndarray  # (n,) per piece
    base_value: float
    full_value: float
    max_evals: int
    evals: int  # distinct masked texts the model scored
    line_evals: int  # of which the exact line-level run needed
    level: str = "word"  # "line": each line's exact value spread evenly over its pieces


@dataclass
class LinePass:
    """The exact line-level run: each line's Owen value, and the memo of scored texts that
    the word-piece refinement reuses."""

    tokens: LabTokens
    score: MemoScores
    line_values: np.ndarray  # (n_lines,)
    base_value: float
    evals: int


def text_score_fn(ctx: CaseContext, batch_size: int = BATCH_SIZE):
    """Token-id batches ``(B, L)`` -> target log-odds ``(B,)`` (text encoder + fusion only)."""

    def score(ids: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(ids), dtype=torch.long, device=ctx.device)
        return ctx.scores("labs", x, batch_size).cpu().numpy().astype(np.float64)

    return score


class MemoScores:
    """A score function remembering every masked text it scored (shared by both runs)."""

    def __init__(self, score):
        self.score = score
        self.memo: dict[bytes, float] = {}

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        keys = [row.tobytes() for row in ids]
        todo = {k: i for i, k in enumerate(keys) if k not in self.memo}
        if todo:
            values = self.score(ids[list(todo.values())])
            self.memo.update(zip(todo, values.tolist(), strict=True))
        return np.array([self.memo[k] for k in keys])


def _partition(score, masker: LabLineMasker, x: np.ndarray, max_evals: int, batch_size: int):
    """One shap Partition run: values, base value and the number of masks it asked for."""
    explainer = shap.explainers.Partition(score, masker)
    exp = explainer(x[None], max_evals=max_evals, batch_size=batch_size, silent=True)
    base = float(np.asarray(exp.base_values).reshape(-1)[0])
    return np.asarray(exp.values[0], dtype=np.float64), base, int(explainer.last_eval_count) + 2


def _seeded(seed: int, run):
    """``run()`` with numpy's global generator (which shap draws from) seeded, then restored."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        return run()
    finally:
        np.random.set_state(state)


def _require_labs(ctx: CaseContext) -> None:
    if "labs" not in ctx.modalities:
        raise ValueError(f"case {ctx.case.case_id} has no labs")


def text_shap_lines(ctx: CaseContext, batch_size: int = BATCH_SIZE, seed: int = 0) -> LinePass:
    """The exact line level: shap's Partition explainer stopped at whole lines, so every
    line's (Owen) value is exact after a few dozen masked texts."""
    _require_labs(ctx)
    tokens = lab_tokens(ctx)
    score = MemoScores(text_score_fn(ctx, batch_size))
    masker = LabLineMasker(tokens, ctx.model.tokenizer.mask_token_id, within_lines=False)
    n_lines = int(tokens.lines.max()) + 1
    cap = 4 * n_lines * n_lines + 16
    x = tokens.ids[tokens.feature_pos]
    values, base, used = _seeded(seed, lambda: _partition(score, masker, x, cap, batch_size))
    if used >= cap:
        raise RuntimeError("the line-level partition did not finish")
    return LinePass(tokens, score, item_values(tokens.lines, values, n_lines), base, used)


def line_result(ctx: CaseContext, lines: LinePass) -> TextShapResult:
    """The line pass as a result: each line's exact value spread evenly over its pieces."""
    per_piece = lines.line_values / np.bincount(
        lines.tokens.lines, minlength=len(lines.line_values)
    )
    return TextShapResult(
        tokens=lines.tokens,
        values=per_piece[lines.tokens.lines],
        base_value=lines.base_value,
        full_value=ctx.full_score(),
        max_evals=0,
        evals=len(lines.score.memo),
        line_evals=lines.evals,
        level="line",
    )


def text_shap(
    ctx: CaseContext,
    max_evals: int = DEFAULT_MAX_EVALS,
    batch_size: int = BATCH_SIZE,
    seed: int = 0,
    lines: LinePass | None = None,
) -> TextShapResult:
    """Partition SHAP values of every lab-text word piece for the explained answer.

    Two shap runs share one memo of scored texts: the first (:func:`text_shap_lines`, or
    ``lines`` when it has run already) stops at whole lines, so every line's (Owen) value is
    exact whatever the budget; the second splits lines into pieces with ``max_evals`` more
    evaluations, and any part of a line's value it leaves unresolved is spread evenly over
    the line's pieces (shap's own rule for unexpanded groups). With ``ctx.cached`` False (the
    naive baseline) it is one plain run of ``max_evals``.
    """
    _require_labs(ctx)
    mask_id = ctx.model.tokenizer.mask_token_id
    if not ctx.cached:
        tokens = lab_tokens(ctx)
        x = tokens.ids[tokens.feature_pos]
        plain = text_score_fn(ctx, batch_size)
        masker = LabLineMasker(tokens, mask_id)
        values, base, evals = _seeded(
            seed, lambda: _partition(plain, masker, x, max_evals, batch_size)
        )
        return TextShapResult(tokens, values, base, ctx.full_score(), max_evals, evals, 0)
    lines = lines or text_shap_lines(ctx, batch_size, seed)
    tokens, n_lines = lines.tokens, len(lines.line_values)
    x = tokens.ids[tokens.feature_pos]
    masker = LabLineMasker(tokens, mask_id)
    budget = lines.evals + max_evals
    values, _, _ = _seeded(seed, lambda: _partition(lines.score, masker, x, budget, batch_size))
    residual = lines.line_values - item_values(tokens.lines, values, n_lines)
    values = values + (residual / np.bincount(tokens.lines, minlength=n_lines))[tokens.lines]
    return TextShapResult(
        tokens=tokens,
        values=values,
        base_value=lines.base_value,
        full_value=ctx.full_score(),
        max_evals=max_evals,
        evals=len(lines.score.memo),
        line_evals=lines.evals,
    )


def item_values(lines: np.ndarray, values: np.ndarray, n_items: int) -> np.ndarray:
    """Sum of the piece values of each line (item)."""
    out = np.zeros(n_items, dtype=np.float64)
    np.add.at(out, lines, values)
    return out
