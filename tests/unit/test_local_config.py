"""The kwokctl configuration kwoksnap generates for each cluster profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kwoksnap.cluster.binaries import Binaries
from kwoksnap.cluster.local import (
    FROZEN_SELECTOR,
    REPLAY_DISABLED_CONTROLLERS,
    Profile,
    audit_policy_text,
    cluster_config,
)

BINS = Binaries(
    directory=Path("/b"), kwokctl=Path("/b/kwokctl"), kwok=Path("/b/kwok"), etcd=Path("/b/etcd"),
    kube_apiserver=Path("/b/kube-apiserver"), kube_controller_manager=Path("/b/kube-controller-manager"),
    kube_scheduler=Path("/b/kube-scheduler"),
)


def _docs(profile: Profile, bins: Binaries = BINS) -> tuple[dict[str, Any], dict[str, Any]]:
    ctl, kwok = cluster_config(bins, profile, Path("/p/policy.yaml"))
    return ctl, kwok


def test_standard_profile_binds_loopback_and_uses_cached_binaries() -> None:
    ctl, kwok = _docs(Profile.STANDARD)
    opts = ctl["options"]
    assert opts["bindAddress"] == "127.0.0.1" and opts["runtime"] == "binary"
    assert opts["kubeAuditPolicy"] == "/p/policy.yaml"
    assert opts["kubeApiserverBinary"] == "/b/kube-apiserver" and opts["etcdBinary"] == "/b/etcd"
    assert "disableKubeScheduler" not in opts
    etcd = [p for p in ctl["componentsPatches"] if p["name"] == "etcd"]
    assert etcd == [{"name": "etcd", "extraArgs": [{"key": "unsafe-no-fsync", "value": "true"}]}]
    assert kwok["kind"] == "KwokConfiguration"
    assert kwok["options"]["disregardStatusWithAnnotationSelector"] == FROZEN_SELECTOR


def test_replay_profile_disables_scheduler_and_duplicating_controllers() -> None:
    ctl, _ = _docs(Profile.REPLAY)
    assert ctl["options"]["disableKubeScheduler"] is True
    (patch,) = [p for p in ctl["componentsPatches"] if p["name"] == "kube-controller-manager"]
    value = patch["extraArgs"][0]["value"].split(",")
    assert value[0] == "*" and {f"-{c}" for c in REPLAY_DISABLED_CONTROLLERS} == set(value[1:])


@pytest.mark.parametrize("profile", [Profile.STANDARD, Profile.REPLAY])
def test_controllers_survive_a_long_api_server_outage(profile: Profile) -> None:
    """One patch per component, and the leader lease outlasts an API server restart (the binary runtime never
    restarts a controller manager or scheduler that lost it)."""
    ctl, _ = _docs(profile)
    names = [p["name"] for p in ctl["componentsPatches"]]
    assert len(names) == len(set(names))
    components = ["kube-controller-manager"] + (["kube-scheduler"] if profile is Profile.STANDARD else [])
    for patch in (p for p in ctl["componentsPatches"] if p["name"] in components):
        args = {a["key"]: a["value"] for a in patch["extraArgs"]}
        assert args["leader-elect-renew-deadline"] == "60s" and args["leader-elect-lease-duration"] == "90s"
    assert sorted(set(components) & set(names)) == sorted(components)


def test_replay_profile_lightens_the_api_server_but_keeps_namespace_lifecycle() -> None:
    ctl, _ = _docs(Profile.REPLAY)
    (patch,) = [p for p in ctl["componentsPatches"] if p["name"] == "kube-apiserver"]
    args = {a["key"]: a["value"] for a in patch["extraArgs"]}
    assert args["enable-priority-and-fairness"] == "false" and args["audit-log-mode"] == "batch"
    disabled = set(args["disable-admission-plugins"].split(","))
    assert {"ValidatingAdmissionWebhook", "MutatingAdmissionWebhook", "PodSecurity", "ServiceAccount"} <= disabled
    assert "NamespaceLifecycle" not in disabled and "StorageObjectInUseProtection" not in disabled
    assert patch["extraEnvs"] == [{"name": "GOGC", "value": "400"}]
    standard, _ = _docs(Profile.STANDARD)
    assert not [p for p in standard["componentsPatches"] if p["name"] == "kube-apiserver"]


def test_user_kwokctl_gets_no_binary_paths() -> None:
    ctl, _ = _docs(Profile.STANDARD, Binaries(directory=Path("/u"), kwokctl=Path("/u/kwokctl")))
    assert not any(k.endswith("Binary") and k != "kubectlBinary" for k in ctl["options"])


def test_audit_policy_is_valid_and_never_logs_secret_bodies() -> None:
    policy = yaml.safe_load(audit_policy_text())
    assert policy["apiVersion"] == "audit.k8s.io/v1" and policy["omitManagedFields"] is True
    assert policy["omitStages"] == ["RequestReceived"]

    def level_for(group: str, resource: str, verb: str = "create", namespace: str = "") -> str:
        for rule in policy["rules"]:
            if "verbs" in rule and verb not in rule["verbs"]:
                continue
            if "namespaces" in rule and namespace not in rule["namespaces"]:
                continue
            if "nonResourceURLs" in rule:
                continue
            if "resources" not in rule:
                return str(rule["level"])
            for r in rule["resources"]:
                if r.get("group", "") == group and resource in r["resources"]:
                    return str(rule["level"])
        raise AssertionError("no rule matched")

    assert level_for("", "secrets") == "Metadata"
    assert level_for("", "configmaps") == "Metadata"
    for res in ("pods", "pods/status", "pods/binding", "pods/eviction", "nodes", "nodes/status"):
        assert level_for("", res) == "RequestResponse"
    assert level_for("coordination.k8s.io", "leases", "update", "kube-system") == "Metadata"  # leader election
    # A node Lease's write with its body: a user handing it to another holder kills the node (black-box finding)
    assert level_for("coordination.k8s.io", "leases", "update", "kube-node-lease") == "RequestResponse"
    # Anything else at RequestResponse, so --resources can replay it (custom resources were Metadata: never
    # replayed, only counted as degraded; black-box finding).
    assert level_for("example.com", "widgets", "patch") == "RequestResponse"
    assert level_for("", "services", "update") == "RequestResponse"
    assert level_for("discovery.k8s.io", "endpointslices", "update") == "Metadata"  # (controllers': 2/3 of a log)
    assert level_for("", "endpoints", "update") == "Metadata"
    assert level_for("", "serviceaccounts/token") == "Metadata"
    assert level_for("", "pods", "get") == "None"
    assert level_for("", "events") == "None"


def test_cluster_delete_stops_only_the_clusters_own_processes(tmp_path: Path) -> None:
    """Review finding: pid files outlive their processes (a reboot, a component that died), and `cluster delete`
    SIGKILLed whatever process had the number by then; `cluster list` called such a cluster running."""
    import subprocess
    import sys
    import time

    from kwoksnap.cluster.local import LocalCluster, cluster_running, delete_cluster

    directory = tmp_path / "clusters" / "stale"
    (directory / "pids").mkdir(parents=True)
    stranger = subprocess.Popen(["sleep", "300"])
    # names a file of the directory on its command line, as kwokctl's components do
    component = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", str(directory / "x")])
    # another cluster whose name the first one's prefixes (review finding: a substring match called it ours)
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)",
                                f"--data-dir={directory}-2/etcd"])
    try:
        deadline = time.monotonic() + 20  # (until the children's command lines are their own, not the parent's)
        while any(str(directory).encode() not in Path(f"/proc/{p.pid}/cmdline").read_bytes()
                  for p in (component, sibling)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        (directory / "pids" / "etcd.pid").write_text(f"{stranger.pid}\n")
        (directory / "pids" / "kube-apiserver.pid").write_text(f"{sibling.pid}\n")
        (directory / "pids" / "kwok-controller.pid").write_text(f"{component.pid}\n")
        assert not cluster_running(LocalCluster("stale", directory))  # one of its numbers is another's now
        assert delete_cluster("stale", None, workdir=tmp_path)
        assert component.wait(timeout=15) is not None and stranger.poll() is None and sibling.poll() is None
        assert not directory.exists()
    finally:
        for process in (stranger, component, sibling):
            process.kill()
            process.wait()


def test_cluster_delete_stops_the_cluster_when_kwoksnap_bin_dir_is_wrong(tmp_path: Path) -> None:
    """Review finding: with $KWOKSNAP_BIN_DIR naming a directory without the binaries, `cluster delete` failed
    (exit 6) and left the cluster running: stopping one needs no kwokctl, its pid files name its processes."""
    import os
    import subprocess
    import sys
    import time

    directory = tmp_path / "clusters" / "lost"
    (directory / "pids").mkdir(parents=True)
    component = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", str(directory / "x")])
    try:
        deadline = time.monotonic() + 20
        while str(directory).encode() not in Path(f"/proc/{component.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        (directory / "pids" / "kwok-controller.pid").write_text(f"{component.pid}\n")
        env = {**os.environ, "KWOKSNAP_WORKDIR": str(tmp_path), "KWOKSNAP_BIN_DIR": str(tmp_path / "nowhere"),
               "PATH": os.path.dirname(sys.executable)}  # (no kwokctl of the user's either)
        proc = subprocess.run([sys.executable, "-m", "kwoksnap", "cluster", "delete", "--name", "lost"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "stopping the cluster's processes from their pid files" in proc.stderr
        assert component.wait(timeout=15) is not None and not directory.exists()
    finally:
        component.kill()
        component.wait()


def test_a_kwokctl_that_cannot_run_is_a_tool_error(tmp_path: Path) -> None:
    """Documentation finding: `--kwokctl` naming a file of another architecture was an internal error (exit 70),
    and one without execute permission exit 7; both are a failing external tool (exit 6), and leave nothing."""
    import os
    import subprocess
    import sys

    for name, mode in (("wrong-arch", 0o755), ("not-executable", 0o644)):
        kwokctl = tmp_path / name
        kwokctl.write_text("not a program\n")
        kwokctl.chmod(mode)
        env = {**os.environ, "KWOKSNAP_WORKDIR": str(tmp_path / "work")}
        proc = subprocess.run([sys.executable, "-m", "kwoksnap", "cluster", "create", "--name", "x", "--kwokctl",
                               str(kwokctl)], env=env, capture_output=True, text=True, timeout=60)
        why = "Exec format error" if mode == 0o755 else "Permission denied"
        assert (proc.returncode, proc.stderr.splitlines()[-1]) == (
            6, f"kwoksnap: error: cannot run kwokctl {kwokctl}: {why}")
        assert not (tmp_path / "work" / "clusters" / "x").exists()


def test_a_local_cluster_is_known_by_any_loopback_name_of_its_server(tmp_path: Path) -> None:
    """Black-box finding: a kubeconfig naming a replay-profile cluster at https://localhost:PORT (kwokctl writes
    127.0.0.1) made restore take it for a standard cluster, wait for adoptions no controller made, and fail."""
    from kwoksnap.cluster.local import Profile, profile_for_server

    directory = tmp_path / "clusters" / "lab"
    directory.mkdir(parents=True)
    (directory / "kwoksnap-profile").write_text("replay\n")
    (directory / "kubeconfig.yaml").write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kwok-lab\n  cluster:\n    server: https://127.0.0.1:32766\n")
    for server in ("https://127.0.0.1:32766", "https://localhost:32766/", "https://[::1]:32766", "HTTPS://LOCALHOST:32766"):
        assert profile_for_server(server, workdir=tmp_path) is Profile.REPLAY, server
    for server in ("https://127.0.0.1:32767", "http://127.0.0.1:32766", "https://10.0.0.1:32766", "https://:x"):
        assert profile_for_server(server, workdir=tmp_path) is None, server


def test_a_process_run_from_the_clusters_binaries_is_found_without_a_pid_file(tmp_path: Path) -> None:
    """CI finding: after a create interrupted in its readiness wait, one component no pid file named was left
    running; `cluster delete` now also stops what runs from the cluster's own binaries (and nothing else)."""
    import shutil
    import subprocess

    from kwoksnap.cluster.local import _pids

    cluster = tmp_path / "clusters" / "c1"
    (cluster / "bin").mkdir(parents=True)
    sleeper = cluster / "bin" / "sleep"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", sleeper)
    component = subprocess.Popen([str(sleeper), "30"])
    outside = subprocess.Popen(["sleep", "30"])  # (its program is elsewhere, though the same)
    try:
        assert _pids(cluster) == [component.pid]
    finally:
        component.kill()
        outside.kill()
        component.wait()
        outside.wait()
