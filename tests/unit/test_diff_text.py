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
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "inspect", str(partial)], capture_output=True,
                          text=True, timeout=60)
    assert ("not whole: 1 resource(s): v1/nodes (v1/nodes: its list failed when saved: 403 Forbidden: nodes is "
            "forbidden)") in proc.stdout, proc.stdout
