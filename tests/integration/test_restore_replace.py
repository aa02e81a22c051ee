"""``restore --on-conflict replace`` over objects the target's controllers have adopted keeps them adopted (found
black-box testing: the replace left a StatefulSet's ControllerRevision without its controller for good, since the
StatefulSet controller does not look at revisions again; 3 of 3 runs)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.kube import Client
from kwoksnap.restore.engine import RestoreOptions, restore
from kwoksnap.restore.source import SnapshotSource
from kwoksnap.store import KwsReader
from tests.integration.snapshots import write_snapshot
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


class Racing:
    """The test's client, except that before each of the first ``races`` PUTs of a ConfigMap another writer
    changes it (a label): the API server then refuses the PUT with 409 Conflict, its resourceVersion being stale."""

    def __init__(self, client: Client, races: int) -> None:
        self.client = client
        self.races = races
        self.puts = 0

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.client, attr)

    def replace(self, path: str, body: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        if "/configmaps/" in path:
            self.puts += 1
            if self.puts <= self.races:
                self.client.patch(path, {"metadata": {"labels": {"raced": str(self.puts)}}})
        result: dict[str, Any] = self.client.replace(path, body, *args, **kwargs)
        return result


def test_a_replace_of_an_object_changed_meanwhile_reads_it_again(client: Client, namespace: str,
                                                                 tmp_path: Path) -> None:
    """Review finding: `--on-conflict replace` GETs the object in the way, then PUTs the snapshot's over it at that
    resourceVersion; when anything wrote it in between (409 Conflict), the object failed at once. It is read and
    replaced again, up to three times in all, and only then failed, saying so."""
    snapshot = write_snapshot(tmp_path / "s.kws", [("v1/configmaps", "ConfigMap", True, [
        {"metadata": {"name": "cm", "namespace": namespace, "uid": "cm-old"}, "data": {"k": "saved"}}])])
    path = f"/api/v1/namespaces/{namespace}/configmaps/cm"
    client.create(f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "cm"}, "data": {"k": "other"}})
    options = RestoreOptions(on_conflict="replace", settle_timeout=5)
    with KwsReader(snapshot) as reader:
        racing = Racing(client, races=2)
        summary = restore(cast(Client, racing), SnapshotSource(reader), options)
        assert summary.ok and summary.results["v1/configmaps"].updated == 1, summary.failures
        assert racing.puts == 3 and client.get(path)["data"] == {"k": "saved"}
        client.patch(path, {"data": {"k": "other"}})
        racing = Racing(client, races=99)  # (changed before every PUT: given up after the third)
        summary = restore(cast(Client, racing), SnapshotSource(reader), options)
    assert racing.puts == 3 and client.get(path)["data"] == {"k": "other"}
    [failure] = summary.failures
    assert failure.name == "cm" and failure.reason.startswith(
        "changed in the target during each of 3 attempts to replace it: PUT "), failure.reason
    assert "409 Conflict" in failure.reason, failure.reason
