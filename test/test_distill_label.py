"""Specification of the teacher pass: ``seem-ros label`` (sources, shards, Ray pipeline).

Frames are real files written here: procedural scenes as PNG files, an MJPG video with exact
repeats, the shipped MCAP sample bag and a sqlite3 bag. The teacher is the shipped demo model;
labelling runs on a real local Ray instance (two CPUs, shared by the module). Assertions are
about what is stored and counted, never about mask quality.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from seem_ros.cli import main as cli_main
from seem_ros.data.datasets import SceneDataset
from seem_ros.distill import ray_pipeline
from seem_ros.distill.record import FrameLabel
from seem_ros.distill.shards import ShardError, ShardSet, ShardWriter, pack_arrays
from seem_ros.distill.sources import (
    Chunk,
    Selection,
    SourceError,
    chunks_of,
    enumerate_sources,
    read_chunk,
)
from seem_ros.ros.bag_io import write_sample_bag

REPO = Path(__file__).resolve().parents[1]
TEACHER = REPO / "models" / "seem_tiny_demo.safetensors"
SAMPLE_BAG = REPO / "seem_ros" / "data" / "samples" / "sample_scene.mcap"
SAMPLE_TOPIC = "/camera/image_raw/compressed"
SQLITE_TOPIC = "/camera/image_raw"
VIDEO_PATTERN = [0, 0, 1, 2, 2, 2, 3, 4]  # scene per video frame: frames 1, 4, 5 repeat
FOLDER_IMAGES = 6


def scenes(count: int) -> list[np.ndarray]:
    dataset = SceneDataset("train", count)
    return [dataset[i].image for i in range(count)]


def keys_read(chunks: list[Chunk], selection: Selection) -> list[str]:
    """The frame keys reading offers for labelling (no teacher, no Ray)."""
    return [
        f"{chunk.source_id}:{read.locator}"
        for chunk in chunks
        for kind, read in read_chunk(chunk, selection)
        if kind == "frame"
    ]


def label(*args: str | Path) -> int:
    return cli_main(["label", "--teacher", str(TEACHER), "--no-progress", *map(str, args)])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """An image folder (with a corrupt file), a video with repeats, an MCAP and a sqlite3 bag."""
    root = tmp_path_factory.mktemp("data") / "frames"
    root.mkdir()
    images = scenes(max(FOLDER_IMAGES, max(VIDEO_PATTERN) + 1))
    folder = root / "camera_a"
    folder.mkdir()
    for i in range(FOLDER_IMAGES):
        cv2.imwrite(str(folder / f"frame_{i:02d}.png"), cv2.cvtColor(images[i], cv2.COLOR_RGB2BGR))
    (folder / "frame_99.png").write_bytes(b"\x89PNG but truncated")
    video = root / "drive.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (256, 256))
    for scene in VIDEO_PATTERN:
        writer.write(cv2.cvtColor(images[scene], cv2.COLOR_RGB2BGR))
    writer.release()
    sqlite_bag = write_sample_bag(root / "yard_bag", "sqlite3", images[:3])
    return {"folder": folder, "video": video, "mcap": SAMPLE_BAG, "sqlite": sqlite_bag}


@pytest.fixture(scope="module")
def ray_instance():
    """One small local Ray instance for the module; ``seem-ros label`` uses it as it is."""
    ray = pytest.importorskip("ray")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="WARNING",
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def labelled(data, ray_instance, tmp_path_factory) -> Path:
    """Every kind of source labelled in one run, in shards of 8."""
    out = tmp_path_factory.mktemp("labelled") / "shards"
    status = label(
        "--frames", data["folder"], data["video"], data["mcap"], data["sqlite"],
        "--topic", SAMPLE_TOPIC, "--topic", SQLITE_TOPIC,
        "--out", out, "--shard-size", "8", "--phrases", "the red star; a blue ring",
    )  # fmt: skip
    assert status == 0
    return out


# ---------------------------------------------------------------------- sources
def test_sources_are_named_by_the_argument_and_the_path_below_it(data):
    sources, problems = enumerate_sources([data["folder"].parent], [SAMPLE_TOPIC, SQLITE_TOPIC])
    ids = {source.id for source in sources}
    assert problems == []
    assert {"frames/camera_a", "frames/drive.avi", f"frames/yard_bag@{SQLITE_TOPIC}"} <= ids
    assert all(":" not in source_id for source_id in ids)


def test_image_keys_are_file_names_video_keys_frame_numbers_bag_keys_bag_times(data):
    selection = Selection(dedup_threshold=0)
    sources, _ = enumerate_sources([data["folder"], data["video"], data["sqlite"]])
    keys = keys_read([c for s in sources for c in chunks_of(s, selection)], selection)
    assert keys[:2] == ["camera_a:frame_00.png", "camera_a:frame_01.png"]
    assert "drive.avi:7" in keys
    assert f"yard_bag@{SQLITE_TOPIC}:1700000000100000000" in keys


def test_stride_keeps_every_nth_frame_number(data):
    selection = Selection(stride=3, dedup_threshold=0)
    (source,), _ = enumerate_sources([data["video"]])
    (chunk,) = chunks_of(source, selection)
    assert keys_read([chunk], selection) == ["drive.avi:0", "drive.avi:3", "drive.avi:6"]
    *_, (_, stats) = read_chunk(chunk, selection)
    assert stats.stride_skipped == 5


def test_near_duplicates_of_the_last_kept_frame_are_skipped(data):
    (source,), _ = enumerate_sources([data["video"]])
    (chunk,) = chunks_of(source, Selection())
    *rows, (_, stats) = read_chunk(chunk, Selection())
    assert [read.locator for _, read in rows] == ["0", "2", "3", "6", "7"]
    assert stats.duplicates_skipped == 3
    assert len(keys_read([chunk], Selection(dedup_threshold=0))) == len(VIDEO_PATTERN)


def test_chunks_read_the_same_frames_as_one_pass(data):
    whole, small = Selection(dedup_threshold=0), Selection(dedup_threshold=0, chunk_frames=3)
    for path in (data["video"], data["mcap"], data["folder"]):
        (source,), _ = enumerate_sources([path])
        chunks = chunks_of(source, small)
        assert len(chunks) > 1
        assert keys_read(chunks, small) == keys_read(chunks_of(source, whole), whole)


def test_a_corrupt_image_is_reported_bad_and_skipped(data):
    (source,), _ = enumerate_sources([data["folder"]])
    (chunk,) = chunks_of(source, Selection())
    *rows, (_, stats) = read_chunk(chunk, Selection(dedup_threshold=0))
    bad = [read.locator for kind, read in rows if kind == "bad"]
    assert bad == ["frame_99.png"] and stats.bad_frames == 1


def test_a_video_ending_inside_a_chunk_counts_the_missing_frames_bad(data):
    chunk = Chunk("drive.avi", "video", str(data["video"]), start=4, stop=12)
    *rows, (_, stats) = read_chunk(chunk, Selection(dedup_threshold=0))
    assert [read.locator for _, read in rows] == ["4", "5", "6", "7"]
    assert stats.bad_frames == 4 and "8..11" in stats.unreadable


def test_a_bag_without_the_topic_is_a_problem_not_an_error(data):
    sources, problems = enumerate_sources([data["sqlite"]], ["/no/such/topic"])
    assert sources == [] and "no topic" in problems[0]


def test_two_arguments_with_one_name_are_refused(data, tmp_path):
    other = tmp_path / "camera_a"
    shutil.copytree(data["folder"], other)
    with pytest.raises(SourceError, match="same name"):
        enumerate_sources([data["folder"], other])


# ---------------------------------------------------------------------- shards (no Ray)
def fake_base(classes=("a", "b"), sha="0" * 64) -> dict:
    return {
        "teacher": {"path": "t.safetensors", "sha256": sha},
        "settings": {"classes": list(classes), "mask_size": 8},
        "selection": Selection().to_dict(),
        "sources": [],
    }


def test_a_folder_of_another_teacher_is_refused_unless_overwritten(tmp_path):
    writer = ShardWriter(tmp_path, fake_base(), shard_size=2)
    writer.add("s:0", {"x": np.zeros(1)})
    writer.close()
    with pytest.raises(ShardError, match=r"teacher\.sha256"):
        ShardWriter(tmp_path, fake_base(sha="1" * 64))
    with pytest.raises(ShardError, match="settings"):
        ShardWriter(tmp_path, fake_base(classes=("a",)))
    fresh = ShardWriter(tmp_path, fake_base(sha="1" * 64), overwrite=True)
    assert fresh.frames == 0 and not list(tmp_path.glob("shard-*.npz"))


def test_a_folder_of_other_files_is_not_written_into(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"")
    with pytest.raises(ShardError, match="not a shard folder"):
        ShardWriter(tmp_path, fake_base())


def test_a_killed_runs_unlisted_shard_is_overwritten(tmp_path):
    writer = ShardWriter(tmp_path, fake_base(), shard_size=2)
    for i in range(2):
        writer.add(f"s:{i}", {"x": np.full(1, i)})
    (tmp_path / "shard-00001.npz").write_bytes(b"half a shard")  # killed before the manifest
    (tmp_path / "manifest.json.tmp").write_bytes(b"{")
    resumed = ShardWriter(tmp_path, fake_base(), shard_size=2)
    assert resumed.done_keys == {"s:0", "s:1"} and not list(tmp_path.glob("*.tmp"))
    resumed.add("s:2", {"x": np.full(1, 2)})
    resumed.close()
    assert json.loads((tmp_path / "manifest.json").read_text())["counts"]["frames"] == 3
    assert np.load(tmp_path / "shard-00001.npz")["f0/x"][0] == 2


def test_chunk_counts_wait_until_the_chunks_frames_are_written(tmp_path):
    writer = ShardWriter(tmp_path, fake_base(), shard_size=4)
    writer.add("s:0", {"x": np.zeros(1)})
    writer.count("s|0-9", "duplicates_skipped", 3)
    writer.finish_chunk("s|0-9")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["counts"]["duplicates_skipped"] == 0 and manifest["chunks_done"] == []
    writer.close()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["counts"]["duplicates_skipped"] == 3 and manifest["chunks_done"] == ["s|0-9"]


def test_a_teacher_failure_on_one_frame_counts_as_a_bad_frame(tmp_path):
    rows = [
        {"kind": "label", "chunk": "c", "key": "s:0", "payload": pack_arrays({"x": np.ones(2)})},
        {"kind": "failed", "chunk": "c", "key": "s:1", "error": "teacher failed: boom"},
        {"kind": "end", "chunk": "c", "stats": json.dumps(
            {"stride_skipped": 0, "duplicates_skipped": 0, "bad_frames": 0, "unreadable": ""}
        )},
    ]  # fmt: skip
    writer = ShardWriter(tmp_path, fake_base())
    summary = ray_pipeline.run_labelling(None, writer, rows=iter(rows))  # type: ignore[arg-type]
    writer.close()
    assert (summary.labelled, summary.failed) == (1, 1)
    assert writer.counts["bad_frames"] == 1 and writer.counts["frames"] == 1


def test_the_teacher_actor_turns_an_exception_into_a_failed_row():
    from seem_ros.commands.label import teacher_info

    _, card = teacher_info(TEACHER)
    settings = {"classes": card.vocabulary, "mask_size": 16}
    actor = ray_pipeline.TeacherActor(str(TEACHER), settings, "cpu")
    image = scenes(1)[0]
    frame = {**ray_pipeline.ROW_DEFAULTS, "kind": "frame", "key": "s:0", "height": 256,
             "width": 256, "image": image.tobytes()}  # fmt: skip
    broken = {**frame, "key": "s:1", "image": b"too short"}
    batch = {name: np.array([frame[name], broken[name]], dtype=object) for name in frame}
    out = actor(batch)
    assert list(out["kind"]) == ["label", "failed"]
    assert "ValueError" in out["error"][1]


# ---------------------------------------------------------------------- command, on Ray
def test_the_manifest_describes_the_teacher_vocabulary_and_counts(labelled):
    manifest = json.loads((labelled / "manifest.json").read_text())
    card = json.loads(TEACHER.with_suffix(".json").read_text())
    assert manifest["format"] == "seem_ros.shards/1"
    assert manifest["teacher"]["sha256"] == card["weights_sha256"]
    assert manifest["settings"]["classes"] == card["vocabulary"]  # the default vocabulary
    assert manifest["settings"]["phrases"] == ["the red star", "a blue ring"]
    counts = manifest["counts"]
    assert counts["bad_frames"] == 1 and counts["duplicates_skipped"] >= 3
    assert counts["frames"] == sum(s["frames"] for s in manifest["shards"])
    assert counts["shards"] == len(manifest["shards"]) == -(-counts["frames"] // 8)
    assert {s["kind"] for s in manifest["sources"]} == {"images", "video", "bag"}


def test_the_shards_hold_every_kept_frame_in_source_order(labelled, data):
    selection = Selection()
    sources, _ = enumerate_sources(
        [data["folder"], data["video"], data["mcap"], data["sqlite"]],
        [SAMPLE_TOPIC, SQLITE_TOPIC],
    )
    expected = keys_read([c for s in sources for c in chunks_of(s, selection)], selection)
    shards = ShardSet.open(labelled)
    assert shards.keys() == expected and len(shards) == len(expected)
    assert "drive.avi:1" not in expected and "drive.avi:2" in expected
    assert shards.verify() == []


def test_shard_frames_round_trip_as_frame_labels(labelled, data):
    shards = ShardSet.open(labelled)
    label_ = shards.frame("camera_a:frame_01.png")
    assert isinstance(label_, FrameLabel) and label_.key == "camera_a:frame_01.png"
    original = cv2.imread(str(data["folder"] / "frame_01.png"))
    np.testing.assert_array_equal(label_.image, cv2.cvtColor(original, cv2.COLOR_BGR2RGB))
    assert label_.query_logits.shape[1:] == (shards.mask_size, shards.mask_size)
    assert label_.query_probs.shape[1] == len(shards.classes) + 1
    kinds = {answer.kind for frame in shards.frames() for answer in frame.answers}
    assert {"click", "box", "scribble", "phrase"} <= kinds
    some = shards.keys()[5:9]
    assert [f.key for f in shards.frames(some)] == some


def test_split_is_deterministic_and_disjoint(labelled):
    shards = ShardSet.open(labelled)
    train, held = shards.split(0.3, seed=1)
    assert (train, held) == shards.split(0.3, seed=1)
    assert sorted(train + held) == sorted(shards.keys()) and held and train


def test_a_missing_shard_file_is_a_clear_error(labelled, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(labelled, copy)
    (copy / "shard-00001.npz").unlink()
    with pytest.raises(ShardError, match=r"shard-00001\.npz"):
        ShardSet.open(copy)


def test_a_stopped_run_resumes_with_only_new_frames(data, ray_instance, tmp_path):
    out = tmp_path / "shards"
    sources = ["--frames", data["folder"], data["video"], "--out", out, "--shard-size", "3"]
    assert label(*sources, "--max-frames", "4") == 0
    first = json.loads((out / "manifest.json").read_text())
    assert first["counts"]["frames"] == 4
    assert label(*sources, "--max-frames", "8") == 0
    second = json.loads((out / "manifest.json").read_text())
    assert second["shards"][: len(first["shards"])] == first["shards"]  # untouched
    keys = ShardSet.open(out).keys()
    selection = Selection()
    found, _ = enumerate_sources([data["folder"], data["video"]])
    assert keys == keys_read([c for s in found for c in chunks_of(s, selection)], selection)[:8]
    assert second["counts"]["bad_frames"] == 1  # the folder's chunk, counted once


def test_labels_of_another_teacher_are_refused(labelled, tmp_path, caplog):
    copy = tmp_path / "copy"
    shutil.copytree(labelled, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["teacher"]["sha256"] = "f" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert label("--frames", str(SAMPLE_BAG), "--out", copy) == 2
    assert "another teacher.sha256" in caplog.text


def test_without_ray_the_fleet_extra_is_named(monkeypatch, tmp_path, caplog):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    assert label("--frames", str(SAMPLE_BAG), "--out", tmp_path / "x") == 2
    assert "seem_ros[fleet]" in caplog.text


def test_ray_address_joins_that_cluster_and_leaves_it(monkeypatch):
    ray = pytest.importorskip("ray")
    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(("init", kwargs)))
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append(("shutdown", {})))
    with ray_pipeline.ray_session("ray://head:10001"):
        pass
    with ray_pipeline.ray_session(None):
        pass
    assert calls[0][1]["address"] == "ray://head:10001" and calls[1][0] == "shutdown"
    assert calls[2][1]["address"] == "local" and calls[2][1]["include_dashboard"] is False
