"""The SEEM decoder: object queries and prompt tokens refined against the image features.

Token layout (per image)::

    [ N object queries | group 0: K memory, P visual, 1 text, 1 reference | group 1: ... ]

Each prompted object is a *group*. Its first memory token is the group's output query: it
produces the object's mask, semantic embedding and score. Attention rules (SEEM, Fig. 3):

* object queries attend to object queries only, so generic results never depend on prompts;
* a group's tokens attend to the object queries and to the valid tokens of their own group,
  never to other groups, so objects decoded together equal objects decoded one by one;
* memory tokens cross-attend only inside the object's previous mask (mask-guided memory);
  object queries and memory tokens without a previous mask use Mask2Former's masked attention
  (their own predicted mask from the previous layer); prompt tokens attend everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import MLP, Attention, FeedForward
from .click_distance import ClickDistance
from .position import sine_position_map
from .prompt_tensors import PromptTensors
from .prompt_to_pixel import PromptToPixel
from .query_grounding import QueryGrounding


class DecoderLayer(nn.Module):
    """Masked cross-attention -> self-attention -> FFN, each residual + post-LayerNorm."""

    def __init__(self, *, dim: int, num_heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.cross_attn = Attention(dim=dim, num_heads=num_heads)
        # image positions added to the cross-attention values, so tokens carry where they
        # looked and not only what they saw ("the leftmost ring" compares positions)
        self.value_position = nn.Linear(dim, dim)
        nn.init.zeros_(self.value_position.weight)
        nn.init.zeros_(self.value_position.bias)
        self.cross_norm = nn.LayerNorm(dim)
        self.self_attn = Attention(dim=dim, num_heads=num_heads)
        self.self_norm = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim=dim, hidden=ffn_dim)
        self.ffn_norm = nn.LayerNorm(dim)

    def forward(
        self,
        tokens: torch.Tensor,
        token_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        guided_allowed: torch.Tensor,
        num_queries: int,
        memory_tokens: int,
        group_key_valid: torch.Tensor,
    ) -> torch.Tensor:
        """tokens (B, T, D) = N object queries then G groups of Tg tokens, each group's first
        ``memory_tokens`` being memory; group_key_valid (B, G, Tg) marks which group tokens
        exist (others are padding); guided_allowed (B, N + G * K, h*w) is where the object
        queries and memory tokens may look (prompt tokens look everywhere)."""
        x = tokens
        attended = self._cross_attention(
            x + token_pos,
            memory + memory_pos,
            memory + self.value_position(memory_pos),
            guided_allowed,
            num_queries,
            memory_tokens,
            group_key_valid.shape[1],
        )
        x = self.cross_norm(x + attended)
        x = self.self_norm(
            x + self._grouped_self_attention(x, token_pos, num_queries, group_key_valid)
        )
        return self.ffn_norm(x + self.ffn(x))

    def _cross_attention(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        guided_allowed: torch.Tensor,
        n: int,
        k: int,
        groups: int,
    ) -> torch.Tensor:
        """Masked cross-attention with the rows split: object queries and memory tokens under
        their masks, prompt tokens unmasked. Same result as one masked T-row attention whose
        prompt rows allow everything, without adding a bias to those rows."""
        batch, _, dim = queries.shape
        group_q = queries[:, n:].reshape(batch, groups, -1, dim)
        group_len = group_q.shape[2]
        guided = torch.cat([queries[:, :n], group_q[:, :, :k].flatten(1, 2)], dim=1)
        free = group_q[:, :, k:].flatten(1, 2)
        guided_out, free_out = self.cross_attn.attend_many(
            [guided, free], keys, values, [guided_allowed, None]
        )
        group_out = torch.cat(
            [
                guided_out[:, n:].reshape(batch, groups, k, dim),
                free_out.reshape(batch, groups, group_len - k, dim),
            ],
            dim=2,
        )
        return torch.cat([guided_out[:, :n], group_out.flatten(1, 2)], dim=1)

    def _grouped_self_attention(
        self, x: torch.Tensor, pos: torch.Tensor, n: int, group_key_valid: torch.Tensor
    ) -> torch.Tensor:
        """SEEM's self-attention rules, computed block by block instead of one masked T x T:
        object queries attend to object queries; each group attends to the object queries and
        to its own valid tokens. Same result as the masked form, O(G * Tg * (N + Tg)) work."""
        batch, _, dim = x.shape
        groups, group_len = group_key_valid.shape[1], group_key_valid.shape[2]
        q = x + pos
        objects, object_q = x[:, :n], q[:, :n]
        object_out = self.self_attn(object_q, object_q, objects, None)
        group_x = x[:, n:].reshape(-1, group_len, dim)
        group_q = q[:, n:].reshape(-1, group_len, dim)

        def per_group(t: torch.Tensor) -> torch.Tensor:
            return t.unsqueeze(1).expand(batch, groups, n, dim).reshape(-1, n, dim)

        keys = torch.cat([per_group(object_q), group_q], dim=1)
        values = torch.cat([per_group(objects), group_x], dim=1)
        own = (group_key_valid > 0.5).reshape(-1, 1, group_len).expand(-1, group_len, group_len)
        everyone = torch.ones(own.shape[0], group_len, n, dtype=torch.bool, device=x.device)
        group_out = self.self_attn(group_q, keys, values, torch.cat([everyone, own], dim=2))
        return torch.cat([object_out, group_out.reshape(batch, -1, dim)], dim=1)


class SEEMDecoder(nn.Module):
    """Args:
    dim: model width D.
    embed_dim: joint visual-semantic space width E (= text embedding width).
    num_queries: N generic object queries.
    num_layers: decoder layers, cycling over the 1/32, 1/16, 1/8 feature levels so that the
        last layer attends the finest (:meth:`level_of_layer`).
    num_heads, ffn_dim: attention heads and feed-forward width.
    memory_tokens: K memory tokens per prompted object.
    num_levels: image feature levels the layers cycle over.
    prompt_to_pixel_heads: heads of the prompt-to-pixel attention (``prompt_to_pixel.py``).
    click_distance_hidden: width of the click-distance head (``click_distance.py``); 0 for
        none (weights trained before it).
    grounding_hidden: width of the query-grounding head (``query_grounding.py``); 0 for none
        (no ``group_grounding`` output).
    """

    def __init__(
        self,
        *,
        dim: int,
        embed_dim: int,
        num_queries: int,
        num_layers: int,
        num_heads: int,
        ffn_dim: int,
        memory_tokens: int,
        num_levels: int = 3,
        prompt_to_pixel_heads: int = 2,
        click_distance_hidden: int = 0,
        grounding_hidden: int = 0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.num_queries = num_queries
        self.memory_tokens = memory_tokens
        self.num_levels = num_levels
        self.query_feat = nn.Parameter(torch.randn(num_queries, dim) * 0.02)
        self.query_pos = nn.Parameter(torch.randn(num_queries, dim) * 0.02)
        self.memory_embed = nn.Parameter(torch.randn(memory_tokens, dim) * 0.02)
        self.memory_pos = nn.Parameter(torch.randn(memory_tokens, dim) * 0.02)
        self.memory_carry = nn.Linear(dim, dim)
        self.text_proj = nn.Linear(embed_dim, dim)
        self.text_type = nn.Parameter(torch.randn(dim) * 0.02)
        self.level_embed = nn.Parameter(torch.randn(num_levels, dim) * 0.02)
        self.layers = nn.ModuleList(
            DecoderLayer(dim=dim, num_heads=num_heads, ffn_dim=ffn_dim) for _ in range(num_layers)
        )
        self.out_norm = nn.LayerNorm(dim)
        self.mask_embed = MLP([dim, dim, dim, dim])
        # pixel positions added to the mask features the output queries are matched against,
        # so a mask can say "this one, here" and not only "things that look like this"
        self.mask_position = nn.Linear(dim, dim)
        nn.init.zeros_(self.mask_position.weight)
        nn.init.zeros_(self.mask_position.bias)
        self.semantic = nn.Linear(dim, embed_dim)
        self.score = MLP([dim, dim, 1])
        # prompted objects' final masks: pixels attend to the object's prompt tokens
        self.prompt_to_pixel = PromptToPixel(dim=dim, num_heads=prompt_to_pixel_heads)
        # ... and then their clicks, as distances (where a negative click says "not here")
        self.click_distance = (
            ClickDistance(hidden=click_distance_hidden) if click_distance_hidden > 0 else None
        )
        # and, for phrases, which generic query answers them
        self.grounding = (
            QueryGrounding(dim=dim, embed_dim=embed_dim, hidden=grounding_hidden)
            if grounding_hidden > 0
            else None
        )

    # ----------------------------------------------------------------------------- heads
    def mask_logits(self, outputs: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """outputs (B, M, D), features (B, D, h, w) -> mask logits (B, M, h, w)."""
        return torch.einsum("bmd,bdhw->bmhw", self.mask_embed(self.out_norm(outputs)), features)

    def predict(
        self, outputs: torch.Tensor, mask_features: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """outputs (B, M, D) -> mask logits (B, M, h, w), unit embeddings (B, M, E), scores."""
        x = self.out_norm(outputs)
        masks = torch.einsum("bmd,bdhw->bmhw", self.mask_embed(x), mask_features)
        embeds = F.normalize(self.semantic(x), dim=-1)
        scores = self.score(x).squeeze(-1)
        return {"masks": masks, "embeds": embeds, "scores": scores}

    # ----------------------------------------------------------------------------- helpers
    def _group_tokens(
        self, visual_tokens: torch.Tensor, prompts: PromptTensors
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> tokens (B, G, Tg, D), positions (B, G, Tg, D), key validity (B, G, Tg)."""
        batch, groups, slots, dim = visual_tokens.shape
        k = self.memory_tokens
        carried = (
            self.memory_carry(prompts.prev_memory) * prompts.prev_memory_valid[..., None, None]
        )
        memory = self.memory_embed.expand(batch, groups, k, dim) + carried
        text = (self.text_proj(prompts.text_embed) + self.text_type).unsqueeze(2)
        ref = prompts.ref_token.unsqueeze(2)
        tokens = torch.cat([memory, visual_tokens, text, ref], dim=2)
        pos = torch.cat(
            [
                self.memory_pos.expand(batch, groups, k, dim),
                torch.zeros(
                    batch, groups, slots + 2, dim, dtype=tokens.dtype, device=tokens.device
                ),
            ],
            dim=2,
        )
        group = prompts.group_valid
        valid = torch.cat(
            [
                group.unsqueeze(-1).expand(batch, groups, k),
                prompts.visual_valid * group.unsqueeze(-1),
                (prompts.text_valid * group).unsqueeze(-1),
                (prompts.ref_valid * group).unsqueeze(-1),
            ],
            dim=2,
        )
        return tokens, pos, valid

    @staticmethod
    def _to_level(mask: torch.Tensor, size: tuple[int, int], threshold: float) -> torch.Tensor:
        """(B, M, h, w) map -> (B, M, h', w') bool: any pixel above threshold in each cell."""
        factor = mask.shape[-1] // size[1]
        if factor > 1:
            mask = F.max_pool2d(mask, kernel_size=factor, stride=factor)
        return mask > threshold

    def _cross_allowed(
        self, predicted: torch.Tensor, prompts: PromptTensors, size: tuple[int, int]
    ) -> torch.Tensor:
        """(B, N + G * K, h*w) which image positions the object queries and each group's K
        memory tokens may attend to at this level (prompt tokens may attend anywhere)."""
        n, k = self.num_queries, self.memory_tokens
        batch, groups = predicted.shape[0], prompts.num_groups
        pred_allowed = self._to_level(predicted.detach(), size, 0.0).flatten(2)  # B, N+G, hw
        # a row with nothing allowed would be undefined: let it see the whole image instead
        pred_allowed = pred_allowed | ~pred_allowed.any(-1, keepdim=True)
        prev_allowed = self._to_level(prompts.prev_mask, size, 0.5).flatten(2)  # B, G, hw
        use_prev = (prompts.prev_mask_valid > 0.5) & prev_allowed.any(-1)
        group_allowed = torch.where(use_prev.unsqueeze(-1), prev_allowed, pred_allowed[:, n:])
        hw = size[0] * size[1]
        memory_rows = group_allowed.unsqueeze(2).expand(batch, groups, k, hw).flatten(1, 2)
        return torch.cat([pred_allowed[:, :n], memory_rows], dim=1)

    # ----------------------------------------------------------------------------- forward
    def forward(
        self,
        mask_features: torch.Tensor,
        levels: list[torch.Tensor],
        visual_tokens: torch.Tensor,
        prompts: PromptTensors,
        *,
        with_aux: bool = False,
    ) -> dict[str, torch.Tensor | list[dict[str, torch.Tensor]]]:
        """Decode one batch.

        Args:
            mask_features: (B, D, h, w) at 1/4 of the input.
            levels: three (B, D, h_l, w_l) maps, coarse to fine.
            visual_tokens: (B, G, P, D) from the visual sampler.
            prompts: the rest of the prompt inputs.
            with_aux: also return every layer's predictions (deep supervision).
        Returns:
            ``object_masks`` (B, N, h, w), ``object_embeds`` (B, N, E), ``object_scores`` (B, N),
            ``group_masks`` (B, G, h, w), ``group_embeds`` (B, G, E), ``group_scores`` (B, G),
            ``memory`` (B, G, K, D); ``group_grounding`` (B, G, N) with the query-grounding
            head; and ``aux`` (list of dicts) when ``with_aux``.
        """
        batch = mask_features.shape[0]
        n, k = self.num_queries, self.memory_tokens
        h, w = mask_features.shape[-2:]
        pixel_pos = sine_position_map(h, w, self.dim, mask_features.device)  # D, h, w
        offset = self.mask_position(pixel_pos.flatten(1).transpose(0, 1))  # hw, D
        mask_features = mask_features + offset.transpose(0, 1).reshape(1, self.dim, h, w)
        group_tokens, group_pos, group_valid = self._group_tokens(visual_tokens, prompts)
        groups, group_len = group_tokens.shape[1], group_tokens.shape[2]
        tokens = torch.cat(
            [self.query_feat.expand(batch, n, self.dim), group_tokens.flatten(1, 2)], 1
        )
        token_pos = torch.cat(
            [self.query_pos.expand(batch, n, self.dim), group_pos.flatten(1, 2)], 1
        )

        sources = []
        for index, level in enumerate(levels):
            level_h, level_w = level.shape[-2:]
            pos = sine_position_map(level_h, level_w, self.dim, level.device)
            src = level.flatten(2).transpose(1, 2) + self.level_embed[index]
            sources.append((src, pos.flatten(1).transpose(0, 1).unsqueeze(0), (level_h, level_w)))

        def outputs_of(x: torch.Tensor) -> torch.Tensor:
            group_part = x[:, n:].reshape(batch, groups, group_len, self.dim)
            return torch.cat([x[:, :n], group_part[:, :, 0]], dim=1)

        # the masks that restrict each layer's cross-attention, predicted at half the mask
        # resolution: the finest level they restrict is 1/8 of the input, and the mask head is
        # linear in the features, so these are the full masks average-pooled
        coarse_features = F.avg_pool2d(mask_features, 2)
        guide = self.mask_logits(outputs_of(tokens), coarse_features)
        aux: list[dict[str, torch.Tensor]] = []
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            src, pos, size = sources[self.level_of_layer(index)]
            guided_allowed = self._cross_allowed(guide, prompts, size)
            tokens = layer(tokens, token_pos, src, pos, guided_allowed, n, k, group_valid)
            if index < last:
                outputs = outputs_of(tokens)
                if with_aux:
                    aux.append(self._split(self.predict(outputs, mask_features), n))
                guide = self.mask_logits(outputs, coarse_features)
        prediction = self.predict(outputs_of(tokens), mask_features)

        # prompted objects: pixels attend to the object's prompt tokens, at half resolution
        # (the correction is smooth) and upsampled
        group_part = tokens[:, n:].reshape(batch, groups, group_len, self.dim)
        pooled_pos = sine_position_map(h // 2, w // 2, self.dim, mask_features.device)
        group_embeds = self.mask_embed(self.out_norm(group_part[:, :, 0]))
        correction = self.prompt_to_pixel(
            group_embeds, coarse_features, pooled_pos, group_part, group_valid
        )
        correction = F.interpolate(correction, size=(h, w), mode="bilinear", align_corners=False)
        masks = prediction["masks"]
        group_masks = masks[:, n:] + correction
        if self.click_distance is not None:
            group_masks = group_masks + self.click_distance(
                group_masks,
                prompts.visual_coords,
                prompts.visual_sample_valid,
                prompts.visual_kind,
                prompts.visual_positive,
                prompts.visual_valid,
            )
        prediction["masks"] = torch.cat([masks[:, :n], group_masks], dim=1)
        result: dict[str, torch.Tensor | list[dict[str, torch.Tensor]]] = dict(
            self._split(prediction, n)
        )
        result["memory"] = group_part[:, :, :k]
        if self.grounding is not None:
            result["group_grounding"] = self.grounding(
                self.out_norm(group_part[:, :, 0]),
                self.out_norm(tokens[:, :n]),
                group_masks,
                masks[:, :n],
                prompts.text_embed * prompts.text_valid.unsqueeze(-1),
                prediction["embeds"][:, :n],
            )
        if with_aux:
            result["aux"] = aux
        return result

    def level_of_layer(self, index: int) -> int:
        """The feature level (0 = coarsest) decoder layer ``index`` attends to.

        Layers cycle coarse to fine and the cycle is aligned so the *last* layer attends the
        finest level: with as many layers as levels (or a multiple) that is the plain cycle
        32, 16, 8, ...; a decoder with fewer layers drops the coarsest levels, not the 1/8
        one on which small objects' shapes are told apart.
        """
        return (index - len(self.layers)) % self.num_levels

    @staticmethod
    def _split(prediction: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
        out = {}
        for key, value in prediction.items():
            out[f"object_{key}"] = value[:, :n]
            out[f"group_{key}"] = value[:, n:]
        return out
