"""Measure how many writes per second the target takes, before a paced replay starts.

Why this module exists: replay sends a recorded burst that is more than the target can take in its replayed time
early by half its overrun, so the burst's changes land around their recorded times instead of all after them
(``timing.spread``). That needs the target's write rate before the first deadline, and the first burst can be in
the first tenth of a second (the demo incident's is), too soon to learn it from the replay itself. So replay
measures it first: a few scratch ConfigMaps (one per thread) with a pod-sized payload, patched from ``concurrency``
threads for ``requests`` writes in all, then deleted. A merge patch of a stored object is a real write (read,
apply, validate, store, audit), like most of what replay sends.

The scratch objects carry the label ``kwoksnap.io/scratch=capacity``. They are deleted at the end, also after a
failure; any that could not be deleted are named in the result, for the replay report.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

from kwoksnap.clock import Clock, RealClock
from kwoksnap.errors import KwoksnapError
from kwoksnap.kube.client import Client

SCRATCH_LABEL = "kwoksnap.io/scratch"
PAYLOAD_BYTES = 4096  # about a pod's size in the demo incident's RequestResponse bodies


@dataclasses.dataclass
class Measurement:
    rate: float  # writes per second
    leftovers: list[str]  # scratch objects that could not be deleted (paths)


def measure_write_rate(client: Client, *, namespace: str = "default", concurrency: int = 8, requests: int = 96,
                       clock: Clock | None = None) -> Measurement:
    """Writes per second the target answered with ``concurrency`` in flight. Raises KwoksnapError when the
    scratch objects cannot be created or written (e.g. no RBAC for ConfigMaps in ``namespace``); the scratch
    objects are deleted then too."""
    clock = clock or RealClock()
    threads = max(1, min(concurrency, requests))
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    created: list[str] = []
    leftovers: list[str] = []
    try:
        for _ in range(threads):
            answer = client.create(base, {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"generateName": "kwoksnap-capacity-", "labels": {SCRATCH_LABEL: "capacity"}},
                "data": {"payload": "x" * PAYLOAD_BYTES, "n": "0"}})
            created.append(str(answer["metadata"]["name"]))
        client.warm(threads)
        errors: list[KwoksnapError] = []
        lock = threading.Lock()

        def write(name: str, count: int) -> None:
            for n in range(count):
                try:
                    client.patch(f"{base}/{name}", {"data": {"n": str(n + 1)}})
                except KwoksnapError as exc:
                    with lock:
                        errors.append(exc)
                    return

        shares = [requests // threads + (1 if i < requests % threads else 0) for i in range(threads)]
        began = clock.now()
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="capacity") as pool:
            for name, share in zip(created, shares, strict=True):
                pool.submit(write, name, share)
        elapsed = clock.now() - began
        if errors:
            raise errors[0]
        return Measurement(requests / elapsed if elapsed > 0 else float("inf"), leftovers)
    finally:
        for name in created:
            try:
                client.delete(f"{base}/{name}")
            except KwoksnapError:
                leftovers.append(f"{base}/{name}")
