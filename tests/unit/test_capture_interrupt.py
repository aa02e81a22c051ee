"""save_snapshot stopped by Ctrl-C (or SIGTERM, which the CLI turns into the same) at any moment returns at once.

Black-box finding: a SIGTERM that came while the list producers were being started hung `kwoksnap save` for good:
the executor's exit joined producers that waited for room in their queues, and `stop` was set only after it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kwoksnap.capture.snapshot import SaveOptions, save_snapshot
from kwoksnap.kube.client import ClusterConfig
from kwoksnap.kube.discovery import Discovery, Resource


class PagingClient:
    """Every list has many pages: a producer blocks once its queue (4 pages) is full and nobody reads it."""

    config = ClusterConfig(server="https://127.0.0.1:6443")

    def list_pages(self, path: str, limit: int, params: dict[str, Any]) -> Any:
        for i in range(1000):
            yield {"kind": "List", "metadata": {"resourceVersion": "1"},
                   "items": [{"metadata": {"name": f"o{i}", "namespace": "ns"}}]}


def resources(n: int) -> Discovery:
    return Discovery([Resource(group="", version="v1", name=f"things{i}", kind=f"Thing{i}", namespaced=True,
                               verbs=frozenset({"list"}), subresources=frozenset()) for i in range(n)])


def test_an_interrupt_while_the_producers_start_does_not_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_submit = ThreadPoolExecutor.submit
    calls = [0]

    def submit(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 3:
            time.sleep(0.5)  # the first producers have filled their queues by now
            raise KeyboardInterrupt
        return real_submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(ThreadPoolExecutor, "submit", submit)
    done: list[BaseException] = []

    def save() -> None:
        try:
            save_snapshot(PagingClient(), tmp_path / "x.kws", SaveOptions(concurrency=4),  # type: ignore[arg-type]
                          discovery=resources(6))
        except BaseException as exc:  # the interrupt is what is expected
            done.append(exc)

    worker = threading.Thread(target=save, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "save_snapshot hung after the interrupt"
    assert len(done) == 1 and isinstance(done[0], KeyboardInterrupt)
    assert list(tmp_path.iterdir()) == []  # no snapshot, no temporary file left
