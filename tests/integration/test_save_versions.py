"""`save` reads a custom resource in its CRD's storage version: read through another served version, the API server
prunes what that version's schema lacks (black-box finding: a v1beta1-stored object read through the preferred v1
was saved as `spec: {}` with exit 0, and its restore then failed on v1's required field)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.errors import NotFound
from kwoksnap.kube import Client
from kwoksnap.restore.source import SnapshotSource
from kwoksnap.store import KwsReader
from tests.integration.test_snapshot_roundtrip import kwoksnap


def test_a_custom_resource_is_saved_and_restored_in_its_storage_version(kwok_cluster: LocalCluster, client: Client,
                                                                        namespace: str, tmp_path: Path) -> None:
    group = f"v{uuid.uuid4().hex[:8]}.kwoksnap.io"
    crd = f"duals.{group}"
    loose = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    strict = {"type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
        "size": {"type": "integer"}}}}}
    client.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
        "metadata": {"name": crd},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "duals", "singular": "dual", "kind": "Dual"},
                 "versions": [{"name": "v1", "served": True, "storage": False,
                               "schema": {"openAPIV3Schema": strict}},
                              {"name": "v1beta1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": loose}}]}})
    path = f"/apis/{group}/v1beta1/namespaces/{namespace}/duals"
    deadline = time.monotonic() + 60
    while True:  # served once Established and in discovery
        try:
            client.get(path)
            break
        except NotFound:
            assert time.monotonic() < deadline, "the CRD was never served"
            time.sleep(0.5)
    try:
        client.create(path, {"apiVersion": f"{group}/v1beta1", "kind": "Dual", "metadata": {"name": "d1"},
                             "spec": {"legacy": "old-field", "sizeStr": "3"}})
        assert client.get(f"/apis/{group}/v1/namespaces/{namespace}/duals/d1")["spec"] == {}  # (what v1 shows)
        snapshot = tmp_path / "duals.kws"
        proc = kwoksnap("save", "-n", namespace, "--include", crd, "-o", str(snapshot),
                        kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.rstrip().endswith(" kB)"), proc.stdout  # (a small file's size: it said "0.0 MB")
        with KwsReader(snapshot) as reader:
            source = SnapshotSource(reader)
            assert list(source.counts()) == [f"{group}/v1beta1/duals"]
            [saved] = source.objects(f"{group}/v1beta1/duals")
        assert saved["spec"] == {"legacy": "old-field", "sizeStr": "3"}, saved
        client.delete(f"{path}/d1")
        proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert client.get(f"{path}/d1")["spec"] == {"legacy": "old-field", "sizeStr": "3"}
        proc = kwoksnap("diff", str(snapshot), "--live", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        client.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")


def test_an_api_the_cluster_lists_and_does_not_serve_makes_the_save_partial(kwok_cluster: LocalCluster, client: Client,
                                                                            namespace: str, tmp_path: Path) -> None:
    """Black-box finding: an aggregated API whose server is down was a warning, exit 0, and the file did not say it
    was not whole (restore and diff then warned of nothing). The metrics APIs, which store nothing, stay a warning."""
    group = f"v{uuid.uuid4().hex[:8]}.example.net"
    service = {"service": {"namespace": namespace, "name": "nowhere"}, "insecureSkipTLSVerify": True,
               "groupPriorityMinimum": 100, "versionPriority": 10}
    name = f"v1beta1.{group}"
    client.create("/apis/apiregistration.k8s.io/v1/apiservices", {
        "metadata": {"name": name}, "spec": {"group": group, "version": "v1beta1", **service}})
    try:
        proc = kwoksnap("save", "-o", str(tmp_path / "s.kws"), "-n", namespace, kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 5, proc.stdout + proc.stderr
        assert f"{group}/v1beta1: " in proc.stderr and "1 API(s) not served, so not saved" in proc.stdout, proc.stderr
        with KwsReader(tmp_path / "s.kws") as reader:
            assert f"{group}/v1beta1" in reader.incomplete(), reader.incomplete()
    finally:
        client.delete(f"/apis/apiregistration.k8s.io/v1/apiservices/{name}")
