"""Regenerate the shipped sample bag, ``seem_ros/data/samples/sample_scene.mcap``.

Fifteen 256x256 frames of the procedural sample clip at 10 Hz, as JPEG
``sensor_msgs/CompressedImage`` on ``/camera/image_raw/compressed`` with a
``/camera/camera_info`` per frame; ``/prompt/classes`` names the clip's thing categories just
after the first frame, and ``/prompt/point`` clicks the clip's occluder (a pixel of its mask
nearest its centroid) just before frame 8. Deterministic: the same inputs give the same bytes
(on one OpenCV build; JPEG encoders may differ between builds).

Usage: python benchmarks/make_sample_bag.py [--out PATH]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from seem_ros.data import render_clip, scene_seed  # noqa: E402
from seem_ros.data.clips import Clip  # noqa: E402
from seem_ros.data.samples import SAMPLE_SPLIT  # noqa: E402
from seem_ros.ros import messages  # noqa: E402
from seem_ros.ros.bag_io import BagWriter  # noqa: E402
from seem_ros.ros.bag_processing import SAMPLE_BAG  # noqa: E402
from seem_ros.ros.image_codec import rgb_to_compressed_msg  # noqa: E402

FRAMES = 15
SIZE = (256, 256)
START_NS = 1_700_000_000_000_000_000
PERIOD_NS = 100_000_000
CLICK_FRAME = 8
JPEG_QUALITY = 80
FRAME_ID = "camera_optical_frame"
IMAGE_TOPIC = "/camera/image_raw/compressed"
CAMERA_INFO_TOPIC = "/camera/camera_info"
CLASSES_TOPIC = "/prompt/classes"
POINT_TOPIC = "/prompt/point"
FOCAL_PX = 220.0


def sample_bag_clip() -> Clip:
    """The sample clip's world, rendered for :data:`FRAMES` frames."""
    seed = scene_seed(SAMPLE_SPLIT, 0, stream="sample-clip")
    return render_clip(seed, n_frames=FRAMES, size=SIZE, split=SAMPLE_SPLIT)


def click_on(segment_ids: np.ndarray, segment_id: int) -> tuple[float, float]:
    """The centre of the segment's pixel nearest its centroid (always on the segment)."""
    rows, cols = np.nonzero(segment_ids == segment_id)
    if rows.size == 0:
        raise ValueError(f"segment {segment_id} is not visible in this frame")
    distance = (rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2
    nearest = int(np.argmin(distance))
    return float(cols[nearest]) + 0.5, float(rows[nearest]) + 0.5


def bag_messages(clip: Clip) -> list[tuple[int, str, bytes]]:
    """``(bag time, topic, CDR)`` of every message, in time order."""
    height, width = SIZE
    k = [FOCAL_PX, 0.0, width / 2, 0.0, FOCAL_PX, height / 2, 0.0, 0.0, 1.0]
    stamped: list[tuple[int, str, bytes]] = []
    for index, scene in enumerate(clip):
        stamp_ns = START_NS + index * PERIOD_NS
        header = messages.make_header(stamp_ns, FRAME_ID)
        image = rgb_to_compressed_msg(scene.image, header, jpeg_quality=JPEG_QUALITY)
        stamped.append((stamp_ns, IMAGE_TOPIC, messages.serialize(image)))
        info = messages.make_camera_info(header, width, height, k)
        stamped.append((stamp_ns, CAMERA_INFO_TOPIC, messages.serialize(info)))
    classes = "; ".join(sorted({track.category for track in clip.tracks.values()}))
    stamped.append((START_NS + PERIOD_NS // 2, CLASSES_TOPIC, _string(classes)))
    click_ns = START_NS + CLICK_FRAME * PERIOD_NS - PERIOD_NS // 2
    x, y = click_on(clip[CLICK_FRAME - 1].segment_ids, clip.occluder_id)
    point = messages.make_point_stamped(messages.make_header(click_ns, FRAME_ID), x, y, 1.0)
    stamped.append((click_ns, POINT_TOPIC, messages.serialize(point)))
    return sorted(stamped, key=lambda item: (item[0], item[1]))


def _string(text: str) -> bytes:
    return messages.serialize(messages.make_string(text))


def write_sample_bag(out: Path) -> Path:
    """Write the sample as one bare MCAP file at ``out`` (replacing it)."""
    stamped = bag_messages(sample_bag_clip())
    topics = {
        IMAGE_TOPIC: messages.COMPRESSED_IMAGE,
        CAMERA_INFO_TOPIC: messages.CAMERA_INFO,
        CLASSES_TOPIC: messages.STRING,
        POINT_TOPIC: messages.POINT_STAMPED,
    }
    with tempfile.TemporaryDirectory() as folder:
        bag = Path(folder) / out.stem
        with BagWriter(bag, "mcap") as writer:
            for topic, ros_type in topics.items():
                writer.add_topic(topic, ros_type)
            for stamp_ns, topic, cdr in stamped:
                writer.write(topic, stamp_ns, cdr)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bag / f"{out.stem}.mcap", out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLE_BAG, help=f"default: {SAMPLE_BAG}")
    out = write_sample_bag(parser.parse_args().out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
