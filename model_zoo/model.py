"""FusionModel: modality encoders, MedFlexFusion, textual guidance, response and report heads.

``encode`` gives cacheable per-modality tokens, ``fuse`` re-runs only fusion and heads on
them, ``forward`` is the two in one. Every attention map is returned in :class:`FusionOutput`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fuselens.model_zoo.case import MODALITIES
from fuselens.model_zoo.config import ModelConfig
from fuselens.model_zoo.encoders.cxr import DenseNetCXREncoder, SmallCXREncoder
from fuselens.model_zoo.encoders.ecg import ECGEncoder
from fuselens.model_zoo.encoders.echo import EchoEncoder
from fuselens.model_zoo.encoders.finding_maps import FindingOutput, modality_findings
from fuselens.model_zoo.encoders.text import TextEncoder, load_bert, load_tokenizer
from fuselens.model_zoo.estimates import EstimateHeads
from fuselens.model_zoo.fusion import MedFlexFusion
from fuselens.model_zoo.guidance import TextualGuidance
from fuselens.model_zoo.input_checks import check_inputs
from fuselens.model_zoo.inputs import ModelInputs
from fuselens.model_zoo.report import BOS, EOS, ReportDecoder, Vocabulary, join_words
from fuselens.model_zoo.response import ContrastiveProjection, ResponseModule

TASK_TOKEN_PREFIX = "task:"
CAM_ENCODERS: tuple[str, ...] = ("ecg", "echo", "cxr")


@dataclass
class FusionOutput:
    """Everything one fusion pass gives; tensors have the batch first.

    ``logits[task]``/``probabilities[task]`` are ``(B, n_answers)`` over ``model.tasks[task]``.
    ``fused_tokens`` is Z_all ``(B, N, d)`` with ``fused_mask`` and ``token_labels``
    (``"<modality>:<i>"`` for modality-specific, ``"shared:<i>"`` for shared tokens).
    """

    logits: dict[str, torch.Tensor]
    probabilities: dict[str, torch.Tensor]
    present: torch.Tensor  # (B, M)
    modality_attention: torch.Tensor  # (B, M, M)
    fusion_token_attention: torch.Tensor  # (B, M, T, M*T)
    gates: torch.Tensor  # (B, M)
    lambdas: torch.Tensor  # (B, M, M)
    guidance_attention: torch.Tensor  # (B, n_tasks, P', N) over Z_all
    response_attention: torch.Tensor  # (B, n_tasks, P' + N) over [guided prompt; Z_all]
    fused_tokens: torch.Tensor  # (B, N, d)
    fused_mask: torch.Tensor  # (B, N)
    token_labels: list[str]
    task_states: torch.Tensor  # (B, n_tasks, d)
    embeddings: dict[str, torch.Tensor]  # contrastive, (B, c) per modality

    def probability(
        self, task: str, answer: str = "yes", answers: list[str] | None = None
    ) -> torch.Tensor:
        """``(B,)`` probability of ``answer`` for ``task`` (answers default to no/yes)."""
        names = answers or ["no", "yes"]
        return self.probabilities[task][:, names.index(answer)]


@dataclass
class ReportOutput:
    """Greedy report per case, each word with its cross-attention over ``memory_labels``."""

    texts: list[str]
    words: list[list[str]]
    attention: list[torch.Tensor]  # per case (n_words, N_memory)
    memory_labels: list[str]
    memory_mask: torch.Tensor  # (B, N_memory)


class FusionModel(nn.Module):
    """The TGMM-style fusion model over labs, ECG, echo and CXR (any present subset)."""

    modalities: tuple[str, ...] = MODALITIES

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        answers = {tuple(a) for a in c.tasks.values()}
        if len(answers) != 1:
            raise ValueError("every task must have the same candidate answers")
        if set(c.tasks) != set(c.task_prompts):
            raise ValueError("every task needs a prompt")
        self.task_names = list(c.tasks)
        self.answers = list(next(iter(answers)))
        self.tokenizer = load_tokenizer(c.text_encoder)
        bert = load_bert(c.text_encoder)
        t = c.tokens_per_modality
        self.finding_tasks = {m: modality_findings(self.task_names, m) for m in CAM_ENCODERS}
        k = {m: len(v) for m, v in self.finding_tasks.items()}
        cxr = (
            DenseNetCXREncoder(c.d_model, t, c.n_heads, k["cxr"], c.cxr_weights)
            if c.cxr_encoder == "densenet121"
            else SmallCXREncoder(c.cxr_channels, c.d_model, t, c.n_heads, k["cxr"])
        )
        if c.cxr_encoder not in ("small", "densenet121"):
            raise ValueError(f"cxr_encoder must be 'small' or 'densenet121', not {c.cxr_encoder!r}")
        self.encoders = nn.ModuleDict(
            {
                "labs": TextEncoder(
                    bert,
                    c.d_model,
                    t,
                    c.n_heads,
                    c.text_trainable_layers,
                    line_attention=c.text_line_attention,
                ),
                "ecg": ECGEncoder(c.ecg_channels, c.d_model, t, c.n_heads, k["ecg"]),
                "echo": EchoEncoder(
                    c.echo_channels, c.echo_frames, c.d_model, t, c.n_heads, k["echo"], c.dropout
                ),
                "cxr": cxr,
            }
        )
        hidden = self.encoders["labs"].hidden_size
        self.fusion = MedFlexFusion(len(MODALITIES), c.d_model, c.n_heads, c.dropout)
        self.guidance = TextualGuidance(
            len(self.task_names), hidden, c.d_model, c.n_heads, c.prompt_learnable_tokens, c.dropout
        )
        self.response = ResponseModule(
            len(self.task_names),
            len(self.answers),
            hidden,
            c.d_model,
            c.n_heads,
            c.response_layers,
            c.dropout,
        )
        self.contrastive = ContrastiveProjection(MODALITIES, c.d_model, c.contrastive_dim)
        self.estimate_heads = EstimateHeads(c.estimates, summary_dims(c)) if c.estimates else None
        self.vocab = Vocabulary(c.report_vocab) if c.report_vocab else None
        self.report = (
            ReportDecoder(
                len(self.vocab),
                c.d_model,
                c.n_heads,
                c.report_layers,
                c.report_max_words,
                len(self.task_names),
                c.dropout,
            )
            if self.vocab
            else None
        )
        self._register_text_buffers()

    @property
    def tasks(self) -> dict[str, list[str]]:
        """Task name -> class (answer) names."""
        return {k: list(v) for k, v in self.config.tasks.items()}

    @property
    def device(self) -> torch.device:
        return self.fusion.lambda_logits.device

    def _embed_texts(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer(texts, padding=True, return_tensors="pt")
        states = self.encoders["labs"].frozen_states(enc["input_ids"], enc["attention_mask"])
        return states, enc["attention_mask"].bool()

    def _register_text_buffers(self) -> None:
        """Frozen text states of the task prompts and candidate answers (not saved)."""
        prompts, mask = self._embed_texts([self.config.task_prompts[t] for t in self.task_names])
        self.register_buffer("prompt_states", prompts, persistent=False)
        self.register_buffer("prompt_mask", mask, persistent=False)
        answers, amask = self._embed_texts(self.answers)
        pooled = (answers * amask[..., None]).sum(1) / amask.sum(1, keepdim=True)
        self.register_buffer(
            "answer_states",
            pooled[None].expand(len(self.task_names), -1, -1).clone(),
            persistent=False,
        )

    def cam_target_layer(self, modality: str) -> nn.Module:
        """The layer whose activations Grad-CAM++ uses, the encoder's finding maps (K maps >= 0,
        one per finding of the modality): ECG ``(B, K, 12, L')``, echo ``(B*V, K, F, h, w)``,
        CXR ``(B, K, h, w)``. Labs has none (use token attributions)."""
        if modality not in CAM_ENCODERS:
            raise ValueError(f"{modality!r} has no convolutional layer; choose ecg, echo or cxr")
        return self.encoders[modality].cam_layer

    def token_labels(self) -> list[str]:
        t = self.config.tokens_per_modality
        return [f"{m}:{i}" for m in MODALITIES for i in range(t)] + [
            f"shared:{i}" for i in range(t)
        ]

    def encode_modality(
        self, modality: str, inputs: ModelInputs
    ) -> tuple[torch.Tensor, FindingOutput | None]:
        """One encoder on the rows of ``inputs`` (no masking; see :meth:`encode`): tokens, and
        for a convolutional encoder its finding logits and maps (``None`` for labs)."""
        enc = self.encoders[modality]
        if modality == "labs":
            tokens = enc(
                inputs.input_ids, inputs.attention_mask, inputs.labs_hidden, inputs.input_lines
            )
            return tokens, None
        if modality == "ecg":
            tokens, logits, maps = enc.encode(inputs.ecg, inputs.ecg_leads)
        elif modality == "echo":
            tokens, logits, maps = enc.encode(inputs.echo, inputs.echo_views)
        else:
            tokens, logits, maps = enc.encode(inputs.cxr)
        rows = torch.arange(len(inputs), device=tokens.device)
        return tokens, FindingOutput(rows, logits, maps)

    def encode_with_findings(
        self, inputs: ModelInputs, modalities: list[str] | None = None
    ) -> tuple[dict[str, torch.Tensor], dict[str, FindingOutput]]:
        """:meth:`encode` plus, per convolutional modality present in some row, the
        :class:`FindingOutput` of the rows it ran on (logits over :attr:`finding_tasks`)."""
        check_inputs(inputs, self.config)
        wanted = list(modalities) if modalities is not None else list(MODALITIES)
        out: dict[str, torch.Tensor] = {}
        findings: dict[str, FindingOutput] = {}
        b, t, d = len(inputs), self.config.tokens_per_modality, self.config.d_model
        for m in wanted:
            if m not in MODALITIES:
                raise ValueError(f"unknown modality {m!r}")
            rows = inputs.present[:, MODALITIES.index(m)]
            feats = torch.zeros(b, t, d, device=inputs.present.device)
            if rows.any():
                idx = rows.nonzero()[:, 0]
                values, found = self.encode_modality(m, _select(inputs, rows))
                feats = feats.to(values.dtype).index_put((idx,), values)
                if found is not None:
                    findings[m] = found._replace(rows=idx)
            out[m] = feats
        return out, findings

    def encode(
        self, inputs: ModelInputs, modalities: list[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Per-modality tokens ``(B, T, d)``; encoders run only on rows where the modality is
        present (absent rows are zeros and are masked later)."""
        return self.encode_with_findings(inputs, modalities)[0]

    def fuse(self, features: dict[str, torch.Tensor], present: torch.Tensor) -> FusionOutput:
        """Fusion, guidance and response heads on (cached) features for a ``(B, M)`` mask."""
        present = present.bool()
        b = present.shape[0]
        t, d = self.config.tokens_per_modality, self.config.d_model
        stacked = []
        for i, m in enumerate(MODALITIES):
            if m in features:
                stacked.append(features[m])
            elif present[:, i].any():
                raise ValueError(f"{m} is marked present but has no features")
            else:
                stacked.append(torch.zeros(b, t, d, device=present.device))
        state = self.fusion(torch.stack(stacked, dim=1), present)
        guided, gmask, g_attn = self.guidance(
            self.prompt_states, self.prompt_mask, state.z_all, state.z_mask
        )
        logits, states, r_attn = self.response(
            guided, gmask, state.z_all, state.z_mask, self.answer_states
        )
        emb = self.contrastive({m: features[m] for m in MODALITIES if m in features})
        return FusionOutput(
            logits={task: logits[:, i] for i, task in enumerate(self.task_names)},
            probabilities={
                task: logits[:, i].softmax(-1) for i, task in enumerate(self.task_names)
            },
            present=present,
            modality_attention=state.modality_attention,
            fusion_token_attention=state.token_attention,
            gates=state.gates,
            lambdas=state.lambdas,
            guidance_attention=g_attn,
            response_attention=r_attn,
            fused_tokens=state.z_all,
            fused_mask=state.z_mask,
            token_labels=self.token_labels(),
            task_states=states,
            embeddings=emb,
        )

    def forward(self, inputs: ModelInputs) -> FusionOutput:
        return self.fuse(self.encode(inputs), inputs.present)

    def summaries(self, inputs: ModelInputs) -> dict[str, torch.Tensor]:
        """Per modality an estimate head reads, its summary of the rows where it is present."""
        out = {}
        for m in self.estimate_heads.modalities if self.estimate_heads is not None else []:
            rows = inputs.present[:, MODALITIES.index(m)]
            if rows.any():
                sub = _select(inputs, rows)
                enc = self.encoders[m]
                out[m] = (
                    enc.summary(sub.echo, sub.echo_views) if m == "echo" else enc.summary(sub.cxr)
                )
        return out

    def estimate(self, inputs: ModelInputs) -> dict[str, torch.Tensor]:
        """``(B,)`` per estimate in its unit (:mod:`~fuselens.model_zoo.estimates`), NaN where
        its modality is absent; empty for a model without estimate heads."""
        if self.estimate_heads is None:
            return {}
        return self.estimate_heads(self.summaries(inputs), inputs.present)

    def report_memory(self, output: FusionOutput) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """The report decoder's memory: Z_all, then one token per task carrying its answer."""
        b, n = output.task_states.shape[:2]
        p_yes = torch.stack([output.probability(t) for t in self.task_names], dim=1)
        tasks = self.report.task_memory(output.task_states, p_yes)
        memory = torch.cat([output.fused_tokens, tasks], dim=1)
        ones = torch.ones(b, n, dtype=torch.bool, device=memory.device)
        labels = output.token_labels + [TASK_TOKEN_PREFIX + t for t in self.task_names]
        return memory, torch.cat([output.fused_mask, ones], dim=1), labels

    def generate_report(
        self,
        features: dict[str, torch.Tensor],
        present: torch.Tensor,
        output: FusionOutput | None = None,
    ) -> ReportOutput:
        """Greedy report for each case, with each word's attention over the fused tokens."""
        if self.report is None or self.vocab is None:
            raise RuntimeError("this model has no report decoder (trained without reports)")
        output = output if output is not None else self.fuse(features, present)
        memory, mask, labels = self.report_memory(output)
        ids, attn = self.report.greedy(
            memory, mask, self.vocab.index[BOS], self.vocab.index[EOS], self.config.report_max_words
        )
        words, texts, attns = [], [], []
        for i in range(ids.shape[0]):
            w = self.vocab.decode(ids[i].tolist())
            words.append(w)
            texts.append(join_words(w))
            attns.append(attn[i, : len(w)])
        return ReportOutput(
            texts=texts, words=words, attention=attns, memory_labels=labels, memory_mask=mask
        )

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Parameters and buffers to save: everything but the frozen text-encoder layers."""
        text = self.encoders["labs"]
        out = {}
        for k, v in self.state_dict().items():
            prefix = "encoders.labs."
            if k.startswith(prefix) and not text.is_trainable_name(k[len(prefix) :]):
                continue
            out[k] = v
        return out


def summary_dims(c: ModelConfig) -> dict[str, int]:
    """Width of each modality's estimate summary under config ``c``."""
    cxr = 1024 if c.cxr_encoder == "densenet121" else c.cxr_channels[-1]
    return {"echo": 2 * c.echo_channels[-1] * 16, "cxr": cxr * 16}


def _select(inputs: ModelInputs, rows: torch.Tensor) -> ModelInputs:
    idx = rows.nonzero()[:, 0]
    hidden = None if inputs.labs_hidden is None else inputs.labs_hidden[idx]
    return ModelInputs(
        case_ids=[inputs.case_ids[i] for i in idx.tolist()],
        input_ids=inputs.input_ids[idx],
        attention_mask=inputs.attention_mask[idx],
        input_lines=inputs.input_lines[idx],
        ecg=inputs.ecg[idx],
        ecg_leads=inputs.ecg_leads[idx],
        echo=inputs.echo[idx],
        echo_views=inputs.echo_views[idx],
        cxr=inputs.cxr[idx],
        present=inputs.present[idx],
        labs_hidden=hidden,
    )
