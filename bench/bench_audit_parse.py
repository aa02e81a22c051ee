"""Benchmark: audit-log parsing rate of kwoksnap.audit (target: >= 200,000 lines/s on one core).

Why this script exists: the replay's input side must keep up with large production logs; this measures it on a
synthetic but realistic mix and prints a markdown table (lines/s, MB/s, peak RSS) to stdout. Each scenario runs in
its own subprocess so that peak RSS is per scenario. Rates are per CPU second of the measuring process (one core;
robust on a shared machine), wall time is shown too. It writes only to a temporary directory.

The mix per 100 lines (sizes are those of real kube-apiserver lines for these requests):
  25 node-lease renewals (Metadata, kube-node-lease) | 5 leader-election lease updates (Metadata, kube-system)
  25 get/list/watch (Metadata)                       | 10 RequestReceived stage lines
  12 kubelet pods/status patches (RequestResponse: SMP patch + full pod, ~5 KB)
  3 pod creates by replicaset-controller (RequestResponse, ~6 KB) | 3 pods/binding creates | 1 pod delete
  6 nodes/status patches (RequestResponse, ~6 KB)   | 6 events creates (Metadata) | 4 endpointslice updates (Metadata)
Timestamps advance 1 ms per line with +-30 ms of jitter, so the reorder window has work to do.

Usage: .venv/bin/python bench/bench_audit_parse.py [--lines 200000] [--mix realistic|metadata] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import orjson

BASE_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def _ts(ns: int) -> str:
    seconds, rem = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rem // 1000:06d}Z"


def _pod(name: str, node: str, rv: int, phase: str = "Running") -> dict[str, Any]:
    containers = [
        {
            "name": f"app-{i}",
            "image": f"registry.example.com/team/app-{i}:v1.2.{i}",
            "ports": [{"containerPort": 8080 + i, "protocol": "TCP"}],
            "env": [{"name": f"ENV_{j}", "value": f"value-{j}-{'x' * 20}"} for j in range(6)],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
            "terminationMessagePath": "/dev/termination-log",
            "imagePullPolicy": "IfNotPresent",
        }
        for i in range(2)
    ]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "generateName": name[:-5],
            "namespace": "shop",
            "uid": str(uuid.UUID(int=hash(name) & (2**128 - 1))),
            "resourceVersion": str(rv),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": "shop", "pod-template-hash": "7d9f8b6c5d", "tier": "backend"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "shop-7d9f8b6c5d",
                    "uid": "6533e65e-d644-42d5-8842-9b075981c4c5",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "containers": containers,
            "restartPolicy": "Always",
            "nodeName": node,
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
            ],
        },
        "status": {
            "phase": phase,
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"}
                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "hostIP": "10.0.0.12",
            "podIP": "10.244.3.17",
            "containerStatuses": [
                {
                    "name": c["name"],
                    "ready": True,
                    "restartCount": 0,
                    "image": c["image"],
                    "imageID": "sha256:" + "ab" * 32,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:02Z"}},
                }
                for c in containers
            ],
        },
    }


def _node(name: str, rv: int) -> dict[str, Any]:
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": str(uuid.UUID(int=hash(name) & (2**128 - 1))),
            "resourceVersion": str(rv),
            "labels": {"kubernetes.io/hostname": name, "node.kubernetes.io/instance-type": "m5.large"},
        },
        "spec": {"podCIDR": "10.244.3.0/24"},
        "status": {
            "capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "1930m", "memory": "7Gi", "pods": "110"},
            "conditions": [
                {
                    "type": t,
                    "status": "False" if t != "Ready" else "True",
                    "lastHeartbeatTime": "2026-01-01T00:00:05Z",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "reason": f"Kubelet{t}",
                    "message": f"kubelet reports {t}",
                }
                for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
            ],
            "images": [
                {"names": [f"registry.example.com/team/app-{i}@sha256:{'cd' * 32}"], "sizeBytes": 10_000_000 + i}
                for i in range(12)
            ],
            "nodeInfo": {"kubeletVersion": "v1.36.1", "osImage": "Ubuntu 24.04", "architecture": "amd64"},
        },
    }


def _event(
    ns: int,
    verb: str,
    user: str,
    agent: str,
    ref: dict[str, str] | None,
    *,
    level: str = "Metadata",
    stage: str = "ResponseComplete",
    code: int = 200,
    request: Any = None,
    response: Any = None,
    uri: str = "",
) -> bytes:
    # Field order = Go's struct order, as kube-apiserver writes it.
    e: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": str(uuid.uuid4()),
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.12"],
        "userAgent": agent,
    }
    if ref is not None:
        e["objectRef"] = ref
    if stage != "RequestReceived":
        e["responseStatus"] = {"metadata": {}, "code": code}
    if request is not None:
        e["requestObject"] = request
    if response is not None:
        e["responseObject"] = response
    e["requestReceivedTimestamp"] = _ts(ns - 3_000_000)
    e["stageTimestamp"] = _ts(ns)
    e["annotations"] = {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""}
    return orjson.dumps(e) + b"\n"


MIXES = {
    # The realistic mix described in the module docstring (RequestResponse pod/node writes are ~22% of lines).
    "realistic": {"lease": 25, "leader": 5, "read": 25, "received": 10, "podstatus": 12, "create": 3, "bind": 3,
                  "delete": 1, "nodestatus": 6, "k8sevent": 6, "slice": 4},
    # Only the small lines (Metadata level, RequestReceived): the bulk of a production log by line count.
    "metadata": {"lease": 25, "leader": 5, "read": 25, "received": 10, "k8sevent": 6, "slice": 4},
}  # fmt: skip


def generate(path: str, lines: int, seed: int = 1, mix: str = "realistic") -> int:
    """Write ``lines`` synthetic audit lines to ``path``; returns the byte size."""
    rnd = random.Random(seed)
    kubelet_agent = "kubelet/v1.36.1 (linux/amd64) kubernetes/a4ef1a6"
    rv = 100_000
    plan = [kind for kind, weight in MIXES[mix].items() for _ in range(weight)]
    size = 0
    with open(path, "wb") as out:
        for i in range(lines):
            ns = BASE_NS + i * 1_000_000 + rnd.randint(-30_000_000, 30_000_000)
            node = f"node-{rnd.randrange(500):04d}"
            pod = f"shop-7d9f8b6c5d-{rnd.randrange(20_000):05x}"
            rv += 1
            kind = plan[i % len(plan)]
            if kind == "lease":
                ref = {"resource": "leases", "namespace": "kube-node-lease", "name": node}
                ref |= {"apiGroup": "coordination.k8s.io", "apiVersion": "v1"}
                line = _event(
                    ns,
                    "update",
                    f"system:node:{node}",
                    kubelet_agent,
                    ref,
                    uri=f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}?timeout=10s",
                )
            elif kind == "leader":
                ref = {"resource": "leases", "namespace": "kube-system", "name": "kube-scheduler"}
                ref |= {"apiGroup": "coordination.k8s.io", "apiVersion": "v1"}
                line = _event(
                    ns,
                    "update",
                    "system:kube-scheduler",
                    "kube-scheduler/v1.36.1 (linux/amd64) kubernetes/a4ef1a6/leader-election",
                    ref,
                    uri="/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler?timeout=5s",
                )
            elif kind == "read":
                verb = rnd.choice(["get", "list", "watch"])
                line = _event(
                    ns,
                    verb,
                    "system:serviceaccount:monitoring:prometheus",
                    "prometheus/2.53",
                    {"resource": "pods", "namespace": "shop", "apiVersion": "v1"},
                    uri="/api/v1/namespaces/shop/pods?limit=500&resourceVersion=0",
                )
            elif kind == "received":
                line = _event(
                    ns,
                    "patch",
                    f"system:node:{node}",
                    kubelet_agent,
                    {"resource": "pods", "namespace": "shop", "name": pod, "apiVersion": "v1", "subresource": "status"},
                    stage="RequestReceived",
                    uri=f"/api/v1/namespaces/shop/pods/{pod}/status",
                )
            elif kind == "podstatus":
                full = _pod(pod, node, rv)
                patch = {
                    "metadata": {"uid": full["metadata"]["uid"]},
                    "status": {
                        "$setElementOrder/conditions": [{"type": c["type"]} for c in full["status"]["conditions"]],
                        "conditions": full["status"]["conditions"][1:3],
                        "containerStatuses": full["status"]["containerStatuses"],
                    },
                }
                line = _event(
                    ns,
                    "patch",
                    f"system:node:{node}",
                    kubelet_agent,
                    {"resource": "pods", "namespace": "shop", "name": pod, "apiVersion": "v1", "subresource": "status"},
                    level="RequestResponse",
                    request=patch,
                    response=full,
                    uri=f"/api/v1/namespaces/shop/pods/{pod}/status",
                )
            elif kind == "create":
                full = _pod(pod, "", rv, phase="Pending")
                req = {k: v for k, v in full.items() if k != "status"}
                line = _event(
                    ns,
                    "create",
                    "system:serviceaccount:kube-system:replicaset-controller",
                    "kube-controller-manager/v1.36.1 (linux/amd64) kubernetes/a4ef1a6/"
                    "system:serviceaccount:kube-system:replicaset-controller",
                    {"resource": "pods", "namespace": "shop", "apiVersion": "v1"},
                    level="RequestResponse",
                    code=201,
                    request=req,
                    response=full,
                    uri="/api/v1/namespaces/shop/pods",
                )
            elif kind == "bind":
                line = _event(
                    ns,
                    "create",
                    "system:kube-scheduler",
                    "kube-scheduler/v1.36.1 (linux/amd64) kubernetes/a4ef1a6/scheduler",
                    {
                        "resource": "pods",
                        "namespace": "shop",
                        "name": pod,
                        "apiVersion": "v1",
                        "subresource": "binding",
                    },
                    level="RequestResponse",
                    code=201,
                    request={
                        "kind": "Binding",
                        "apiVersion": "v1",
                        "metadata": {"name": pod, "namespace": "shop"},
                        "target": {"kind": "Node", "name": node},
                    },
                    response={"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
                    uri=f"/api/v1/namespaces/shop/pods/{pod}/binding",
                )
            elif kind == "delete":
                line = _event(
                    ns,
                    "delete",
                    "alice@example.com",
                    "kubectl/v1.36.1 (linux/amd64) kubernetes/a4ef1a6",
                    {"resource": "pods", "namespace": "shop", "name": pod, "apiVersion": "v1"},
                    level="RequestResponse",
                    request={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
                    response=_pod(pod, node, rv),
                    uri=f"/api/v1/namespaces/shop/pods/{pod}",
                )
            elif kind == "nodestatus":
                full = _node(node, rv)
                line = _event(
                    ns,
                    "patch",
                    f"system:node:{node}",
                    kubelet_agent,
                    {"resource": "nodes", "name": node, "apiVersion": "v1", "subresource": "status"},
                    level="RequestResponse",
                    request={"status": {"$setElementOrder/conditions": [{"type": "Ready"}], "conditions": []}},
                    response=full,
                    uri=f"/api/v1/nodes/{node}/status?timeout=10s",
                )
            elif kind == "k8sevent":
                line = _event(
                    ns,
                    "create",
                    f"system:node:{node}",
                    kubelet_agent,
                    {"resource": "events", "namespace": "shop", "apiVersion": "v1", "apiGroup": "events.k8s.io"},
                    code=201,
                    uri="/apis/events.k8s.io/v1/namespaces/shop/events",
                )
            else:
                line = _event(
                    ns,
                    "update",
                    "system:serviceaccount:kube-system:endpointslice-controller",
                    "kube-controller-manager/v1.36.1",
                    {
                        "resource": "endpointslices",
                        "namespace": "shop",
                        "name": "shop-x7k2p",
                        "apiGroup": "discovery.k8s.io",
                    },
                    uri="/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/shop-x7k2p",
                )
            out.write(line)
            size += len(line)
    return size


def _peak_rss_mb() -> float:
    """Peak RSS of this process (VmHWM: unlike ru_maxrss it is not inherited from the parent across fork/exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_scenario(name: str, path: str) -> dict[str, Any]:
    """Run one scenario in this process and return its measurements."""
    from kwoksnap.audit import FilterSpec, ParseStats, filter_events, read_audit

    stats = ParseStats()
    spec = FilterSpec()
    if name == "full parse, envelope scan free (diagnostic)":
        # Not a usable parse: the ceiling of a native envelope scanner. Each line's scan_native answer is computed
        # before the clock starts; the timed run gets it back as a fresh copy of its 21-key dict (the dict a native
        # scanner would still have to build), bodies still raw and then decoded as in the full parse. What is left
        # is everything around the scan: reading and splitting lines, the loop, the reorder window, the bodies.
        import kwoksnap.audit.reader as reader

        scan, answers = reader.scan_native, {}
        with open(path, "rb") as f:
            for raw in f:
                line = raw.rstrip(b"\n")
                answers[line] = scan(line, "", False)

        def free(line: bytes, source: str, eager: bool) -> Any:
            answer = answers[line]
            return None if answer is None else (answer[0], {**answer[1], "source": source})

        reader.scan_native = free
    start = time.perf_counter()
    cpu_start = time.process_time()
    if name == "orjson.loads only (baseline)":
        n = 0
        with open(path, "rb") as f:
            for line in f:
                orjson.loads(line)
                n += 1
        events = n
    elif name in ("full parse", "full parse, gzip", "full parse, envelope scan free (diagnostic)"):
        events = sum(1 for _ in read_audit([path], stats=stats))
    elif name == "full parse + filter":
        events = sum(1 for _ in filter_events(read_audit([path], stats=stats), spec, stats))
    elif name == "prefiltered replay subset":
        events = sum(1 for _ in filter_events(read_audit([path], stats=stats, prefilter=spec), spec, stats))
    elif name == "full parse, bodies left raw (diagnostic)":
        # Not a usable parse: what the reader costs without decoding (and later freeing) the request and response
        # bodies, i.e. how much of the budget the bodies alone take.
        import kwoksnap.audit.reader as reader

        reader.finish_native = lambda event: None
        events = sum(1 for _ in read_audit([path], stats=stats))
    else:
        raise SystemExit(f"unknown scenario {name}")
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    return {
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "lines": stats.lines or events,
        "events_out": events,
        "rss_mb": _peak_rss_mb(),
        "prefiltered": stats.prefiltered,
        "malformed": stats.malformed,
    }


SCENARIOS = (
    "orjson.loads only (baseline)",
    "full parse",
    "full parse, gzip",
    "full parse + filter",
    "prefiltered replay subset",
    "full parse, bodies left raw (diagnostic)",
    "full parse, envelope scan free (diagnostic)",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--mix", choices=sorted(MIXES), default="realistic")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario; the best is reported")
    parser.add_argument("--run", nargs=2, metavar=("SCENARIO", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_scenario(args.run[0], args.run[1])))
        return
    with tempfile.TemporaryDirectory(prefix="kwoksnap-bench-") as tmp:
        plain = os.path.join(tmp, "audit.log")
        size = generate(plain, args.lines, mix=args.mix)
        packed = plain + ".gz"
        with open(plain, "rb") as src, gzip.open(packed, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        avg = size / args.lines
        print(
            f"Synthetic audit log ({args.mix} mix): {args.lines:,} lines, {size / 1e6:.1f} MB ({avg:,.0f} B/line avg),"
        )
        print(f"gzip {os.path.getsize(packed) / 1e6:.1f} MB. Python {sys.version.split()[0]}, best of {args.repeat}.")
        print()
        print("| scenario | lines | events out | CPU s | lines/s (CPU) | MB/s (CPU) | wall s | peak RSS MB |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name in SCENARIOS:
            file = packed if "gzip" in name else plain
            best: dict[str, Any] | None = None
            for _ in range(args.repeat):
                out = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--run", name, file],
                    check=True,
                    capture_output=True,
                    text=True,
                    env=env,
                )
                result = json.loads(out.stdout)
                if best is None or result["cpu_seconds"] < best["cpu_seconds"]:
                    best = result
            assert best is not None
            cpu = best["cpu_seconds"]
            print(
                f"| {name} | {args.lines:,} | {best['events_out']:,} | {cpu:.2f} | {args.lines / cpu:,.0f} "
                f"| {size / cpu / 1e6:.0f} | {best['seconds']:.2f} | {best['rss_mb']:.0f} |"
            )


if __name__ == "__main__":
    main()
