"""Restored nodes carry their recorded taints, whatever the target's controllers do.

The API server's TaintNodesByCondition admission adds ``node.kubernetes.io/not-ready`` to every new node; normally
the node lifecycle controller removes it once the node is Ready. But that controller may be down, or its removal
may fail during an API server restart and wait in a backoff (the cause of a flaky fault test), so restore writes
the recorded taints itself.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from kwoksnap.restore.engine import RestoreOptions, restore
from kwoksnap.restore.source import SnapshotSource
from kwoksnap.store import KwsReader
from tests.conftest import ClusterFactory, client_for

SNAPSHOT = Path(__file__).resolve().parents[2] / "fixtures/incident/before.kws"


def test_nodes_keep_their_recorded_taints_without_a_node_lifecycle_controller(make_cluster: ClusterFactory) -> None:
    target = make_cluster("taints")  # standard profile: the API server adds the not-ready taint to new nodes
    pid = int((target.directory / "pids" / "kube-controller-manager.pid").read_text())
    os.kill(pid, signal.SIGKILL)  # nothing will remove it
    with client_for(target) as c, KwsReader(SNAPSHOT) as reader:
        source = SnapshotSource(reader)
        recorded = {n["metadata"]["name"]: n["spec"].get("taints") for n in source.objects("v1/nodes")}
        summary = restore(c, source, RestoreOptions(concurrency=16, adopt=False))
        assert summary.ok, summary.failures[:5]
        live = {n["metadata"]["name"]: n["spec"].get("taints") for n, _ in c.list_items("/api/v1/nodes")}
    assert len(recorded) >= 20
    assert live == recorded
    assert all(not any(t["key"] == "node.kubernetes.io/not-ready" for t in taints or []) for taints in live.values())
