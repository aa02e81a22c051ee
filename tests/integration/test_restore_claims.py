"""A bound claim restored before its volume can be marked Lost by the PV controller (seen once in CI): restore writes
the recorded status again once the volume exists, and the claim then stays Bound through the controller's resync."""

from __future__ import annotations

import time
import uuid
from typing import Any

from kwoksnap.kube import Client
from kwoksnap.kube.discovery import discover
from kwoksnap.restore.engine import RecordSource, ResourceResult, RestoreOptions, _Restorer


def _phase(client: Client, ns: str) -> str:
    return str(client.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/data")["status"].get("phase"))


STATUS = {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}


def bound_claim(client: Client, ns: str, volume: str) -> dict[str, Any]:
    """A claim named ``data`` recorded Bound to ``volume``, as restore creates it (status written after create)."""
    claim = client.create(f"/api/v1/namespaces/{ns}/persistentvolumeclaims", {
        "metadata": {"name": "data", "annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                 "volumeName": volume, "storageClassName": ""}})
    client.patch(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/data/status", {"status": STATUS})
    return claim


def restorer_with_claim(client: Client, ns: str) -> _Restorer:
    """A restorer that has just restored that claim as Bound."""
    res = discover(client).by_kind("v1", "PersistentVolumeClaim")
    assert res is not None
    restorer = _Restorer(client, RecordSource(), RestoreOptions(), lambda *_: None)
    restorer.results[res.key] = ResourceResult(res.key)
    restorer.bound_claims.append((res, res.key, ns, "data", STATUS))
    return restorer


def test_a_claim_marked_lost_before_its_volume_existed_is_bound_again(client: Client, namespace: str) -> None:
    claim = bound_claim(client, namespace, f"pv-{namespace}")
    deadline = time.monotonic() + 30
    while _phase(client, namespace) != "Lost" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _phase(client, namespace) == "Lost", "the PV controller did not mark a claim without its volume Lost"
    pv = f"pv-{namespace}"
    client.create("/api/v1/persistentvolumes", {
        "metadata": {"name": pv},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                 "hostPath": {"path": f"/tmp/{uuid.uuid4().hex}"}, "persistentVolumeReclaimPolicy": "Retain",
                 "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": namespace,
                              "name": "data", "uid": claim["metadata"]["uid"]}}})
    try:
        restorer = restorer_with_claim(client, namespace)
        restorer.rebind_claims(timeout=60)
        assert restorer.failures == []
        for _ in range(20):  # past the controller's 15 s claim resync
            assert _phase(client, namespace) == "Bound"
            time.sleep(1)
    finally:
        client.delete(f"/api/v1/persistentvolumes/{pv}")


def test_a_claim_whose_volume_is_not_in_the_target_is_reported_not_waited_for(client: Client,
                                                                               namespace: str) -> None:
    bound_claim(client, namespace, f"absent-{namespace}")
    restorer = restorer_with_claim(client, namespace)
    started = time.monotonic()
    restorer.rebind_claims(timeout=60)
    assert time.monotonic() - started < 10  # no waiting for a volume that will never come
    assert restorer.failures == []
    assert restorer.claims_without_volume == [f"{namespace}/data (volume absent-{namespace})"]
