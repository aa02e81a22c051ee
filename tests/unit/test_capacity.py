"""The write-rate measurement's failure paths, on a fake client: a failure anywhere is reported, never raised, and
the scratch objects are deleted whatever happened, or named. (Its real writes are tested against a real cluster in
tests/integration/test_replay_capacity.py.)"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from kwoksnap.clock import FakeClock
from kwoksnap.errors import APIError, Conflict, NotFound
from kwoksnap.replay.capacity import NO_NODE, SCRATCH_LABEL, _clean_up, measure_write_rate
from kwoksnap.restore.transform import FROZEN_ANNOTATION


def name_of(path: str) -> str:
    return path.split("/")[6]  # /api/v1/namespaces/<ns>/<resource>/<name>[/status]


class ScratchClient:
    """Holds scratch objects by name; each patch takes 10 ms of the fake clock. ``fail`` maps an operation and its
    n-th call (1-based) to the exception it raises."""

    def __init__(self, clock: FakeClock, fail: dict[tuple[str, int], BaseException] | None = None) -> None:
        self.clock = clock
        self.fail = fail or {}
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, int] = {}
        self.paths: list[str] = []  # of the patches
        self.deleted: list[tuple[str, dict[str, Any]]] = []  # (path, query parameters)
        self.lock = threading.Lock()

    def _call(self, op: str) -> None:
        with self.lock:
            self.calls[op] = n = self.calls.get(op, 0) + 1
        if (op, n) in self.fail:
            raise self.fail[(op, n)]

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self._call("create")
        name = body["metadata"]["name"]
        if name in self.objects:
            raise Conflict(409, "AlreadyExists", f'"{name}" already exists')
        self.objects[name] = body
        return body

    def exists(self, path: str) -> bool:
        return name_of(path) in self.objects

    def warm(self, connections: int) -> int:
        return connections

    def patch(self, path: str, patch: Any) -> dict[str, Any]:
        self._call("patch")
        with self.lock:
            self.paths.append(path)
        self.clock.advance(0.01)
        return self.objects[name_of(path)]

    def delete(self, path: str, body: Any = None, **params: Any) -> dict[str, Any]:
        self._call("delete")
        self.deleted.append((path, params))
        name = name_of(path)
        if name not in self.objects:
            raise NotFound(404, "NotFound", f'"{name}" not found')
        return self.objects.pop(name)

    def list_items(self, path: str, params: dict[str, str]) -> list[tuple[dict[str, Any], str]]:
        key, _, value = params["labelSelector"].partition("=")  # (key=value, or the key alone: it exists)
        return [({"metadata": o["metadata"]}, "") for o in self.objects.values()
                if o["metadata"]["labels"].get(key) == value or (not value and key in o["metadata"]["labels"])]


def measure(client: ScratchClient, clock: FakeClock) -> Any:
    return measure_write_rate(client, concurrency=4, requests=20, clock=clock)  # type: ignore[arg-type]


def test_a_measurement_writes_and_cleans_up() -> None:
    clock = FakeClock()
    client = ScratchClient(clock)
    result = measure(client, clock)
    assert result.rate == pytest.approx(100.0) and result.error is None and result.leftovers == []
    assert result.resource == "pods" and result.fallback is None
    assert client.calls == {"create": 4, "patch": 4 + 60, "delete": 4} and client.objects == {}
    # Pod status writes, like most of what replay sends; deleted at once (no kubelet will ever confirm it).
    assert all(p.startswith("/api/v1/namespaces/default/pods/") and p.endswith("/status") for p in client.paths)
    assert all(params == {"gracePeriodSeconds": 0} for _, params in client.deleted)


def test_the_rate_is_the_fastest_rounds() -> None:
    """A round slowed down by something passing (the target digesting a restore) does not lower the rate."""
    clock = FakeClock()
    client = ScratchClient(clock)
    real_patch = client.patch

    def patch(path: str, body: Any) -> dict[str, Any]:
        if client.calls.get("patch", 0) < 4 + 40:  # the first two rounds: each write takes 40 ms instead of 10
            clock.advance(0.03)
        return real_patch(path, body)

    client.patch = patch  # type: ignore[method-assign]
    result = measure(client, clock)
    assert client.calls["patch"] == 4 + 60 and result.rate == pytest.approx(100.0)


def test_scratch_pods_are_bound_to_no_node_and_frozen() -> None:
    clock = FakeClock()
    client = ScratchClient(clock)
    created: list[dict[str, Any]] = []
    real_create = client.create

    def create(path: str, body: dict[str, Any]) -> dict[str, Any]:
        created.append(body)
        return real_create(path, body)

    client.create = create  # type: ignore[method-assign]
    measure(client, clock)
    assert len(created) == 4
    for body in created:  # nothing schedules it, and no kwok or kubelet runs it
        assert body["kind"] == "Pod" and body["spec"]["nodeName"] == NO_NODE
        assert body["metadata"]["annotations"] == {FROZEN_ANNOTATION: "true"}


def test_refused_pods_fall_back_to_configmaps_and_say_why() -> None:
    clock = FakeClock()
    client = ScratchClient(clock, {("create", 2): APIError(403, "Forbidden", "pods is forbidden")})
    result = measure(client, clock)
    assert result.rate == pytest.approx(100.0) and result.error is None
    assert result.resource == "configmaps" and result.fallback is not None and "pods is forbidden" in result.fallback
    assert client.calls == {"create": 2 + 4, "patch": 4 + 60, "delete": 4 + 4} and client.objects == {}
    assert all("/configmaps/" in p for p in client.paths)


def test_a_refused_status_write_falls_back_too() -> None:
    """The built-in edit role may create pods but not write pods/status."""
    clock = FakeClock()
    client = ScratchClient(clock, {("patch", 1): APIError(403, "Forbidden", "pods/status is forbidden")})
    result = measure(client, clock)
    assert result.rate == pytest.approx(100.0) and result.resource == "configmaps"
    assert result.fallback is not None and "pods/status is forbidden" in result.fallback
    assert client.objects == {} and client.calls["patch"] == 1 + 4 + 60


def test_an_error_the_client_gave_up_retrying_is_a_failure_not_a_refusal() -> None:
    clock = FakeClock()
    client = ScratchClient(clock, {("create", 1): APIError(503, "ServiceUnavailable", "etcd is down")})
    result = measure(client, clock)
    assert result.rate is None and result.fallback is None and result.error is not None and "etcd" in result.error
    assert client.objects == {} and client.calls["create"] == 1  # no ConfigMaps tried


def test_a_failed_create_is_reported_and_the_created_ones_deleted() -> None:
    clock = FakeClock()
    client = ScratchClient(clock, {("create", 1): APIError(403, "Forbidden", "pods is forbidden"),
                                   ("create", 3): APIError(403, "Forbidden", "configmaps is forbidden")})
    result = measure(client, clock)
    assert result.rate is None and result.error is not None and "configmaps is forbidden" in result.error
    assert result.fallback is not None and "pods is forbidden" in result.fallback
    assert result.leftovers == [] and client.objects == {}
    assert "patch" not in client.calls


def test_any_failure_of_a_writing_thread_is_reported_not_a_rate() -> None:
    clock = FakeClock()
    client = ScratchClient(clock, {("patch", 7): ValueError("bad answer")})
    result = measure(client, clock)
    assert result.rate is None and result.error == "ValueError: bad answer"
    assert client.objects == {}


def test_a_retried_create_that_went_through_is_its_own_object() -> None:
    clock = FakeClock()
    client = ScratchClient(clock)
    real_create = client.create

    def create_twice(path: str, body: dict[str, Any]) -> dict[str, Any]:  # the answer of the first try was lost
        real_create(path, body)
        return real_create(path, body)

    client.create = create_twice  # type: ignore[method-assign]
    result = measure(client, clock)
    assert result.rate == pytest.approx(100.0) and client.objects == {}


def test_objects_that_cannot_be_deleted_are_named_and_strays_found_by_label() -> None:
    clock = FakeClock()
    client = ScratchClient(clock, {("delete", 2): APIError(500, "InternalError", "etcd timeout")})
    result = measure(client, clock)
    assert result.rate == pytest.approx(100.0)
    assert len(result.leftovers) == 1 and result.leftovers[0].endswith("-1")
    assert list(client.objects) == [result.leftovers[0].rsplit("/", 1)[1]]
    # A stray of the same measurement (a create retried under another name would be one) goes by its label.
    label = next(iter(client.objects.values()))["metadata"]["labels"][SCRATCH_LABEL]
    client2 = ScratchClient(clock)
    client2.objects["stray"] = {"metadata": {"name": "stray", "labels": {SCRATCH_LABEL: label}}}
    client2.objects["other"] = {"metadata": {"name": "other", "labels": {SCRATCH_LABEL: "capacity-else"}}}
    run = label.removeprefix("capacity-")
    assert _clean_up(client2, "/api/v1/namespaces/default/pods", [], run, {}) == []  # type: ignore[arg-type]
    assert list(client2.objects) == ["other"]  # another measurement's object is not touched


def test_ctrl_c_while_measuring_still_cleans_up() -> None:
    clock = FakeClock()
    client = ScratchClient(clock, {("patch", 3): KeyboardInterrupt()})
    with pytest.raises(KeyboardInterrupt):
        measure(client, clock)
    assert client.objects == {}


def test_ctrl_c_during_the_configmap_fallback_keeps_the_leftovers_for_the_report() -> None:
    """Review finding: a Ctrl-C during the ConfigMap fallback lost the list of scratch objects left behind."""
    clock = FakeClock()
    client = ScratchClient(clock, {("create", 1): APIError(403, "Forbidden", "pods is forbidden"),
                                   ("patch", 7): KeyboardInterrupt(),  # a timed ConfigMap write
                                   ("delete", 6): APIError(500, "InternalError", "etcd timeout")})
    leftovers: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        measure_write_rate(client, concurrency=4, requests=20, clock=clock,  # type: ignore[arg-type]
                           leftovers=leftovers)
    assert len(leftovers) == 1 and "/configmaps/" in leftovers[0] and leftovers[0].endswith("-1")
    assert list(client.objects) == [leftovers[0].rsplit("/", 1)[1]]


def test_scratch_objects_a_killed_replay_left_are_removed_first() -> None:
    """Black-box finding: a replay killed (SIGKILL) during its measurement left its scratch pods, and during its
    probe its throw-away node, in the target for good; a later replay neither removed nor mentioned them. Those
    older than five minutes (no measurement or probe running now) are deleted first."""

    from kwoksnap.audit import format_timestamp
    from kwoksnap.replay.capacity import remove_stale_scratch

    clock = FakeClock()  # (its wall clock, not the machine's, says how old they are)
    client = ScratchClient(clock)
    for name, age in (("kwoksnap-capacity-old-0", 3600), ("kwoksnap-capacity-new-0", 10)):
        client.objects[name] = {"metadata": {"name": name, "labels": {SCRATCH_LABEL: "capacity-x"},
                                             "creationTimestamp": format_timestamp(int((clock.wall() - age) * 1e9))}}
    result = measure(client, clock)
    assert result.rate is not None and list(client.objects) == ["kwoksnap-capacity-new-0"]
    assert client.deleted[0] == ("/api/v1/namespaces/default/pods/kwoksnap-capacity-old-0", {"gracePeriodSeconds": 0})
    now = clock.wall() + 3600  # an hour later the other is stale too
    assert remove_stale_scratch(client, "/api/v1/namespaces/default/pods", SCRATCH_LABEL,  # type: ignore[arg-type]
                                now=now) == 1 and client.objects == {}
