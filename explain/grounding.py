"""The generated report, sentence by sentence, tied to a modality and that modality's evidence.

A sentence's modality is the one its section heading names (``"ECG: ..."``) when the model
used that modality, otherwise the present modality its words' cross-attention favours
(summed over the sentence's words, over the modality-specific Z_all tokens). Its evidence is
that modality's summary from the maps (:mod:`fuselens.explain.evidence`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fuselens.explain.bundle import GroundedReport, GroundedSentence
from fuselens.model_zoo.case import MODALITIES
from fuselens.model_zoo.contract import block_shares
from fuselens.model_zoo.report import join_words, split_words

REPORT_BLOCKS: tuple[str, ...] = (*MODALITIES, "shared", "task")


def sentence_spans(words: list[str]) -> list[tuple[int, int]]:
    """``(start, end)`` word spans of each sentence (ends after ``.``; a line break also ends
    one and is not part of it)."""
    spans, start = [], 0
    for i, w in enumerate(words):
        if w == "\n":
            if i > start:
                spans.append((start, i))
            start = i + 1
        elif w == ".":
            spans.append((start, i + 1))
            start = i + 1
    if start < len(words):
        spans.append((start, len(words)))
    return spans


def heading_modality(words: list[str], headings: dict[str, str]) -> str | None:
    """The modality a sentence's heading names (``["echo", ":", ...]`` -> ``"echo"``), with
    ``headings`` the model's modality -> heading text (from its checkpoint)."""
    for modality, text in headings.items():
        heading = tuple(split_words(text))
        n = len(heading)
        if tuple(words[:n]) == heading and len(words) > n and words[n] == ":":
            return modality
    return None


def ground_report(
    words: list[str],
    attention: np.ndarray,
    memory_labels: list[str],
    present: list[str],
    evidence: dict[str, dict[str, Any]],
    headings: dict[str, str] | None = None,
) -> GroundedReport:
    """Split the report into sentences and tie each to a modality and its evidence.

    ``attention`` is ``(n_words, N_memory)`` over ``memory_labels``; ``evidence`` maps each
    present modality to its summary; ``headings`` are the model's report headings (none:
    every sentence is grounded by attention).
    """
    attention = np.asarray(attention, dtype=np.float64)
    sentences = []
    section: str | None = None
    for start, end in sentence_spans(words):
        sent = words[start:end]
        if start == 0 or words[start - 1] == "\n":
            section = heading_modality(sent, headings or {})
        shares = block_shares(attention[start:end], memory_labels, REPORT_BLOCKS)
        if section in present:
            modality, basis = section, "section"
        elif present:
            modality, basis = max(present, key=lambda m: shares[m]), "attention"
        else:
            modality, basis = None, "attention"
        sentences.append(
            GroundedSentence(
                text=join_words(sent),
                modality=modality,
                basis=basis,
                attention=shares,
                evidence=evidence.get(modality, {}) if modality else {},
            )
        )
    return GroundedReport(text=join_words(words), sentences=sentences)
