"""Text prompts -> embeddings in the joint visual-semantic space, via an open_clip text tower."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .config import TextConfig
from .weights import WeightsError, load_state_dict_file

FULL_VOCAB = 49408  # open_clip's BPE vocabulary
START_OF_TEXT = 49406
END_OF_TEXT = 49407


class TextEncoder(nn.Module):
    """open_clip's text transformer plus its BPE tokenizer; output is L2-normalised.

    Args:
        config: tower size (to start from a pretrained open_clip tower, see
            :func:`load_open_clip_text_tower`).
    """

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        from open_clip.tokenizer import SimpleTokenizer
        from open_clip.transformer import TextTransformer

        self.context_length = config.context_length
        self.vocab_rows = config.vocab_size
        self.tokenizer = SimpleTokenizer(context_length=config.context_length)
        self.tower = TextTransformer(
            context_length=config.context_length,
            vocab_size=config.vocab_size,
            width=config.width,
            heads=config.heads,
            layers=config.layers,
            output_dim=config.embed_dim,
        )

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """texts -> (N, context_length) token ids (longer texts are truncated, keeping EOT)."""
        return self.tokenizer(texts, context_length=self.context_length)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (N, context_length) int64 open_clip ids -> (N, embed_dim) unit vectors."""
        tower = self.tower
        x = tower.token_embedding(self.table_rows(tokens)) + tower.positional_embedding
        x = tower.transformer(x, attn_mask=tower.attn_mask)
        x = tower.ln_final(x)
        # the end-of-text token has the largest id: its position holds the sentence summary
        pooled = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        return F.normalize(pooled @ tower.text_projection, dim=-1)

    def table_rows(self, tokens: torch.Tensor) -> torch.Tensor:
        """Map open_clip token ids to rows of our embedding table.

        A full-size table (49,408 rows, as in pretrained towers) is used as is. Small models hash
        the BPE ids into fewer rows (padding, start and end keep their own rows): the table is
        most of a small text tower's size, and a small training vocabulary uses few rows.
        """
        rows = self.vocab_rows
        if rows >= FULL_VOCAB:
            return tokens
        hashed = 1 + tokens % (rows - 3)
        hashed = torch.where(tokens == START_OF_TEXT, torch.full_like(tokens, rows - 2), hashed)
        hashed = torch.where(tokens == END_OF_TEXT, torch.full_like(tokens, rows - 1), hashed)
        return torch.where(tokens == 0, torch.zeros_like(tokens), hashed)

    def encode(self, texts: list[str]) -> torch.Tensor:
        device = next(self.parameters()).device
        return self(self.tokenize(texts).to(device))


def load_open_clip_text_tower(tower: nn.Module, path: Path) -> None:
    """Copy the text weights of an open_clip CLIP checkpoint into ``tower``.

    CLIP checkpoints keep text keys at the top level (``token_embedding.weight``,
    ``transformer.resblocks.*``, ``ln_final.*``, ``text_projection``, ``positional_embedding``)
    next to ``visual.*``; CustomTextCLIP puts them under ``text.``. Longer positional tables are
    cut to our context length (the first positions are the ones a short prompt uses).
    """
    state = load_state_dict_file(path)
    own = tower.state_dict()
    picked: dict[str, torch.Tensor] = {}
    for key in own:
        for candidate in (key, f"text.{key}"):
            if candidate in state:
                picked[key] = state[candidate]
                break
    missing = sorted(set(own) - set(picked) - {"attn_mask"})
    if missing:
        raise WeightsError(f"{path}: not an open_clip text tower; missing {missing[:4]}")
    pos = picked["positional_embedding"]
    wanted = own["positional_embedding"].shape[0]
    if pos.shape[0] < wanted:
        raise WeightsError(f"{path}: text context {pos.shape[0]} shorter than configured {wanted}")
    picked["positional_embedding"] = pos[:wanted]
    for key, value in picked.items():
        if value.shape != own[key].shape:
            raise WeightsError(
                f"{path}: {key} has shape {tuple(value.shape)}, config expects "
                f"{tuple(own[key].shape)}; set the text config to the checkpoint's size"
            )
    tower.load_state_dict(picked, strict=False)
