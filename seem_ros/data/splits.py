"""Fixed, disjoint train / val / test splits derived from seeds.

`scene_seed(split, index)` hashes the split and index, then stores the split in the
seed's two lowest bits, so seeds of different splits can never be equal. Held-out
(colour, category) pairs are excluded from `train` at sampling time.
"""

from __future__ import annotations

import hashlib

from seem_ros.data.vocabulary import ALL_PAIRS, HELD_OUT_PAIRS

SPLITS: tuple[str, ...] = ("train", "val", "test")
_SPLIT_BITS = 2


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return split


def scene_seed(split: str, index: int, stream: str = "scene") -> int:
    """The seed of item `index` of a split; `stream` separates scenes, clips, cases, samples."""
    check_split(split)
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"index must be a non-negative int, got {index!r}")
    key = f"seem_ros.data/{stream}/{split}/{index}".encode()
    digest = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
    return ((digest >> (64 - 61)) << _SPLIT_BITS) | SPLITS.index(split)


def split_of_seed(seed: int) -> str:
    """The split a `scene_seed` value belongs to."""
    code = seed & ((1 << _SPLIT_BITS) - 1)
    if code >= len(SPLITS):
        raise ValueError(f"seed {seed} was not made by scene_seed")
    return SPLITS[code]


def pairs_for_split(split: str) -> tuple[tuple[str, str], ...]:
    """The (colour, category) pairs objects of this split may have."""
    if check_split(split) == "train":
        return tuple(pair for pair in ALL_PAIRS if pair not in HELD_OUT_PAIRS)
    return ALL_PAIRS


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return seed
