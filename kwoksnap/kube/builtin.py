"""What the built-in API groups are and serve (Kubernetes 1.36), known without asking a cluster.

Why this module exists: reading an audit log offline (which patch types a write used, what a bare ``--resources``
name means) and resolving ``save --include`` names (a bare name means the built-in resource, as in kubectl) need
the same two tables; they live with the other knowledge of the API, below every stage that uses them.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BUILTIN_GROUPS", "BUILTIN_RESOURCES"]

# Built-in API groups (Kubernetes 1.36) support strategic merge patch; custom resources do not (merge only).
# Aggregated APIs (metrics.k8s.io) are not listed: they reject patches anyway.
BUILTIN_GROUPS: Final = frozenset(
    {
        "",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "apps",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "extensions",
        "flowcontrol.apiserver.k8s.io",
        "internal.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
    }
)

# The resources the built-in groups serve (Kubernetes 1.36, alpha and beta ones included): a bare name among these
# (`--resources nodes`) means the built-in one, as kubectl resolves it, not a custom resource of the same plural in
# another group (Longhorn's nodes.longhorn.io).
BUILTIN_RESOURCES: Final = frozenset(
    {
        "apiservices", "bindings", "certificatesigningrequests", "clusterrolebindings", "clusterroles",
        "clustertrustbundles", "componentstatuses", "configmaps", "controllerrevisions", "cronjobs",
        "csidrivers", "csinodes", "csistoragecapacities", "customresourcedefinitions", "daemonsets",
        "deployments", "deviceclasses", "devicetaintrules", "endpoints", "endpointslices", "events",
        "flowschemas", "horizontalpodautoscalers", "ingressclasses", "ingresses", "ipaddresses", "jobs",
        "leasecandidates", "leases", "limitranges", "localsubjectaccessreviews",
        "mutatingadmissionpolicies", "mutatingadmissionpolicybindings", "mutatingwebhookconfigurations",
        "namespaces", "networkpolicies", "nodes", "persistentvolumeclaims", "persistentvolumes",
        "poddisruptionbudgets", "pods", "podtemplates", "priorityclasses", "prioritylevelconfigurations",
        "replicasets", "replicationcontrollers", "resourceclaims", "resourceclaimtemplates", "resourcequotas",
        "resourceslices", "rolebindings", "roles", "runtimeclasses", "secrets", "selfsubjectaccessreviews",
        "selfsubjectreviews", "selfsubjectrulesreviews", "serviceaccounts", "servicecidrs", "services",
        "statefulsets", "storageclasses", "storageversionmigrations", "storageversions",
        "subjectaccessreviews", "tokenreviews", "validatingadmissionpolicies",
        "validatingadmissionpolicybindings", "validatingwebhookconfigurations", "volumeattachments",
        "volumeattributesclasses",
    }
)  # fmt: skip
