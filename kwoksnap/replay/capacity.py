"""Measure how many writes per second the target takes, before a paced replay starts.

Why this module exists: replay sends a recorded burst that is more than the target can take in its replayed time
early by half its overrun, so the burst's changes land around their recorded times instead of all after them
(``timing.spread``). That needs the target's write rate before the first deadline, and the first burst can be in
the first tenth of a second (the demo incident's is), too soon to learn it from the replay itself. So replay
measures it first: a few scratch ConfigMaps (one per thread) with a pod-sized payload, patched from ``concurrency``
threads for ``requests`` writes in all, then deleted. A merge patch of a stored object is a real write (read,
apply, validate, store, audit), like most of what replay sends.

The scratch objects have fixed names and a label unique to the measurement (``kwoksnap.io/scratch=capacity-<id>``),
so a create the client retries after a lost answer finds its own object instead of making a second one. They are
deleted at the end whatever happened, and any that could not be deleted are named in the result.
"""

from __future__ import annotations

import dataclasses
import uuid
from concurrent.futures import ThreadPoolExecutor

from kwoksnap.clock import Clock, RealClock
from kwoksnap.errors import Conflict, KwoksnapError, NotFound
from kwoksnap.kube.client import Client

SCRATCH_LABEL = "kwoksnap.io/scratch"
PAYLOAD_BYTES = 4096  # about a pod's size in the demo incident's RequestResponse bodies


@dataclasses.dataclass
class Measurement:
    rate: float | None  # writes per second; None when the measurement failed
    error: str | None  # why it failed (one line)
    leftovers: list[str]  # scratch objects that could not be deleted (paths)


def measure_write_rate(client: Client, *, namespace: str = "default", concurrency: int = 8, requests: int = 96,
                       clock: Clock | None = None) -> Measurement:
    """Writes per second the target answered with ``concurrency`` in flight. Never raises for the target's
    answers: a failure (e.g. no RBAC for ConfigMaps in ``namespace``) is in ``error``."""
    clock = clock or RealClock()
    threads = max(1, min(concurrency, requests))
    run = uuid.uuid4().hex[:10]
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    names = [f"kwoksnap-capacity-{run}-{i}" for i in range(threads)]
    rate: float | None = None
    error: str | None = None
    try:
        for name in names:
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "labels": {SCRATCH_LABEL: f"capacity-{run}"}},
                    "data": {"payload": "x" * PAYLOAD_BYTES, "n": "0"}}
            try:
                client.create(base, body)
            except Conflict:
                if not client.exists(f"{base}/{name}"):  # a retried create whose first try went through
                    raise
        client.warm(threads)

        def write(name: str, count: int) -> None:
            for n in range(count):
                client.patch(f"{base}/{name}", {"data": {"n": str(n + 1)}})

        shares = [requests // threads + (1 if i < requests % threads else 0) for i in range(threads)]
        began = clock.now()
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="capacity") as pool:
            futures = [pool.submit(write, name, share) for name, share in zip(names, shares, strict=True)]
        for future in futures:
            future.result()  # the first failure of any thread, whatever it was
        elapsed = clock.now() - began
        rate = requests / elapsed if elapsed > 0 else None
        if rate is None:
            error = "the clock did not advance"
    except Exception as exc:  # a failed measurement is reported, never fatal to the replay
        error = str(exc) if isinstance(exc, KwoksnapError) else f"{type(exc).__name__}: {exc}"
    finally:  # also on Ctrl-C
        leftovers = _clean_up(client, base, names, run)
    return Measurement(rate, error, leftovers)


def _clean_up(client: Client, base: str, names: list[str], run: str) -> list[str]:
    """Delete the scratch objects, by name and any other of this measurement's found by its label; return the
    paths of those still there."""
    try:
        strays = [obj["metadata"]["name"] for obj, _ in client.list_items(
            base, params={"labelSelector": f"{SCRATCH_LABEL}=capacity-{run}"})]
    except KwoksnapError:
        strays = []
    left: list[str] = []
    for name in dict.fromkeys([*names, *strays]):
        try:
            client.delete(f"{base}/{name}")
        except NotFound:
            pass  # never created (the measurement failed before it)
        except KwoksnapError:
            left.append(f"{base}/{name}")
    return left
