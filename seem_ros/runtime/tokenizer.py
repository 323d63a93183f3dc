"""CLIP's byte-level BPE tokenizers in plain Python and numpy (no torch, no open_clip).

Two tokenizers share one :class:`BytePairEncoding` (the vocabulary and merges of CLIP's
``bpe_simple_vocab_16e6.txt.gz``, which open_clip bundles and every export folder carries):

* :class:`OpenClipTokenizer`: open_clip's ``SimpleTokenizer`` (``clean="lower"``), the
  tokenizer of our own models' text tower: ``ftfy``, HTML unescaped twice, whitespace
  collapsed, lower-cased; ``<start>`` + ids + ``<end>``, truncated keeping ``<end>``, padded
  with 0.
* :class:`ClipTokenizer`: the official SEEM models' tokenizer, HF
  ``CLIPTokenizer('openai/clip-vit-base-patch32')``: ``ftfy``, whitespace collapsed,
  lower-cased, no HTML unescaping; the literal strings ``<|startoftext|>`` / ``<|endoftext|>``
  are those tokens; at most ``context_length - 2`` ids between start and end, padded with the
  end-of-text id, and an attention mask.

Both give the ids of the tokenizers they mirror (tested against open_clip and the official
ids); they exist so that a deployment without PyTorch tokenizes exactly like the PyTorch path.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
import itertools
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import ftfy
import numpy as np
import regex

BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
CONTEXT_LENGTH = 77
VOCAB_SIZE = 49408
START_OF_TEXT = 49406
END_OF_TEXT = 49407
"""Also the official tokenizer's padding id."""

_MERGES = 49152 - 256 - 2  # the merges CLIP's vocabulary is built from (the file has more)
_OPEN_CLIP_SPECIAL = ("<start_of_text>", "<end_of_text>")
_HF_SPECIAL = {"<|startoftext|>": START_OF_TEXT, "<|endoftext|>": END_OF_TEXT}
_HF_SPECIAL_SPLIT = regex.compile(r"(<\|startoftext\|>|<\|endoftext\|>)")
# CLIP's pre-tokenisation. The HF tokenizer lowercases first, so its special tokens are
# alternatives too ("<|ENDOFTEXT|>" still becomes the end-of-text token there).
_HF_WORDS = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)
_OPEN_CLIP_WORDS = regex.compile(
    "|".join(_OPEN_CLIP_SPECIAL)
    + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)
_WHITESPACE = regex.compile(r"\s+")


class TokenizerError(RuntimeError):
    """The BPE vocabulary file is missing or not CLIP's."""


def bundled_bpe_path() -> Path | None:
    """open_clip's copy of CLIP's BPE file, found without importing open_clip (which imports
    torch); None where open_clip is not installed."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / BPE_FILE
        if path.is_file():
            return path
    return None


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible map of the 256 byte values to printable characters."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


class BytePairEncoding:
    """CLIP's vocabulary (49,408 entries: bytes, bytes + ``</w>``, merges, start, end) and its
    merge ranks, from a ``bpe_simple_vocab_16e6.txt.gz`` file.

    Raises:
        TokenizerError: the file is missing or does not lay out CLIP's vocabulary.
    """

    def __init__(self, path: Path) -> None:
        path = Path(path)
        try:
            with gzip.open(path) as handle:
                lines = handle.read().decode("utf-8").split("\n")
        except (OSError, EOFError, UnicodeDecodeError) as error:
            raise TokenizerError(f"cannot read the BPE vocabulary {path}: {error}") from error
        merges = [tuple(line.split()) for line in lines[1 : _MERGES + 1]]
        self.byte_encoder = _bytes_to_unicode()
        characters = list(self.byte_encoder.values())
        vocabulary = [*characters, *(c + "</w>" for c in characters)]
        vocabulary += ["".join(merge) for merge in merges]
        vocabulary += list(_OPEN_CLIP_SPECIAL)
        self.encoder = {piece: index for index, piece in enumerate(vocabulary)}
        if len(self.encoder) != VOCAB_SIZE or self.encoder[_OPEN_CLIP_SPECIAL[1]] != END_OF_TEXT:
            raise TokenizerError(f"{path} does not hold CLIP's BPE vocabulary")
        self.ranks = {merge: rank for rank, merge in enumerate(merges)}
        self._cache: dict[str, tuple[int, ...]] = {
            t: (self.encoder[t],) for t in _OPEN_CLIP_SPECIAL
        }

    @classmethod
    @cache
    def load(cls, path: Path) -> BytePairEncoding:
        """The shared instance of a file (reading one takes ~0.2 s)."""
        return cls(Path(path))

    def word_ids(self, word: str) -> tuple[int, ...]:
        """The ids of one pre-tokenised word (its UTF-8 bytes, merged by rank)."""
        symbols = "".join(self.byte_encoder[byte] for byte in word.encode("utf-8"))
        cached = self._cache.get(symbols)
        if cached is None:
            cached = tuple(self.encoder[piece] for piece in self._merge(symbols))
            self._cache[symbols] = cached
        return cached

    def _merge(self, symbols: str) -> list[str]:
        """open_clip's ``SimpleTokenizer.bpe``: merge the best-ranked adjacent pair until none
        is in the merges; the last symbol carries the end-of-word mark."""
        word = [*symbols[:-1], symbols[-1] + "</w>"]
        while len(word) > 1:
            pairs = set(itertools.pairwise(word))
            best = min(pairs, key=lambda pair: self.ranks.get(pair, float("inf")))
            if best not in self.ranks:
                break
            first, second = best
            merged: list[str] = []
            index = 0
            while index < len(word):
                if index < len(word) - 1 and word[index] == first and word[index + 1] == second:
                    merged.append(first + second)
                    index += 2
                else:
                    merged.append(word[index])
                    index += 1
            word = merged
        return word


class OpenClipTokenizer:
    """open_clip's ``SimpleTokenizer`` (``clean="lower"``, truncation), numpy out.

    Args:
        bpe: the vocabulary.
        context_length: ids per text (our models' text context, e.g. 16).
    """

    def __init__(self, bpe: BytePairEncoding, *, context_length: int) -> None:
        if context_length < 2:
            raise ValueError(
                f"context_length must leave room for start and end, got {context_length}"
            )
        self.bpe = bpe
        self.context_length = context_length

    def encode(self, text: str) -> list[int]:
        """The ids of one text, without start/end tokens and without truncation."""
        text = ftfy.fix_text(text)
        text = html.unescape(html.unescape(text)).strip()
        text = " ".join(text.split()).strip().lower()
        ids: list[int] = []
        for word in _OPEN_CLIP_WORDS.findall(text):
            ids.extend(self.bpe.word_ids(word))
        return ids

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """texts -> (N, context_length) int64 ids; long texts keep their end token."""
        if isinstance(texts, str):
            raise TypeError("tokenize a list of texts, not a str")
        ids = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            tokens = [START_OF_TEXT, *self.encode(text), END_OF_TEXT]
            if len(tokens) > self.context_length:
                tokens = [*tokens[: self.context_length - 1], END_OF_TEXT]
            ids[row, : len(tokens)] = tokens
        return ids


class ClipTokenizer:
    """The official tokenizer, HF ``CLIPTokenizer('openai/clip-vit-base-patch32')``, numpy out.

    As in HF's slow tokenizer, the literal strings "<|startoftext|>" and "<|endoftext|>" in a
    text become those special tokens, and there is no ``html.unescape`` step (open_clip's own
    tokenizer has one, HF's has not).
    """

    def __init__(self, bpe: BytePairEncoding, *, context_length: int = CONTEXT_LENGTH) -> None:
        if context_length < 2:
            raise ValueError(
                f"context_length must leave room for start and end, got {context_length}"
            )
        self.bpe = bpe
        self.context_length = context_length

    def encode(self, text: str) -> list[int]:
        """The BPE ids of one text, without start/end tokens and without truncation."""
        ids: list[int] = []
        for chunk in _HF_SPECIAL_SPLIT.split(text):
            if chunk in _HF_SPECIAL:
                ids.append(_HF_SPECIAL[chunk])
            elif chunk:
                ids.extend(self._encode_chunk(chunk))
        return ids

    def _encode_chunk(self, text: str) -> list[int]:
        text = _WHITESPACE.sub(" ", ftfy.fix_text(text)).strip().lower()
        ids: list[int] = []
        for word in _HF_WORDS.findall(text):
            if word in _HF_SPECIAL:
                ids.append(_HF_SPECIAL[word])
            else:
                ids.extend(self.bpe.word_ids(word))
        return ids

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """texts -> (N, context_length) int64 ids and attention mask (1 for start, text and
        end, 0 for padding); long texts keep their end token."""
        if isinstance(texts, str):
            raise TypeError("tokenize a list of texts, not a str")
        length = self.context_length
        input_ids = np.full((len(texts), length), END_OF_TEXT, dtype=np.int64)
        attention_mask = np.zeros((len(texts), length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [START_OF_TEXT, *self.encode(text)[: length - 2], END_OF_TEXT]
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        return input_ids, attention_mask
