"""The official SEEM v1 decoder (``sem_seg_head.predictor``), deterministic and batch-friendly.

What it computes is the official ``SEEMDecoder`` with the attention rules of its
``AttentionDataStruct`` (v1 config), for fixed-shape padded prompt tensors:

* **object queries** (101): Mask2Former queries; they attend only to each other, so generic
  results never depend on prompts.
* **grounding** (a referring phrase): 101 copies of the object queries plus the phrase's token
  embeddings; queries and tokens attend to each other (and to nothing else); the output is the
  query whose class embedding best matches the phrase.
* **spatial** (clicks, scribbles, boxes, masks): 3 queries per object, starting from object
  queries 0, 1, 2; at each layer they attend to that layer's *spatial tokens* (the level's
  features, projected by ``mask_sptial_embed``, sampled at the object's positive and negative
  prompt pixels, plus a learned positive/negative indicator) and to the object's memory slots;
  the output is the query whose mask embedding best matches the mean mask feature under the
  positive pixels.
* **reference region** (a region of another image, official "refimg"): the spatial tokens and
  the positive mean come from the reference image (``reference_prompt``, computed once per
  region) instead of this one; everything else is the spatial branch.
* **memory** (32 slots shared by the prompted objects, slot i -> object ``(i * c) // 32``):
  learned tokens whose cross-attention is restricted to the object's previous mask; they
  attend only to the slots of their own object.

Every object's rows are independent of every other object's, so the decoder runs objects
batched. Two exact shortcuts keep it cheap: each layer's attention masks are predicted at the
attention level's size directly (bilinear resizing is linear, so resizing the mask features
first gives the same masks), and full-resolution masks are made only for the outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import BLOCKED, MLP, CrossAttentionLayer, FFNLayer, SelfAttentionLayer
from .position import sine_position_embedding
from .prompt_tensors import OfficialPromptTensors

NUM_LEVELS = 3


def _allowed_bias(allowed: torch.Tensor) -> torch.Tensor:
    """bool (..., Nk) "may attend" -> additive bias; a row that may attend nowhere attends
    everywhere instead (the official rule for empty masks)."""
    allowed = allowed | ~allowed.any(dim=-1, keepdim=True)
    return torch.where(allowed, 0.0, BLOCKED)


class OfficialSEEMDecoder(nn.Module):
    """Args:
    lang_encoder: the language encoder (held here because the official checkpoints keep it
        under ``sem_seg_head.predictor.lang_encoder``).
    hidden_dim: width D (512); dim_proj: joint text space E (512); mask_dim: mask features (512).
    num_queries: object queries N (101); num_layers: decoder layers (9); num_heads: 8;
    ffn_dim: 2048; spatial_memories: memory slots M (32); spatial_queries: queries per
    prompted object (3).
    """

    def __init__(
        self,
        *,
        lang_encoder: nn.Module,
        hidden_dim: int = 512,
        dim_proj: int = 512,
        mask_dim: int = 512,
        num_queries: int = 101,
        num_layers: int = 9,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        spatial_memories: int = 32,
        spatial_queries: int = 3,
    ) -> None:
        super().__init__()
        self.num_queries = num_queries
        self.num_heads = num_heads
        self.spatial_memories = spatial_memories
        self.spatial_queries = spatial_queries
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(dim=hidden_dim, num_heads=num_heads) for _ in range(num_layers)
        )
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(dim=hidden_dim, num_heads=num_heads) for _ in range(num_layers)
        )
        self.transformer_ffn_layers = nn.ModuleList(
            FFNLayer(dim=hidden_dim, hidden=ffn_dim) for _ in range(num_layers)
        )
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.level_embed = nn.Embedding(NUM_LEVELS, hidden_dim)
        self.lang_encoder = lang_encoder
        self.mask_embed = MLP(in_dim=hidden_dim, hidden=hidden_dim, out_dim=mask_dim, num_layers=3)
        self.class_embed = nn.Parameter(torch.randn(hidden_dim, dim_proj) * 0.02)
        # (sic) the upstream spelling, kept so checkpoints load without renaming
        self.mask_sptial_embed = nn.ParameterList(
            nn.Parameter(torch.randn(hidden_dim, hidden_dim) * 0.02) for _ in range(NUM_LEVELS)
        )
        self.spatial_embed = nn.Embedding(spatial_memories, hidden_dim)
        self.spatial_featured = nn.Embedding(spatial_memories, hidden_dim)
        self.pn_indicator = nn.Embedding(2, hidden_dim)

    @property
    def num_layers(self) -> int:
        return len(self.transformer_cross_attention_layers)

    # ------------------------------------------------------------------ heads
    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., D) decoder outputs -> (class embeddings (..., E), mask embeddings (..., D))."""
        normed = self.decoder_norm(x)
        return normed @ self.class_embed, self.mask_embed(normed)

    def _attention_masks(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(B, ..., D) queries, (B, D, h, w) mask features at the attention level's size ->
        (B, ..., h*w) bool "may attend" (official: sigmoid(mask) >= 0.5)."""
        _, mask_embeds = self.heads(x)
        batch, dim = mask_embeds.shape[0], mask_embeds.shape[-1]
        flat = mask_embeds.reshape(batch, -1, dim)
        logits = torch.bmm(flat, features.flatten(2))
        return (logits.sigmoid() >= 0.5).reshape(*mask_embeds.shape[:-1], -1)

    # ------------------------------------------------------------------ per image
    def level_sources(self, levels: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each level's cross-attention values source (B, h*w, D) (features + level embedding)
        and its sine positions (1, h*w, D)."""
        out = []
        for index, level in enumerate(levels):
            h, w = level.shape[-2:]
            source = level.flatten(2).transpose(1, 2) + self.level_embed.weight[index]
            pos = sine_position_embedding(h, w, level.shape[1] // 2, device=level.device)
            out.append((source, pos.to(level.dtype).flatten(1).transpose(0, 1).unsqueeze(0)))
        return out

    def per_image(
        self, mask_features: torch.Tensor, levels: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Everything the decoder needs that depends on the image only, computed once per image
        (in ``encode``) instead of in every decode, where it was most of the arithmetic. Per
        level l (1/32, 1/16, 1/8):

        * cross-attention keys and values, (L_l, B, heads, h*w, d), for the L_l layers that
          attend to level l (layer i attends to level i % 3);
        * the mask features resized to the level, (B, D, h, w): each layer's attention masks
          are predicted on them (exact: bilinear resizing is linear, so this is the official
          resize of full-resolution masks);
        * the spatial-token map, (B, D, h, w): the level's features projected by
          ``mask_sptial_embed``, sampled at prompt pixels to make that layer's spatial tokens.

        Returned flat: keys_32, values_32, keys_16, values_16, keys_8, values_8, then the three
        resized mask features, then the three spatial-token maps."""
        attention: list[torch.Tensor] = []
        resized: list[torch.Tensor] = []
        spatial: list[torch.Tensor] = []
        for level, (source, pos) in enumerate(self.level_sources(levels)):
            layers = [
                self.transformer_cross_attention_layers[i].multihead_attn
                for i in range(level, self.num_layers, NUM_LEVELS)
            ]
            attention.append(torch.stack([a.project(source + pos, 1) for a in layers]))
            attention.append(torch.stack([a.project(source, 2) for a in layers]))
            batch, dim, h, w = levels[level].shape
            resized.append(
                F.interpolate(mask_features, size=(h, w), mode="bilinear", align_corners=False)
            )
            spatial.append(self._spatial_map(level, source, (batch, dim, h, w)))
        return attention + resized + spatial

    def _spatial_map(
        self, level: int, source: torch.Tensor, shape: tuple[int, int, int, int]
    ) -> torch.Tensor:
        """A level's spatial-token map (B, D, h, w): its source projected by
        ``mask_sptial_embed``."""
        projected = source @ self.mask_sptial_embed[level]  # (B, h*w, D)
        return projected.transpose(1, 2).reshape(shape)

    def reference_prompt(
        self,
        mask_features: torch.Tensor,
        levels: list[torch.Tensor],
        coords: torch.Tensor,
        valid: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A region of a *reference* image as the official "refimg" tokens.

        Args:
            mask_features, levels: the reference image's pixel-decoder outputs.
            coords: (B, S, 2) the region's pixels, x / W_in, y / H_in of the reference input.
            valid: (B, S).
        Returns:
            tokens (B, 3, S, D): per level, the level's spatial-token map sampled at the pixels
            plus the positive indicator (what a positive mask prompt gives on that image);
            mean (B, C): the mean mask feature under the valid pixels (-1 without any).
        """
        batch, samples = coords.shape[:2]
        grid = (2.0 * coords - 1.0).reshape(batch, 1, samples, 2)
        keep = valid > 0.5
        sampled = F.grid_sample(mask_features, grid, align_corners=True)[:, :, 0]  # (B, C, S)
        count = keep.sum(-1, keepdim=True)
        mean = (sampled * keep.unsqueeze(1)).sum(-1) / count.clamp(min=1)
        mean = torch.where(count > 0, mean, torch.full_like(mean, -1.0))
        tokens = []
        for level, (source, _) in enumerate(self.level_sources(levels)):
            batch_l, dim, h, w = levels[level].shape
            feature_map = self._spatial_map(level, source, (batch_l, dim, h, w))
            level_tokens = F.grid_sample(feature_map, grid, align_corners=True)[:, :, 0]
            tokens.append(level_tokens.transpose(1, 2) + self.pn_indicator.weight[0])
        return torch.stack(tokens, dim=1), mean

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        mask_features: torch.Tensor,
        levels: list[torch.Tensor],
        prompts: OfficialPromptTensors,
        per_image: list[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Decode one batch.

        Args:
            mask_features: (B, D, H, W) at 1/4 of the padded input.
            levels: the pixel decoder's three maps (B, D, h_l, w_l), 1/32, 1/16, 1/8.
            prompts: G prompted objects per image (see :class:`OfficialPromptTensors`).
            per_image: :meth:`per_image` of this image when already computed.
        Returns:
            ``object_masks`` (B, N, H, W) logits, ``object_embeds`` (B, N, E) class embeddings,
            ``group_masks`` (B, G, H, W), ``group_embeds`` (B, G, E), ``group_scores`` (B, G)
            (the logit of the mask's quality: its mean probability over the pixels it
            claims, as Mask2Former scores masks; the official model has no score), ``memory``
            (B, G, H, W): the chosen mask again, what the next round or frame passes back.
        """
        batch = mask_features.shape[0]
        groups = prompts.group_valid.shape[1]
        sizes = [tuple(level.shape[-2:]) for level in levels]
        if per_image is None:
            per_image = self.per_image(mask_features, levels)
        attention_kv = per_image[: 2 * NUM_LEVELS]
        level_features = per_image[2 * NUM_LEVELS : 3 * NUM_LEVELS]
        spatial_maps = per_image[3 * NUM_LEVELS :]

        state = _DecoderState.start(self, batch, groups, prompts, mask_features, spatial_maps)
        allowed = state.cross_allowed(self, level_features[0], prompts, sizes[0])
        for index in range(self.num_layers):
            level = index % NUM_LEVELS
            state.cross_attend(
                self.transformer_cross_attention_layers[index],
                attention_kv[2 * level][index // NUM_LEVELS],
                attention_kv[2 * level + 1][index // NUM_LEVELS],
                allowed,
            )
            state.self_attend(self.transformer_self_attention_layers[index], level)
            state.feed_forward(self.transformer_ffn_layers[index])
            if index < self.num_layers - 1:
                target = (index + 1) % NUM_LEVELS
                allowed = state.cross_allowed(self, level_features[target], prompts, sizes[target])
        return state.outputs(self, mask_features, prompts)


class _DecoderState:
    """The decoder's rows between layers: object queries, and per object its grounding
    queries + phrase tokens and its spatial queries + memory slots (+ this layer's spatial
    tokens, which are rebuilt from the features at every layer and never carried over)."""

    def __init__(self) -> None:
        self.objects = self.objects_pos = torch.empty(0)
        self.grounding = self.grounding_pos = torch.empty(0)
        self.phrase = self.phrase_pos = self.phrase_bias = torch.empty(0)
        self.spatial = self.spatial_pos = torch.empty(0)
        self.memory = self.memory_pos = torch.empty(0)
        self.level_tokens: list[torch.Tensor] = []
        self.spatial_token_valid = torch.empty(0)
        self.memory_valid = torch.empty(0)
        self.positive_mean = torch.empty(0)
        self.has_grounding = self.has_spatial = False
        self.batch = self.groups = 0

    # ------------------------------------------------------------------ setup
    @classmethod
    def start(
        cls,
        decoder: OfficialSEEMDecoder,
        batch: int,
        groups: int,
        prompts: OfficialPromptTensors,
        mask_features: torch.Tensor,
        spatial_maps: list[torch.Tensor],
    ) -> _DecoderState:
        state = cls()
        state.batch, state.groups = batch, groups
        n, dim = decoder.num_queries, mask_features.shape[1]
        queries = decoder.query_feat.weight
        queries_pos = decoder.query_embed.weight
        state.objects = queries.expand(batch, n, dim)
        state.objects_pos = queries_pos.unsqueeze(0)
        state.has_grounding = groups > 0 and prompts.text_tokens.shape[2] > 0
        state.has_spatial = groups > 0 and prompts.spatial_coords.shape[3] > 0
        if state.has_grounding:
            state.grounding = queries.expand(batch, groups, n, dim)
            state.grounding_pos = queries_pos
            state.phrase = prompts.text_tokens
            state.phrase_pos = prompts.text_tokens
            state.phrase_bias = torch.where(prompts.text_token_valid > 0.5, 0.0, BLOCKED)
        if state.has_spatial:
            k = decoder.spatial_queries
            state.spatial = queries[:k].expand(batch, groups, k, dim)
            state.spatial_pos = queries_pos[:k]
            m = decoder.spatial_memories
            state.memory = decoder.spatial_featured.weight.expand(batch, groups, m, dim)
            state.memory_pos = decoder.spatial_embed.weight
            state.memory_valid = prompts.memory_slots > 0.5  # (B, G, M)
            state._sample_prompt_pixels(decoder, prompts, mask_features, spatial_maps)
        return state

    def _sample_prompt_pixels(
        self,
        decoder: OfficialSEEMDecoder,
        prompts: OfficialPromptTensors,
        mask_features: torch.Tensor,
        spatial_maps: list[torch.Tensor],
    ) -> None:
        """Spatial tokens of every level and the mean mask feature under the positive pixels."""
        batch, groups = self.batch, self.groups
        coords = prompts.spatial_coords  # (B, G, 2, S, 2) x, y = pixel / padded size
        valid = prompts.spatial_valid > 0.5  # (B, G, 2, S)
        samples = coords.shape[3]
        # the official point_sample: grid_sample(align_corners=True) at 2 * coord - 1
        grid = (2.0 * coords - 1.0).reshape(batch, 1, groups * 2 * samples, 2)
        dim = mask_features.shape[1]

        positive_grid = (2.0 * coords[:, :, 0] - 1.0).reshape(batch, 1, groups * samples, 2)
        positive = F.grid_sample(mask_features, positive_grid, align_corners=True)
        positive = positive.reshape(batch, dim, groups, samples)
        positive_valid = valid[:, :, 0].unsqueeze(1)  # (B, 1, G, S)
        count = positive_valid.sum(-1)
        mean = (positive * positive_valid).sum(-1) / count.clamp(min=1)
        # an object without positive pixels gets the official padding value, -1
        mean = torch.where(count > 0, mean, torch.full_like(mean, -1.0))
        self.positive_mean = mean.transpose(1, 2)  # (B, G, D)

        indicator = decoder.pn_indicator.weight  # (2, D): positive, negative
        self.level_tokens = []
        for feature_map in spatial_maps:
            sampled = F.grid_sample(feature_map, grid, align_corners=True)
            tokens = sampled.reshape(batch, dim, groups, 2, samples).permute(0, 2, 3, 4, 1)
            tokens = tokens + indicator[None, None, :, None, :]
            self.level_tokens.append(tokens.reshape(batch, groups, 2 * samples, dim))
        self.spatial_token_valid = valid.reshape(batch, groups, 2 * samples)
        if prompts.ref_tokens.shape[3] > 0:
            self._use_references(prompts)

    def _use_references(self, prompts: OfficialPromptTensors) -> None:
        """Objects prompted by a region of another image (official "refimg"): that image's
        tokens replace the ones sampled here, its mean mask feature the positive mean. They
        are appended as more token rows and this image's rows are masked off, which gives
        them no weight (attention does not depend on the order of its keys)."""
        use = (prompts.ref_valid > 0.5).unsqueeze(-1)  # (B, G, 1)
        self.positive_mean = torch.where(use, prompts.ref_positive_mean, self.positive_mean)
        self.level_tokens = [
            torch.cat([tokens, prompts.ref_tokens[:, :, level]], dim=2)
            for level, tokens in enumerate(self.level_tokens)
        ]
        self.spatial_token_valid = torch.cat(
            [self.spatial_token_valid & ~use, (prompts.ref_token_valid > 0.5) & use], dim=2
        )

    # ------------------------------------------------------------------ masks
    def cross_allowed(
        self,
        decoder: OfficialSEEMDecoder,
        features: torch.Tensor,
        prompts: OfficialPromptTensors,
        size: tuple[int, int],
    ) -> dict[str, torch.Tensor]:
        """Where each row may look at the next attention level: its own predicted mask, and
        for memory slots the object's previous mask."""
        allowed = {"objects": decoder._attention_masks(self.objects, features)}
        if self.has_grounding:
            allowed["grounding"] = decoder._attention_masks(self.grounding, features)
        if self.has_spatial:
            allowed["spatial"] = decoder._attention_masks(self.spatial, features)
            previous = F.interpolate(
                prompts.prev_mask, size=size, mode="bilinear", align_corners=False
            )
            allowed["memory"] = (previous.sigmoid() >= 0.5).flatten(2)  # (B, G, h*w)
        return allowed

    # ------------------------------------------------------------------ layers
    def cross_attend(
        self,
        layer: CrossAttentionLayer,
        keys: torch.Tensor,
        values: torch.Tensor,
        allowed: dict[str, torch.Tensor],
    ) -> None:
        """Masked cross-attention of every row to one level's projected keys and values
        (B, heads, h*w, d)."""
        attention = layer.multihead_attn
        b, g = self.batch, self.groups

        def attend(rows: torch.Tensor, pos: torch.Tensor, rows_allowed: torch.Tensor):
            flat = rows.reshape(b, -1, rows.shape[-1])
            flat_pos = pos.expand_as(rows).reshape(b, -1, rows.shape[-1])
            bias = _allowed_bias(rows_allowed.reshape(b, flat.shape[1], -1)).unsqueeze(1)
            out = attention.attend(attention.project(flat + flat_pos, 0), keys, values, bias)
            return layer.norm(flat + out).reshape(rows.shape)

        self.objects = attend(self.objects, self.objects_pos, allowed["objects"])
        if self.has_grounding:
            self.grounding = attend(self.grounding, self.grounding_pos, allowed["grounding"])
        if self.has_spatial:
            self.spatial = attend(self.spatial, self.spatial_pos, allowed["spatial"])
            m = self.memory.shape[2]
            memory_allowed = allowed["memory"].unsqueeze(2).expand(b, g, m, -1)
            self.memory = attend(self.memory, self.memory_pos, memory_allowed)

    def self_attend(self, layer: SelfAttentionLayer, level: int) -> None:
        attention = layer.self_attn

        def attend(rows, rows_pos, keys, keys_pos, bias):
            q = attention.project(rows + rows_pos, 0)
            k = attention.project(keys + keys_pos, 1)
            v = attention.project(keys, 2)
            return layer.norm(rows + attention.attend(q, k, v, bias))

        self.objects = attend(self.objects, self.objects_pos, self.objects, self.objects_pos, None)
        b, g = self.batch, self.groups
        if self.has_grounding:
            # grounding queries and phrase tokens attend to each other, per object
            n, length, dim = self.grounding.shape[2], self.phrase.shape[2], self.grounding.shape[-1]
            rows = torch.cat([self.grounding, self.phrase], dim=2).reshape(b * g, n + length, dim)
            rows_pos = torch.cat(
                [self.grounding_pos.expand(b, g, n, dim), self.phrase_pos], dim=2
            ).reshape(b * g, n + length, dim)
            key_bias = torch.cat(
                [self.phrase_bias.new_zeros(b, g, n), self.phrase_bias], dim=2
            ).reshape(b * g, 1, 1, n + length)
            out = attend(rows, rows_pos, rows, rows_pos, key_bias).reshape(b, g, n + length, dim)
            self.grounding, self.phrase = out[:, :, :n], out[:, :, n:]
        if self.has_spatial:
            self._spatial_self_attend(attend, level)

    def _spatial_self_attend(self, attend, level: int) -> None:
        """Spatial queries see their object's queries, tokens and memory slots; memory slots
        see their object's slots. Token rows are not computed: every layer rebuilds them."""
        b, g = self.batch, self.groups
        k, m, dim = self.spatial.shape[2], self.memory.shape[2], self.spatial.shape[-1]
        tokens = self.level_tokens[level]  # (B, G, T, D); their position embedding is themselves
        t = tokens.shape[2]
        rows = torch.cat([self.spatial, self.memory], dim=2).reshape(b * g, k + m, dim)
        rows_pos = torch.cat(
            [self.spatial_pos.expand(b, g, k, dim), self.memory_pos.expand(b, g, m, dim)], dim=2
        ).reshape(b * g, k + m, dim)
        keys = torch.cat([self.spatial, tokens, self.memory], dim=2).reshape(b * g, k + t + m, dim)
        keys_pos = torch.cat(
            [self.spatial_pos.expand(b, g, k, dim), tokens, self.memory_pos.expand(b, g, m, dim)],
            dim=2,
        ).reshape(b * g, k + t + m, dim)

        memory_valid = self.memory_valid  # (B, G, M)
        query_allowed = torch.cat(
            [
                torch.ones(b, g, k, dtype=torch.bool, device=tokens.device),
                self.spatial_token_valid,
                memory_valid,
            ],
            dim=2,
        )  # (B, G, K + T + M)
        slots = torch.arange(m, device=tokens.device)
        eye = slots[:, None] == slots[None, :]  # (not torch.eye: ONNX Runtime lacks bool EyeLike)
        memory_allowed = memory_valid.unsqueeze(2) | eye  # slot rows: own object's slots
        memory_rows = torch.cat(
            [
                torch.zeros(b, g, m, k + t, dtype=torch.bool, device=tokens.device),
                memory_allowed,
            ],
            dim=3,
        )  # (B, G, M, K + T + M)
        allowed = torch.cat([query_allowed.unsqueeze(2).expand(b, g, k, -1), memory_rows], dim=2)
        bias = torch.where(allowed, 0.0, BLOCKED).reshape(b * g, 1, k + m, k + t + m)
        out = attend(rows, rows_pos, keys, keys_pos, bias).reshape(b, g, k + m, dim)
        self.spatial, self.memory = out[:, :, :k], out[:, :, k:]

    def feed_forward(self, layer: FFNLayer) -> None:
        self.objects = layer(self.objects)
        if self.has_grounding:
            self.grounding = layer(self.grounding)
            self.phrase = layer(self.phrase)
        if self.has_spatial:
            self.spatial = layer(self.spatial)
            self.memory = layer(self.memory)

    # ------------------------------------------------------------------ outputs
    def outputs(
        self,
        decoder: OfficialSEEMDecoder,
        mask_features: torch.Tensor,
        prompts: OfficialPromptTensors,
    ) -> dict[str, torch.Tensor]:
        b, g = self.batch, self.groups
        object_embeds, object_mask_embeds = decoder.heads(self.objects)
        object_masks = torch.einsum("bqc,bchw->bqhw", object_mask_embeds, mask_features)
        dim_e = object_embeds.shape[-1]
        group_embeds = mask_features.new_zeros(b, g, dim_e)
        group_mask_embeds = mask_features.new_zeros(b, g, mask_features.shape[1])
        if self.has_grounding:
            embeds, mask_embeds = self._choose_grounding(decoder, prompts)
            use = (prompts.text_valid > 0.5).unsqueeze(-1)
            group_embeds = torch.where(use, embeds, group_embeds)
            group_mask_embeds = torch.where(use, mask_embeds, group_mask_embeds)
        if self.has_spatial:
            embeds, mask_embeds = self._choose_spatial(decoder)
            has_prompt = self.spatial_token_valid.any(-1) | self.memory_valid.any(-1)
            use = has_prompt.unsqueeze(-1)
            group_embeds = torch.where(use, embeds, group_embeds)
            group_mask_embeds = torch.where(use, mask_embeds, group_mask_embeds)
        group_masks = torch.einsum("bgc,bchw->bghw", group_mask_embeds, mask_features)
        group_masks = group_masks * (prompts.group_valid > 0.5)[..., None, None]
        group_scores = _mask_quality_logit(group_masks)
        return {
            "object_masks": object_masks,
            "object_embeds": object_embeds,
            "group_masks": group_masks,
            "group_embeds": group_embeds,
            "group_scores": group_scores,
            "memory": group_masks,
        }

    def _choose_spatial(self, decoder: OfficialSEEMDecoder):
        """The spatial query whose mask embedding best matches the mean mask feature under
        the object's positive pixels (official ``update_spatial_results``)."""
        embeds, mask_embeds = decoder.heads(self.spatial)  # (B, G, K, E), (B, G, K, D)
        logits = (mask_embeds * self.positive_mean.unsqueeze(2)).sum(-1)  # (B, G, K)
        return _take_best(logits, embeds, mask_embeds)

    def _choose_grounding(self, decoder: OfficialSEEMDecoder, prompts: OfficialPromptTensors):
        """The grounding query whose class embedding best matches the phrase (official
        ``evaluate_grounding``: cosine similarity, scaled by the language encoder's
        temperature)."""
        embeds, mask_embeds = decoder.heads(self.grounding)  # (B, G, N, E)
        unit = embeds / (embeds.norm(dim=-1, keepdim=True) + 1e-7)
        phrase = prompts.text_embed
        phrase = phrase / (phrase.norm(dim=-1, keepdim=True) + 1e-7)
        scale = decoder.lang_encoder.logit_scale.exp().clamp(max=100)
        logits = scale * (unit * phrase.unsqueeze(2)).sum(-1)
        return _take_best(logits, embeds, mask_embeds)


def _take_best(
    logits: torch.Tensor, embeds: torch.Tensor, mask_embeds: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, G, Q) selection logits -> the best query's class and mask embeddings."""
    best = logits.argmax(dim=-1, keepdim=True).unsqueeze(-1)  # (B, G, 1, 1)
    chosen = torch.gather(embeds, 2, best.expand(-1, -1, 1, embeds.shape[-1]))
    chosen_mask = torch.gather(mask_embeds, 2, best.expand(-1, -1, 1, mask_embeds.shape[-1]))
    return chosen[:, :, 0], chosen_mask[:, :, 0]


def _mask_quality_logit(masks: torch.Tensor) -> torch.Tensor:
    """(B, G, H, W) mask logits -> (B, G) logit of the mean probability over the pixels each
    mask claims (an empty mask scores as nearly 0)."""
    claimed = (masks > 0).to(masks.dtype)
    area = claimed.sum(dim=(-2, -1))
    quality = (masks.sigmoid() * claimed).sum(dim=(-2, -1)) / area.clamp(min=1.0)
    quality = quality.clamp(1e-6, 1 - 1e-6)
    return torch.log(quality) - torch.log1p(-quality)
