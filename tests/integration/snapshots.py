"""Snapshots written by hand for integration tests: objects a real cluster would not hold at the moment a test
needs them (a finished Job past its TTL, a pod its ReplicaSet never adopts, pods naming what is missing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kwoksnap.store import KwsWriter


def write_snapshot(path: Path, resources: list[tuple[str, str, bool, list[dict[str, Any]]]]) -> Path:
    """A clean snapshot at ``path`` of ``(resource, kind, namespaced, objects)`` entries, in that order (objects get
    their apiVersion and kind, as save writes them)."""
    with KwsWriter(path) as w:
        for resource, kind, namespaced, objects in resources:
            w.write({"type": "resource", "resource": resource, "kind": kind, "namespaced": namespaced})
            for obj in objects:
                w.write({"type": "object", "resource": resource,
                         "object": {"apiVersion": resource.rsplit("/", 1)[0], "kind": kind, **obj}})
    return path
