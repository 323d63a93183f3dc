"""``seem-ros node --config config/seem.yaml``: run the SEEM ROS 2 node (rclpy lifecycle node).

The same node as ``ros2 run seem_ros seem_node`` / ``ros2 launch seem_ros seem.launch.py``,
with a plainer command line: remaps go last, as on a ROS command line
(``seem-ros node --config config/seem.yaml image:=/camera/image_raw``). Where no system ROS 2 is
installed it runs on ROS 2 Jazzy from the PyPI wheels (``pip install -e '.[ros]'`` and
``python tools/setup_ros.py``).

Exit status: 0 after SIGINT/SIGTERM, 2 when it cannot start (bad parameters, missing or
corrupt weights, an unusable backend, no ROS 2), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import yaml

from ..ros.params import NODE_NAME, ParamError, load_params
from ._ros_args import add_allow_untrained_argument, add_parameter_arguments, parameter_overrides

NAME = "node"
HELP = "run the SEEM ROS 2 node (rclpy; ROS 2 from apt or from the PyPI wheels)"
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
        help="keep ROS traffic on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST)",
    )
    parser.add_argument("--namespace", default="/", help="node namespace (default: /)")
    parser.add_argument("--name", default=NODE_NAME, help=f"node name (default: {NODE_NAME})")
    add_allow_untrained_argument(parser)
    parser.add_argument("remaps", nargs="*", metavar="FROM:=TO", help="topic remaps")


def parse_remaps(rules: Iterable[str]) -> dict[str, str]:
    """``["image:=/camera/image_raw"]`` -> ``{"image": "/camera/image_raw"}``.

    Raises:
        ValueError: A rule is not ``from:=to`` with both sides non-empty.
    """
    remaps: dict[str, str] = {}
    for rule in rules:
        source, separator, target = rule.partition(":=")
        if not separator or not source.strip() or not target.strip():
            raise ValueError(f"remap {rule!r} must look like 'from:=to', e.g. image:=/camera/image")
        remaps[source.strip()] = target.strip()
    return remaps


def ros_arguments(
    *,
    config: Path | None,
    overrides_file: Path | None,
    namespace: str,
    name: str,
    remaps: dict[str, str],
) -> list[str]:
    """The ``--ros-args`` that make rclpy run the node as asked (later files win)."""
    args = ["--ros-args", "-r", f"__ns:={namespace}", "-r", f"__node:={name}"]
    for path in (config, overrides_file):
        if path is not None:
            args += ["--params-file", str(path)]
    for source, target in remaps.items():
        args += ["-r", f"{source}:={target}"]
    return args


def run(args: argparse.Namespace) -> int:
    from ..ros.node import run as run_node

    try:
        remaps = parse_remaps(args.remaps)
        overrides = parameter_overrides(args)
        if "model_path" in overrides:
            overrides["model_path"] = str(Path(str(overrides["model_path"])).resolve())
        load_params(args.config, node_name=args.name, overrides=overrides)  # fail early, clearly
    except (ParamError, ValueError) as error:
        LOG.error("cannot start the SEEM node: %s", error)
        return EXIT_CANNOT_START
    if args.localhost_only:
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    with tempfile.TemporaryDirectory(prefix="seem_node_") as scratch:
        overrides_file = None
        if overrides:
            overrides_file = Path(scratch) / "overrides.yaml"
            overrides_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": overrides}}))
        ros_args = ros_arguments(
            config=args.config.resolve() if args.config is not None else None,
            overrides_file=overrides_file,
            namespace=args.namespace,
            name=args.name,
            remaps=remaps,
        )
        return run_node(
            ["seem-ros-node", *ros_args],
            allow_untrained=args.allow_untrained,
            domain_id=args.domain_id,
        )
