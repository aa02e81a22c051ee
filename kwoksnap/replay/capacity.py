"""Measure how many writes per second the target takes, before a paced replay starts.

Why this module exists: replay sends a recorded burst that is more than the target can take in its replayed time
early by half its overrun, so the burst's changes land around their recorded times instead of all after them
(``timing.spread``). That needs the target's write rate before the first deadline, and the first burst can be in
the first tenth of a second (the demo incident's is), too soon to learn it from the replay itself. So replay
measures it first: a few scratch objects (one per thread), written from ``concurrency`` threads for ``requests``
writes in all, three times over, then deleted. The rate is that of the fastest round, as timeit takes the best of
its repeats: what slows a round down (the target still digesting a restore it has just taken, another process on
the machine) passes, and single rounds of 96 writes (about 0.3 s each) gave rates from 181 to 361/s in six runs on
a shared two-core machine. The median of the rounds was tried: it was low in 3 of 12 runs of the demo incident,
whose bursts then went up to 1.4 s (recorded) early; with the fastest round, 18 of 18 runs met the 1 s target
(docs/benchmarks.md).

The scratch objects are pods, and the writes pod status patches with a pod-sized payload, because that is what
replay mostly sends, and a pod write costs the target more than other writes of the same size: every pod watcher
(kwok, the scheduler, the controllers) gets it, and audit policies log pods at a higher level. Measured on the
demo incident's target, ConfigMap patches went 40-60% faster than pod status patches, and replay sent bursts too
late by that much (docs/benchmarks.md). A scratch pod is bound to a node that does not exist and marked frozen, so
no scheduler, kwok or kubelet acts on it, and it is deleted with no grace period. Where pods or their status writes
are refused (an admission policy, no ``default`` service account, a role that may create pods but not write their
status) the measurement falls back to ConfigMaps, and says why; an error the client gave up retrying (429, 5xx) is
a failed measurement, not a refusal. Replay's filter leaves these objects out of any log it reads (``audit.filters``,
``kwoksnap-scratch``): a target's audit log holds them.

The scratch objects have fixed names and a label unique to the measurement (``kwoksnap.io/scratch=capacity-<id>``),
so a create the client retries after a lost answer finds its own object instead of making a second one. They are
deleted at the end whatever happened, and any that could not be deleted are named in the result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kwoksnap.audit.filters import SCRATCH_NAME_PREFIX
from kwoksnap.clock import Clock, RealClock
from kwoksnap.errors import APIError, Conflict, KwoksnapError, NotFound
from kwoksnap.kube.client import Client
from kwoksnap.restore.transform import FROZEN_ANNOTATION

SCRATCH_LABEL = "kwoksnap.io/scratch"
log = logging.getLogger("kwoksnap.replay")
PAYLOAD_BYTES = 4096  # about a pod's size in the demo incident's RequestResponse bodies
NO_NODE = "kwoksnap-capacity-no-such-node"  # scratch pods are bound here: nothing schedules or runs them
CONDITION = "kwoksnap.io/capacity"  # the scratch pods' own status condition, rewritten by each write


@dataclasses.dataclass
class Measurement:
    rate: float | None  # writes per second; None when the measurement failed
    error: str | None  # why it failed (one line)
    leftovers: list[str]  # scratch objects that could not be deleted (paths)
    resource: str = "pods"  # what was written: pods, or configmaps when scratch pods were refused
    fallback: str | None = None  # why not pods (one line), when the measurement fell back to ConfigMaps


@dataclasses.dataclass(frozen=True)
class Scratch:
    """One kind of scratch object: its collection, a body to create, and the write that is timed."""

    resource: str
    body: Callable[[str, str], dict[str, Any]]  # (name, label value) -> object
    write: Callable[[str, int], tuple[str, dict[str, Any]]]  # (object path, n) -> (path, merge patch)
    delete: Mapping[str, int]  # query parameters of the delete


def _pod(name: str, label: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {SCRATCH_LABEL: label}, "annotations": {FROZEN_ANNOTATION: "true"}},
            "spec": {"nodeName": NO_NODE, "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False,
                     "containers": [{"name": "scratch", "image": "kwoksnap.invalid/scratch"}]}}


def _pod_status(path: str, n: int) -> tuple[str, dict[str, Any]]:
    return f"{path}/status", {"status": {"conditions": [
        {"type": CONDITION, "status": "True", "reason": "Measuring", "message": "x" * PAYLOAD_BYTES + str(n)}]}}


def _configmap(name: str, label: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {SCRATCH_LABEL: label}},
            "data": {"payload": "x" * PAYLOAD_BYTES, "n": "0"}}


def _configmap_data(path: str, n: int) -> tuple[str, dict[str, Any]]:
    return path, {"data": {"n": str(n)}}


PODS = Scratch("pods", _pod, _pod_status, {"gracePeriodSeconds": 0})
CONFIGMAPS = Scratch("configmaps", _configmap, _configmap_data, {})


class _Refused(Exception):
    """The target refuses scratch pods or their status writes (not a failure of the measurement: ConfigMaps next)."""


def measure_write_rate(client: Client, *, namespace: str = "default", concurrency: int = 8, requests: int = 96,
                       rounds: int = 3, clock: Clock | None = None,
                       leftovers: list[str] | None = None) -> Measurement:
    """Writes per second the target answered with ``concurrency`` in flight: pod status patches, or ConfigMap
    patches where scratch pods are refused; the fastest of ``rounds`` rounds of ``requests`` writes each. Never
    raises for the target's answers: a failure (e.g. no RBAC for either kind in ``namespace``) is in ``error``.

    The scratch objects that could not be deleted are appended to ``leftovers`` (the result's list) as soon as they
    are known, so a caller interrupted by Ctrl-C during the measurement still has them to report."""
    clock = clock or RealClock()
    left = [] if leftovers is None else leftovers
    for scratch in (PODS, CONFIGMAPS):  # an earlier measurement's, killed outright
        removed = remove_stale_scratch(client, f"/api/v1/namespaces/{namespace}/{scratch.resource}", SCRATCH_LABEL,
                                       scratch.delete, now=clock.wall())
        if removed:
            log.info("removed %d scratch %s an earlier replay left", removed, scratch.resource)
    result = _measure(client, PODS, namespace, concurrency, requests, rounds, clock, left)
    if result.fallback is None:
        return result
    second = _measure(client, CONFIGMAPS, namespace, concurrency, requests, rounds, clock, left)
    second.fallback = result.fallback
    return second


def _measure(client: Client, scratch: Scratch, namespace: str, concurrency: int, requests: int, rounds: int,
             clock: Clock, leftovers: list[str]) -> Measurement:
    threads = max(1, min(concurrency, requests))
    run = uuid.uuid4().hex[:10]
    base = f"/api/v1/namespaces/{namespace}/{scratch.resource}"
    names = [f"{SCRATCH_NAME_PREFIX}{run}-{i}" for i in range(threads)]
    rate: float | None = None
    error: str | None = None
    fallback: str | None = None
    try:
        for name in names:
            try:
                client.create(base, scratch.body(name, f"capacity-{run}"))
            except Conflict:
                if not client.exists(f"{base}/{name}"):  # a retried create whose first try went through
                    raise
            except APIError as exc:
                if scratch is PODS and not exc.retryable:
                    raise _Refused(str(exc)) from None
                raise
        for name in names:  # one untimed write each: a role may create pods but not write their status
            path, patch = scratch.write(f"{base}/{name}", 0)
            try:
                client.patch(path, patch)
            except APIError as exc:
                if scratch is PODS and not exc.retryable:
                    raise _Refused(str(exc)) from None
                raise
        client.warm(threads)

        def write(name: str, first: int, count: int) -> None:
            for n in range(first, first + count):  # each write changes the object: a no-op write is not stored
                path, patch = scratch.write(f"{base}/{name}", n + 1)
                client.patch(path, patch)

        shares = [requests // threads + (1 if i < requests % threads else 0) for i in range(threads)]
        rates: list[float] = []
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="capacity") as pool:
            for r in range(rounds):
                began = clock.now()
                futures = [pool.submit(write, name, r * share, share)
                           for name, share in zip(names, shares, strict=True)]
                for future in futures:
                    future.result()  # the first failure of any thread, whatever it was
                elapsed = clock.now() - began
                if elapsed > 0:
                    rates.append(requests / elapsed)
        if rates:
            rate = max(rates)
        else:
            error = "the clock did not advance"
    except _Refused as exc:
        fallback = f"scratch pods were refused ({exc})"
    except Exception as exc:  # a failed measurement is reported, never fatal to the replay
        error = str(exc) if isinstance(exc, KwoksnapError) else f"{type(exc).__name__}: {exc}"
    finally:  # also on Ctrl-C
        leftovers.extend(_clean_up(client, base, names, run, scratch.delete))
    return Measurement(rate, error, leftovers, scratch.resource, fallback)


STALE_AFTER = 300.0  # seconds: a scratch object this old is no measurement's or probe's still running


def remove_stale_scratch(client: Client, base: str, selector: str, params: Mapping[str, int] | None = None, *,
                         now: float | None = None) -> int:
    """Delete the scratch objects under ``base`` matching ``selector`` that a replay killed outright (SIGKILL: no
    ``finally`` ran) left behind, older than :data:`STALE_AFTER` at ``now`` (Unix seconds, default the wall
    clock: compared with the objects' creation times); return how many. Never fatal."""
    from kwoksnap.audit.timestamps import parse_timestamp

    now = time.time() if now is None else now
    removed = 0
    try:
        for obj, _ in client.list_items(base, params={"labelSelector": selector}):
            meta = obj.get("metadata") or {}
            try:
                age = now - parse_timestamp(str(meta.get("creationTimestamp"))) / 1e9
            except ValueError:
                continue
            if age > STALE_AFTER:
                with contextlib.suppress(NotFound):
                    client.delete(f"{base}/{meta['name']}", None, **(params or {}))
                    removed += 1
    except KwoksnapError:
        pass  # (no right to list or delete them: the measurement itself will say what it cannot do)
    return removed


def _clean_up(client: Client, base: str, names: list[str], run: str, params: Mapping[str, int]) -> list[str]:
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
            client.delete(f"{base}/{name}", None, **params)
        except NotFound:
            pass  # never created (the measurement failed before it)
        except KwoksnapError:
            left.append(f"{base}/{name}")
    return left
