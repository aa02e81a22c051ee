"""Is the target fit for this replay? Refuse real nodes; warn about anything that would fight the recording.

Why this module exists: a verbatim replay re-applies what the source's scheduler, controllers and kubelets did. A
target whose own scheduler or workload controllers run does it a second time (duplicate pods), and a kwok that does
not honour ``kwoksnap.io/frozen`` overwrites every replayed status. These are checked against the live target,
not assumed: kwok's behaviour is probed with a throw-away frozen node.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kwoksnap.audit.filters import PROBE_NAME_PREFIX
from kwoksnap.audit.timestamps import parse_timestamp
from kwoksnap.cluster.local import Profile, profile_for_server
from kwoksnap.errors import APIError, NotFound
from kwoksnap.kube.client import Client
from kwoksnap.replay.actions import Mode
from kwoksnap.replay.capacity import SCRATCH_LABEL, remove_stale_scratch
from kwoksnap.restore.engine import SNAPSHOT_TAKEN_ANNOTATION
from kwoksnap.restore.engine import check_target as refuse_real_nodes
from kwoksnap.restore.transform import FAKE_NODE_ANNOTATION, FROZEN_ANNOTATION

PROBE_SECONDS = 3.0  # kwok initializes a managed node within about a second
CONTROLLER_PROBE_SECONDS = 5.0  # a running ReplicaSet controller observes a new ReplicaSet within about a second


def _answered(client: Client, base: str, body: dict[str, Any], answer: Callable[[dict[str, Any]], bool],
              seconds: float = PROBE_SECONDS) -> bool:
    """Create the throw-away object ``body`` (named ``kwoksnap-probe-...`` and labelled as scratch) under ``base``,
    and say whether ``answer`` holds of it within ``seconds``; it is deleted again, and one a replay killed
    outright left, labelled as this one is, is deleted first."""
    remove_stale_scratch(client, base, f"{SCRATCH_LABEL}=probe")
    name = body["metadata"]["name"]
    client.create(base, body)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if answer(client.get(f"{base}/{name}")):
                return True
            time.sleep(0.25)
        return False
    finally:
        with contextlib.suppress(NotFound):
            client.delete(f"{base}/{name}")


def kwok_honours_frozen(client: Client) -> bool:
    """Whether kwok leaves a frozen node alone: a throw-away frozen node that kwok does not initialize."""
    node = {"metadata": {"name": f"{PROBE_NAME_PREFIX}{uuid.uuid4().hex[:8]}", "labels": {SCRATCH_LABEL: "probe"},
                         "annotations": {FAKE_NODE_ANNOTATION: "fake", FROZEN_ANNOTATION: "true"}}}
    return not _answered(client, "/api/v1/nodes", node, lambda n: bool((n.get("status") or {}).get("conditions")))


def workload_controllers_on(client: Client) -> bool:
    """Whether the target's kube-controller-manager runs its ReplicaSet controller (the replay profile turns it off
    with the other workload controllers): a throw-away ReplicaSet of no replicas in kube-system is observed
    (``status.observedGeneration``) or not. Asked only of a cluster that is not one of this machine's kwoksnap
    clusters, where the profile is not known (review finding: every such cluster got the controllers warning,
    replay profile or not; restore waited for adoptions in one)."""
    name = f"{PROBE_NAME_PREFIX}{uuid.uuid4().hex[:8]}"
    labels = {SCRATCH_LABEL: "probe", "kwoksnap.io/probe": name}
    replicaset = {"metadata": {"name": name, "labels": labels}, "spec": {
        "replicas": 0, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {
            "containers": [{"name": "probe", "image": "kwoksnap.invalid/probe"}]}}}}
    return _answered(client, "/apis/apps/v1/namespaces/kube-system/replicasets", replicaset,
                     lambda rs: bool((rs.get("status") or {}).get("observedGeneration")), CONTROLLER_PROBE_SECONDS)


def _lease_fresh(client: Client, name: str, within: float = 60.0) -> bool:
    try:
        lease = client.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}")
    except APIError:
        return False
    renew = (lease.get("spec") or {}).get("renewTime")
    if not renew:
        return False
    when = datetime.fromisoformat(str(renew).replace("Z", "+00:00"))
    return (datetime.now(UTC) - when).total_seconds() < within


def snapshot_taken(client: Client) -> tuple[str, int] | None:
    """When the snapshot restored into the target was taken (restore marks kube-system with it), as (RFC 3339,
    ns), or None: no restore marked it, or it cannot be read."""
    try:
        namespace = client.get("/api/v1/namespaces/kube-system")
    except APIError:
        return None
    text = ((namespace.get("metadata") or {}).get("annotations") or {}).get(SNAPSHOT_TAKEN_ANNOTATION)
    if not isinstance(text, str):
        return None
    try:
        return text, parse_timestamp(text)
    except ValueError:
        return None


def check_target(client: Client, mode: Mode, *, allow_real_nodes: bool = False) -> list[str]:
    """Raise for a target with real nodes; return warnings about anything that would fight the replay."""
    refuse_real_nodes(client, allow_real_nodes, what="replay")
    warnings: list[str] = []
    profile = profile_for_server(client.config.server)
    # (A cluster with no profile on record may have been made a moment ago: its scheduler is given time to start.)
    scheduler = _lease_fresh(client, "kube-scheduler") or (profile is None and _comes(client, "kube-scheduler"))
    if mode == "verbatim":
        if not kwok_honours_frozen(client):
            warnings.append("kwok in this cluster does not honour the kwoksnap.io/frozen annotation: it will "
                            "overwrite replayed pod and node statuses (create the cluster with `kwoksnap cluster "
                            "create`, or set kwok's disregardStatusWithAnnotationSelector to kwoksnap.io/frozen=true)")
        if scheduler:
            warnings.append("a kube-scheduler is running: it will bind pods the recording binds itself; use a "
                            "cluster made with `kwoksnap cluster create --profile replay` for verbatim replay")
        if profile is Profile.STANDARD:
            warnings.append("this cluster runs all controllers (profile standard): ReplicaSet, Job and node "
                            "lifecycle controllers will act on replayed objects a second time; use --profile replay")
        elif profile is None and controllers_run(client):
            warnings.append("a kube-controller-manager with its workload controllers on is running (its "
                            "ReplicaSet controller answered a probe): they will act on replayed objects a second "
                            "time; use a cluster made with `kwoksnap cluster create --profile replay`")
    elif profile is Profile.REPLAY or (profile is None and not scheduler):
        warnings.append("--mode inputs replays only user actions, but this cluster has no scheduler/controllers "
                        "to react to them; use a cluster with profile standard")
    return warnings


def controllers_run(client: Client) -> bool:
    """:func:`workload_controllers_on`, after a cluster made a moment ago has been given time to start its
    kube-controller-manager (:func:`_comes`); taken as on when the probe cannot be made (no right to create in
    kube-system): what was assumed of every such cluster before there was a probe."""
    if not _lease_fresh(client, "kube-controller-manager"):
        _comes(client, "kube-controller-manager")  # (what it found does not matter: the probe tells)
    try:
        return workload_controllers_on(client)
    except APIError:
        return True


START_WAIT = 20.0  # seconds a young cluster's scheduler or controller manager is given to take its lease


def _comes(client: Client, lease: str, young: float = 120.0) -> bool:
    """Whether the component holding the kube-system Lease ``lease`` takes it within :data:`START_WAIT`, asked
    only of a cluster made less than ``young`` seconds ago (kube-system's age): one still starting had not yet
    (review finding: inputs mode warned of no scheduler on a standard cluster made a moment before under another
    KWOKSNAP_WORKDIR; a CI run found no controllers in one)."""
    try:
        made = parse_timestamp(str(client.get("/api/v1/namespaces/kube-system")["metadata"]["creationTimestamp"]))
    except (APIError, KeyError, ValueError):
        return False
    if time.time() - made / 1e9 > young:
        return False
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        if _lease_fresh(client, lease):
            return True
        time.sleep(0.5)
    return False
