"""``seem-ros node --config config/seem.yaml``: the SEEM ROS 2 node over Cyclone DDS, no ROS needed.

The same node as ``ros2 launch seem_ros seem.launch.py`` (same core, topics, parameters and
services), speaking the ROS 2 wire protocol itself. Remaps go last, as on a ROS command line:
``seem-ros node --config config/seem.yaml image:=/camera/image_raw``.

Exit status: 0 after SIGINT/SIGTERM, 2 when it cannot start (bad parameters, missing or
corrupt weights, an unusable backend), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from ..engine.base import EngineError
from ..model.weights import WeightsError
from ..ros.params import NODE_NAME, ParamError, load_params
from ._ros_args import add_allow_untrained_argument, add_parameter_arguments, parameter_overrides

NAME = "node"
HELP = "run the SEEM ROS 2 node over Cyclone DDS (no ROS installation needed)"
LOG = logging.getLogger(__name__)
EXIT_CANNOT_START = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_parameter_arguments(parser)
    parser.add_argument(
        "--domain-id", type=int, help="ROS domain id (default: $ROS_DOMAIN_ID or 0)"
    )
    parser.add_argument(
        "--localhost-only",
        action="store_true",
        default=None,
        help="keep DDS traffic on 127.0.0.1 (default: $ROS_LOCALHOST_ONLY)",
    )
    parser.add_argument("--namespace", default="/", help="node namespace (default: /)")
    parser.add_argument("--name", default=NODE_NAME, help=f"node name (default: {NODE_NAME})")
    add_allow_untrained_argument(parser)
    parser.add_argument("remaps", nargs="*", metavar="FROM:=TO", help="topic remaps")


def run(args: argparse.Namespace) -> int:
    from ..ros.dds_node import DdsNode, parse_remaps
    from ..ros.pipeline import load_segmenter_for

    try:
        remaps = parse_remaps(args.remaps)
        params = load_params(args.config, node_name=args.name, overrides=parameter_overrides(args))
        segmenter = load_segmenter_for(params, allow_untrained=args.allow_untrained)
        node = DdsNode(
            segmenter,
            params,
            domain_id=args.domain_id,
            localhost_only=args.localhost_only,
            namespace=args.namespace,
            node_name=args.name,
            remaps=remaps,
        )
    except (ParamError, WeightsError, FileNotFoundError, EngineError, ValueError) as error:
        LOG.error("cannot start the SEEM node: %s", error)
        return EXIT_CANNOT_START
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    LOG.info("SEEM node ready (%s); Ctrl-C to stop", segmenter.engine.describe())
    try:
        node.spin(stop)
    finally:
        node.close()
    return 0
