"""The order of a restore, as data (like lightkube's rank table and Velero's restore priorities).

Why this module exists: the order decides whether controllers race the restore. Controlled objects come *before*
their controllers (pods before ReplicaSets before Deployments), so no controller ever sees a missing dependent and
creates a fresh one; their controller ownerReferences are dropped and the controllers adopt them.
"""

from __future__ import annotations

import dataclasses

# (phase name, group-resources in it). Anything not listed goes to "rest"; the phases run in this order and each
# one finishes before the next starts.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("crds", ("customresourcedefinitions.apiextensions.k8s.io",)),
    ("namespaces", ("namespaces",)),
    ("cluster-config", (
        "priorityclasses.scheduling.k8s.io", "storageclasses.storage.k8s.io", "clusterroles.rbac.authorization.k8s.io",
        "clusterrolebindings.rbac.authorization.k8s.io", "ingressclasses.networking.k8s.io",
        "runtimeclasses.node.k8s.io", "csidrivers.storage.k8s.io", "volumeattributesclasses.storage.k8s.io",
        "deviceclasses.resource.k8s.io",
    )),
    ("namespaced-config", (
        "serviceaccounts", "configmaps", "secrets", "roles.rbac.authorization.k8s.io",
        "rolebindings.rbac.authorization.k8s.io",
    )),
    ("nodes", ("nodes", "csinodes.storage.k8s.io")),
    # PVCs before PVs, so a bound PV's claimRef can be relinked to the new PVC uid.
    ("claims", ("persistentvolumeclaims",)),
    ("volumes", ("persistentvolumes", "volumeattachments.storage.k8s.io")),
    ("pods", ("pods",)),
    ("replicasets", ("replicasets.apps", "controllerrevisions.apps")),
    ("controllers", ("statefulsets.apps", "daemonsets.apps", "jobs.batch", "replicationcontrollers")),
    ("top-controllers", ("deployments.apps", "cronjobs.batch")),
    ("services", ("services",)),
    ("rest", ()),
    # Last, after the wait for adoption too (engine.restore), quotas before webhooks and policies: an admission
    # webhook whose backend does not run in KWOK would refuse every later write (a quota's create, the target's
    # controllers adopting restored pods), a LimitRange would change the restored pods (their recorded resources
    # already hold what it added when they were made) and a ResourceQuota could refuse them.
    ("admission", (
        "limitranges", "resourcequotas",
        "validatingwebhookconfigurations.admissionregistration.k8s.io",
        "mutatingwebhookconfigurations.admissionregistration.k8s.io",
        "validatingadmissionpolicies.admissionregistration.k8s.io",
        "validatingadmissionpolicybindings.admissionregistration.k8s.io",
        "mutatingadmissionpolicies.admissionregistration.k8s.io",
        "mutatingadmissionpolicybindings.admissionregistration.k8s.io",
    )),
)

_RANK = {gr: i for i, (_name, grs) in enumerate(PHASES) for gr in grs}
_WITHIN = {gr: j for _name, grs in PHASES for j, gr in enumerate(grs)}  # a phase's resources go in listed order
REST = next(i for i, (name, _) in enumerate(PHASES) if name == "rest")
ADMISSION = "admission"  # restore runs it after the adoption wait (engine.restore)


def group_resource(key: str) -> str:
    """``apps/v1/deployments`` -> ``deployments.apps``; ``v1/pods`` -> ``pods``."""
    parts = key.split("/")
    return parts[-1] if len(parts) == 2 else f"{parts[2]}.{parts[0]}"


def phase_of(key: str) -> int:
    return _RANK.get(group_resource(key), REST)


@dataclasses.dataclass(frozen=True)
class PlanStep:
    phase: str
    resource: str
    objects: int


def plan(counts: dict[str, int]) -> list[PlanStep]:
    """Restore steps for the resources of a snapshot (resource key -> object count), in execution order."""
    ordered = sorted(counts, key=lambda k: (phase_of(k), _WITHIN.get(group_resource(k), 0), k))
    return [PlanStep(PHASES[phase_of(k)][0], k, counts[k]) for k in ordered]
