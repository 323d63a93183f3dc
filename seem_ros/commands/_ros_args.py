"""Node parameter arguments shared by ``seem-ros node`` and ``seem-ros bag``.

Both run the same node core from a parameter file plus command-line overrides, so they take
the same ``--config``, ``--model``, ``--param`` and ``--allow-untrained`` and turn them into
the same overrides. (The leading underscore keeps the CLI from listing this as a command.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from ..ros.params import ParamError, param_names


def add_parameter_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--model`` and the repeatable ``--param NAME=VALUE``."""
    parser.add_argument("--config", type=Path, help="parameter file (config/seem.yaml layout)")
    parser.add_argument(
        "--model",
        type=Path,
        help="weights (.safetensors) or an export folder (runs without PyTorch); overrides "
        "model_path",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"set one parameter (YAML value), repeatable; names: {', '.join(param_names())}",
    )


def add_allow_untrained_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-untrained",
        action="store_true",
        help="without any model, run random 'tiny' weights (for trying the plumbing only)",
    )


def parameter_overrides(args: argparse.Namespace) -> dict[str, object]:
    """``--param`` values (parsed as YAML, like ROS) and ``--model``.

    Raises:
        ParamError: A ``--param`` is not ``NAME=VALUE``.
    """
    overrides: dict[str, object] = {}
    for item in args.param:
        name, separator, text = item.partition("=")
        if not separator or not name.strip():
            raise ParamError(f"--param {item!r} must look like NAME=VALUE")
        try:
            overrides[name.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as error:
            raise ParamError(f"--param {item!r}: value is not valid YAML: {error}") from error
    if args.model is not None:
        overrides["model_path"] = str(args.model)
    return overrides
