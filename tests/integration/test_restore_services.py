"""Services whose recorded IPs do not fit the target are created with IPs the target allocates, and counted as
reallocated: a cluster IP outside the target's range, and a dual-stack Service in a single-stack target (review
finding: its retry kept both IP families and was refused again, 422 "ipFamilies[1]: not configured")."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.kube import Client
from tests.integration.snapshots import write_snapshot
from tests.integration.test_snapshot_roundtrip import kwoksnap


def test_services_whose_ips_do_not_fit_get_the_targets(kwok_cluster: LocalCluster, client: Client,
                                                       tmp_path: Path) -> None:
    ns = f"t-{uuid.uuid4().hex[:10]}"
    ports = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
    # (Outside the range too: a recorded IP that fits is taken as it is, and PreferDualStack then drops the family
    # the target lacks on its own.)
    dual = {"metadata": {"name": "dual", "namespace": ns},
            "spec": {"ports": ports, "selector": {"app": "x"}, "clusterIP": "192.0.2.77",
                     "clusterIPs": ["192.0.2.77", "fd00:10:96::77"], "ipFamilies": ["IPv4", "IPv6"],
                     "ipFamilyPolicy": "RequireDualStack"}}
    outside = {"metadata": {"name": "outside", "namespace": ns},
               "spec": {"ports": ports, "selector": {"app": "x"}, "clusterIP": "192.0.2.10",
                        "clusterIPs": ["192.0.2.10"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}}
    node_port = 30000 + uuid.uuid4().int % 2700
    exposed = {"metadata": {"name": "exposed", "namespace": ns},
               "spec": {"type": "NodePort", "selector": {"app": "x"},
                        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": node_port}]}}
    snapshot = write_snapshot(tmp_path / "services.kws", [
        ("v1/namespaces", "Namespace", False, [{"metadata": {"name": ns}}]),
        ("v1/services", "Service", True, [dual, outside, exposed]),
    ])
    client.create("/api/v1/namespaces", {"metadata": {"name": ns}})
    client.create(f"/api/v1/namespaces/{ns}/services", {  # holds the snapshot's node port in the target
        "metadata": {"name": "squatter"}, "spec": {"type": "NodePort", "selector": {"app": "y"}, "ports": [
            {"port": 81, "protocol": "TCP", "nodePort": node_port}]}})
    try:
        proc = kwoksnap("restore", str(snapshot), "-o", "json", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert json.loads(proc.stdout)["resources"]["v1/services"]["reallocated"] == 3
        for name in ("dual", "outside"):
            spec = client.get(f"/api/v1/namespaces/{ns}/services/{name}")["spec"]
            assert spec["ipFamilies"] == ["IPv4"] and spec["clusterIP"] not in ("192.0.2.77", "192.0.2.10"), spec
            assert spec["ports"][0]["port"] == 80
        # Black-box finding: --on-conflict replace then refused them all: a cluster IP "may not change once set",
        # and the recorded node port is "already allocated"
        proc = kwoksnap("restore", str(snapshot), "--on-conflict", "replace", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        client.delete(f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})


def test_a_selectorless_services_endpoints_are_restored_and_a_token_without_its_account_is_failed(
        kwok_cluster: LocalCluster, client: Client, tmp_path: Path) -> None:
    """Black-box findings: the Endpoints of a Service whose selector had been removed kept the endpoints
    controller's label, and restore left them to a controller that makes none (a standard target); a token Secret
    whose ServiceAccount was in neither the snapshot nor the target was said created, and the target's token
    controller deleted it at once."""
    ns = f"t-{uuid.uuid4().hex[:10]}"
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {
        "name": "nosel", "namespace": ns, "labels": {"endpoints.kubernetes.io/managed-by": "endpoint-controller"}},
        "subsets": [{"addresses": [{"ip": "10.9.9.9"}], "ports": [{"port": 80}]}]}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nosel", "namespace": ns},
               "spec": {"ports": [{"port": 80}]}}
    token = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token", "metadata": {
        "name": "orphan-token", "namespace": ns, "annotations": {"kubernetes.io/service-account.name": "gone"}}}
    snapshot = write_snapshot(tmp_path / "s.kws", [
        ("v1/namespaces", "Namespace", False, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}]),
        ("v1/secrets", "Secret", True, [token]),
        ("v1/services", "Service", True, [service]),
        ("v1/endpoints", "Endpoints", True, [endpoints]),
    ])
    try:
        proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 5, proc.stdout + proc.stderr
        assert (f"failed: v1/secrets {ns}/orphan-token: its ServiceAccount {ns}/gone is in neither the snapshot "
                "nor the target") in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        assert not client.exists(f"/api/v1/namespaces/{ns}/secrets/orphan-token")
        restored = client.get(f"/api/v1/namespaces/{ns}/endpoints/nosel")
        assert restored["subsets"][0]["addresses"] == [{"ip": "10.9.9.9"}], restored
    finally:
        client.delete(f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})
