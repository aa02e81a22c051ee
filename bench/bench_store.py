"""Micro-benchmark of the .kws store: write/read throughput and compression ratio on synthetic pod objects.

Why it exists: the format's frame bound and the writer/reader hot loops were chosen by measurement; this script
reproduces those numbers (printed as a markdown table on stdout) so a change that slows them down is visible.
It must never write anywhere but a temporary directory. Run: ``.venv/bin/python bench/bench_store.py [N]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kwoksnap.store import FRAME_TARGET_BYTES, KwsReader, KwsWriter


def synthetic_pod(i: int, rng: random.Random) -> dict[str, Any]:
    """A realistic ~2 KB pod: owner references, labels, a container with env and resources, status conditions."""
    ns = f"team-{i % 50}"
    app = f"app-{i % 400}"
    name = f"{app}-{rng.getrandbits(40):010x}"
    ts = f"2025-06-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"{rng.getrandbits(128):032x}",
            "resourceVersion": str(100000 + i),
            "creationTimestamp": ts,
            "generateName": f"{app}-",
            "labels": {"app": app, "pod-template-hash": f"{rng.getrandbits(32):08x}", "tier": "backend"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": ts},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{app}-5d9c8", "uid": f"{i % 400:032x}",
                 "controller": True, "blockOwnerDeletion": True}
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": f"registry.example.com/{app}:v{i % 7}.{i % 13}",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": f"VAR_{k}", "value": f"value-{(i * k) % 97}"} for k in range(8)],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                    "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io",
                                      "readOnly": True}],
                    "terminationMessagePath": "/dev/termination-log",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
            "nodeName": f"node-{i % 1000}",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": 300}],
        },
        "status": {
            "phase": "Running",
            "podIP": f"10.{i % 250}.{(i // 250) % 250}.{i % 200}",
            "hostIP": f"192.168.{i % 250}.{i % 100}",
            "startTime": ts,
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": ts}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "containerStatuses": [{"name": "main", "ready": True, "restartCount": i % 3, "started": True,
                                   "image": f"registry.example.com/{app}:v{i % 7}.{i % 13}",
                                   "containerID": f"containerd://{rng.getrandbits(256):064x}",
                                   "state": {"running": {"startedAt": ts}}}],
        },
    }


def records(n: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    yield {"type": "resource", "resource": "v1/pods", "kind": "Pod", "namespaced": True, "listResourceVersion": "1"}
    for i in range(n):
        yield {"type": "object", "resource": "v1/pods", "object": synthetic_pod(i, rng)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", type=int, nargs="?", default=100_000, help="number of pod records")
    parser.add_argument("--level", type=int, default=3)
    parser.add_argument("--frame-bytes", type=int, default=FRAME_TARGET_BYTES)
    args = parser.parse_args()

    data = list(records(args.n))  # generated up front so only the store is timed
    n = len(data)
    json_bytes = sum(len(json.dumps(r["object"], separators=(",", ":"))) for r in data[1:])
    rows: list[tuple[str, str]] = []
    # CPU time of this process: the numbers do not depend on what else runs on the machine
    clock = time.process_time
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.kws"
        gc.collect()
        t0 = clock()
        with KwsWriter(path, content_type="snapshot", level=args.level, frame_bytes=args.frame_bytes) as w:
            w.write_many(data)
        write_s = clock() - t0
        del data  # a reader's caller does not usually hold the whole input
        size = os.path.getsize(path)
        with KwsReader(path) as r:
            raw = sum(f["rawLength"] for f in r.frames("v1/pods"))
            frames = len(r.frames("v1/pods"))
            gc.collect()
            t0 = clock()
            n_all = sum(1 for _ in r.records())
            read_s = clock() - t0
            gc.collect()
            t0 = clock()
            n_sel = sum(1 for _ in r.records("v1/pods"))
            sel_s = clock() - t0
            gc.collect()
            t0 = clock()
            report = r.scan()
            scan_s = clock() - t0
        assert n_all == n_sel == n and report.ok, report
        # memory: peak Python allocations while streaming, excluding the pre-generated input list
        path2 = Path(tmp) / "mem.kws"
        tracemalloc.start()
        with KwsWriter(path2, level=args.level, frame_bytes=args.frame_bytes) as w:
            w.write_many(records(min(args.n, 20_000), seed=2))
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with KwsReader(path2) as r:
            for _ in r.records():
                pass
        _, read_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    rows += [
        ("records", f"{n:,} (avg {json_bytes / args.n:,.0f} B of JSON per pod)"),
        ("zstd level / frame bound", f"{args.level} / {args.frame_bytes:,} B ({frames} frames)"),
        ("write (CPU time)", f"{n / write_s:,.0f} records/s ({json_bytes / write_s / 1e6:,.0f} MB/s of JSON)"),
        ("read all, file order (CPU time)", f"{n / read_s:,.0f} records/s"),
        ("read one resource via index (CPU time)", f"{n_sel / sel_s:,.0f} records/s"),
        ("scan: verify every frame (CPU time)", f"{n / scan_s:,.0f} records/s"),
        ("file size", f"{size / 1e6:,.1f} MB"),
        ("ratio vs msgpack", f"{raw / size:.1f}x"),
        ("ratio vs compact JSON", f"{json_bytes / size:.1f}x"),
        ("peak traced memory, write 20k (streamed)", f"{write_peak / 1e6:.1f} MB"),
        ("peak traced memory, read 20k", f"{read_peak / 1e6:.1f} MB"),
    ]
    print("| metric | value |")
    print("|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
