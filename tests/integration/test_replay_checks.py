"""Replay's checks of its target tell the profile of a cluster this machine's work directory does not list.

A kwoksnap cluster made under another KWOKSNAP_WORKDIR, or any other cluster, has no profile on record here. The
checks then ask the cluster itself: a throw-away ReplicaSet tells whether the workload controllers run, and a
cluster made a moment ago is given time for its scheduler to take its lease (review findings: a replay-profile
cluster got the controllers warning, a starting standard one the no-scheduler warning).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kwoksnap.cluster.local import ENV_WORKDIR, LocalCluster, Profile
from kwoksnap.kube import Client
from kwoksnap.replay import checks
from kwoksnap.replay.capacity import SCRATCH_LABEL
from tests.conftest import ClusterFactory, client_for


def probes_left(c: Client) -> list[str]:
    return [r["metadata"]["name"] for r, _ in c.list_items("/apis/apps/v1/namespaces/kube-system/replicasets",
                                                           params={"labelSelector": f"{SCRATCH_LABEL}=probe"})]


def test_an_unlisted_standard_cluster_is_probed_and_warned_of(kwok_cluster: LocalCluster, client: Client,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_WORKDIR, str(tmp_path))  # a work directory that lists no cluster: profile unknown
    assert checks.workload_controllers_on(client)
    warnings = checks.check_target(client, "verbatim")
    assert any("workload controllers on" in w for w in warnings), warnings
    assert any("kube-scheduler is running" in w for w in warnings), warnings
    assert not [w for w in checks.check_target(client, "inputs") if "no scheduler" in w]
    assert probes_left(client) == []


def test_an_unlisted_replay_cluster_gets_no_controllers_warning(make_cluster: ClusterFactory, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    target = make_cluster("chk", Profile.REPLAY)
    monkeypatch.setenv(ENV_WORKDIR, str(tmp_path))
    monkeypatch.setattr(checks, "START_WAIT", 2.0)  # (it has none: waiting the full time proves nothing)
    with client_for(target) as c:
        assert not checks.workload_controllers_on(c)
        assert checks.kwok_honours_frozen(c)
        assert checks.check_target(c, "verbatim") == []  # (no controllers, no scheduler, kwok leaves frozen alone)
        assert [w for w in checks.check_target(c, "inputs") if "no scheduler/controllers" in w]
        assert probes_left(c) == []
