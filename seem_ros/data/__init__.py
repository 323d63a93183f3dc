"""The procedural data world: seeded scenes, clips and benchmark cases with ground truth.

from seem_ros.data import render_scene, render_clip, scene_seed
scene = render_scene(scene_seed("train", 0))
scene.image, scene.segment_ids, scene.segments, scene.phrases
"""

from seem_ros.data.cases import (
    CompositionCase,
    OpenVocabCase,
    render_composition_case,
    render_openvocab_case,
)
from seem_ros.data.clips import Clip, Track, render_clip
from seem_ros.data.datasets import ClipDataset, SceneDataset
from seem_ros.data.phrases import referring_expressions
from seem_ros.data.render import render_scene
from seem_ros.data.samples import sample_clip, sample_scenes, scene_ground_truth, write_samples
from seem_ros.data.scene import FIRST_THING_ID, ReferringExpression, Scene, Segment
from seem_ros.data.splits import SPLITS, pairs_for_split, scene_seed, split_of_seed
from seem_ros.data.vocabulary import (
    ALL_PAIRS,
    COLOURS,
    HELD_OUT_PAIRS,
    SIZES,
    STUFF_CATEGORIES,
    THING_CATEGORIES,
    class_names,
    describe,
)

__all__ = [
    "ALL_PAIRS",
    "COLOURS",
    "FIRST_THING_ID",
    "HELD_OUT_PAIRS",
    "SIZES",
    "SPLITS",
    "STUFF_CATEGORIES",
    "THING_CATEGORIES",
    "Clip",
    "ClipDataset",
    "CompositionCase",
    "OpenVocabCase",
    "ReferringExpression",
    "Scene",
    "SceneDataset",
    "Segment",
    "Track",
    "class_names",
    "describe",
    "pairs_for_split",
    "referring_expressions",
    "render_clip",
    "render_composition_case",
    "render_openvocab_case",
    "render_scene",
    "sample_clip",
    "sample_scenes",
    "scene_ground_truth",
    "scene_seed",
    "split_of_seed",
    "write_samples",
]
