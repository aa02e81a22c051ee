"""``restore --on-conflict replace`` over objects the target's controllers have adopted keeps them adopted (found
black-box testing: the replace left a StatefulSet's ControllerRevision without its controller for good, since the
StatefulSet controller does not look at revisions again; 3 of 3 runs)."""

from __future__ import annotations

import time
from pathlib import Path

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.kube import Client
from tests.integration.test_snapshot_roundtrip import kwoksnap


def test_a_replace_keeps_an_adopted_controller_revision_adopted(kwok_cluster: LocalCluster, client: Client,
                                                                 namespace: str, tmp_path: Path) -> None:
    template = {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "img"}]}}
    client.create(f"/apis/apps/v1/namespaces/{namespace}/statefulsets", {
        "metadata": {"name": "db"},
        "spec": {"replicas": 0, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": template}})
    revisions = f"/apis/apps/v1/namespaces/{namespace}/controllerrevisions"

    def owners() -> list[list[str]]:
        return [[ref["name"] for ref in rev["metadata"].get("ownerReferences") or [] if ref.get("controller")]
                for rev, _ in client.list_items(revisions)]

    deadline = time.monotonic() + 60
    while owners() != [["db"]] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert owners() == [["db"]]
    snapshot = tmp_path / "s.kws"
    proc = kwoksnap("save", "-o", str(snapshot), "-n", namespace, "--include", "statefulsets,controllerrevisions",
                    kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == 0, proc.stderr
    proc = kwoksnap("restore", str(snapshot), "--on-conflict", "replace", "--settle-timeout", "30",
                    kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "updated" in proc.stdout or "replaced" in proc.stdout, proc.stdout
    assert owners() == [["db"]]
    # The same when the snapshot lacks the owner (review finding: a replace of a revision saved without its
    # StatefulSet dropped the target's controller reference again).
    alone = tmp_path / "alone.kws"
    proc = kwoksnap("save", "-o", str(alone), "-n", namespace, "--include", "controllerrevisions",
                    kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == 0, proc.stderr
    proc = kwoksnap("restore", str(alone), "--on-conflict", "replace", kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert owners() == [["db"]]


def test_a_replace_refused_for_an_immutable_field_says_so_in_a_few_words(
        kwok_cluster: LocalCluster, client: Client, namespace: str, tmp_path: Path) -> None:
    """Black-box finding: a replace over an immutable ConfigMap (a Job's selector, a pod's spec) that differs failed
    with the API server's refusal, which quotes both whole values (one line of kilobytes), and no way out."""
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
    client.create(configmaps, {"metadata": {"name": "frozen"}, "immutable": True, "data": {"k": "saved" * 400}})
    snapshot = tmp_path / "s.kws"
    proc = kwoksnap("save", "-o", str(snapshot), "-n", namespace, "--include", "cm",
                    kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == 0, proc.stderr
    client.delete(f"{configmaps}/frozen")
    client.create(configmaps, {"metadata": {"name": "frozen"}, "immutable": True, "data": {"k": "other" * 400}})
    proc = kwoksnap("restore", str(snapshot), "--on-conflict", "replace", kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("failed:")]
    assert line == (f"failed: v1/configmaps {namespace}/frozen: differs in a field that cannot change (data): a "
                    "replace cannot write it; delete the object in the target, then restore again"), line
