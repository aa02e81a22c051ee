"""A kwokctl YAML imported without the CRDs of its custom resources (kwokctl's default filter leaves CRDs out) has
guessed plurals (``Leaf`` -> ``leafs``); restore finds the kind the target serves under its own name (found
black-box testing: "resource not served by the target", though the target served ``leaves``), and diff compares
them with it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.errors import NotFound
from kwoksnap.kube import Client
from tests.integration.test_snapshot_roundtrip import kwoksnap


def test_restore_finds_a_custom_resource_by_its_kind(kwok_cluster: LocalCluster, client: Client, namespace: str,
                                                      tmp_path: Path) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    client.create(crds, {
        "metadata": {"name": f"leaves.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"kind": "Leaf", "plural": "leaves", "singular": "leaf", "listKind": "LeafList"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}})
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                client.get(f"/apis/{group}/v1/namespaces/{namespace}/leaves")
                break
            except NotFound:
                time.sleep(0.2)
        source = tmp_path / "leaf.yaml"
        source.write_text(f"apiVersion: {group}/v1\nkind: Leaf\nmetadata: {{name: oak, namespace: {namespace}}}\n"
                          "spec: {colour: green}\n")
        snapshot = tmp_path / "leaf.kws"
        proc = kwoksnap("import", str(source), "-o", str(snapshot))
        assert proc.returncode == 0 and f"Leaf -> {group}/v1/leafs" in proc.stderr, proc.stderr
        proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert client.get(f"/apis/{group}/v1/namespaces/{namespace}/leaves/oak")["spec"] == {"colour": "green"}
        # diff pairs the guessed plural with the served one too (it said "missing" under one, "added" under the other)
        proc = kwoksnap("diff", str(snapshot), "--live", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0 and "equal: 1 objects compared" in proc.stdout, proc.stdout + proc.stderr
    finally:
        client.delete(f"{crds}/leaves.{group}")


def test_objects_of_a_version_the_target_no_longer_serves_are_written_as_the_served_one(
        kwok_cluster: LocalCluster, client: Client, namespace: str, tmp_path: Path) -> None:
    """Black-box finding: restore wrote a snapshot's batch/v1beta1 CronJob (policy/v1beta1 PDB, autoscaling/v2beta2
    HPA) to the version the target serves with the old apiVersion in its body: 400 "the API version in the data
    does not match the expected API version", every object."""
    source = tmp_path / "old.yaml"
    source.write_text(f"""apiVersion: batch/v1beta1
kind: CronJob
metadata: {{name: nightly, namespace: {namespace}}}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{{name: c, image: busybox}}]
---
apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata: {{name: web, namespace: {namespace}}}
spec:
  minAvailable: 1
  selector: {{matchLabels: {{app: web}}}}
---
apiVersion: autoscaling/v2beta2
kind: HorizontalPodAutoscaler
metadata: {{name: web, namespace: {namespace}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  minReplicas: 2
  maxReplicas: 5
""")
    snapshot = tmp_path / "old.kws"
    proc = kwoksnap("import", str(source), "-o", str(snapshot))
    assert proc.returncode == 0, proc.stderr
    proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning: the target does not serve batch/v1beta1: CronJob objects are written as batch/v1" in proc.stderr
    assert client.get(f"/apis/batch/v1/namespaces/{namespace}/cronjobs/nightly")["spec"]["schedule"] == "0 3 * * *"
    assert client.get(f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/web")["spec"][
        "minAvailable"] == 1
    assert client.get(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/web")["spec"][
        "maxReplicas"] == 5
