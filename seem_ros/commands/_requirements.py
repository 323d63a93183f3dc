"""Commands that need an extra say which one, instead of failing with a traceback.

The runtime core runs export folders without PyTorch (``segment``, ``node``, ``bag``); the
commands that train, convert, export or benchmark a PyTorch model need the ``torch`` extra (or
one that includes it).
"""

from __future__ import annotations

import importlib.util
import logging

LOG = logging.getLogger("seem_ros.commands")


def missing(*modules: str) -> list[str]:
    """The ``modules`` that are not installed (found without importing them)."""
    absent = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            absent.append(name)
    return absent


def require(command: str, modules: tuple[str, ...], extra: str) -> bool:
    """True when every module ``command`` needs is installed; otherwise log which are missing
    and the extra that installs them, and return False (the command exits with status 2)."""
    absent = missing(*modules)
    if absent:
        LOG.error(
            "seem-ros %s needs %s, which %s not installed: pip install 'seem_ros[%s]'",
            command,
            ", ".join(absent),
            "is" if len(absent) == 1 else "are",
            extra,
        )
    return not absent
