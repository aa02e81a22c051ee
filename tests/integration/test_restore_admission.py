"""Restore and admission: webhook configurations no pod serves in a KWOK cluster."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.kube import Client
from tests.integration.snapshots import write_snapshot
from tests.integration.test_snapshot_roundtrip import kwoksnap


def test_a_webhook_no_pod_serves_that_fails_closed_is_left_out(kwok_cluster: LocalCluster, client: Client,
                                                              tmp_path: Path) -> None:
    """Black-box finding: a restored ValidatingWebhookConfiguration calling a Service (failurePolicy Fail) refused
    the target's controller manager's and scheduler's lease renewals, and both stopped for good; restore exit 0.
    It is left out of a target that runs webhook admission, and said; one calling a URL, or failing open, is not."""
    suffix = uuid.uuid4().hex[:8]
    rules = [{"apiGroups": [f"nothing-{suffix}.kwoksnap.io"], "apiVersions": ["*"], "operations": ["CREATE"],
              "resources": ["*"]}]

    def config(name: str, client_config: dict[str, Any], policy: str) -> dict[str, Any]:
        return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": f"{name}-{suffix}"},
                "webhooks": [{"name": f"{name}.kwoksnap.io", "clientConfig": client_config, "rules": rules,
                              "failurePolicy": policy, "sideEffects": "None",
                              "admissionReviewVersions": ["v1"]}]}

    service = {"service": {"name": "nonexistent", "namespace": "default"}}
    configs = [config("closed", service, "Fail"), config("open", service, "Ignore"),
               config("url", {"url": "https://127.0.0.1:1/validate"}, "Fail")]
    snapshot = write_snapshot(tmp_path / "webhooks.kws", [
        ("admissionregistration.k8s.io/v1/validatingwebhookconfigurations", "ValidatingWebhookConfiguration",
         False, configs)])
    path = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
    try:
        proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert ("warning: left out 1 admission webhook configuration(s) that call an in-cluster Service and fail "
                "closed") in proc.stderr and f"closed-{suffix}" in proc.stderr, proc.stderr
        assert not client.exists(f"{path}/closed-{suffix}")
        assert client.exists(f"{path}/open-{suffix}") and client.exists(f"{path}/url-{suffix}")
    finally:
        for name in ("closed", "open", "url"):
            if client.exists(f"{path}/{name}-{suffix}"):
                client.delete(f"{path}/{name}-{suffix}")
