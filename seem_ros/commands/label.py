"""``seem-ros label --teacher T --frames SRC... --out SHARDS/``: the teacher pass of distillation.

Every kept frame of the sources (image folders, videos, rosbag2 bags; see
:mod:`seem_ros.distill.sources`) is labelled by the teacher (:mod:`seem_ros.distill.teacher`)
on Ray Data (:mod:`seem_ros.distill.ray_pipeline`): a local Ray instance, or the cluster at
``--ray-address``. Labels go into self-describing shards (:mod:`seem_ros.distill.shards`); a
run on a folder that already holds labels of the same teacher and settings continues it.
Details: ``docs/distillation.md``.

Exit status: 0 when the run finished (bad frames are counted and skipped, not errors); 1 when
the Ray pipeline failed part-way (the shards written so far are kept, and a rerun continues);
2 when the teacher, the sources, the options or the output folder cannot be used, with the
reason on stderr; 130 when interrupted (the frames labelled so far are written).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
from pathlib import Path
from typing import Any

from ._arg_types import non_negative_float, positive_int

NAME = "label"
HELP = "label unlabelled frames (folders, videos, rosbag2) with a teacher model, on Ray"
LOG = logging.getLogger(__name__)
EXIT_FAILED = 1
EXIT_CANNOT_RUN = 2
EXIT_INTERRUPTED = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--teacher",
        type=Path,
        required=True,
        help="teacher weights (.safetensors with its .json card): the demo model or a "
        "converted official SEEM; on a cluster, at a path every node can read",
    )
    parser.add_argument(
        "--frames",
        nargs="+",
        required=True,
        metavar="SRC",
        help="image folders, video files, rosbag2 bags (directories, .mcap, .db3), or folders "
        "holding any of them (searched recursively)",
    )
    parser.add_argument("--out", type=Path, required=True, help="shard folder to write or continue")
    parser.add_argument(
        "--topic",
        action="append",
        default=[],
        help="bag image topic to label (Image or CompressedImage); repeatable (default: every "
        "camera image topic of each bag)",
    )
    parser.add_argument(
        "--classes",
        help="vocabulary: 'a; b; c' or a text file with one name per line (default: the "
        "teacher card's vocabulary, else the COCO panoptic classes)",
    )
    parser.add_argument(
        "--phrases",
        help="referring phrases to ask: 'the red mug; the door on the left' or a text file "
        "with one per line (default: none)",
    )
    parser.add_argument("--stride", type=positive_int, default=1, help="keep every Nth frame")
    parser.add_argument(
        "--max-frames",
        type=positive_int,
        help="stop when the shard folder holds this many frames, earlier runs' included "
        "(default: no limit)",
    )
    parser.add_argument(
        "--dedup-threshold",
        type=non_negative_float,
        default=2.0,
        help="skip a frame whose 32x32 grey thumbnail differs from the last kept frame's by "
        "less than this mean absolute difference in grey levels; 0 keeps every frame",
    )
    parser.add_argument(
        "--mask-size", type=positive_int, default=64, help="long side of the stored mask grid"
    )
    parser.add_argument("--shard-size", type=positive_int, default=64, help="frames per shard file")
    parser.add_argument(
        "--chunk-frames",
        type=positive_int,
        default=64,
        help="about this many kept frames per read task",
    )
    parser.add_argument(
        "--ray-address",
        help="join this Ray cluster ('auto': the one this node is in; default: start a local "
        "Ray instance on this machine)",
    )
    parser.add_argument(
        "--num-gpus",
        type=int,
        default=0,
        help="teacher replicas on GPUs, one GPU each (default: 0, the teachers run on CPUs)",
    )
    parser.add_argument(
        "--replicas",
        type=positive_int,
        help="CPU teacher replicas, when --num-gpus is 0 (default: 1)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=4, help="frames per teacher call"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete labels in --out made with another teacher or settings instead of refusing",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def read_names(text: str | None, *, what: str, separators: str) -> list[str]:
    """Names from ``"a; b"`` or from a file with one per line (``#`` starts a comment)."""
    if text is None:
        return []
    path = Path(text).expanduser()
    if path.is_file():
        lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
        names = [line for line in lines if line]
        if not names:
            raise ValueError(f"{what} file {path} names nothing")
        return names
    for separator in separators[1:]:
        text = text.replace(separator, separators[0])
    names = [part.strip() for part in text.split(separators[0]) if part.strip()]
    if not names:
        raise ValueError(f"{what}: nothing in {text!r}")
    return names


def default_classes(card: Any) -> list[str]:
    """The teacher card's vocabulary, else the COCO panoptic class names."""
    if card.vocabulary:
        return list(card.vocabulary)
    from ..model.official.vocabulary import COCO_PANOPTIC_CLASSES

    return list(COCO_PANOPTIC_CLASSES)


def teacher_info(path: Path) -> tuple[dict[str, Any], Any]:
    """The manifest's ``teacher`` entry and the model card, from the files alone (the model
    is loaded by the workers).

    Raises:
        WeightsError: No weights, no or a bad card, or weights that differ from their card.
    """
    from ..model.build import card_path_for, file_sha256
    from ..model.card import ModelCard
    from ..model.weights import WeightsError

    if not path.is_file():
        raise WeightsError(f"teacher weights not found: {path}")
    card_file = card_path_for(path)
    try:
        card = ModelCard.load(card_file)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise WeightsError(
            f"teacher {path}: cannot read its model card {card_file}: {error}"
        ) from error
    sha256 = file_sha256(path)
    if card.weights_sha256 and card.weights_sha256 != sha256:
        raise WeightsError(f"{path}: checksum differs from its model card (corrupt or replaced)")
    if path.suffix == ".safetensors":  # a truncated file fails here, not in every worker
        from safetensors import safe_open

        try:
            with safe_open(str(path), "np") as weights:
                weights.keys()
        except Exception as error:
            raise WeightsError(f"cannot read teacher weights {path}: {error}") from error
    info = {
        "path": str(path),
        "name": path.stem,
        "sha256": sha256,
        "config": card.config.name,
        "family": getattr(card.config, "family", "seem_ros"),
        "trained": card.trained,
    }
    return info, card


def _missing_extra() -> str | None:
    missing = [name for name in ("ray", "rosbags") if importlib.util.find_spec(name) is None]
    if missing:
        return (
            f"seem-ros label needs {' and '.join(missing)} (Ray Data, rosbag2 reading): "
            "pip install 'seem_ros[fleet]'"
        )
    return None


def check_arguments(args: argparse.Namespace) -> None:
    """What is wrong with the options alone (raises ValueError)."""
    if args.num_gpus < 0:
        raise ValueError(f"--num-gpus must be 0 or more, got {args.num_gpus}")
    if args.num_gpus and args.replicas:
        raise ValueError("--replicas is for CPU teachers; with --num-gpus N there are N GPU ones")


def open_shards(args: argparse.Namespace) -> tuple[Any, Any, list[Any]]:
    """Check the teacher, the vocabulary and the sources, and open (or continue) the shard
    folder: ``(writer, job without chunks, sources)``. The teacher is not loaded here.

    Raises:
        WeightsError, SourceError, ShardError, PromptError, ValueError: With the reason.
    """
    from ..distill.ray_pipeline import LabelJob
    from ..distill.shards import ShardWriter
    from ..distill.sources import Selection, SourceError, enumerate_sources
    from ..distill.teacher import LabelSettings
    from ..prompts import ClassNames

    check_arguments(args)
    teacher = args.teacher.expanduser().resolve()
    info, card = teacher_info(teacher)
    names = read_names(args.classes, what="--classes", separators=";,")
    classes = list(ClassNames(tuple(names)).names) if names else default_classes(card)
    phrases = read_names(args.phrases, what="--phrases", separators=";")
    settings = LabelSettings(
        classes=tuple(classes), phrases=tuple(phrases), mask_size=args.mask_size
    )
    selection = Selection(args.stride, args.dedup_threshold, args.chunk_frames)
    sources, problems = enumerate_sources(args.frames, args.topic)
    for text in problems:
        LOG.warning("%s", text)
    if not sources:
        raise SourceError("no frame source can be read")
    writer = ShardWriter(
        args.out,
        {
            "teacher": info,
            "settings": settings.to_dict(),
            "selection": selection.to_dict(),
            "sources": [s.to_dict() for s in sources],
        },
        shard_size=args.shard_size,
        overwrite=args.overwrite,
    )
    LOG.info(
        "teacher %s (%s), %d classes, %d phrases; %d sources",
        teacher,
        info["config"],
        len(classes),
        len(phrases),
        len(sources),
    )
    job = LabelJob(
        teacher=str(teacher),
        settings=settings,
        selection=selection,
        chunks=[],
        num_gpus=args.num_gpus,
        replicas=args.replicas or 1,
        batch_size=args.batch_size,
    )
    return writer, job, sources


def chunks_to_do(writer: Any, sources: list[Any], selection: Any) -> list[Any]:
    """The chunks not finished in the shard folder, each knowing its frames already there."""
    from ..distill.sources import chunks_of, split_key

    done: dict[str, list[str]] = {}
    for key in writer.done_keys:
        source, locator = split_key(key)
        done.setdefault(source, []).append(locator)
    return [
        chunk
        for source in sources
        for chunk in chunks_of(source, selection, done.get(source.id, ()))
        if chunk.id not in writer.chunks_done
    ]


def short(error: BaseException) -> str:
    """An exception in one line: Ray's carry whole remote tracebacks; keep the first and last
    lines (what failed, and the root cause)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"
    return f"{type(error).__name__}: {text}"


def run(args: argparse.Namespace) -> int:
    from ..distill.shards import ShardError
    from ..distill.sources import SourceError
    from ..model.weights import WeightsError
    from ..prompts import PromptError

    problem = _missing_extra()
    if problem:
        LOG.error("%s", problem)
        return EXIT_CANNOT_RUN
    try:
        writer, job, sources = open_shards(args)
    except (WeightsError, SourceError, ShardError, PromptError, ValueError, OSError) as error:
        LOG.error("seem-ros label: %s", error)
        return EXIT_CANNOT_RUN
    if writer.frames:
        LOG.info("%s holds %d frames already: continuing", args.out, writer.frames)
    if args.max_frames is not None and writer.frames >= args.max_frames:
        print(f"{args.out} holds {writer.frames} frames (--max-frames {args.max_frames}): done")
        return 0
    job.chunks = chunks_to_do(writer, sources, job.selection)
    if not job.chunks:
        print(f"every frame of these sources is in {args.out} already ({writer.frames} frames)")
        return 0
    status, summary = label_on_ray(args, job, writer, sources)
    counts = writer.counts
    run_line = ""
    if summary is not None:
        run_line = (
            f"labelled {summary.labelled} frames in {summary.seconds:.1f} s "
            f"({summary.frames_per_second:.2f} frames/s), {summary.bad + summary.failed} bad, "
            f"{summary.duplicates} near-duplicates, {summary.stride_skipped} skipped by the "
            f"stride{'; reached --max-frames' if summary.reached_max else ''}. "
        )
    print(
        f"{run_line}{args.out}: {counts['frames']} frames in {counts['shards']} shards "
        f"({counts['bad_frames']} bad frames, {counts['duplicates_skipped']} near-duplicates "
        "skipped in total)"
    )
    if summary is not None and summary.unreadable_chunks:
        LOG.warning(
            "%d chunks could not be read (on a cluster: does every node see the sources at "
            "the same paths?)",
            summary.unreadable_chunks,
        )
    if status == EXIT_FAILED:
        LOG.error("the shards written so far are kept; run the same command again to continue")
    return status


def label_on_ray(
    args: argparse.Namespace, job: Any, writer: Any, sources: list[Any]
) -> tuple[int, Any]:
    """Run the pipeline with a progress bar: ``(exit status, LabelSummary or None)``. The
    writer is closed (every labelled frame written) however the run ends."""
    from tqdm import tqdm

    from ..distill import ray_pipeline
    from ..distill.sources import expected_frames

    expected = expected_frames(job.chunks, {s.id: s for s in sources}, job.selection)
    if args.max_frames is not None and expected:
        expected = min(expected, args.max_frames - writer.frames)
    progress = None

    def on_frame(summary: ray_pipeline.LabelSummary) -> None:
        progress.set_postfix(summary.postfix(), refresh=False)
        progress.update(summary.labelled - progress.n)

    status, summary = 0, None
    try:
        with ray_pipeline.ray_session(args.ray_address):
            ray_pipeline.check_resources(job)
            progress = tqdm(
                total=expected or None, desc="label", unit="frame", disable=args.no_progress
            )
            summary = ray_pipeline.run_labelling(
                job, writer, max_frames=args.max_frames, on_frame=on_frame
            )
    except ray_pipeline.PipelineError as error:
        LOG.error("seem-ros label: %s", error)
        status = EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        LOG.warning("interrupted: writing the frames labelled so far")
        status = EXIT_INTERRUPTED
    except Exception as error:  # Ray reports worker and cluster failures in many types
        LOG.error("seem-ros label stopped: %s", short(error))
        LOG.debug("the whole error", exc_info=True)
        status = EXIT_FAILED
    finally:
        if progress is not None:
            progress.close()
        writer.close()
    return status, summary
