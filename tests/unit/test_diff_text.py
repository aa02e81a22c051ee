"""The text `kwoksnap diff` prints of a changed object: its fields, the telling ones first."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def test_the_text_shows_the_telling_fields_first_and_says_how_many_it_left_out() -> None:
    """Black-box finding: a moved pod's `.spec.nodeName` was the 9th of its changed fields, and the text showed the
    first 4 of them without a word about the rest; review: the walk itself stopped at 10 fields in key order, so
    12 changed labels and an image hid the node from the text and from -o json alike."""
    from kwoksnap.cli.diff import _fields
    from kwoksnap.diff.normalize import field_differences

    def pod(node: str, tag: str, labels: int) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "labels": {f"l{n:02}": tag for n in range(labels)}},
                "spec": {"containers": [{"name": "c", "image": f"img:{tag}"}], "nodeName": node},
                "status": {"phase": "Running" if tag == "a" else "Failed"}}

    fields = field_differences(pod("n2", "a", 12), pod("n1", "b", 12))
    assert fields[:2] == [".spec.nodeName: 'n2' -> 'n1'", ".status.phase: 'Running' -> 'Failed'"], fields
    assert len(fields) == 10
    shown = _fields(fields)
    assert shown.startswith(".spec.nodeName: 'n2' -> 'n1'; .status.phase: 'Running' -> 'Failed'; ")
    assert shown.endswith("; and at least 2 more (-o json lists up to 10)") and shown.count(";") == 8, shown
    few = field_differences(pod("n2", "a", 1), pod("n2", "b", 1))
    assert _fields(few) == "; ".join(few) and len(few) == 3, few  # (the label, the image, the phase)
    assert _fields(fields[:9]) == "; ".join(fields[:8]) + "; and 1 more (-o json lists up to 10)"


def test_what_save_could_not_list_is_not_compared_and_said(tmp_path: Path) -> None:
    """Black-box finding: after a save by a read-only account, `diff` reported every node of the other side as
    added, as if the cluster had gained them."""
    import subprocess
    import sys

    from kwoksnap.store import KwsWriter

    def snapshot(path: Path, nodes: list[str], refused: bool) -> Path:
        with KwsWriter(path) as w:
            w.write({"type": "resource", "resource": "v1/configmaps", "kind": "ConfigMap", "namespaced": True})
            w.write({"type": "object", "resource": "v1/configmaps", "object": {
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}}})
            if nodes:
                w.write({"type": "resource", "resource": "v1/nodes", "kind": "Node", "namespaced": False})
            for name in nodes:
                w.write({"type": "object", "resource": "v1/nodes", "object": {
                    "apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}})
            if refused:
                w.incomplete("v1/nodes", "403 Forbidden: nodes is forbidden")
        return path

    partial = snapshot(tmp_path / "viewer.kws", [], refused=True)
    full = snapshot(tmp_path / "admin.kws", ["n1", "n2"], refused=False)
    for a, b in ((partial, full), (full, partial)):
        proc = subprocess.run([sys.executable, "-m", "kwoksnap", "diff", str(a), str(b)], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.strip().endswith("equal: 1 objects compared, 0 differences"), proc.stdout
        assert proc.stderr == (f"warning: nodes not compared: save could not list it whole ({partial}: 403 "
                               "Forbidden: nodes is forbidden)\n"), proc.stderr
    # A file whose every resource was left out compares nothing: said (black-box finding: only "equal")
    only_nodes = tmp_path / "only-nodes.kws"
    with KwsWriter(only_nodes) as w:
        w.write({"type": "resource", "resource": "v1/nodes", "kind": "Node", "namespaced": False})
        w.incomplete("v1/nodes", "403 Forbidden: nodes is forbidden")
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "diff", str(only_nodes), str(full)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("equal: 0 objects compared, 0 differences")
    assert proc.stderr.endswith("warning: nothing was compared: what A holds is all in the resources left out "
                                "above, so 'equal' says nothing of them\n"), proc.stderr
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "inspect", str(partial)], capture_output=True,
                          text=True, timeout=60)
    assert ("not whole: 1 resource(s): v1/nodes (v1/nodes: its list failed when saved: 403 Forbidden: nodes is "
            "forbidden)") in proc.stdout, proc.stdout


def _snapshot(path: Path, objects: dict[str, list[dict[str, Any]]], **meta: Any) -> str:
    """A snapshot of ``resource -> objects`` (metadata only), with ``meta`` as `save -n/-l` writes it."""
    from kwoksnap.store import KwsWriter

    kinds = {"v1/pods": "Pod", "v1/configmaps": "ConfigMap", "apps/v1/deployments": "Deployment"}
    with KwsWriter(path, meta=meta) as w:
        for resource, items in objects.items():
            w.write({"type": "resource", "resource": resource, "kind": kinds[resource], "namespaced": True})
            for metadata in items:
                w.write({"type": "object", "resource": resource, "object": {
                    "apiVersion": resource.rpartition("/")[0], "kind": kinds[resource], "metadata": metadata}})
    return str(path)


def _diff(*args: str) -> Any:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "kwoksnap", "diff", *args], capture_output=True, text=True,
                          timeout=60)


def test_b_is_looked_at_as_a_was_saved_its_resources_too(tmp_path: Path) -> None:
    """Known defect: `diff A B` of an A saved with `--include pods` against a full B reported every other resource
    of B as "added", where `diff A --live` compares the resources A holds. B is now limited to A's resources, as
    it already was to A's -n namespaces and -l selector, and stderr names what B holds beyond them."""
    web = {"namespace": "app", "name": "web", "labels": {"tier": "web"}}
    a = _snapshot(tmp_path / "a.kws", {"v1/pods": [web]}, namespaces=["app"], selector="tier=web")
    b = _snapshot(tmp_path / "b.kws", {
        "v1/pods": [web, {"namespace": "app", "name": "db", "labels": {"tier": "db"}},  # (not A's selector)
                    {"namespace": "other", "name": "web", "labels": {"tier": "web"}}],  # (not A's namespaces)
        "v1/configmaps": [{"namespace": "app", "name": "cfg", "labels": {"tier": "web"}}],
        "apps/v1/deployments": [{"namespace": "app", "name": "d", "labels": {"tier": "web"}}]})
    proc = _diff(a, b)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "equal: 1 objects compared, 0 differences\n", proc.stdout
    assert proc.stderr == (f"note: not compared: 2 resource(s) {b} holds and {a} does not (A is the reference; "
                           "`diff B A` compares them): configmaps, deployments.apps\n"), proc.stderr
    # A is the reference: the other way round, B's resources, namespaces and objects are all compared (and that
    # the narrower side was saved so is said: black-box finding)
    proc = _diff(b, a)
    assert proc.returncode == 1 and proc.stderr == (
        f"warning: {a} was saved with -n app and -l tier=web: what A holds beyond that shows as missing from it "
        "(diff -n app compares only those namespaces)\n"), proc.stdout + proc.stderr
    assert [line.split()[:3] for line in proc.stdout.splitlines()[:-1]] == [
        ["missing", "pods", "app/db"], ["missing", "pods", "other/web"], ["missing", "configmaps", "app/cfg"],
        ["missing", "deployments.apps", "app/d"]], proc.stdout


def test_a_namespace_neither_side_holds_is_warned_of(tmp_path: Path) -> None:
    """Known defect: `diff -n nosuchns A B` said "equal" (exit 0) without a word: a misspelt namespace looked like
    two equal snapshots. Still exit 0 (nothing differs, as README's exit codes say), with one warning line."""
    a = _snapshot(tmp_path / "a.kws", {"v1/pods": [{"namespace": "app", "name": "web"}]})
    b = _snapshot(tmp_path / "b.kws", {"v1/pods": [{"namespace": "app", "name": "web"},
                                                   {"namespace": "other", "name": "web"}]})
    proc = _diff("-n", "nosuchns", a, b)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "equal: 0 objects compared, 0 differences\n", proc.stdout
    assert proc.stderr == (f"warning: -n nosuchns: neither {a} nor {b} holds anything in it (of the resources "
                           "compared): is the name right?\n"), proc.stderr
    proc = _diff("-n", "app,nosuchns,other,gone", a, b)  # (only those neither holds are named; B holds `other`)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr == (f"warning: -n nosuchns, gone: neither {a} nor {b} holds anything in them (of the "
                           "resources compared): is the name right?\n"), proc.stderr
    proc = _diff("-n", "app", a, b)
    assert proc.returncode == 0 and proc.stderr == "", proc.stdout + proc.stderr
