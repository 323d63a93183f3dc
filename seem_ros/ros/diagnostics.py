"""What the node tells operators: named counters, throttled problem logs, fps and latency.

Every rejected input is counted under a short name (``unsupported_encoding``,
``click_behind_camera``, ...) and logged with what was wrong; a flood of one kind of bad
input logs once per ``log_period_s`` with the number suppressed, so the log stays readable
and the node keeps serving. All of it ends up in one ``diagnostic_msgs/DiagnosticArray``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from seem_ros.ros.messages import DiagnosticLevel, make_diagnostics, make_header

STATUS_NAME = "seem_ros: segmentation"


class Counters:
    """Thread-safe named event counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def increment(self, name: str, amount: int = 1) -> int:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + amount
            return self._counts[name]

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))


class ProblemReporter:
    """Counts a problem and logs it, at most once per ``log_period_s`` per problem name.

    The first occurrence of each problem is always logged; later ones within the period
    are counted, and the next log line says how many were not logged.
    """

    def __init__(
        self,
        counters: Counters,
        logger: logging.Logger,
        *,
        log_period_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counters = counters
        self._logger = logger
        self._period_s = log_period_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def report(self, problem: str, message: str) -> None:
        self._counters.increment(problem)
        now = self._clock()
        with self._lock:
            last = self._last_logged.get(problem)
            if last is not None and now - last < self._period_s:
                self._suppressed[problem] = self._suppressed.get(problem, 0) + 1
                return
            self._last_logged[problem] = now
            suppressed = self._suppressed.pop(problem, 0)
        note = f" ({suppressed} more not logged)" if suppressed else ""
        self._logger.warning("%s [%s]%s", message, problem, note)


class PerformanceMeter:
    """Frames per second and end-to-end latency over a sliding window of recent frames."""

    def __init__(self, *, window_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._frames: deque[tuple[float, float]] = deque()  # (finish time, latency s)

    def record(self, latency_s: float) -> None:
        now = self._clock()
        with self._lock:
            self._frames.append((now, latency_s))
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._frames and now - self._frames[0][0] > self._window_s:
            self._frames.popleft()

    def summary(self) -> dict[str, float]:
        """``fps``, ``latency_ms_mean`` and ``latency_ms_max`` over the window (0 when idle)."""
        now = self._clock()
        with self._lock:
            self._trim(now)
            frames = list(self._frames)
        if not frames:
            return {"fps": 0.0, "latency_ms_mean": 0.0, "latency_ms_max": 0.0}
        latencies = [latency for _, latency in frames]
        span = frames[-1][0] - frames[0][0]
        fps = (len(frames) - 1) / span if len(frames) > 1 and span > 0 else 0.0
        return {
            "fps": round(fps, 2),
            "latency_ms_mean": round(1000.0 * sum(latencies) / len(latencies), 2),
            "latency_ms_max": round(1000.0 * max(latencies), 2),
        }


def diagnostics_message(
    stamp_ns: int,
    *,
    level: DiagnosticLevel,
    message: str,
    values: Mapping[str, object],
    hardware_id: str = "",
) -> Any:
    """A DiagnosticArray with the node's one status; values are stringified in key order."""
    return make_diagnostics(
        make_header(stamp_ns, ""),
        STATUS_NAME,
        level,
        message,
        {key: _format(value) for key, value in values.items()},
        hardware_id=hardware_id,
    )


def _format(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
