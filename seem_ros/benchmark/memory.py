"""Peak resident memory of this process, resettable between measurements (Linux).

Linux keeps the peak RSS in ``/proc/self/status`` (``VmHWM``) and resets it when ``5`` is
written to ``/proc/self/clear_refs``; elsewhere the lifetime peak from ``getrusage`` is used.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window; False when the platform cannot (the peak is then lifetime)."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set size in MiB since the last successful :func:`reset_peak_rss`."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0
