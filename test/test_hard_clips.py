"""Hard clips (seem_ros.data.hard_clips): twins that cross, full occlusion, lighting, shake."""

from __future__ import annotations

import numpy as np
import pytest

from seem_ros.data import render_clip, scene_seed
from seem_ros.data.hard_clips import render_hard_clip


@pytest.fixture(scope="module")
def clips():
    return [render_hard_clip(scene_seed("test", i, stream="hard_clip")) for i in range(4)]


def visible(frame, track_id) -> bool:
    return bool(np.any(frame.segment_ids == track_id))


def test_targets_are_exact_look_alikes_visible_in_the_first_frame(clips):
    for clip in clips:
        target, twin = clip.targets
        a, b = clip.tracks[target], clip.tracks[twin]
        assert (a.category, a.colour, a.size) == (b.category, b.colour, b.size)
        assert visible(clip[0], target) and visible(clip[0], twin)


def test_twins_overlap_while_crossing(clips):
    for clip in clips:
        target, twin = clip.targets
        # they touch: in some frame one hides part of the other, or their masks are adjacent
        amodal_overlap = [
            np.any(f.segment(target).amodal_mask & f.segment(twin).amodal_mask)
            for f in clip
            if visible(f, target) and visible(f, twin)
        ]
        assert any(amodal_overlap)


def test_target_is_hidden_for_several_frames_then_reappears(clips):
    for clip in clips:
        flags = [visible(frame, clip.occludee_id) for frame in clip]
        assert flags[0] and flags[-1]
        assert flags.count(False) >= 3
        hidden = [t for t, flag in enumerate(flags) if not flag]
        assert hidden == list(range(hidden[0], hidden[-1] + 1))  # one continuous occlusion
        assert visible(clip[hidden[0]], clip.occluder_id)


def test_light_changes_strongly_and_the_camera_shakes(clips):
    changes = [np.abs(np.log(np.divide(c.gains[-1], c.gains[0]))).max() for c in clips]
    assert max(changes) > 0.15
    for clip in clips:
        steps = np.diff([c.centre for c in clip.cameras], axis=0)
        assert np.std(steps[:, 0]) > 1.0  # jitter, not a straight pan


def test_hard_clips_are_deterministic_and_differ_from_ordinary_clips():
    seed = scene_seed("test", 0, stream="hard_clip")
    a, b = render_hard_clip(seed, n_frames=4), render_hard_clip(seed, n_frames=4)
    assert all(fa.image.tobytes() == fb.image.tobytes() for fa, fb in zip(a, b))
    ordinary = render_clip(seed, n_frames=4, split="test")
    assert ordinary[0].image.tobytes() != a[0].image.tobytes()


def test_short_and_non_square_hard_clips_render():
    clip = render_hard_clip(scene_seed("val", 1, stream="hard_clip"), n_frames=3, size=(96, 128))
    assert len(clip) == 3 and clip[0].image.shape == (96, 128, 3)
