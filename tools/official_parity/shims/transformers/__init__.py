"""Stand-in for HF ``CLIPTokenizer`` ('openai/clip-vit-base-patch32'), built on open_clip.

The official language encoder calls ``tokenizer(texts, padding='max_length', truncation=True,
max_length=77, return_tensors='pt')``. HF's CLIP tokenizer then returns, per text,
``[49406 (start), BPE tokens (at most 75), 49407 (end)]`` padded to 77 with its pad token,
which for this checkpoint is ``<|endoftext|>`` = 49407, and an attention mask of 1 on the
start, BPE and end tokens, 0 on padding. open_clip's SimpleTokenizer has the same vocabulary
and BPE, so this produces the same ids (texts are ftfy-fixed, whitespace-collapsed and
lower-cased by both; open_clip also unescapes HTML entities, which HF does not).
"""

from __future__ import annotations

import torch

START_ID = 49406
END_ID = 49407
PAD_ID = END_ID
VOCAB_SIZE = 49408


class BatchEncoding(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(name) from err


def clip_token_ids(texts, max_length: int = 77) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), int64 [len(texts), max_length], as HF CLIPTokenizer."""
    from open_clip.tokenizer import SimpleTokenizer

    tokenizer = _simple_tokenizer(SimpleTokenizer)
    input_ids = torch.full((len(texts), max_length), PAD_ID, dtype=torch.long)
    attention = torch.zeros((len(texts), max_length), dtype=torch.long)
    for row, text in enumerate(texts):
        ids = [START_ID, *tokenizer.encode(text)[: max_length - 2], END_ID]
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
    return input_ids, attention


_TOKENIZER = None


def _simple_tokenizer(cls):
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = cls()
    return _TOKENIZER


class CLIPTokenizer:
    eos_token = "<|endoftext|>"
    bos_token = "<|startoftext|>"
    pad_token = "<|endoftext|>"
    vocab_size = VOCAB_SIZE

    @classmethod
    def from_pretrained(cls, name, *args, **kwargs):
        if "clip" not in str(name):
            raise NotImplementedError(f"only the CLIP tokenizer is available, not {name!r}")
        return cls()

    def add_special_tokens(self, tokens: dict) -> int:
        # The official code adds cls_token = eos_token: an existing token, so no new ids.
        for key, value in tokens.items():
            setattr(self, key, value)
        return 0

    def __len__(self) -> int:
        return VOCAB_SIZE

    def __call__(
        self,
        text,
        padding="max_length",
        truncation=True,
        max_length=77,
        return_tensors="pt",
        **kwargs,
    ):
        if padding != "max_length" or not truncation or return_tensors != "pt":
            raise NotImplementedError("only padding='max_length', truncation=True, 'pt'")
        texts = [text] if isinstance(text, str) else list(text)
        input_ids, attention = clip_token_ids(texts, max_length)
        return BatchEncoding(input_ids=input_ids, attention_mask=attention)


class CLIPTokenizerFast(CLIPTokenizer):
    pass


class AutoTokenizer:
    @classmethod
    def from_pretrained(cls, name, *args, **kwargs):
        raise NotImplementedError(f"AutoTokenizer({name!r}) is not available in the harness")
