"""``seem-ros``: one command line, one sub-command per module in ``seem_ros/commands``.

A command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``;
it is found automatically, so adding a command never touches this file. Every option's help
shows its default (:class:`HelpFormatter`); library warnings print as log lines.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import warnings
from types import ModuleType

from . import commands
from .prompts import PromptWarning

LOG = logging.getLogger("seem_ros")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help, unless the help already says its default
    or there is nothing to show (``None``, an off switch, an empty list: the help says what
    happens without the option)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False, "", [], argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def command_modules() -> list[ModuleType]:
    modules = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if all(hasattr(module, attr) for attr in ("NAME", "HELP", "add_arguments", "run")):
            modules.append(module)
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seem-ros", description="SEEM segmentation for ROS 2 robots"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        command = sub.add_parser(
            module.NAME, help=module.HELP, description=module.HELP, formatter_class=HelpFormatter
        )
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    with warnings.catch_warnings():
        warnings.showwarning = _log_warning
        warnings.simplefilter("default", PromptWarning)  # once per place, not per frame
        return int(args.handler(args) or 0)


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A library warning on the command line: one log line saying what happened."""
    LOG.warning("%s", message)


if __name__ == "__main__":
    sys.exit(main())
