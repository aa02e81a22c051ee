"""Names the API server accepts that are no DNS names (RBAC objects: a space, `?`, `#`, any character but `/`) are
written and read back by name (found black-box testing: a second restore of such objects failed every one of
them, 400 Bad Request, a name cut at its `?`, or a raw UnicodeEncodeError)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.kube import Client
from tests.integration.test_snapshot_roundtrip import kwoksnap

NAMES = ("a space", "q?x#y", "uni-ü", "check ✓", "system:odd")


def test_objects_named_with_any_character_restore_again_and_replace(kwok_cluster: LocalCluster, client: Client,
                                                                    namespace: str, tmp_path: Path) -> None:
    roles = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles"
    for name in NAMES:
        client.create(roles, {"metadata": {"name": name, "labels": {"v": "1"}},
                              "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
    snapshot = tmp_path / "s.kws"
    proc = kwoksnap("save", "-o", str(snapshot), "-n", namespace, "--include", "role.rbac.authorization.k8s.io",
                    kubeconfig=kwok_cluster.kubeconfig)  # (singular.group, as kubectl takes it: black-box finding)
    assert proc.returncode == 0, proc.stderr
    for name in NAMES:  # (changed since: a replace must set them back)
        client.patch(f"{roles}/{quote(name, safe='')}", {"metadata": {"labels": {"v": "2"}}})
    proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)  # (every one exists: skipped)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(client.get(f"{roles}/{quote(n, safe='')}")["metadata"]["labels"] == {"v": "2"} for n in NAMES)
    proc = kwoksnap("restore", str(snapshot), "--on-conflict", "replace", kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {n: client.get(f"{roles}/{quote(n, safe='')}")["metadata"]["labels"] for n in NAMES} == {
        n: {"v": "1"} for n in NAMES}
