"""Regenerate the golden .kws files of the current format version (and the JSON of what they must read back as).

Why it exists: golden files pin the byte format. Once a format version is released its golden files are never
regenerated: tests/unit/test_store_compat.py checks that today's reader still reads them to the expected records.
Run it only when introducing a new format version (it writes ``*-v{FORMAT_VERSION}.*`` and refuses to overwrite):

    .venv/bin/python tests/golden/make_golden.py [--force]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from kwoksnap.store import FORMAT_VERSION, KwsWriter  # noqa: E402

CREATED_AT = dt.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
SOURCE = {"serverVersion": "v1.36.3", "server": "https://golden.example:6443"}


def _pod(name: str, ns: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}", "labels": {"app": name[:3]}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox:1.36"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def snapshot_records() -> list[dict[str, Any]]:
    """Three resources; pods span several frames (frame_records=3) and come back after nodes (non-contiguous)."""
    out: list[dict[str, Any]] = [
        {"type": "resource", "resource": "v1/namespaces", "kind": "Namespace", "namespaced": False,
         "listResourceVersion": "100"},
    ]
    for ns in ("default", "team-a"):
        out.append({"type": "object", "resource": "v1/namespaces",
                    "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}})
    out.append({"type": "resource", "resource": "v1/pods", "kind": "Pod", "namespaced": True,
                "listResourceVersion": "101"})
    for i in range(5):
        out.append({"type": "object", "resource": "v1/pods", "object": _pod(f"web-{i}", ("default", "team-a")[i % 2],
                                                                               f"node-{i % 2}")})
    out.append({"type": "resource", "resource": "v1/nodes", "kind": "Node", "namespaced": False,
                "listResourceVersion": "102"})
    for i in range(2):
        out.append({"type": "object", "resource": "v1/nodes",
                    "object": {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{i}"},
                               "status": {"allocatable": {"cpu": "32", "pods": "110"}, "capacity": {"cpu": 32.5}}}})
    out.append({"type": "object", "resource": "v1/pods", "object": _pod("late-0", "team-a", "node-1")})
    out.append({"type": "resource", "resource": "apps/v1/deployments", "kind": "Deployment", "namespaced": True,
                "listResourceVersion": "103"})
    out.append({"type": "object", "resource": "apps/v1/deployments",
                "object": {"apiVersion": "apps/v1", "kind": "Deployment",
                           "metadata": {"name": "web", "namespace": "default", "annotations": {"x": "ünïcödé"}},
                           "spec": {"replicas": 3, "paused": False, "selector": None, "weight": -1.25}}})
    out.append({"type": "note", "text": "a record without resource goes under ''"})
    return out


def recording_records() -> list[dict[str, Any]]:
    base = 1_700_000_000_000_000_000
    out: list[dict[str, Any]] = []
    for i in range(7):
        verb = ("create", "patch", "patch", "delete")[i % 4]
        rec: dict[str, Any] = {"type": "event", "ts": base + i * 250_000_000, "resource": "v1/pods", "verb": verb,
                               "namespace": "default", "name": f"p-{i // 4}", "user": "system:serviceaccount:x"}
        if verb == "create":
            rec["object"] = _pod(f"p-{i // 4}", "default", "node-0")
        elif verb == "patch":
            rec["patch"] = {"status": {"phase": "Running", "podIP": f"10.0.0.{i}"}}
        out.append(rec)
    out.insert(3, {"type": "event", "ts": base + 600_000_000, "resource": "v1/nodes", "verb": "patch",
                   "name": "node-0", "patch": {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}})
    return out


def write(name: str, content_type: str, records: list[dict[str, Any]], force: bool) -> None:
    kws = HERE / f"{name}-v{FORMAT_VERSION}.kws"
    expected = HERE / f"{name}-v{FORMAT_VERSION}.expected.json"
    if not force and (kws.exists() or expected.exists()):
        raise SystemExit(f"{kws.name} exists: golden files of a released version are never regenerated (--force)")
    meta = {"golden": True, "purpose": f"format v{FORMAT_VERSION} {content_type} golden file"}
    with KwsWriter(kws, content_type=content_type, source=SOURCE, meta=meta, created_at=CREATED_AT,
                   overwrite=True, frame_records=3) as w:
        w.write_many(records)
        header = dict(w.header)
    expected.write_text(json.dumps({"formatVersion": FORMAT_VERSION, "header": header, "records": records},
                                   indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {kws.relative_to(HERE.parents[1])} and {expected.name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="overwrite existing golden files")
    args = parser.parse_args()
    write("snapshot", "snapshot", snapshot_records(), args.force)
    write("recording", "recording", recording_records(), args.force)


if __name__ == "__main__":
    main()
