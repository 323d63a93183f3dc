"""``seem-ros bag IN OUT``: run the SEEM node over a recorded rosbag2, offline.

Every frame of the bag is segmented in order by the same core as the live node, with the
prompt topics recorded in the bag applied at their time; OUT holds the input plus
``seem/detections``, ``seem/instance_mask``, ``seem/overlay`` and ``diagnostics``. See
:mod:`seem_ros.ros.bag_processing`.

Exit status: 0 on success; 2 when the model, the parameters or the bag cannot be used
(missing or corrupt weights or bag, no image topic, OUT exists), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..engine.base import EngineError
from ..model.weights import WeightsError
from ..ros.params import ParamError
from ._ros_args import add_allow_untrained_argument, add_parameter_arguments, parameter_overrides

NAME = "bag"
HELP = "segment every frame of a rosbag2 (sqlite3 or MCAP) into a new bag"
LOG = logging.getLogger(__name__)
EXIT_CANNOT_RUN = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, metavar="IN", help="rosbag2 directory or file")
    parser.add_argument("output", type=Path, metavar="OUT", help="new bag directory to write")
    parser.add_argument(
        "--classes",
        help="standing class names, 'mug; person' (default: the classes parameter)",
    )
    parser.add_argument(
        "--image-topic", help="camera topic to segment (default: the bag's only image topic)"
    )
    add_parameter_arguments(parser)
    parser.add_argument(
        "--storage",
        choices=("mcap", "sqlite3"),
        default="mcap",
        help="storage of the output bag (default: mcap)",
    )
    add_allow_untrained_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def check_bag_arguments(args: argparse.Namespace) -> None:
    """What can be checked in milliseconds, before the model takes seconds to load: the input
    is a bag with a usable image topic, and the output is a new path.

    Raises:
        BagProcessingError: The same reasons ``process_bag`` would give, only sooner.
    """
    from ..ros.bag_io import BagReader
    from ..ros.bag_processing import BagProcessingError, plan_topics

    if not args.input.exists():
        raise BagProcessingError(f"input bag not found: {args.input}")
    if args.output.exists():
        raise BagProcessingError(f"output {args.output} exists; name a new path for the bag")
    try:
        reader = BagReader(args.input)
    except ValueError as error:
        raise BagProcessingError(str(error)) from error
    except FileNotFoundError as error:  # a directory without metadata.yaml
        raise BagProcessingError(f"{args.input} is not a rosbag2 bag: {error}") from error
    with reader:
        plan_topics(reader.topics(), args.image_topic)


def run(args: argparse.Namespace) -> int:
    try:
        from ..ros.bag_processing import BagProcessingError, process_bag
    except ImportError as error:  # rosbags is an extra, not part of the runtime core
        LOG.error("seem-ros bag needs rosbags (%s): pip install 'seem_ros[bags]'", error)
        return EXIT_CANNOT_RUN
    from ..ros.params import load_params
    from ..ros.pipeline import load_segmenter_for

    try:
        overrides = parameter_overrides(args)
        if args.classes is not None:
            overrides["classes"] = args.classes
        params = load_params(args.config, overrides=overrides)
        check_bag_arguments(args)
        segmenter = load_segmenter_for(params, allow_untrained=args.allow_untrained)
        summary = process_bag(
            args.input,
            args.output,
            segmenter,
            params,
            image_topic=args.image_topic,
            storage=args.storage,
            progress=not args.no_progress,
        )
    except (BagProcessingError, ParamError, WeightsError, FileNotFoundError, EngineError) as error:
        LOG.error("seem-ros bag: %s", error)
        return EXIT_CANNOT_RUN
    print(summary.line())
    return 0
