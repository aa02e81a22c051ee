"""A restore stopped by an error says where it stopped (``RestoreSummary.error_phase``), so that what the CLI says
was left undone is true of it: an error in the wait for adoption comes after the relinking, which ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from kwoksnap.cli.restore import stopped_by_error
from kwoksnap.errors import TransportError
from kwoksnap.kube import Client
from kwoksnap.restore.engine import RestoreOptions, restore
from kwoksnap.restore.source import SnapshotSource
from kwoksnap.store import KwsReader
from tests.integration.snapshots import write_snapshot


class UnlistablePods:
    """The test's client, except that listing every namespace's pods (what the wait for adoption does, and nothing
    before it) fails as a connection failure does."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.client, attr)

    def list_items(self, path: str, *args: Any, **kwargs: Any) -> Any:
        if path == "/api/v1/pods":
            raise TransportError(f"GET {path}: TimeoutError: timed out")
        return self.client.list_items(path, *args, **kwargs)


def test_an_error_in_the_wait_for_adoption_is_said_to_come_after_the_relinking(client: Client, namespace: str,
                                                                               tmp_path: Path) -> None:
    labels = {"app": "web"}
    snapshot = write_snapshot(tmp_path / "s.kws", [
        ("v1/pods", "Pod", True, [{
            "metadata": {"name": "web-1", "namespace": namespace, "uid": "pod-old", "labels": labels,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                              "uid": "rs-old", "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"containers": [{"name": "c", "image": "img"}]}}]),
        ("apps/v1/replicasets", "ReplicaSet", True, [{
            "metadata": {"name": "web", "namespace": namespace, "uid": "rs-old"},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "c", "image": "img"}]}}}}]),
    ])
    with KwsReader(snapshot) as reader:
        summary = restore(cast(Client, UnlistablePods(client)), SnapshotSource(reader),
                          RestoreOptions(settle_timeout=5))
    assert isinstance(summary.error, TransportError) and summary.error_phase == "settle", summary.error
    assert not summary.failures and summary.objects == 2, summary.failures
    text = stopped_by_error(summary)
    assert ("and linked owner references to the restored owners; the error came in the wait for the target's "
            "controllers to adopt") in text and "relinking" not in text, text
