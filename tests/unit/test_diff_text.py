"""The text `kwoksnap diff` prints of a changed object: its fields, the telling ones first."""

from __future__ import annotations

from pathlib import Path


def test_the_text_shows_the_telling_fields_first_and_says_how_many_it_left_out() -> None:
    """Black-box finding: a moved pod's `.spec.nodeName` was the 9th of its changed fields, and the text showed the
    first 4 of them without a word about the rest."""
    from kwoksnap.cli.diff import _fields

    fields = [f".metadata.labels.l{n}: added" for n in range(9)] + [".spec.nodeName: 'n2' -> 'n1'"]
    shown = _fields(fields)
    assert shown.startswith(".spec.nodeName: 'n2' -> 'n1'; .metadata.labels.l0: added")
    assert shown.endswith("; and 2 more (-o json lists them)") and shown.count(";") == 8
    assert _fields(fields[:3]) == "; ".join(fields[:3])


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
    assert ("not whole: 1 resource(s) whose list failed when saved: v1/nodes (v1/nodes: 403 Forbidden: nodes is "
            "forbidden)") in proc.stdout, proc.stdout
