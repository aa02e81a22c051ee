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

    def cancel(self) -> None:
        self.cancelled = True

    def abort(self) -> None:
        self.cancel()
        self.aborted = True


def resources(n: int) -> Discovery:
    return Discovery([Resource(group="", version="v1", name=f"things{i}", kind=f"Thing{i}", namespaced=True,
                               verbs=frozenset({"create", "list"}), subresources=frozenset()) for i in range(n)])


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
    client = PagingClient()

    def save() -> None:
        try:
            save_snapshot(client, tmp_path / "x.kws", SaveOptions(concurrency=4),  # type: ignore[arg-type]
                          discovery=resources(6))
        except BaseException as exc:  # the interrupt is what is expected
            done.append(exc)

    worker = threading.Thread(target=save, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "save_snapshot hung after the interrupt"
    assert len(done) == 1 and isinstance(done[0], KeyboardInterrupt)
    assert client.aborted  # a producer in its retries, or waiting for an answer, gives up at once (test_transport)
    assert list(tmp_path.iterdir()) == []  # no snapshot, no temporary file left


class ExpiringClient:
    """Lists of 3 pages whose continue token expires after the first page: a 410, with or without a token."""

    config = ClusterConfig(server="https://127.0.0.1:6443")

    def __init__(self, offer: bool) -> None:
        self.offer, self.expired = offer, False

    def list_pages(self, path: str, limit: int, params: dict[str, Any]) -> Any:
        from kwoksnap.kube.client import Client

        return Client.list_pages(self, path, limit=limit, params=params)  # type: ignore[arg-type]

    def request(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        from kwoksnap.errors import APIError

        token = str(params.get("continue", ""))
        if token == "p2" and not self.expired:
            self.expired = True
            raise APIError(410, "Expired", "too old", continue_token="p2-again" if self.offer else "")
        page = {"": 0, "p2": 1, "p2-again": 1, "p3": 2}[token]
        return {"kind": "List", "metadata": {"resourceVersion": "1", "continue": ["p2", "p3", ""][page]},
                "items": [{"metadata": {"name": f"o{page}", "namespace": "ns"}}]}


@pytest.mark.parametrize("offer", [True, False])
def test_an_expired_continue_token_writes_no_object_twice(tmp_path: Path, offer: bool) -> None:
    """Review finding: a 410 restarted the list from the beginning and save wrote every object listed before it a
    second time. The token the 410 offers is used; without one the restart's repeats are left out."""
    from kwoksnap.store import KwsReader

    summary = save_snapshot(ExpiringClient(offer), tmp_path / "x.kws", SaveOptions(),  # type: ignore[arg-type]
                            discovery=resources(1))
    with KwsReader(tmp_path / "x.kws") as reader:
        names = [r["object"]["metadata"]["name"] for r in reader.records() if r["type"] == "object"]
    assert names == ["o0", "o1", "o2"] and summary.objects == 3
