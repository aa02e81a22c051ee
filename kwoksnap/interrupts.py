"""Ctrl-C deferred while the main thread works with thread pools, so that it never leaves a lock held.

Why this module exists: Python's default SIGINT handler raises KeyboardInterrupt at whatever bytecode the main thread
is at. While restore and replay hand work to their pools and wait for it, that is mostly inside threading's and
concurrent.futures' own locking (a Semaphore's or a Future's Condition, an Event's, submit's idle-worker semaphore),
whose Python-level ``__enter__`` can be left holding its lock (CPython issue 74174). The worker that next needs it
(to count itself idle, to mark its future done, to give back a slot) then blocks for ever, and so did the first
Ctrl-C, which waits for the writes in flight: a restore in CI printed nothing for 120 s. Under
:class:`DeferredInterrupts` the signal is only noted; the main thread raises it where nothing is half-done, and waits
at most :data:`INTERRUPT_POLL` seconds at a time so that it sees it soon. SIGTERM and SIGHUP, which the CLI turns
into Ctrl-C, are deferred alike. Stdlib only: a bottom layer, like the clock.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from concurrent.futures import Future
from typing import Any

__all__ = ["INTERRUPT_POLL", "DeferredInterrupts"]

INTERRUPT_POLL = 0.1  # seconds: how often a Ctrl-C is looked for while the main thread waits


class DeferredInterrupts:
    """Within ``with``: SIGINT, SIGTERM and SIGHUP only set :attr:`noted`; :meth:`check` raises KeyboardInterrupt
    for them, as does leaving the block normally after one. Only the main thread's own Python handlers are replaced
    (a signal left to the system, ignored or fatal, stays so; in another thread this does nothing), and the
    previous ones come back on the way out, so that a second Ctrl-C after it can still abandon what is in flight."""

    _SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.noted = False
        self.previous: dict[int, Any] = {}

    def _note(self, _signum: int, _frame: object) -> None:
        self.noted = True

    def __enter__(self) -> DeferredInterrupts:
        if threading.current_thread() is threading.main_thread():
            try:
                for sig in self._SIGNALS:
                    if callable(signal.getsignal(sig)):
                        self.previous[sig] = signal.signal(sig, self._note)
            except BaseException:
                self._restore()
                raise
        return self

    def check(self) -> None:
        if self.noted:
            raise KeyboardInterrupt

    def wait(self, fut: Future[Any]) -> None:
        """Wait a little for ``fut`` (Future.result with a timeout: a Condition wait, which no exception leaves
        half-done now), then :meth:`check`."""
        with contextlib.suppress(TimeoutError):
            fut.result(timeout=INTERRUPT_POLL)
        self.check()

    def _restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous.clear()

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        self._restore()
        if exc_type is None:
            self.check()  # (a signal after the last check)
