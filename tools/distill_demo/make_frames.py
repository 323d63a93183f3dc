"""Unlabelled frames and a phrase list for the distillation demo (docs/distillation.md).

Writes PNG frames into one folder: procedural scenes of the ``train`` split, frames of train
clips, and crops of scikit-image's sample photos (real-photo frames, so the student also learns
what the teacher does off its world). No ground truth is written or used: the student learns
from the teacher's labels only. The phrase list is built from templates over the world's
vocabulary (colours, sizes, categories, extremes, relations, stuff), not from any scene.

Scene ``i`` is the same whatever ``--scenes`` says, so a larger ``--scenes`` into the same
folder adds frames, and ``seem-ros label`` resumed on the folder labels only those.

    python tools/distill_demo/make_frames.py --out runs/distill_demo/frames --scenes 12000
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from seem_ros.data.datasets import ClipDataset, SceneDataset
from seem_ros.data.vocabulary import COLOURS, SIZES, STUFF_CATEGORIES, THING_CATEGORIES

PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "chelsea",
    "coffee",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "immunohistochemistry",
    "motorcycle",
    "retina",
    "rocket",
)
EXTREMES = ("the leftmost {}", "the rightmost {}", "the topmost {}", "the bottommost {}")
RELATIONS = ("left of", "right of", "above", "below")


def photo_images() -> list[np.ndarray]:
    import skimage.data

    images = []
    for name in PHOTOS:
        loader = getattr(skimage.data, name, None) or getattr(skimage.data, f"stereo_{name}")
        image = loader()
        image = image[0] if isinstance(image, tuple) else image
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        images.append(np.ascontiguousarray(image[..., :3]).astype(np.uint8))
    return images


def photo_crop(photos: list[np.ndarray], rng: np.random.Generator, size: int) -> np.ndarray:
    photo = photos[rng.integers(len(photos))]
    height, width = photo.shape[:2]
    side = int(rng.integers(min(height, width) // 3, min(height, width) + 1))
    y, x = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
    crop = photo[y : y + side, x : x + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=cv2.INTER_AREA)


def phrases() -> list[str]:
    nouns = list(THING_CATEGORIES)
    nouns += [f"{c} {t}" for c, t in itertools.product(COLOURS, THING_CATEGORIES)]
    nouns += [f"{s} {t}" for s, t in itertools.product(SIZES, THING_CATEGORIES)]
    nouns += [f"{c} object" for c in COLOURS]
    out = [f"the {n}" for n in nouns]
    out += [template.format(t) for template in EXTREMES for t in THING_CATEGORIES]
    out += [
        f"the {a} {rel} the {b}"
        for a, b in itertools.permutations(THING_CATEGORIES, 2)
        for rel in RELATIONS
    ]
    out += [f"the {s}" for s in STUFF_CATEGORIES]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scenes", type=int, default=12000)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)

    def write(name: str, image: np.ndarray) -> None:
        cv2.imwrite(str(args.out / f"{name}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))

    scenes = SceneDataset("train", args.scenes)
    for index in tqdm(range(args.scenes), desc="scenes"):
        write(f"scene_{index:05d}", scenes[index].image)
    clips = ClipDataset("train", args.clips)
    for index in tqdm(range(args.clips), desc="clips"):
        for t, frame in enumerate(clips[index].frames):
            write(f"clip_{index:03d}_{t:02d}", frame.image)
    photos = photo_images()
    for index in tqdm(range(args.photos), desc="photos"):
        write(f"photo_{index:04d}", photo_crop(photos, rng, 256))
    (args.out.parent / "phrases.txt").write_text("\n".join(phrases()) + "\n")
    print(
        f"{len(list(args.out.glob('*.png')))} frames in {args.out}; phrases in "
        f"{args.out.parent / 'phrases.txt'}"
    )


if __name__ == "__main__":
    main()
