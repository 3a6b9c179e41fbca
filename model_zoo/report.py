"""The report decoder: a word-level vocabulary and a small autoregressive transformer.

It cross-attends to the fused tokens (Z_all plus the response module's task states) and
decodes greedily, keeping each generated word's cross-attention over those tokens.
"""

from __future__ import annotations

import re
from collections import Counter

import torch
from torch import nn

from fuselens.model_zoo.layers import AttentionDecoderLayer

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS: tuple[str, ...] = (PAD, BOS, EOS, UNK)
_WORD = re.compile(r"[a-z0-9]+(?:,[0-9]{3}(?![0-9]))*(?:[-'/.][a-z0-9]+)*%?|[.,;:()]|\n")
_NO_SPACE_BEFORE = {".", ",", ";", ":", ")", "\n"}


def split_words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks of a report."""
    return _WORD.findall(text.lower())


def join_words(words: list[str]) -> str:
    """Words back to text: no space before punctuation, sentences capitalised."""
    out = ""
    for w in words:
        if out and w not in _NO_SPACE_BEFORE and not out.endswith(("(", "\n")):
            out += " "
        out += w
    return re.sub(r"(^|[.]\s|\n)([a-z])", lambda m: m.group(1) + m.group(2).upper(), out)


class Vocabulary:
    """Word-level vocabulary; ids of the special tokens are 0..3."""

    def __init__(self, words: list[str]):
        if list(words[: len(SPECIALS)]) != list(SPECIALS):
            raise ValueError("a vocabulary starts with the special tokens")
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, reports: list[str], min_count: int = 1) -> Vocabulary:
        counts = Counter(w for r in reports for w in split_words(r))
        kept = sorted(w for w, c in counts.items() if c >= min_count)
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str, max_words: int) -> list[int]:
        """``<bos> words <eos>`` ids, truncated to ``max_words`` words."""
        ids = [self.index.get(w, self.index[UNK]) for w in split_words(text)][:max_words]
        return [self.index[BOS], *ids, self.index[EOS]]

    def decode(self, ids: list[int]) -> list[str]:
        """Words up to the first ``<eos>``, specials dropped."""
        out = []
        for i in ids:
            w = self.words[i]
            if w == EOS:
                break
            if w not in SPECIALS:
                out.append(w)
        return out


class ReportDecoder(nn.Module):
    """Causal transformer decoder over report words, cross-attending to fused tokens."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        n_heads: int,
        n_layers: int,
        max_len: int,
        n_tasks: int,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.task_embed = nn.Parameter(torch.randn(n_tasks, d_model) * 0.02)
        self.answer_embed = nn.Parameter(torch.randn(n_tasks, d_model) * 0.02)
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Parameter(torch.randn(max_len + 2, d_model) * 0.02)
        self.layers = nn.ModuleList(
            AttentionDecoderLayer(d_model, n_heads, dropout) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, vocab_size)
        self.max_len = max_len

    def task_memory(self, task_states: torch.Tensor, p_yes: torch.Tensor) -> torch.Tensor:
        """One memory token per task: its state, its identity and its (detached) answer.

        ``p_yes`` ``(B, n_tasks)`` moves each token along a learnt per-task direction, so the
        report reads the response module's decision for each finding directly.
        """
        signed = (2.0 * p_yes.detach() - 1.0)[..., None]
        return task_states + self.task_embed + signed * self.answer_embed

    def forward(
        self, tokens: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-word logits ``(B, L, V)`` and the last layer's cross-attention ``(B, L, N)``."""
        length = tokens.shape[1]
        if length > self.pos.shape[0]:
            raise ValueError(f"report of {length} tokens exceeds the decoder's {self.pos.shape[0]}")
        x = self.embed(tokens) + self.pos[:length]
        pad = tokens != 0
        attn = None
        for layer in self.layers:
            x, attn = layer(x, memory, memory_mask, causal=True, pad_mask=pad)
        return self.out(self.norm(x)), attn

    @torch.no_grad()
    def greedy(
        self, memory: torch.Tensor, memory_mask: torch.Tensor, bos: int, eos: int, max_words: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding: word ids ``(B, L)`` (without ``<bos>``) and, for each generated
        word, the cross-attention ``(B, L, N)`` it was produced with."""
        b = memory.shape[0]
        tokens = torch.full((b, 1), bos, dtype=torch.long, device=memory.device)
        done = torch.zeros(b, dtype=torch.bool, device=memory.device)
        attns = []
        for _ in range(min(max_words + 1, self.pos.shape[0] - 1)):
            logits, attn = self.forward(tokens, memory, memory_mask)
            nxt = logits[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
            attns.append(attn[:, -1])
            done |= nxt == eos
            if done.all():
                break
        return tokens[:, 1:], torch.stack(attns, dim=1)
