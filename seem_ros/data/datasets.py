"""Indexable, deterministic datasets over the splits (usable as torch map-style datasets)."""

from __future__ import annotations

from seem_ros.data.clips import Clip, render_clip
from seem_ros.data.render import check_size, render_scene
from seem_ros.data.scene import Scene
from seem_ros.data.splits import check_split, scene_seed


class _SplitDataset:
    def __init__(self, split: str, length: int, size: tuple[int, int]) -> None:
        self.split = check_split(split)
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be a non-negative int, got {length!r}")
        self.length = length
        self.size = check_size(size)

    def __len__(self) -> int:
        return self.length

    def _index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"dataset index must be an int, got {type(index).__name__}")
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length} items")
        return index % self.length


class SceneDataset(_SplitDataset):
    """Item i is `render_scene(scene_seed(split, i), size, split)`; size is (height, width)."""

    def __init__(self, split: str, length: int, size: tuple[int, int] = (256, 256)) -> None:
        super().__init__(split, length, size)

    def __getitem__(self, index: int) -> Scene:
        seed = scene_seed(self.split, self._index(index))
        return render_scene(seed, size=self.size, split=self.split)


class ClipDataset(_SplitDataset):
    """Item i is `render_clip(scene_seed(split, i, "clip"), n_frames, size, split)`."""

    def __init__(
        self, split: str, length: int, n_frames: int = 30, size: tuple[int, int] = (256, 256)
    ) -> None:
        super().__init__(split, length, size)
        self.n_frames = n_frames

    def __getitem__(self, index: int) -> Clip:
        seed = scene_seed(self.split, self._index(index), stream="clip")
        return render_clip(seed, n_frames=self.n_frames, size=self.size, split=self.split)
