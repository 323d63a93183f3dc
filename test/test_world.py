"""Specification of the procedural data world (seem_ros.data)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from seem_ros.data import (
    COLOURS,
    HELD_OUT_PAIRS,
    SIZES,
    STUFF_CATEGORIES,
    THING_CATEGORIES,
    ClipDataset,
    SceneDataset,
    class_names,
    describe,
    render_clip,
    render_composition_case,
    render_openvocab_case,
    render_scene,
    scene_seed,
    split_of_seed,
    write_samples,
)

SEEDS = range(12)
RELATIONS = {
    "to the left of": lambda a, b: a[0] < b[0],
    "left of": lambda a, b: a[0] < b[0],
    "to the right of": lambda a, b: a[0] > b[0],
    "right of": lambda a, b: a[0] > b[0],
    "above": lambda a, b: a[1] < b[1],
    "below": lambda a, b: a[1] > b[1],
}
EXTREMES = {
    "leftmost": (0, min),
    "rightmost": (0, max),
    "topmost": (1, min),
    "bottommost": (1, max),
}
PAIR_SUFFIXES = {
    "on the left": (0, min),
    "on the right": (0, max),
    "at the top": (1, min),
    "at the bottom": (1, max),
}


@pytest.fixture(scope="module")
def scenes():
    return [render_scene(seed, split="val") for seed in SEEDS]


def centroid(mask: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(mask)
    return float(cols.mean()), float(rows.mean())


def attribute_filter(words: list[str]) -> dict[str, str]:
    """The (size, colour, category) constraints of a noun phrase such as "small red object"."""
    constraints: dict[str, str] = {}
    for word in words:
        if word in SIZES:
            constraints["size"] = word
        elif word in COLOURS:
            constraints["colour"] = word
        elif word in THING_CATEGORIES:
            constraints["category"] = word
        else:
            assert word in ("object", "shape"), f"unexpected word {word!r}"
    return constraints


def things_matching(scene, noun_words: list[str]):
    constraints = attribute_filter(noun_words)
    return [
        s
        for s in scene.thing_segments
        if all(getattr(s, name) == value for name, value in constraints.items())
    ]


def resolve(scene, text: str) -> set[int]:
    """Independently evaluate a phrase: the ids of every segment it could refer to."""
    assert text.startswith("the "), text
    body = text[len("the ") :]
    if body in STUFF_CATEGORIES:
        return {s.id for s in scene.segments if s.category == body}
    for relation in sorted(RELATIONS, key=len, reverse=True):
        marker = f" {relation} the "
        if marker in body:
            target_words, anchor_words = body.split(marker)
            anchors = things_matching(scene, anchor_words.split())
            assert len(anchors) == 1, f"anchor of {text!r} is ambiguous"
            anchor_xy = centroid(anchors[0].mask)
            holds = RELATIONS[relation]
            return {
                s.id
                for s in things_matching(scene, target_words.split())
                if s is not anchors[0] and holds(centroid(s.mask), anchor_xy)
            }
    words = body.split()
    if words[0] in EXTREMES:
        axis, pick = EXTREMES[words[0]]
        members = things_matching(scene, words[1:])
    else:
        suffix = next((s for s in PAIR_SUFFIXES if body.endswith(" " + s)), None)
        if suffix is None:
            return {s.id for s in things_matching(scene, words)}
        axis, pick = PAIR_SUFFIXES[suffix]
        members = things_matching(scene, body[: -len(suffix) - 1].split())
        assert len(members) == 2, f"{text!r} used with {len(members)} matches"
    best = pick(centroid(s.mask)[axis] for s in members)
    return {s.id for s in members if centroid(s.mask)[axis] == best}


def assert_same_scene(a, b) -> None:
    assert a.image.tobytes() == b.image.tobytes()
    assert a.segment_ids.tobytes() == b.segment_ids.tobytes()
    assert [(s.id, s.category, s.colour, s.size, s.bbox, s.area) for s in a.segments] == [
        (s.id, s.category, s.colour, s.size, s.bbox, s.area) for s in b.segments
    ]
    for sa, sb in zip(a.segments, b.segments):
        assert np.array_equal(sa.mask, sb.mask)
        assert (sa.amodal_mask is None) == (sb.amodal_mask is None)
        if sa.amodal_mask is not None:
            assert np.array_equal(sa.amodal_mask, sb.amodal_mask)
    assert a.phrases == b.phrases


def test_same_seed_renders_byte_identical_image_and_ground_truth():
    assert_same_scene(render_scene(7, split="test"), render_scene(7, split="test"))


def test_different_seeds_render_different_images():
    images = {render_scene(seed).image.tobytes() for seed in range(5)}
    assert len(images) == 5


def test_image_and_ids_have_the_documented_types_and_shapes():
    scene = render_scene(3, size=(96, 160))
    assert scene.image.shape == (96, 160, 3) and scene.image.dtype == np.uint8
    assert scene.segment_ids.shape == (96, 160) and scene.segment_ids.dtype == np.int32


def test_segment_masks_are_disjoint_cover_the_image_and_match_segment_ids(scenes):
    for scene in scenes:
        coverage = np.zeros(scene.hw, dtype=np.int32)
        for segment in scene.segments:
            coverage += segment.mask
            assert np.array_equal(segment.mask, scene.segment_ids == segment.id)
        assert np.all(coverage == 1)
        assert np.all(scene.segment_ids > 0)
        assert len({s.id for s in scene.segments}) == len(scene.segments)


def test_bbox_and_area_match_the_visible_mask(scenes):
    for segment in (s for scene in scenes for s in scene.segments):
        rows, cols = np.nonzero(segment.mask)
        assert segment.area == rows.size
        assert segment.bbox == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


def test_visible_mask_of_a_thing_lies_inside_its_amodal_mask(scenes):
    for thing in (s for scene in scenes for s in scene.thing_segments):
        assert not np.any(thing.mask & ~thing.amodal_mask)


def test_every_thing_is_recognisably_visible(scenes):
    for scene in scenes:
        image_area = scene.hw[0] * scene.hw[1]
        for thing in scene.thing_segments:
            assert thing.area >= 0.015 * image_area
            assert thing.area >= 0.4 * np.count_nonzero(thing.amodal_mask)


def test_scenes_have_things_stuff_occlusions_and_repeated_categories(scenes):
    assert all(scene.thing_segments and scene.stuff_segments for scene in scenes)
    occluded = [t for scene in scenes for t in scene.thing_segments if t.area < t.amodal_mask.sum()]
    assert occluded
    assert any(
        len({t.category for t in scene.thing_segments}) < len(scene.thing_segments)
        for scene in scenes
    )


def test_things_carry_vocabulary_attributes_and_stuff_does_not(scenes):
    for segment in (s for scene in scenes for s in scene.segments):
        if segment.is_thing:
            assert segment.category in THING_CATEGORIES
            assert segment.colour in COLOURS and segment.size in SIZES
        else:
            assert segment.category in STUFF_CATEGORIES
            assert segment.colour is None and segment.amodal_mask is None


def test_every_phrase_picks_exactly_its_target(scenes):
    kinds = set()
    for scene in scenes:
        assert scene.phrases
        for phrase in scene.phrases:
            assert resolve(scene, phrase.text) == {phrase.target_id}, phrase
            kinds.add(
                "relation" if any(f" {r} the " in phrase.text for r in RELATIONS) else "other"
            )
    assert kinds == {"relation", "other"}


def test_attribute_phrases_name_attributes_no_other_thing_shares(scenes):
    for scene in scenes:
        for phrase in scene.phrases:
            words = phrase.text.split()[1:]
            if all(
                w in SIZES or w in COLOURS or w in THING_CATEGORIES or w in ("object", "shape")
                for w in words
            ):
                assert [s.id for s in things_matching(scene, words)] == [phrase.target_id]


def test_things_have_several_phrasings(scenes):
    for scene in scenes:
        for thing in scene.thing_segments:
            assert len({p.text for p in scene.phrases if p.target_id == thing.id}) >= 2


def test_train_scenes_and_clips_never_contain_held_out_pairs():
    scenes = [render_scene(scene_seed("train", i), split="train") for i in range(150)]
    scenes += list(render_clip(scene_seed("train", 0, "clip"), n_frames=2, split="train"))
    scenes += [render_composition_case(i, split="train").scene for i in range(20)]
    pairs = {(t.colour, t.category) for scene in scenes for t in scene.thing_segments}
    assert len(pairs) > 40
    assert not pairs & HELD_OUT_PAIRS


def test_test_split_scenes_do_contain_held_out_pairs():
    scenes = [render_scene(scene_seed("test", i), split="test") for i in range(150)]
    assert {(t.colour, t.category) for s in scenes for t in s.thing_segments} & HELD_OUT_PAIRS


def test_split_seeds_are_disjoint_and_remember_their_split():
    seeds = {
        split: {scene_seed(split, i) for i in range(3000)} for split in ("train", "val", "test")
    }
    assert all(len(s) == 3000 for s in seeds.values())
    assert not seeds["train"] & seeds["val"]
    assert not seeds["train"] & seeds["test"]
    assert not seeds["val"] & seeds["test"]
    assert all(split_of_seed(seed) == split for split, group in seeds.items() for seed in group)


def test_scene_and_clip_seed_streams_differ():
    assert scene_seed("train", 5) != scene_seed("train", 5, stream="clip")


@pytest.fixture(scope="module")
def clip():
    return render_clip(11, n_frames=30, size=(128, 160), split="val")


def test_clip_has_requested_frames_and_size(clip):
    assert len(clip) == 30
    assert all(frame.image.shape == (128, 160, 3) for frame in clip)


def test_clip_segment_ids_are_stable_track_identities(clip):
    for frame in clip:
        for thing in frame.thing_segments:
            track = clip.tracks[thing.id]
            assert (track.category, track.colour, track.size) == (
                thing.category,
                thing.colour,
                thing.size,
            )
    # The same id stays on the same object: between consecutive frames its full shape moves little.
    for before, after in zip(clip.frames, clip.frames[1:]):
        shared = {s.id for s in before.thing_segments} & {s.id for s in after.thing_segments}
        for track_id in shared:
            step = np.subtract(
                centroid(after.segment(track_id).amodal_mask),
                centroid(before.segment(track_id).amodal_mask),
            )
            assert np.linalg.norm(step) < 0.1 * 160


def test_clip_object_is_hidden_then_reappears(clip):
    def visible(frame, track_id):
        return bool(np.any(frame.segment_ids == track_id))

    flags = [visible(frame, clip.occludee_id) for frame in clip]
    assert flags[0] and flags[-1]
    assert not all(flags)
    first_hidden = flags.index(False)
    assert any(flags[first_hidden:])
    hidden_frame = clip[first_hidden]
    assert visible(hidden_frame, clip.occluder_id)


def test_clip_frames_are_segmented_like_still_scenes(clip):
    for frame in clip:
        coverage = sum(s.mask.astype(np.int32) for s in frame.segments)
        assert np.all(coverage == 1)
        for phrase in frame.phrases:
            assert resolve(frame, phrase.text) == {phrase.target_id}


def test_clip_camera_and_lighting_change_over_time(clip):
    first, last = clip.cameras[0], clip.cameras[-1]
    assert first.centre != last.centre
    assert clip.gains[0] != clip.gains[-1]
    background = [
        f.image[f.segment_ids <= len(STUFF_CATEGORIES)].mean() for f in (clip[0], clip[-1])
    ]
    assert background[0] != pytest.approx(background[1], abs=0.5)


def test_clip_is_deterministic():
    a, b = render_clip(4, n_frames=3), render_clip(4, n_frames=3)
    for frame_a, frame_b in zip(a, b):
        assert_same_scene(frame_a, frame_b)


@pytest.mark.parametrize("seed", range(8))
def test_composition_case_needs_both_text_and_click(seed):
    case = render_composition_case(seed, split="test")
    scene = case.scene
    colour, category = case.text.split()
    text_matches = [
        t.id for t in scene.thing_segments if (t.colour, t.category) == (colour, category)
    ]
    assert sorted(text_matches) == sorted([case.target_id, case.distractor_id])
    x, y = case.click_xy
    clicked = int(scene.segment_ids[y, x])
    assert clicked == case.occluder_id
    assert clicked not in text_matches
    assert scene.segment(case.target_id).amodal_mask[y, x]
    assert not scene.segment(case.distractor_id).amodal_mask[y, x]


@pytest.mark.parametrize("split", ["val", "test"])
def test_openvocab_case_names_a_unique_held_out_object(split):
    case = render_openvocab_case(3, split=split)
    target = case.scene.segment(case.target_id)
    assert (target.colour, target.category) == case.pair
    assert case.pair in HELD_OUT_PAIRS
    assert resolve(case.scene, case.text) == {case.target_id}


def test_openvocab_case_refuses_the_train_split():
    with pytest.raises(ValueError, match="train"):
        render_openvocab_case(0, split="train")


def test_semantic_map_indexes_each_pixels_category(scenes):
    scene = scenes[0]
    names = class_names()
    semantic = scene.semantic_map(names)
    for segment in scene.segments:
        assert np.all(semantic[segment.mask] == names.index(segment.category))


def test_semantic_map_rejects_a_vocabulary_missing_a_category(scenes):
    with pytest.raises(ValueError, match="not in the vocabulary"):
        scenes[0].semantic_map(["floor"])


def test_class_names_and_describe_use_the_vocabulary(scenes):
    assert class_names() == [*THING_CATEGORIES, *STUFF_CATEGORIES]
    thing = scenes[0].thing_segments[0]
    assert describe(thing) == f"{thing.colour} {thing.category}"
    assert describe(thing, with_size=True) == f"{thing.size} {thing.colour} {thing.category}"
    assert describe(scenes[0].stuff_segments[0]) in STUFF_CATEGORIES


def test_scene_dataset_items_are_deterministic_split_scenes():
    dataset = SceneDataset("val", length=3, size=(64, 64))
    assert len(dataset) == 3
    assert_same_scene(dataset[1], render_scene(scene_seed("val", 1), size=(64, 64), split="val"))
    assert dataset[-1].seed == dataset[2].seed
    with pytest.raises(IndexError):
        dataset[3]


def test_clip_dataset_items_are_clips_of_the_requested_length():
    clip = ClipDataset("train", length=2, n_frames=3, size=(64, 64))[1]
    assert len(clip) == 3 and clip.split == "train"


def test_write_samples_writes_images_ids_and_ground_truth(tmp_path):
    manifest_path = write_samples(tmp_path, size=(64, 64))
    manifest = json.loads(manifest_path.read_text())
    entry = manifest["scenes"][0]
    image = cv2.imread(str(tmp_path / entry["image"]))
    ids = cv2.imread(str(tmp_path / entry["segment_ids"]), cv2.IMREAD_UNCHANGED)
    assert image.shape == (64, 64, 3)
    assert sorted(np.unique(ids).tolist()) == sorted(s["id"] for s in entry["segments"])
    for segment in entry["segments"]:
        assert np.count_nonzero(ids == segment["id"]) == segment["area"]
    assert len(manifest["clip"]["frames"]) >= 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: render_scene(-1), "seed"),
        (lambda: render_scene(0, size=(8, 8)), "size"),
        (lambda: render_scene(0, split="holdout"), "split"),
        (lambda: render_clip(0, n_frames=0), "n_frames"),
        (lambda: scene_seed("train", -2), "index"),
    ],
)
def test_bad_arguments_are_rejected_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _look_alike_count(seeds: range) -> int:
    count = 0
    for seed in seeds:
        tracks = list(render_clip(seed, n_frames=1, size=(64, 64)).tracks.values())
        looks = [(t.category, t.colour, t.size) for t in tracks]
        count += len(looks) - len(set(looks))
    return count


def test_clips_hold_exact_look_alikes(monkeypatch):
    """Clips carry twins (same category, colour, size and surface) of another thing, far more
    often than colour x category draws would by chance."""
    from seem_ros.data import clips

    with_twins = _look_alike_count(range(16))
    monkeypatch.setattr(clips, "TWIN_RATE", 0.0)
    assert with_twins >= 4 and with_twins > 2 * _look_alike_count(range(16))
