"""Training episodes: images, generic targets and prompted objects ("groups") for one step.

A batch mixes the paper's tasks: generic segmentation on every image; per image a few prompted
objects of random kinds (clicks with simulated correction rounds, referring phrases, boxes,
scribbles, sloppy masks); a composition case (text + click, each ambiguous alone); and a clip
pair whose second frame's objects are prompted only by memory from the first frame and/or by a
reference region cut from it (the video term).

With an :class:`~seem_ros.data.augment.AugmentConfig` every rendered image first goes through
the recipe's augmentation (photo textures, camera degradations), and at its aspect rate an
episode's scenes and clips are rendered as wide camera frames of one aspect, which the step
sizes as inference does; with ``paraphrase_rate`` referring phrases
are sometimes said another way (the training templates of :mod:`seem_ros.data.paraphrase`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..data import render_clip, render_composition_case, render_scene, scene_seed
from ..data.augment import AugmentConfig, Augmenter
from ..data.hard_clips import render_hard_clip
from ..data.paraphrase import paraphrase
from ..data.scene import Scene, Segment
from ..eval.clicks import next_click
from ..prompts import Box, MaskPrompt, MemoryPrompt, ObjectPrompt, Points, Scribble
from .targets import GenericTargets, generic_targets


@dataclass
class GroupSpec:
    """One prompted object to decode on batch image ``image``."""

    image: int
    kind: str
    gt_mask: np.ndarray  # (H, W) bool, full resolution (the step puts it on the mask grid)
    label: int
    prompt: ObjectPrompt | None = None
    text: str | None = None
    reference: tuple[int, np.ndarray] | None = None  # (batch image, region mask)
    rounds: int = 0  # extra simulated click rounds before the trained forward pass
    memory_from: int | None = None  # index of the group whose output becomes this one's memory
    memory_gt: bool = False  # teacher forcing: memory mask is the ground truth of the source


@dataclass
class Episode:
    images: list[np.ndarray]
    generic: list[GenericTargets]
    groups: list[GroupSpec] = field(default_factory=list)


@dataclass(frozen=True)
class EpisodeMix:
    scenes: int = 4
    compositions: int = 1
    clip_pairs: int = 1
    groups_per_scene: int = 3
    # chance per scene of one more group: a referring phrase naming a stuff region ("the wall");
    # 0.0 in the shipped demo model's recipe, whose referring benchmark suffered for it
    stuff_phrase_rate: float = 0.0
    # chance that a click object starts from a synthetic wrong mask (a neighbour merged in, a
    # part cut away, a shifted boundary) fed back as memory, plus the corrective click a user
    # would make; teaches the model to obey negative and corrective clicks, which real rounds
    # on an already-good model rarely exercise
    correction_rate: float = 0.0
    # up to this many corrective clicks per correction object: the first at the deepest error
    # (as in eval), the others anywhere in the error, each labelled by the truth under it; a
    # merged neighbour then carries several negative clicks, the case the model ignored most
    correction_clicks: int = 1
    # chance of each wrong-mask mode: merge a neighbour, cut a part, both, shift the boundary
    wrong_mask_modes: tuple[tuple[str, float], ...] = (
        ("merge", 0.4),
        ("cut", 0.3),
        ("boundary", 0.15),
        ("merge_cut", 0.15),
    )
    max_rounds: int = 2
    # chance that a referring phrase (text and text + click objects) is said another way
    paraphrase_rate: float = 0.0
    # chance that a clip pair comes from a hard clip (look-alikes crossing, full occlusion,
    # lighting change, camera shake: seem_ros.data.hard_clips) instead of an ordinary one
    hard_clip_rate: float = 0.0
    # chance that a clip pair's clicked objects are, first, those with an exact look-alike in
    # view (same category, colour and size: the clips' twins): one click must pick one of two
    # identical, often touching, objects, what a first click on a robot's camera most often
    # gets wrong (two identical mugs)
    twin_click_rate: float = 0.0
    kind_weights: tuple[tuple[str, float], ...] = (
        ("click", 0.40),
        ("text", 0.30),
        ("box", 0.10),
        ("scribble", 0.10),
        ("mask", 0.05),
        ("text_click", 0.05),
    )


def twin_ids(scene: Scene) -> set[int]:
    """Things of the scene with an exact look-alike in view (same category, colour, size)."""
    looks: dict[tuple[str, str | None, str | None], list[int]] = {}
    for segment in scene.thing_segments:
        if segment.area >= 30:
            looks.setdefault((segment.category, segment.colour, segment.size), []).append(
                segment.id
            )
    return {key for ids in looks.values() if len(ids) > 1 for key in ids}


class EpisodeSampler:
    """Deterministic stream of episodes from the ``train`` split (seeded)."""

    def __init__(
        self,
        *,
        vocabulary: list[str],
        image_size: int,
        seed: int,
        mix: EpisodeMix = EpisodeMix(),
        augment: AugmentConfig | None = None,
    ) -> None:
        self.vocabulary = vocabulary
        self.index = {name: i for i, name in enumerate(vocabulary)}
        self.size = image_size
        self.mix = mix
        self.rng = np.random.default_rng(seed)
        self.augmenter = Augmenter(augment) if augment is not None else None

    def _random_index(self) -> int:
        return int(self.rng.integers(0, 10**9))

    def sample(self) -> Episode:
        episode = Episode([], [])
        # one frame shape per episode: the step stacks its frames in one input shape, each at
        # the scale inference gives it (short side at the model's size, aspect kept)
        shape = self._episode_shape()
        for _ in range(self.mix.scenes):
            seed = scene_seed("train", self._random_index())
            scene = self._augment([render_scene(seed, size=shape, split="train")])[0]
            image = self._add_image(episode, scene)
            things = [s for s in scene.thing_segments if s.area >= 30]
            picks = self.rng.permutation(len(things))[: self.mix.groups_per_scene]
            for p in picks:
                episode.groups.append(self._still_group(scene, image, things[int(p)]))
            if self.mix.stuff_phrase_rate > 0 and self.rng.random() < self.mix.stuff_phrase_rate:
                self._add_stuff_phrase(episode, scene, image)
        for _ in range(self.mix.compositions):
            case = render_composition_case(
                scene_seed("train", self._random_index(), stream="composition"), "train"
            )
            # no crop (the click must stay in the image), no photo fill (the text names colours)
            scene = self._augment([case.scene], fills=False)[0]
            image = self._add_image(episode, scene)
            target = scene.segment(case.target_id)
            prompt = ObjectPrompt(
                text=case.text, points=Points.single(case.click_xy[0] + 0.5, case.click_xy[1] + 0.5)
            )
            episode.groups.append(
                self._spec(image, "composition", target, prompt=prompt, text=case.text)
            )
        for _ in range(self.mix.clip_pairs):
            self._add_clip_pair(episode, shape)
        return episode

    # ---------------------------------------------------------------- pieces
    def _episode_shape(self) -> tuple[int, int]:
        """The (height, width) the episode's scenes and clips are rendered at: square, or, at
        the augmentation's aspect rate, as wide as a camera frame of a drawn aspect whose short
        side is the model's size. The world is rendered at that shape rather than cropped
        from a square render: a crop is enlarged 1.33x (3:4) or 1.78x (9:16) to the model's
        size, so its objects were 1.15x / 1.33x larger, and blurrier, than in a frame of that
        shape rendered whole (an object takes a share of its frame's area), which is what a
        camera frame of that shape gives the segmenter."""
        aspect = self.augmenter.draw_aspect(self.rng) if self.augmenter is not None else None
        if aspect is None:
            return (self.size, self.size)
        height, width = aspect
        return (self.size, round(self.size * width / height))

    def _augment(self, frames: list[Scene], *, fills: bool = True) -> list[Scene]:
        """Photos and camera effects; never a crop (frames are rendered at their shape)."""
        if self.augmenter is None:
            return frames
        return self.augmenter.scenes(frames, self.rng, crop=False, fills=fills)

    def _phrase(self, phrases: list[str]) -> str:
        text = str(self.rng.choice(phrases))
        if self.mix.paraphrase_rate > 0 and self.rng.random() < self.mix.paraphrase_rate:
            text = paraphrase(text, self.rng, templates="train")
        return text

    def _add_image(self, episode: Episode, scene: Scene) -> int:
        episode.images.append(scene.image)
        episode.generic.append(generic_targets(scene, self.vocabulary))
        return len(episode.images) - 1

    def _spec(self, image: int, kind: str, segment: Segment, **kwargs: object) -> GroupSpec:
        return GroupSpec(
            image=image,
            kind=kind,
            gt_mask=segment.mask,
            label=self.index[segment.category],
            **kwargs,  # type: ignore[arg-type]
        )

    def _still_group(self, scene: Scene, image: int, segment: Segment) -> GroupSpec:
        names, weights = zip(*self.mix.kind_weights)
        kind = str(self.rng.choice(names, p=np.asarray(weights) / sum(weights)))
        phrases = [p.text for p in scene.phrases if p.target_id == segment.id]
        if kind in ("text", "text_click") and not phrases:
            kind = "click"
        if kind == "click" and self.rng.random() < self.mix.correction_rate:
            return self._correction_group(scene, image, segment)
        if kind == "click":
            return self._spec(
                image,
                kind,
                segment,
                prompt=ObjectPrompt(points=self.interior_click(segment.mask)),
                rounds=int(self.rng.integers(0, self.mix.max_rounds + 1)),
            )
        if kind == "text":
            return self._spec(image, kind, segment, prompt=None, text=self._phrase(phrases))
        if kind == "text_click":
            text = self._phrase(phrases)
            return self._spec(
                image,
                kind,
                segment,
                prompt=ObjectPrompt(text=text, points=self.interior_click(segment.mask)),
                text=text,
            )
        if kind == "box":
            return self._spec(
                image, kind, segment, prompt=ObjectPrompt(box=self.jittered_box(segment))
            )
        if kind == "scribble":
            return self._spec(
                image, kind, segment, prompt=ObjectPrompt(scribbles=(self.scribble(segment.mask),))
            )
        return self._spec(
            image,
            kind,
            segment,
            prompt=ObjectPrompt(mask=MaskPrompt(self.sloppy_mask(segment.mask))),
        )

    def _correction_group(self, scene: Scene, image: int, segment: Segment) -> GroupSpec:
        """A click object one interaction round in: first click, a wrong mask, the correction."""
        wrong = self.wrong_mask(scene, segment)
        first = self.interior_click(segment.mask)
        click = next_click(wrong, segment.mask)
        coords, labels = first.coords, first.labels
        if click is not None:
            coords = np.concatenate([coords, [[click.x + 0.5, click.y + 0.5]]])
            labels = np.concatenate([labels, [int(click.positive)]])
            extra = int(self.rng.integers(0, self.mix.correction_clicks))
            error_rows, error_cols = np.nonzero(wrong != segment.mask)
            if extra and len(error_rows):
                picks = self.rng.integers(len(error_rows), size=extra)
                rows, cols = error_rows[picks], error_cols[picks]
                coords = np.concatenate([coords, np.stack([cols + 0.5, rows + 0.5], axis=1)])
                labels = np.concatenate([labels, segment.mask[rows, cols].astype(np.int64)])
        prompt = ObjectPrompt(points=Points(coords, labels), memory=MemoryPrompt(mask=wrong))
        return self._spec(
            image, "correction", segment, prompt=prompt, rounds=int(self.rng.integers(0, 2))
        )

    def wrong_mask(self, scene: Scene, segment: Segment) -> np.ndarray:
        """A plausible mistaken prediction for ``segment``: merged, cut, or off at the edges."""
        target = segment.mask
        names, weights = zip(*self.mix.wrong_mask_modes)
        mode = str(self.rng.choice(names, p=np.asarray(weights) / sum(weights)))
        wrong = target.copy()
        if mode in ("merge", "merge_cut"):
            reach = int(self.rng.integers(6, 40))
            near = cv2.dilate(target.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=reach)
            neighbours = [
                s for s in scene.segments if s.id != segment.id and (s.mask & (near > 0)).any()
            ]
            if neighbours:
                other = neighbours[int(self.rng.integers(len(neighbours)))]
                part = (
                    other.mask
                    if other.is_thing and self.rng.random() < 0.5
                    else other.mask & (near > 0)
                )
                wrong |= part
        if mode in ("cut", "merge_cut"):
            ys, xs = np.nonzero(target)
            pick = int(self.rng.integers(len(xs)))
            radius = self.rng.uniform(0.3, 0.7) * np.sqrt(segment.area)
            yy, xx = np.ogrid[: target.shape[0], : target.shape[1]]
            disk = (yy - ys[pick]) ** 2 + (xx - xs[pick]) ** 2 <= radius**2
            cut = wrong & ~(disk & target)
            wrong = cut if cut.any() else wrong
        if mode == "boundary" or (wrong == target).all():
            kernel = np.ones((3, 3), np.uint8)
            steps = int(self.rng.integers(2, 5))
            grown = cv2.dilate(target.astype(np.uint8), kernel, iterations=steps) > 0
            shrunk = cv2.erode(target.astype(np.uint8), kernel, iterations=steps) > 0
            wrong = grown if self.rng.random() < 0.5 or not shrunk.any() else shrunk
        return wrong

    def _add_stuff_phrase(self, episode: Episode, scene: Scene, image: int) -> None:
        stuff = {s.id: s for s in scene.stuff_segments if s.area >= 30}
        phrases = [p for p in scene.phrases if p.target_id in stuff]
        if phrases:
            phrase = phrases[int(self.rng.integers(0, len(phrases)))]
            text = phrase.text
            if self.mix.paraphrase_rate > 0 and self.rng.random() < self.mix.paraphrase_rate:
                text = paraphrase(text, self.rng, templates="train")
            episode.groups.append(self._spec(image, "text", stuff[phrase.target_id], text=text))

    def _add_clip_pair(self, episode: Episode, shape: tuple[int, int]) -> None:
        hard = self.mix.hard_clip_rate > 0 and self.rng.random() < self.mix.hard_clip_rate
        render = render_hard_clip if hard else render_clip
        clip = render(
            scene_seed("train", self._random_index(), stream="hard_clip" if hard else "clip"),
            n_frames=10,
            size=shape,
            split="train",
        )
        first, second = 0, int(self.rng.integers(1, len(clip.frames)))
        frame_a, frame_b = self._augment([clip.frames[first], clip.frames[second]])
        image_a = self._add_image(episode, frame_a)
        image_b = self._add_image(episode, frame_b)
        ids_b = {s.id: s for s in frame_b.thing_segments if s.area >= 30}
        shared = [s for s in frame_a.thing_segments if s.id in ids_b and s.area >= 30]
        order = [int(p) for p in self.rng.permutation(len(shared))]
        if self.mix.twin_click_rate > 0 and self.rng.random() < self.mix.twin_click_rate:
            twins = twin_ids(frame_a)
            order.sort(key=lambda p: shared[p].id not in twins)  # stable: twins first
        for p in order[:2]:
            seg_a = shared[p]
            seg_b = ids_b[seg_a.id]
            source = len(episode.groups)
            episode.groups.append(
                self._spec(
                    image_a,
                    "click",
                    seg_a,
                    prompt=ObjectPrompt(points=self.interior_click(seg_a.mask)),
                )
            )
            # the second frame: memory alone (sometimes teacher-forced with the true first
            # mask), the reference region alone, or both
            mode = self.rng.random()
            if mode < 0.6:
                hand_over = {"memory_from": source, "memory_gt": bool(self.rng.random() < 0.3)}
            elif mode < 0.8:
                hand_over = {"reference": (image_a, seg_a.mask)}
            else:
                hand_over = {"memory_from": source, "reference": (image_a, seg_a.mask)}
            kind = "reference" if "memory_from" not in hand_over else "memory"
            episode.groups.append(self._spec(image_b, kind, seg_b, **hand_over))

    # ---------------------------------------------------------------- prompt simulation
    def interior_click(self, mask: np.ndarray) -> Points:
        """A positive click well inside the object (random among its deeper pixels)."""
        depth = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
        ys, xs = np.nonzero(depth >= 0.5 * depth.max())
        pick = int(self.rng.integers(0, len(xs)))
        return Points.single(xs[pick] + 0.5, ys[pick] + 0.5)

    def jittered_box(self, segment: Segment) -> Box:
        x0, y0, x1, y1 = segment.bbox
        height, width = segment.mask.shape
        w, h = x1 - x0, y1 - y0
        j = self.rng.uniform(-0.08, 0.08, 4) * np.array([w, h, w, h])
        x0 = float(np.clip(x0 + j[0], 0, width - 2))
        y0 = float(np.clip(y0 + j[1], 0, height - 2))
        x1 = float(np.clip(x1 + j[2], x0 + 1, width))
        y1 = float(np.clip(y1 + j[3], y0 + 1, height))
        return Box(float(x0), float(y0), x1, y1)

    def scribble(self, mask: np.ndarray) -> Scribble:
        ys, xs = np.nonzero(mask)
        picks = self.rng.choice(len(xs), size=min(3, len(xs)), replace=False)
        points = np.stack([xs[picks], ys[picks]], axis=1).astype(np.float64) + 0.5
        return Scribble(points[np.argsort(points[:, 0])])

    def sloppy_mask(self, mask: np.ndarray) -> np.ndarray:
        kernel = np.ones((3, 3), np.uint8)
        steps = int(self.rng.integers(0, 3))
        out = mask.astype(np.uint8)
        out = (
            cv2.dilate(out, kernel, iterations=steps)
            if self.rng.random() < 0.5
            else cv2.erode(out, kernel, iterations=steps)
        )
        return out.astype(bool) if out.any() else mask
