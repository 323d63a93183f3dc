"""Latest-frame-only work: one slot, one thread, so a slow model never runs on stale frames.

Callbacks hand frames in with :meth:`LatestFrameWorker.submit`, which never blocks on the
model: a frame still waiting in the slot is replaced (and counted as dropped). The worker
thread takes whatever is in the slot when it becomes free. ``threaded=False`` runs every
submitted item at once in the caller's thread instead, which is what offline processing (a
bag, a benchmark) wants: every frame processed, in order, nothing dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
LOG = logging.getLogger(__name__)


class LatestFrameWorker(Generic[Item]):
    """Runs ``process(item)`` on the newest submitted item, one at a time.

    Args:
        process: The work; exceptions it raises are passed to ``on_error`` (default: logged)
            and the worker carries on with the next item.
        threaded: False: process each item synchronously inside :meth:`submit`.
        name: Thread name.
    """

    def __init__(
        self,
        process: Callable[[Item], None],
        *,
        threaded: bool = True,
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "seem-worker",
    ) -> None:
        self._process = process
        self._on_error = on_error or (lambda error: LOG.error("processing failed: %s", error))
        self.threaded = threaded
        self._condition = threading.Condition()
        self._pending: Item | None = None
        self._has_pending = False
        self._busy = False
        self._stopping = False
        self._submitted = 0
        self._dropped = 0
        self._processed = 0
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    @property
    def dropped(self) -> int:
        """Items replaced in the slot before the worker got to them."""
        with self._condition:
            return self._dropped

    @property
    def processed(self) -> int:
        with self._condition:
            return self._processed

    @property
    def submitted(self) -> int:
        with self._condition:
            return self._submitted

    def submit(self, item: Item) -> bool:
        """Hand in ``item``; returns False if it replaced a waiting one (which is dropped).

        Raises:
            RuntimeError: The worker was stopped.
        """
        with self._condition:
            if self._stopping:
                raise RuntimeError("worker is stopped")
            self._submitted += 1
            if not self.threaded:
                self._busy = True
            else:
                replaced = self._has_pending
                self._dropped += int(replaced)
                self._pending, self._has_pending = item, True
                self._condition.notify_all()
                return not replaced
        try:
            self._run_one(item)
        finally:
            with self._condition:
                self._busy = False
                self._condition.notify_all()
        return True

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until nothing is waiting or running; returns False on timeout."""
        with self._condition:
            return self._condition.wait_for(
                lambda: not self._has_pending and not self._busy, timeout=timeout_s
            )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Drop any waiting item, let the running one finish, and end the thread. Idempotent."""
        with self._condition:
            self._stopping = True
            if self._has_pending:
                self._pending, self._has_pending = None, False
            self._condition.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._has_pending or self._stopping)
                if self._stopping:
                    return
                item = self._pending
                self._pending, self._has_pending = None, False
                self._busy = True
            try:
                self._run_one(item)  # type: ignore[arg-type]
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()

    def _run_one(self, item: Item) -> None:
        try:
            self._process(item)
        except Exception as error:
            self._on_error(error)
        finally:
            with self._condition:
                self._processed += 1
