"""The official SEEM v1 language encoder: a CLIP-style text transformer, its tokenizer and the
class-name embeddings the semantic head classifies against.

Mirrors ``modeling/language/vlpencoder.py`` (``LanguageEncoder``) and
``modeling/language/LangEncoder/transformer.py`` of the official code (branch v1.0); parameter
names are the checkpoint's under ``sem_seg_head.predictor.lang_encoder.``, so that prefix
stripped, a checkpoint loads with ``load_state_dict`` as is.

Behaviour that matters for parity and is easy to get wrong:

* The layer norms are "TF style" with eps 1e-12 (not CLIP's 1e-5).
* The transformer is causal and the official code passes it no padding mask (``AUTOGRESSIVE:
  True`` drops ``key_padding_mask``); padding is the end-of-text id 49407 and the sentence
  embedding is read at ``input_ids.argmax()``, the first end-of-text token.
* Because of the causal mask, a position's state depends only on the tokens up to it. So the
  sentence paths run each batch trimmed to its longest text instead of the official 77
  positions, and class embeddings run the tokens a prompt template's sentences share once per
  template (:class:`SharedPrefix`). Both give the official results up to float rounding (the
  tests compare them with the plain computation).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ...runtime import tokenizer as bpe_tokenizer
from ...runtime.tokenizer import CONTEXT_LENGTH, VOCAB_SIZE
from ...runtime.tokenizer import END_OF_TEXT as END_OF_TEXT  # re-export: the padding id
from ...runtime.tokenizer import START_OF_TEXT as START_OF_TEXT  # re-export
from .layers import PackedAttention
from .vocabulary import PROMPT_TEMPLATES, prompt_name

_LAYER_NORM_EPS = 1e-12
_NORM_EPS = 1e-7


class TokenBatch(NamedTuple):
    """Tokenizer output, as HF ``CLIPTokenizer(padding="max_length")`` returns it."""

    input_ids: torch.Tensor  # (N, 77) int64
    attention_mask: torch.Tensor  # (N, 77) int64: 1 for start, text and end tokens, 0 for padding


class ClipTokenizer:
    """The official tokenizer, HF ``CLIPTokenizer('openai/clip-vit-base-patch32')``, without HF:
    :class:`seem_ros.runtime.tokenizer.ClipTokenizer` (the same ids in a deployment without
    PyTorch) with torch tensors out, on open_clip's bundled BPE file (the same merges and
    vocabulary as the OpenAI CLIP files on the hub).

    Use :func:`clip_tokenizer` for the shared instance (building one reads the BPE file, ~0.2 s).
    """

    def __init__(self, *, context_length: int = CONTEXT_LENGTH) -> None:
        path = bpe_tokenizer.bundled_bpe_path()
        if path is None:
            raise RuntimeError("open_clip's BPE vocabulary file is not installed")
        self.context_length = context_length
        self._tokenizer = bpe_tokenizer.ClipTokenizer(
            bpe_tokenizer.BytePairEncoding.load(path), context_length=context_length
        )

    def encode(self, text: str) -> list[int]:
        """The BPE ids of one text, without start/end tokens and without truncation."""
        return self._tokenizer.encode(text)

    def __call__(self, texts: Sequence[str]) -> TokenBatch:
        """texts -> (N, context_length) ids and attention mask; long texts keep their end token."""
        input_ids, attention_mask = self._tokenizer(texts)
        return TokenBatch(torch.from_numpy(input_ids), torch.from_numpy(attention_mask))


@cache
def clip_tokenizer(context_length: int = CONTEXT_LENGTH) -> ClipTokenizer:
    """The shared :class:`ClipTokenizer` of a context length (the official one: 77 tokens)."""
    return ClipTokenizer(context_length=context_length)


@dataclass(frozen=True)
class SharedPrefix:
    """The leading tokens of G groups of sequences, computed once per group.

    Under the causal mask a prefix's states do not depend on what follows, so sequences that
    start alike (one prompt template filled with many class names) need them only once.
    """

    keys_values: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (G, heads, P, head_dim)
    lengths: torch.Tensor  # (G,) int64: each group's prefix length, 1..P (the rest is padding)


class _SelfAttention(PackedAttention):
    """Causal multi-head self-attention (the packed projections and parameter names of
    :class:`~seem_ros.model.official.layers.PackedAttention`)."""

    def __init__(self, *, width: int, heads: int) -> None:
        super().__init__(dim=width, num_heads=heads)
        self.heads = heads

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, L, D) -> queries, keys, values, each (N, heads, L, D / heads)."""
        n, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(n, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        return q, k, v

    def forward(
        self,
        x: torch.Tensor,
        prefix: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """(N, L, D) -> (N, L, D); position i attends to positions 0..i.

        With ``prefix`` = (keys, values (N, heads, P, head_dim), valid (N, P) bool), x holds the
        positions after each row's valid prefix positions, and also attends to those.
        """
        n, length, width = x.shape
        q, k, v = self.qkv(x)
        if prefix is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            prefix_k, prefix_v, valid = prefix
            causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
            allowed = torch.cat(
                [valid[:, None, :].expand(n, length, -1), causal.expand(n, -1, -1)], dim=2
            )
            y = F.scaled_dot_product_attention(
                q,
                torch.cat([prefix_k, k], dim=2),
                torch.cat([prefix_v, v], dim=2),
                attn_mask=allowed[:, None],
            )
        return self.out_proj(y.transpose(1, 2).reshape(n, length, width))


class _Mlp(nn.Module):
    def __init__(self, *, width: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c_fc(x)
        return self.c_proj(x * torch.sigmoid(1.702 * x))  # QuickGELU


class _ResidualBlock(nn.Module):
    def __init__(self, *, width: int, heads: int) -> None:
        super().__init__()
        self.attn = _SelfAttention(width=width, heads=heads)
        self.ln_1 = nn.LayerNorm(width, eps=_LAYER_NORM_EPS)
        self.mlp = _Mlp(width=width)
        self.ln_2 = nn.LayerNorm(width, eps=_LAYER_NORM_EPS)

    def forward(
        self,
        x: torch.Tensor,
        prefix: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), prefix)
        return x + self.mlp(self.ln_2(x))


class TextTransformer(nn.Module):
    """The official ``LangEncoder.transformer.Transformer`` (autoregressive), batch-first."""

    def __init__(
        self,
        *,
        context_length: int = CONTEXT_LENGTH,
        vocab_size: int = VOCAB_SIZE,
        width: int = 512,
        layers: int = 12,
        heads: int = 8,
    ) -> None:
        super().__init__()
        self.context_length = context_length
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.resblocks = nn.ModuleList(
            _ResidualBlock(width=width, heads=heads) for _ in range(layers)
        )
        self.ln_final = nn.LayerNorm(width, eps=_LAYER_NORM_EPS)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.positional_embedding, std=0.02)
        nn.init.trunc_normal_(self.token_embedding.weight, std=0.02)
        for block in self.resblocks:
            assert isinstance(block, _ResidualBlock)
            nn.init.trunc_normal_(block.attn.in_proj_weight, std=0.02)
            for linear in (block.attn.out_proj, block.mlp.c_fc, block.mlp.c_proj):
                nn.init.trunc_normal_(linear.weight, std=0.02)
                nn.init.zeros_(linear.bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        *,
        prefix: SharedPrefix | None = None,
        groups: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(N, L) ids -> (N, L, width) final hidden states (after ln_final).

        Position i sees positions 0..i only, so a prefix of the ids gives the same prefix of
        states as the full sequence. With ``prefix`` and ``groups`` ((N,) group indices), row n
        holds the tokens that follow group ``groups[n]``'s prefix.
        """
        length = input_ids.shape[1]
        if prefix is None:
            if length > self.context_length:
                raise ValueError(f"{length} tokens exceed the context length {self.context_length}")
            x = self.token_embedding(input_ids) + self.positional_embedding[:length]
            for block in self.resblocks:
                x = block(x)
            return self.ln_final(x)
        if groups is None:
            raise ValueError("a shared prefix needs the group of every row")
        past = prefix.lengths[groups]
        positions = past[:, None] + torch.arange(length, device=input_ids.device)
        # positions past the context only occur in right padding, which no real token sees
        positions = positions.clamp(max=self.context_length - 1)
        x = self.token_embedding(input_ids) + self.positional_embedding[positions]
        valid = torch.arange(prefix.keys_values[0][0].shape[2], device=past.device) < past[:, None]
        for block, (keys, values) in zip(self.resblocks, prefix.keys_values, strict=True):
            x = block(x, (keys[groups], values[groups], valid))
        return self.ln_final(x)

    def shared_prefix(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> SharedPrefix:
        """(G, P) prefix ids, the first ``lengths[g]`` of row g real -> their layer keys/values."""
        if int(lengths.min()) < 1:
            raise ValueError("every prefix needs at least one token (the start token)")
        x = self.token_embedding(input_ids) + self.positional_embedding[: input_ids.shape[1]]
        keys_values: list[tuple[torch.Tensor, torch.Tensor]] = []
        for block in self.resblocks:
            assert isinstance(block, _ResidualBlock)
            _, k, v = block.attn.qkv(block.ln_1(x))
            keys_values.append((k, v))
            x = block(x)
        return SharedPrefix(keys_values=keys_values, lengths=lengths.to(input_ids.device))


@dataclass(frozen=True)
class GroundingTokens:
    """A referring phrase as the official grounding path feeds it to the decoder."""

    tokens: torch.Tensor  # (T, dim_proj): projected states of start, text and end tokens
    sentence: torch.Tensor  # (dim_proj,): the projected end-of-text state (official class_emb)


class LanguageEncoder(nn.Module):
    """The official ``LanguageEncoder`` (CLIP tokenizer): text -> joint-space embeddings.

    State-dict keys: ``lang_encoder.*`` (the :class:`TextTransformer`), ``lang_proj``
    (width x dim_proj, applied as ``x @ lang_proj``) and ``logit_scale``.
    """

    def __init__(
        self,
        *,
        context_length: int = CONTEXT_LENGTH,
        vocab_size: int = VOCAB_SIZE,
        width: int = 512,
        layers: int = 12,
        heads: int = 8,
        dim_proj: int = 512,
    ) -> None:
        super().__init__()
        self.lang_encoder = TextTransformer(
            context_length=context_length,
            vocab_size=vocab_size,
            width=width,
            layers=layers,
            heads=heads,
        )
        self.lang_proj = nn.Parameter(torch.empty(width, dim_proj))
        nn.init.trunc_normal_(self.lang_proj, std=0.02)
        self.logit_scale = nn.Parameter(torch.ones([]))

    @property
    def context_length(self) -> int:
        return self.lang_encoder.context_length

    def _device(self) -> torch.device:
        return self.lang_proj.device

    def _placement(self) -> dict[str, torch.device | torch.dtype]:
        return {"device": self.lang_proj.device, "dtype": self.lang_proj.dtype}

    def tokenize(self, texts: Sequence[str]) -> TokenBatch:
        """texts -> (N, 77) input ids and (N, 77) attention mask, on the CPU."""
        return clip_tokenizer(self.context_length)(texts)

    def forward_tokens(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The official ``forward_language_token(norm=False)``.

        Args:
            input_ids: (N, L) token ids (the tokenizer's L = 77).
            attention_mask: (N, L); accepted for the official signature, unused: the causal
                transformer is run without a padding mask, as the official one is.

        Returns:
            token embeddings (N, L, dim_proj) and sentence embeddings (N, dim_proj), the
            end-of-text position's; both projected by ``lang_proj``, not normalised.
        """
        del attention_mask
        input_ids = input_ids.to(self._device())
        hidden = self.lang_encoder(input_ids)
        tokens = hidden @ self.lang_proj
        sentences = tokens[torch.arange(tokens.shape[0], device=tokens.device), _eot(input_ids)]
        return tokens, sentences

    def _sentence_states(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(N, L) ids with (N,) real token counts -> (N, dim_proj) unit sentence embeddings.

        The official ``forward_language(norm=True)``, on ids trimmed to the longest real count.
        """
        keep = int(lengths.max())
        input_ids = input_ids[:, :keep].to(self._device())
        hidden = self.lang_encoder(input_ids)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), _eot(input_ids)]
        x = pooled @ self.lang_proj
        return x / (x.norm(dim=-1, keepdim=True) + _NORM_EPS)

    def encode_sentences(
        self, texts: Sequence[str], *, batch_size: int = 256, progress: bool = False
    ) -> torch.Tensor:
        """texts -> (N, dim_proj) unit sentence embeddings, one per text, no templates.

        Texts are sorted by token count and run in batches of ``batch_size``, each trimmed to
        its longest text (same results as the official padded 77-token batch, much faster).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        batch = self.tokenize(texts)
        lengths = batch.attention_mask.sum(dim=1)
        order = torch.argsort(lengths, stable=True)
        out = torch.empty(len(texts), self.lang_proj.shape[1], **self._placement())
        starts: Iterable[int] = range(0, len(texts), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="text embeddings", unit="batch")
        with torch.inference_mode():
            for start in starts:
                rows = order[start : start + batch_size]
                embeds = self._sentence_states(batch.input_ids[rows], lengths[rows])
                out[rows.to(out.device)] = embeds
        return out

    def class_embeddings(
        self,
        class_names: Sequence[str],
        *,
        templates: bool = True,
        batch_size: int = 256,
        progress: bool = False,
    ) -> torch.Tensor:
        """class names -> (C, dim_proj) unit class embeddings to classify against.

        The official ``get_text_embeddings(is_eval=True, prompt=templates)``: with templates,
        each name loses "-other"/"-merged"/"-stuff" and fills every :data:`PROMPT_TEMPLATES`
        entry; a class is the mean of its sentences' unit embeddings, renormalised (``x / |x|``,
        no epsilon). Without templates the raw name is the only sentence.

        All sentences are embedded in batches of ``batch_size``. With templates, the tokens a
        template's sentences share (the start token and the words before the name: ~60% of
        all tokens for COCO) are run once per template (:class:`SharedPrefix`), then only each
        sentence's remaining tokens, in batches sorted by length and trimmed to the longest.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not templates:
            embeds = self.encode_sentences(class_names, batch_size=batch_size, progress=progress)
            return embeds / embeds.norm(dim=-1, keepdim=True)  # the mean of one, renormalised
        count, dim = len(class_names), self.lang_proj.shape[1]
        if count == 0:
            return torch.zeros(0, dim, **self._placement())
        names = [prompt_name(name) for name in class_names]
        sentences = [template.format(name) for template in PROMPT_TEMPLATES for name in names]
        batch = self.tokenize(sentences)
        ids = batch.input_ids.view(len(PROMPT_TEMPLATES), count, -1)
        # per template: the leading tokens all its sentences share, ending before any end token
        differs = (ids != ids[:, :1]).any(dim=1)  # (T, 77)
        last = ids.shape[-1]
        shared = torch.where(differs.any(dim=1), differs.int().argmax(dim=1), last)
        shared = torch.minimum(shared, _eot(ids.flatten(0, 1)).view(ids.shape[:2]).amin(dim=1))
        groups = torch.arange(len(PROMPT_TEMPLATES)).repeat_interleave(count)
        start = shared[groups]
        # every sentence's tokens after its template's prefix, right-padded with end tokens
        offsets = (start[:, None] + torch.arange(last)).clamp(max=last - 1)
        rest = batch.input_ids.gather(1, offsets)
        rest_lengths = batch.attention_mask.sum(dim=1) - start
        unit = torch.empty(len(sentences), dim, **self._placement())
        order = torch.argsort(rest_lengths, stable=True)
        starts: Iterable[int] = range(0, len(sentences), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="class embeddings", unit="batch")
        device = self._device()
        with torch.inference_mode():
            keep = int(shared.max())
            prefix = self.lang_encoder.shared_prefix(ids[:, 0, :keep].to(device), shared)
            for first in starts:
                rows = order[first : first + batch_size]
                tokens = rest[rows, : int(rest_lengths[rows].max())].to(device)
                hidden = self.lang_encoder(tokens, prefix=prefix, groups=groups[rows].to(device))
                pooled = hidden[torch.arange(len(rows), device=device), _eot(tokens)]
                x = pooled @ self.lang_proj
                unit[rows.to(device)] = x / (x.norm(dim=-1, keepdim=True) + _NORM_EPS)
        mean = unit.view(len(PROMPT_TEMPLATES), count, dim).mean(dim=0)
        return mean / mean.norm(dim=-1, keepdim=True)

    def grounding_tokens(self, text: str) -> GroundingTokens:
        """A referring phrase -> its token embeddings and sentence embedding, not normalised.

        The official grounding path (``get_text_token_embeddings(norm=False)`` then the tokens
        where the attention mask is 1): T = number of text tokens + 2 (start and end).
        """
        batch = self.tokenize([text])
        count = int(batch.attention_mask[0].sum())
        with torch.inference_mode():
            tokens, sentences = self.forward_tokens(batch.input_ids[:, :count])
        # clones outside inference mode: ordinary tensors, which callers may modify in place
        return GroundingTokens(tokens=tokens[0].clone(), sentence=sentences[0].clone())

    def similarity(self, visual_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """The official ``compute_similarity``: (..., D) visual, (C, D) text -> (..., C) logits.

        ``logit_scale.exp() * normalise(visual) @ text.T``; the visual side is normalised with
        +1e-7, the text side is used as given (class embeddings are already unit vectors).
        """
        visual = visual_embeds / (visual_embeds.norm(dim=-1, keepdim=True) + _NORM_EPS)
        return self.logit_scale.exp() * visual @ text_embeds.transpose(0, 1)


def _eot(input_ids: torch.Tensor) -> torch.Tensor:
    """(N, L) ids -> (N,) index of the first end-of-text token (the official argmax pooling)."""
    return input_ids.argmax(dim=-1)
