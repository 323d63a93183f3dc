"""Tracking across frames on the random-init tiny model: the mechanics, not the quality.

Every step runs the real encoder and decoder. ``RecordingEngine`` is the real PyTorch engine
that also counts calls, keeps the last prompt tensors, and can "hide" every prompted object
(its masks are blanked after the real decode) to stage an occlusion.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from seem_ros.data import render_clip
from seem_ros.engine.torch_engine import TorchEngine
from seem_ros.model.build import build_model
from seem_ros.model.card import ModelCard
from seem_ros.model.config import load_config
from seem_ros.prompts import Box, ClassNames, ObjectPrompt, Points, PromptError, ReferringText
from seem_ros.segmenter import Segmenter
from seem_ros.tracking import (
    Tracker,
    TrackerFullError,
    TrackingResult,
    mask_iou_matrix,
    match_by_iou,
    reference_crop,
)

CLASSES = ClassNames(("circle", "square", "triangle"))


class RecordingEngine(TorchEngine):
    def __init__(self, model) -> None:
        super().__init__(model)
        self.encode_calls = 0
        self.decode_calls = 0
        self.last_prompts = None
        self.hide_prompted = False

    def encode(self, image):
        self.encode_calls += 1
        return super().encode(image)

    def decode(self, features, prompts):
        self.decode_calls += 1
        self.last_prompts = prompts
        outputs = super().decode(features, prompts)
        if self.hide_prompted:
            outputs["group_masks"][:] = -30.0
        return outputs


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny model's ops are too small to share out; one thread avoids contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [scene.image for scene in render_clip(3, n_frames=4, size=(128, 128))]


@pytest.fixture
def engine(tiny_segmenter) -> RecordingEngine:
    return RecordingEngine(tiny_segmenter.model)


@pytest.fixture
def segmenter(tiny_segmenter, engine) -> Segmenter:
    """The tiny model with a low generic threshold, so random weights still find instances."""
    return Segmenter(tiny_segmenter.model, tiny_segmenter.card, engine=engine, score_threshold=0.05)


def make_tracker(segmenter: Segmenter, **kwargs) -> Tracker:
    """Every non-empty mask counts as seen unless a test says otherwise."""
    return Tracker(segmenter, **{"min_score": 0.0, "min_area": 1, **kwargs})


def square(hw, y0, y1, x0, x1) -> np.ndarray:
    mask = np.zeros(hw, bool)
    mask[y0:y1, x0:x1] = True
    return mask


# ---------------------------------------------------------------------- one pass per frame
def test_each_step_encodes_once_and_decodes_once(segmenter, engine, frames):
    """Plus one encode per track, once: its first reference crop (then cached). Objects that
    stay confident (no re-identification decode); motion gating off, as random weights'
    masks jump around."""
    tracker = make_tracker(segmenter, motion_gate=False)
    tracker.set_classes(CLASSES)
    tracker.add_object(Points.single(40, 40))
    tracker.add_object(Box(60, 60, 120, 120))
    for frame in frames:
        tracker.step(frame)
    assert engine.encode_calls == len(frames) + 2
    assert engine.decode_calls == len(frames)


def test_all_objects_go_into_one_prompt_set(segmenter, engine, frames):
    """Motion gating off, as random weights' masks jump around: an object the gate doubts is
    re-identified in a decode of its own after the step's one decode of every object."""
    tracker = make_tracker(segmenter, motion_gate=False)
    tracker.set_classes(CLASSES)
    for x in (20, 60, 100):
        tracker.add_object(Points.single(x, 50))
    tracker.step(frames[0])
    tracker.step(frames[1])
    assert engine.last_prompts.group_valid[0].sum() == 3
    assert tracker.build_prompts().classes == CLASSES


def test_step_without_prompts_runs_no_model(segmenter, engine, frames):
    result = make_tracker(segmenter).step(frames[0])
    assert engine.encode_calls == 0 and result.instances == []
    assert result.instance_ids.shape == frames[0].shape[:2]


# ---------------------------------------------------------------------- ids
def test_track_ids_are_stable_across_steps(segmenter, frames):
    tracker = make_tracker(segmenter)
    ids = {tracker.add_object(Points.single(40, 40)), tracker.add_object(Box(60, 60, 120, 120))}
    for frame in frames:
        result = tracker.step(frame)
        assert {instance.track_id for instance in result.instances} == ids
    assert set(tracker.tracks) == ids


def test_first_step_reports_new_tracks(segmenter, frames):
    tracker = make_tracker(segmenter)
    track_id = tracker.add_object(ReferringText("the red circle"), label="target")
    first, second = tracker.step(frames[0], stamp=1.5), tracker.step(frames[1], stamp=1.6)
    assert first.new == (track_id,) and second.new == ()
    assert tracker.tracks[track_id].label == "target"
    assert tracker.tracks[track_id].created_stamp == 1.5


def test_removed_track_id_is_never_reused(segmenter, frames):
    tracker = make_tracker(segmenter)
    first = tracker.add_object(Points.single(40, 40))
    tracker.step(frames[0])
    tracker.remove(first)
    second = tracker.add_object(Points.single(40, 40))
    tracker.reset()
    third = tracker.add_object(Points.single(40, 40))
    assert len({first, second, third}) == 3
    assert first not in tracker.tracks and first not in tracker.pending_ids


def test_removing_an_unknown_id_says_which_ids_exist(segmenter):
    with pytest.raises(KeyError, match="no track with id 7"):
        make_tracker(segmenter).remove(7)


def test_instances_carry_track_ids_and_the_id_image_indexes_them(segmenter, frames):
    tracker = make_tracker(segmenter)
    tracker.set_classes(CLASSES)
    tracker.add_object(Points.single(40, 40))
    result = tracker.step(frames[0])
    assert isinstance(result, TrackingResult)
    assert result.instances and all(i.track_id is not None for i in result.instances)
    assert int(result.instance_ids.max()) == len(result.instances)
    assert {"new", "lost", "reacquired", "expired"} <= set(result.to_dict())


# ---------------------------------------------------------------------- generic matching
def test_generic_tracks_keep_their_ids_when_masks_overlap(segmenter, frames):
    tracker = make_tracker(segmenter)
    tracker.set_classes(CLASSES)
    first = tracker.step(frames[0])
    second = tracker.step(frames[0])  # the same frame: identical masks, IoU 1
    assert first.instances, "the tiny model should find at least one generic instance"
    assert [i.track_id for i in second.instances] == [i.track_id for i in first.instances]
    assert second.new == ()


def test_mask_iou_matrix_is_overlap_over_union():
    hw = (20, 20)
    tracks = [square(hw, 0, 10, 0, 10), square(hw, 10, 20, 10, 20)]
    detections = [square(hw, 0, 10, 5, 15), square(hw, 10, 20, 10, 20)]
    iou = mask_iou_matrix(tracks, detections)
    np.testing.assert_allclose(iou, [[50 / 150, 0.0], [0.0, 1.0]])


def test_mask_iou_matrix_resizes_masks_from_a_frame_of_another_size():
    iou = mask_iou_matrix([square((10, 10), 0, 5, 0, 5)], [square((20, 20), 0, 10, 0, 10)])
    np.testing.assert_allclose(iou, [[1.0]])


def test_matching_maximises_total_overlap_not_the_best_single_pair():
    # greedy would pair (0, 0) and leave track 1 unmatched; the optimum pairs both
    iou = np.array([[0.6, 0.5], [0.55, 0.0]])
    assert match_by_iou(iou, min_iou=0.3) == [(0, 1), (1, 0)]


def test_matching_rejects_pairs_below_min_iou():
    iou = np.array([[0.9, 0.0], [0.0, 0.2]])
    assert match_by_iou(iou, min_iou=0.3) == [(0, 0)]


def test_matching_refuses_a_non_matrix():
    with pytest.raises(ValueError, match="matrix"):
        match_by_iou(np.zeros(3), min_iou=0.3)


# ---------------------------------------------------------------------- lost, reacquired, expired
def test_object_that_disappears_is_lost_then_expires_after_ttl(segmenter, engine, frames):
    tracker = make_tracker(segmenter, ttl_frames=3)
    track_id = tracker.add_object(Points.single(40, 40))
    tracker.step(frames[0])
    engine.hide_prompted = True
    results = [tracker.step(frame) for frame in frames[1:4]]
    assert results[0].lost == (track_id,)
    assert [r.expired for r in results] == [(), (), (track_id,)]
    assert track_id not in tracker.tracks


def test_lost_object_that_returns_gets_its_old_id(segmenter, engine, frames):
    tracker = make_tracker(segmenter, ttl_frames=5)
    track_id = tracker.add_object(Points.single(40, 40))
    tracker.step(frames[0])
    engine.hide_prompted = True
    tracker.step(frames[1])
    tracker.step(frames[2])
    assert tracker.tracks[track_id].state == "lost"
    assert tracker.tracks[track_id].frames_since_seen == 2
    engine.hide_prompted = False
    result = tracker.step(frames[3])
    assert result.reacquired == (track_id,)
    assert [i.track_id for i in result.instances] == [track_id]
    assert tracker.tracks[track_id].state == "tracked"


def test_unconfident_first_decode_makes_a_new_lost_track(segmenter, frames):
    tracker = Tracker(segmenter, min_score=1.0)
    track_id = tracker.add_object(Points.single(40, 40))
    result = tracker.step(frames[0])
    assert result.new == (track_id,) and result.lost == (track_id,)
    assert result.instances == []


# ---------------------------------------------------------------------- memory prompts
def test_memory_tokens_are_carried_into_the_next_decode(segmenter, engine, frames):
    tracker = make_tracker(segmenter)
    track_id = tracker.add_object(Points.single(40, 40))
    instance = tracker.step(frames[0]).instances[0]
    carried = tracker.build_prompts().objects[0]
    assert carried.object_id == track_id and carried.points is None
    np.testing.assert_array_equal(carried.memory.tokens, instance.memory.tokens)
    np.testing.assert_array_equal(carried.memory.mask, instance.mask)
    tracker.step(frames[1])
    assert engine.last_prompts.prev_memory_valid[0, 0] == 1.0
    assert engine.last_prompts.prev_mask_valid[0, 0] == 1.0
    np.testing.assert_allclose(engine.last_prompts.prev_memory[0, 0], instance.memory.tokens)


def test_lost_track_is_decoded_with_its_reference_and_text_not_its_stale_memory(
    segmenter, engine, frames
):
    tracker = make_tracker(segmenter, reference_max_side=32)
    tracker.add_object(
        ObjectPrompt(text=ReferringText("the red circle"), points=Points.single(40, 40))
    )
    tracker.step(frames[0])
    engine.hide_prompted = True
    tracker.step(frames[1])
    prompt = tracker.build_prompts().objects[0]
    assert prompt.memory is None
    assert prompt.reference is not None and max(prompt.reference.image.shape[:2]) <= 32
    assert prompt.text.text == "the red circle" and prompt.points is None
    tracker.step(frames[2])
    assert engine.last_prompts.prev_mask_valid[0, 0] == 0.0
    assert engine.last_prompts.prev_memory_valid[0, 0] == 0.0
    assert engine.last_prompts.ref_valid[0, 0] == 1.0


def test_tracked_object_carries_its_memory_and_its_first_reference(segmenter, frames):
    tracker = make_tracker(segmenter)
    track_id = tracker.add_object(Points.single(40, 40))
    tracker.step(frames[0])
    first = tracker.tracks[track_id].first_reference
    assert first is not None
    tracker.step(frames[1])
    prompt = tracker.build_prompts().objects[0]
    assert prompt.reference is first and prompt.memory is not None


def test_an_unconfident_tracked_object_is_looked_for_again_before_it_is_lost(
    segmenter, engine, frames
):
    tracker = make_tracker(segmenter)
    track_id = tracker.add_object(Points.single(40, 40))
    tracker.step(frames[0])
    engine.hide_prompted = True
    decodes = engine.decode_calls
    result = tracker.step(frames[1])
    assert engine.decode_calls == decodes + 2  # the carried prompt, then the search prompt
    assert result.lost == (track_id,)


def test_motion_memory_keeps_the_part_where_the_object_should_be():
    from seem_ros.tracking.motion import MotionMemory, part_at

    hw = (100, 100)
    motion = MotionMemory()
    for frame, x in enumerate((10, 14, 18)):
        motion.record(frame, square(hw, 40, 50, x, x + 10))
    twin_and_object = square(hw, 40, 50, 22, 32) | square(hw, 40, 50, 70, 80)
    kept = motion.select(twin_and_object, 3)
    assert np.array_equal(kept, square(hw, 40, 50, 22, 32))
    assert not motion.select(square(hw, 40, 50, 70, 80), 3).any()  # the look-alike alone
    x, _, radius = motion.predict(6)  # three unseen frames: further along, wider search
    assert x == pytest.approx(38.5, abs=0.5) and radius > motion.predict(3)[2]
    assert np.array_equal(
        part_at(twin_and_object, np.array([[75.0, 45.0]])), square(hw, 40, 50, 70, 80)
    )


def test_reference_crop_is_a_bounded_copy_around_the_object():
    image = np.random.default_rng(0).integers(0, 255, (400, 600, 3), dtype=np.uint8)
    region = reference_crop(image, square((400, 600), 50, 350, 100, 500), max_side=64)
    assert max(region.image.shape[:2]) == 64 and region.mask.any()
    assert not np.shares_memory(region.image, image)


def test_reference_crop_of_an_empty_mask_is_none():
    image = np.zeros((32, 32, 3), np.uint8)
    assert reference_crop(image, np.zeros((32, 32), bool)) is None


# ---------------------------------------------------------------------- bounded state
def test_track_count_never_exceeds_max_tracks(segmenter, frames):
    tracker = make_tracker(segmenter, max_tracks=2)
    tracker.add_object(Points.single(40, 40))
    tracker.add_object(Points.single(80, 80))
    with pytest.raises(TrackerFullError, match="all 2 tracks are live"):
        tracker.add_object(Points.single(100, 100))
    tracker.set_classes(CLASSES)
    result = tracker.step(frames[0])
    assert len(tracker) == 2 and len(result.instances) == 2


def test_longest_unseen_lost_track_is_evicted_first(segmenter, engine, frames):
    tracker = make_tracker(segmenter, max_tracks=2)
    older = tracker.add_object(Points.single(40, 40))
    tracker.step(frames[0])
    engine.hide_prompted = True
    tracker.step(frames[1])
    younger = tracker.add_object(Points.single(80, 80))
    tracker.step(frames[2])  # older unseen for 2 frames, younger never seen (1 frame)
    newest = tracker.add_object(Points.single(100, 100))
    result = tracker.step(frames[3])
    assert result.expired == (older,)
    assert set(tracker.tracks) == {younger, newest}


@pytest.fixture(scope="module")
def small_segmenter() -> Segmenter:
    """The tiny architecture at a 64-pixel input: 200 real steps stay cheap."""
    config = dataclasses.replace(load_config("tiny"), image_size=64)
    card = ModelCard(config=config, trained=False)
    return Segmenter(build_model(config, seed=0), card, score_threshold=0.05)


def test_state_stays_the_same_size_over_200_steps(small_segmenter):
    segmenter = small_segmenter
    image = np.zeros((16, 16, 3), np.uint8)
    image[4:12, 4:12] = (200, 40, 40)
    tracker = make_tracker(segmenter, reference_max_side=8)
    tracker.set_classes(CLASSES)
    tracker.add_object(Points.single(8, 8))
    sizes = []
    for _ in range(200):
        tracker.step(image)
        sizes.append((len(tracker), tracker.nbytes))
    counts = {count for count, _ in sizes}
    assert counts == {2}  # the prompted object and one generic instance
    assert max(nbytes for _, nbytes in sizes[100:]) <= max(nbytes for _, nbytes in sizes[:100])
    tokens = segmenter.layout.memory_tokens * segmenter.layout.dim * 4
    per_track = 3 * image[..., 0].size + tokens + 4 * 8 * 8  # masks, tokens, 8x8 RGB+mask crop
    assert max(nbytes for _, nbytes in sizes) <= 2 * per_track


# ---------------------------------------------------------------------- reset and bad input
def test_reset_empties_state(segmenter, frames):
    tracker = make_tracker(segmenter)
    tracker.set_classes(CLASSES)
    tracker.add_object(Points.single(40, 40))
    tracker.step(frames[0])
    tracker.add_object(Points.single(60, 60))
    tracker.reset()
    assert len(tracker) == 0 and tracker.classes is None and tracker.frame_index == 0
    assert tracker.build_prompts().is_empty


def test_clear_prompts_keeps_memory_carried_objects(segmenter, frames):
    tracker = make_tracker(segmenter)
    tracker.set_classes(CLASSES)
    carried = tracker.add_object(Points.single(40, 40))
    tracker.step(frames[0])
    tracker.add_object(Points.single(60, 60))
    tracker.clear_prompts()
    assert set(tracker.tracks) == {carried} and tracker.pending_ids == ()
    assert tracker.classes is None


def test_prompt_outside_the_frame_is_rejected_and_dropped(segmenter, frames):
    tracker = make_tracker(segmenter)
    bad = tracker.add_object(Points.single(500, 40))
    with pytest.raises(PromptError, match=f"object {bad} was removed"):
        tracker.step(frames[0])
    assert len(tracker) == 0


def test_class_names_are_not_an_object(segmenter):
    with pytest.raises(PromptError, match="set_classes"):
        make_tracker(segmenter).add_object(CLASSES)


@pytest.mark.parametrize(
    "setting", [{"ttl_frames": 0}, {"max_tracks": 0}, {"min_score": 1.5}, {"match_iou": 0.0}]
)
def test_bad_settings_are_refused(segmenter, setting):
    with pytest.raises(ValueError, match=next(iter(setting))):
        Tracker(segmenter, **setting)


def test_refining_a_tracked_object_keeps_its_id_and_joins_memory(segmenter, engine, frames):
    tracker = make_tracker(segmenter)
    track_id = tracker.add_object(Points.single(40, 40))
    instance = tracker.step(frames[0]).instances[0]
    clicks = Points(np.array([[40.0, 40.0], [50.0, 45.0]]), np.array([1, 0]))
    tracker.refine(track_id, clicks)
    refined = tracker.build_prompts().objects[0]
    assert refined.object_id == track_id and len(refined.points) == 2
    np.testing.assert_array_equal(refined.memory.tokens, instance.memory.tokens)
    result = tracker.step(frames[1])
    assert [i.track_id for i in result.instances] == [track_id] and not result.new
    assert tracker.build_prompts().objects[0].points is None  # refinement used once


def test_refining_an_unknown_track_is_a_key_error(segmenter):
    tracker = make_tracker(segmenter)
    with pytest.raises(KeyError, match="no prompted track"):
        tracker.refine(99, Points.single(1, 1))


def test_a_refinement_that_does_not_fit_the_frame_is_dropped_with_a_prompt_error(segmenter, frames):
    tracker = make_tracker(segmenter)
    track_id = tracker.add_object(Points.single(40, 40))
    tracker.step(frames[0])
    tracker.refine(track_id, Points.single(5000, 5))
    with pytest.raises(PromptError, match="refinement"):
        tracker.step(frames[1])
    assert tracker.build_prompts().objects[0].points is None
