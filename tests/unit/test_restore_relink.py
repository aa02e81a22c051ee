"""Restore's relink of owner references (restore.engine._Restorer.relink), with a client that records its writes:
what an interrupted relink leaves unlinked is said, and nothing is sent for an object none of whose owners is in
the target."""

from __future__ import annotations

from typing import Any, cast

import pytest

from kwoksnap.kube import Client
from kwoksnap.kube.discovery import Resource
from kwoksnap.restore.engine import RestoreOptions, _Restorer

PODS = Resource("", "v1", "pods", "Pod", True, frozenset({"get", "patch"}))


class PatchingClient:
    """GETs answer an object without owner references; the ``stop_at``-th PATCH is a Ctrl-C."""

    def __init__(self, stop_at: int = 0) -> None:
        self.patched: list[str] = []
        self.stop_at = stop_at

    def get(self, path: str) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": "1"}}

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if len(self.patched) + 1 == self.stop_at:
            raise KeyboardInterrupt
        self.patched.append(path)
        return body


def restorer(client: PatchingClient) -> _Restorer:
    r = _Restorer(cast(Client, client), cast(Any, None), RestoreOptions(), lambda *_: None)
    r.uid_map = {"rs-a": "new-a", "rs-b": "new-b"}
    for i, owner in enumerate(["rs-a", "gone", "rs-b", "rs-a", "rs-b"]):
        ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}
        r.deferred.append((PODS, "v1/pods", "ns", f"p{i}", [], [ref], i == 4))
    return r


def test_an_object_without_an_owner_in_the_target_is_not_written_again() -> None:
    """Black-box finding: after a Ctrl-C early in the pods, restore sent a GET and an empty PATCH of owner
    references to every pod restored so far (1,313 no-op writes, 6 s), though none of their owners was restored."""
    client = PatchingClient()
    r = restorer(client)
    r.relink()
    assert client.patched == [f"/api/v1/namespaces/ns/pods/p{i}" for i in (0, 2, 3, 4)]
    assert r.dropped == 1 and r.not_relinked == [] and r.relinked_in_place == 1  # (p4 was found in place)


def test_a_ctrl_c_in_the_relink_names_what_it_left_unlinked() -> None:
    """Black-box finding: a restore interrupted while it linked owner references left 1,000 pods without them,
    and said "restored ... each whole", with no warning."""
    client = PatchingClient(stop_at=2)
    r = restorer(client)
    with pytest.raises(KeyboardInterrupt):
        r.relink()
    assert client.patched == ["/api/v1/namespaces/ns/pods/p0"]
    assert r.not_relinked == ["Pod ns/p2", "Pod ns/p3", "Pod ns/p4"]  # (p1's owner is not in the target)


def test_a_rerun_over_linked_objects_writes_nothing() -> None:
    """Noted in an earlier stop: a second `restore --on-conflict skip` of the same snapshot said "N relinked" and
    patched owner references that were already those."""

    class Linked(PatchingClient):
        def get(self, path: str) -> dict[str, Any]:  # p4 already points at its restored owner
            refs = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs-b", "uid": "new-b", "controller": True}]
            return {"metadata": {"resourceVersion": "1", "ownerReferences": refs if path.endswith("/p4") else []}}

    client = Linked()
    r = restorer(client)
    r.relink()
    assert client.patched == [f"/api/v1/namespaces/ns/pods/p{i}" for i in (0, 2, 3)]
    assert r.relinked_in_place == 0


def test_a_refusal_that_quotes_a_secret_is_listed_without_its_values() -> None:
    """Black-box finding: restoring an --include-secrets snapshot, a webhook's refusal quoting the Secret's data
    was printed on stderr, values and all."""
    from kwoksnap.kube.objects import SCRUBBED

    r = restorer(PatchingClient())
    secret = {"kind": "Secret", "metadata": {"name": "r1", "namespace": "sec"}, "data": {"pw": "U1VQRVJTRUNSRVQxMjM="}}
    r._fail("v1/secrets", secret, "admission webhook denied the request: refused, data was: pw=SUPERSECRET123")
    assert [f.reason for f in r.failures] == [f"admission webhook denied the request: refused, data was: pw={SCRUBBED}"]


def test_an_object_holding_a_value_json_cannot_carry_is_failed_by_name() -> None:
    """Black-box finding: a hand-made snapshot's bytes value failed its object with "TypeError: Type is not JSON
    serializable: bytes"."""
    from kwoksnap.kube.client import _encode
    from kwoksnap.kube.discovery import Resource

    class Sending(PatchingClient):
        def create(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
            _encode(body)  # (what the client sends)
            raise AssertionError("sent")

    from kwoksnap.restore.engine import ResourceResult

    r = restorer(Sending())
    r.results["v1/configmaps"] = ResourceResult("v1/configmaps")
    configmaps = Resource("", "v1", "configmaps", "ConfigMap", True, frozenset({"create"}))
    r._one(configmaps, "v1/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": "b", "namespace": "ns"}, "data": {"k": b"bytes"}})
    assert [(f.name, f.reason) for f in r.failures] == [
        ("b", "not a valid Kubernetes object: it holds a value JSON cannot carry (Type is not JSON serializable: "
              "bytes)")]


def test_a_create_whose_answer_was_lost_is_recognised_as_this_restores() -> None:
    """Review finding: a create sent again after its answer was lost was refused as AlreadyExists, counted
    "skipped" (exit 0), and the status restore writes after a create was never written. Such a refusal, of an object
    created since the first attempt, is that attempt's object; one made earlier, or a first answer, is not."""
    import time

    from kwoksnap.errors import Conflict

    made_at: list[str] = []

    class Getting(PatchingClient):
        def get(self, path: str) -> dict[str, Any]:
            return {"metadata": {"name": "p", "creationTimestamp": made_at[0]}}

    r = _Restorer(cast(Client, Getting()), cast(Any, None), RestoreOptions(), lambda *_: None)
    refused = Conflict(409, "AlreadyExists", 'pods "p" already exists')
    first_try = time.time()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first_try))
    made_at.append(now)
    assert r._made_by_the_lost_answer(PODS, "ns", "p", refused, first_try) is None  # (not sent again)
    refused.resent = True
    assert r._made_by_the_lost_answer(PODS, "ns", "p", refused, first_try) == Getting().get("")
    made_at[0] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first_try - 3600))  # a restore of an hour ago
    assert r._made_by_the_lost_answer(PODS, "ns", "p", refused, first_try) is None


def test_a_follow_up_write_without_an_answer_fails_the_object_as_created_and_keeps_its_relink() -> None:
    """Review finding: a connection failure (TransportError) of the status write after a pod's create was listed as
    if the create had failed ("PATCH ...: timed out", no "created, but"), and the pod, which is in the target, was
    left out of the relink of its owner references. It is failed as created now, relinked once its owner is
    restored, and the silence still counts towards the target's outage."""
    import time

    from kwoksnap.errors import TransportError
    from kwoksnap.restore.engine import ResourceResult

    class Silent(PatchingClient):
        cancelled = False

        def create(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
            return {**body, "metadata": {**body["metadata"], "uid": "new-p"}}

        def patch(self, path: str, body: dict[str, Any], *_: Any) -> dict[str, Any]:
            raise TransportError(f"PATCH {path}: TimeoutError: timed out")

        def cancel(self) -> None:
            self.cancelled = True

    client = Silent()
    r = _Restorer(cast(Client, client), cast(Any, None), RestoreOptions(adopt=False), lambda *_: None)
    r.snapshot_uids = {"rs-old": "ns", "p-old": "ns"}
    r.results["v1/pods"] = ResourceResult("v1/pods")
    r._answered = time.monotonic() - 100  # (nothing answered for longer than OUTAGE_SECONDS)
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-old", "controller": True}
    pods = Resource("", "v1", "pods", "Pod", True, frozenset({"create", "patch"}), frozenset({"status"}))
    r._one(pods, "v1/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "p", "namespace": "ns", "uid": "p-old", "ownerReferences": [ref]},
        "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Running"}})
    assert [(f.name, f.reason) for f in r.failures] == [
        ("p", "created, but its status could not be written: PATCH /api/v1/namespaces/ns/pods/p/status: "
              "TimeoutError: timed out")]
    assert r.uid_map == {"p-old": "new-p"}
    assert [(entry[2], entry[3], entry[5]) for entry in r.deferred] == [("ns", "p", [ref])]
    assert r.gone is not None and client.cancelled  # (the outage is noticed as before)
    # Its relink refused too (a webhook refusing pod updates): one failure with both reasons, counted once (review
    # finding: counted twice, and listed twice)
    r._fail("v1/pods", {"metadata": {"namespace": "ns", "name": "p"}}, "owner references could not be relinked: 403")
    assert [(f.name, f.reason.rpartition("; ")[2]) for f in r.failures] == [
        ("p", "owner references could not be relinked: 403")]
    assert r.failures[0].reason.startswith("created, but its status could not be written")
    assert r.results["v1/pods"].failed == 1
