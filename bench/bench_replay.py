"""Replay benchmarks on real clusters. Prints markdown.

    python bench/bench_replay.py lag --minutes 10 --rate 15 --speed 10 --runs 3   # lag and drift at 10x
    python bench/bench_replay.py max --events 4000 --runs 3              # --speed max vs a raw parallel client
    python bench/bench_replay.py rss --gb 1 --every 5                    # peak RSS replaying a 1 GB audit log
    python bench/bench_replay.py incident --runs 5 --workers 4 32 auto   # transition times of the demo incident
    python bench/bench_replay.py workers --events 3000 --rate 40 --rtt-ms 0 20   # in-flight settings, local/remote
    python bench/bench_replay.py burst --runs 3                         # the incident's opening burst, as applied
    python bench/bench_replay.py cpu --runs 3                           # CPU per process during a 10x replay

The target is a `--profile replay` cluster holding the demo incident's snapshot (20 nodes, 211 pods). Events are
kubelet-style pod status writes at RequestResponse level, built from the target's own pods; every one changes its
pod, and each run checks that the target's etcd revision moved by at least the number of changes (a write that
changes nothing is answered without writing, and measured much less: until 2026-11-30 most of them were such).
The 1 GB log's writes create, change and delete thousands of pods, between the reads, lease renewals and events
that dominate real logs.
`incident` replays the demo incident itself (`fixtures/incident`) into a fresh replay cluster per run, as the
acceptance test does, and compares the target's audit log with the recording (`kwoksnap.replay.fidelity`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import gzip
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from kwoksnap.audit import FilterSpec, ParseStats, read_audit
from kwoksnap.cluster.local import LocalCluster, Profile
from kwoksnap.kube import Client, load_config
from kwoksnap.replay.engine import Replayer, ReplayOptions, ReplayReport
from kwoksnap.replay.fidelity import compare_transitions, initial_states, transitions
from kwoksnap.replay.recording import audit_events
from kwoksnap.replay.timing import percentile
from kwoksnap.restore.engine import RestoreOptions, restore
from kwoksnap.restore.source import SnapshotSource
from kwoksnap.store import KwsReader

sys.path.insert(0, str(Path(__file__).parent))
from common import Clusters, timed

ROOT = Path(__file__).resolve().parents[1]
NS = 1_000_000_000


def ts(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _set_ready(pod: dict[str, Any], ready: str, at_ns: int) -> None:
    """The pod's Ready and ContainersReady conditions set to ``ready`` as of ``at_ns``, added if it has none (some of
    the incident's pods have no conditions: their writes changed nothing, 95 of 4,000)."""
    conditions = pod.setdefault("status", {}).setdefault("conditions", [])
    for kind in ("Ready", "ContainersReady"):
        found = next((c for c in conditions if c.get("type") == kind), None)
        if found is None:
            found = {"type": kind}
            conditions.append(found)
        found["status"], found["lastTransitionTime"] = ready, ts(at_ns)[:19] + "Z"


def status_event(pods: list[dict[str, Any]], i: int, at_ns: int) -> dict[str, Any]:
    """The ``i``-th kubelet-style status write, to ``pods[i % len(pods)]``. Every one changes the pod: Ready flips
    on each visit of a pod (a parity of ``i`` alone gave a pod the same value on every visit when the number of
    pods is even, and the API server answers such a write without writing anything) and the Ready conditions take
    the event's time. :func:`writes_since` checks that the target did write."""
    pod = pods[i % len(pods)]
    # (The items of a list have no kind: without one the replay took the response for no object, a Status, and
    # sent the recorded patch instead; a real responseObject always has one.)
    obj = {"kind": "Pod", "apiVersion": "v1", **copy.deepcopy(pod)}
    ready = "True" if (i // len(pods)) % 2 else "False"
    _set_ready(obj, ready, at_ns)
    meta = obj["metadata"]
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": f"bench-{i}",
        "stage": "ResponseComplete", "verb": "patch",
        "requestURI": f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
        "user": {"username": f"system:node:{obj['spec'].get('nodeName', 'n')}", "groups": ["system:nodes"]},
        "userAgent": "kubelet/v1.36.3 (linux/amd64) kubernetes/abc",
        "objectRef": {"resource": "pods", "namespace": meta["namespace"], "name": meta["name"],
                      "apiVersion": "v1", "subresource": "status"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestObject": {"status": {"conditions": [c for c in obj["status"]["conditions"]
                                                    if c["type"] in ("Ready", "ContainersReady")]}},
        "responseObject": obj,
        "requestReceivedTimestamp": ts(at_ns), "stageTimestamp": ts(at_ns + 2_000_000),
    }


def revision(c: Client) -> int:
    """The target's etcd revision now (a list's resourceVersion)."""
    return int(c.get("/api/v1/namespaces", limit=1)["metadata"]["resourceVersion"])


def writes_since(c: Client, before: int, expected: int) -> int:
    """The writes the target made since revision ``before``; fails the benchmark when fewer than ``expected`` (a
    write that changes nothing is answered without one, and measures much less than a write)."""
    made = revision(c) - before
    assert made >= expected, f"the target made only {made} writes for {expected} changes: some changed nothing"
    return made


def etcd_pod_reads(c: Client) -> float:
    """The API server's etcd reads of pods so far (its /metrics): an update whose watch-cache copy was stale reads
    the pod from etcd and does its work again; a write that found the cache current reads nothing."""
    for line in c.raw("GET", "/metrics").data.decode().splitlines():
        if line.startswith('etcd_requests_total{group="",operation="get",resource="pods"} '):
            return float(line.rpartition(" ")[2])
    return 0.0


def noise(i: int, at_ns: int) -> dict[str, Any]:
    """The bulk of a real log: reads, lease renewals and events, none of which replay."""
    verb = ("get", "list", "watch", "update", "create")[i % 5]
    resource = {"update": "leases", "create": "events"}.get(verb, "pods")
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": f"noise-{i}",
        "stage": "ResponseComplete", "verb": verb, "requestURI": f"/api/v1/namespaces/default/{resource}",
        "user": {"username": "system:kube-scheduler", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.1"], "userAgent": "kube-scheduler/v1.36.3 (linux/amd64) kubernetes/abc",
        "objectRef": {"resource": resource, "namespace": "kube-system" if resource == "leases" else "default",
                      "name": f"obj-{i % 1000}", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "RBAC: " + "x" * 600},
        "requestReceivedTimestamp": ts(at_ns), "stageTimestamp": ts(at_ns + 1_000_000),
    }


def target(clusters: Clusters) -> tuple[LocalCluster, list[dict[str, Any]]]:
    cluster = clusters.new("replay-bench", Profile.REPLAY)
    with Client(load_config(str(cluster.kubeconfig)), pool_size=32) as c, \
            KwsReader(ROOT / "fixtures/incident/before.kws") as r:
        assert restore(c, SnapshotSource(r), RestoreOptions(concurrency=32, adopt=False)).ok
        pods = [p for p, _ in c.list_items("/api/v1/pods") if p["spec"].get("nodeName")]
    return cluster, pods


class LagRecorder(Replayer):
    def _apply(self, item: Any) -> None:
        started = self.clock.now()
        super()._apply(item)
        answered = self.clock.now()
        due = self._start + item.offset
        self.samples.append((item.offset, started - due, answered - due))


def _ms(vals: list[float], q: float) -> float:
    vals = sorted(vals)
    return vals[min(len(vals) - 1, int(q / 100 * len(vals)))] * 1000


def lag(args: argparse.Namespace, clusters: Clusters, tmp: Path) -> None:
    """Lag at 10x under the target's capacity, ``--runs`` times on one target. Two lags per change: *sent* (its
    deadline to the moment its request is handed to the connection, the replay's own lateness: the target) and
    *answered* (its deadline to the API server's answer: what the target adds). Drift: the p99 of the first tenth
    of the changes against the last tenth (a cumulative drift would grow across the run)."""
    cluster, pods = target(clusters)
    total = int(args.minutes * 60 * args.rate)
    log = tmp / "steady.log"
    t0 = time.time_ns() - 86_400 * NS
    with log.open("wb") as f:
        for i in range(total):
            f.write(orjson.dumps(status_event(pods, i, t0 + int(i * NS / args.rate))) + b"\n")
    rows = []
    for _ in range(args.runs):
        with Client(load_config(str(cluster.kubeconfig)), pool_size=32) as c:
            before = revision(c)
            r = LagRecorder(c, ReplayOptions(speed=args.speed))
            r.samples = []  # type: ignore[attr-defined]
            rep = r.run(audit_events([str(log)], FilterSpec(), ParseStats()))
            writes = writes_since(c, before, rep.applied)
        samples = sorted(r.samples, key=lambda s: s[0])  # type: ignore[attr-defined]
        tenth = max(1, len(samples) // 10)
        rows.append((rep, writes, [s[1] for s in samples], [s[2] for s in samples], tenth))
    print(f"### Replay lag at {args.speed:g}x: {args.minutes:g} min recorded at {args.rate:g} writes/s "
          f"({args.rate * args.speed:.0f} writes/s replayed), {args.runs} runs\n")
    print(f"Command: `python bench/bench_replay.py lag --minutes {args.minutes:g} --rate {args.rate:g} "
          f"--speed {args.speed:g} --runs {args.runs}`\n")
    print("Sent: deadline to request sent (the replay's lateness). Answered: deadline to the API server's answer.\n")
    print("| run | applied / failed | target writes | recorded / wall s (ideal) | sent p50 / p99 / max ms "
          "| answered p50 / p99 / max ms | drift: sent p99 first vs last tenth | early |")
    print("|---:|---|---:|---|---|---|---|---:|")
    for n, (rep, writes, sent, answered, tenth) in enumerate(rows, 1):
        print(f"| {n} | {rep.applied} / {rep.failed} | {writes} | {rep.recorded_seconds:.1f} / "
              f"{rep.wall_seconds:.1f} ({rep.recorded_seconds / args.speed:.1f}) | {_ms(sent, 50):.1f} / "
              f"{_ms(sent, 99):.1f} / {max(sent) * 1000:.1f} | {_ms(answered, 50):.1f} / {_ms(answered, 99):.1f} / "
              f"{max(answered) * 1000:.1f} | {_ms(sent[:tenth], 99):.1f} vs {_ms(sent[-tenth:], 99):.1f} "
              f"| {rep.early} |")


def speed_max(args: argparse.Namespace, clusters: Clusters, tmp: Path) -> None:
    """``--speed max`` against the raw write ceiling, alternated ``--runs`` times on one target: each round runs the
    replay and the raw client at 8 and at 32 threads, once each, in an order that rotates from round to round. The
    replay is timed end to end: from before it reads the log (parsing, planning, freezing and warming its
    connections included) to its last answer, and on its own clock too. The ceiling: the same writes as PUTs of
    bodies encoded ahead, their answers not decoded (decoded whole until the replay stopped decoding what it does
    not need, 2026-11-30), from a thread pool of kwoksnap's client (the fastest client measured, bench_client.py);
    its thread count is the one with the better median (until 2026-11-30 the better of the two runs was taken in
    every round: the maximum of two noisy samples against one of the replay, which favoured the ceiling). Every
    write must change the pod (:func:`writes_since`). The ratio is of the medians."""
    cluster, pods = target(clusters)
    log = tmp / "max.log"
    t0 = time.time_ns() - 86_400 * NS
    events = [status_event(pods, i, t0 + i * 10_000_000) for i in range(args.events)]
    log.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    bodies = []
    for e in events:
        body = copy.deepcopy(e["responseObject"])
        for k in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
            body["metadata"].pop(k, None)
        bodies.append((e["requestURI"], orjson.dumps(body)))
    ends: list[float] = []
    clocks: list[float] = []
    raws: dict[int, list[float]] = {8: [], 32: []}
    failed = 0
    arms = ("replay", 8, 32)
    # CPU ms per write of this process (the replay, or the raw client) and of the API server, per arm: where the
    # difference goes (the two cores are shared, so CPU the client spends is CPU the server lacks).
    pids = {p.stem: int(p.read_text()) for p in (cluster.directory / "pids").glob("*.pid")}
    cpu: dict[str, list[tuple[float, float]]] = {str(a): [] for a in arms}
    reads: dict[str, list[float]] = {str(a): [] for a in arms}
    with Client(load_config(str(cluster.kubeconfig)), pool_size=32) as c:
        for n in range(args.runs):
            for arm in arms[n % 3:] + arms[:n % 3]:
                before = revision(c)
                # The bench's own heap (the log's events, the prepared bodies: ~1M objects) is set aside from the
                # cyclic GC for every arm. Until 2026-12-01 only the replay had it so (its reader freezes what is
                # alive while it reads): the raw client's garbage collections went through all of it, a third of
                # its CPU, and the ceiling was too low.
                gc.collect()
                gc.freeze()
                mine, server = time.process_time(), _cpu_seconds(pids["kube-apiserver"])
                read_before = etcd_pod_reads(c)
                started = time.monotonic()
                if arm == "replay":
                    rep = Replayer(c, ReplayOptions(speed=None)).run(audit_events([str(log)], FilterSpec(),
                                                                                   ParseStats()))
                    ends.append(rep.applied / (time.monotonic() - started))
                    clocks.append(rep.applied / rep.wall_seconds)
                    failed += rep.failed
                    writes = rep.applied
                else:
                    with ThreadPoolExecutor(int(arm)) as pool:
                        for _ in pool.map(lambda b: c.request("PUT", b[0], body=b[1], answer="none"), bodies):
                            pass
                    raws[int(arm)].append(len(bodies) / (time.monotonic() - started))
                    writes = len(bodies)
                cpu[str(arm)].append(((time.process_time() - mine) / writes * 1000,
                                      (_cpu_seconds(pids["kube-apiserver"]) - server) / writes * 1000))
                reads[str(arm)].append((etcd_pod_reads(c) - read_before) / writes)
                writes_since(c, before, writes)
    end, clock = statistics.median(ends), statistics.median(clocks)
    threads = max(raws, key=lambda t: statistics.median(raws[t]))
    raw = statistics.median(raws[threads])
    old = statistics.median([max(a, b) for a, b in zip(raws[8], raws[32], strict=True)])
    print(f"### --speed max vs the raw write ceiling ({args.events} pod status writes, {args.runs} rotated "
          f"rounds)\n")
    print(f"Command: `python bench/bench_replay.py max --events {args.events} --runs {args.runs}`\n")
    print("| measure | median | runs |\n|---|---:|---|")
    print(f"| replay --speed max, end to end (reading the log included) | {end:,.0f} events/s | "
          f"{', '.join(f'{x:,.0f}' for x in ends)} |")
    print(f"| replay --speed max, its own clock (from its first change) | {clock:,.0f} events/s | "
          f"{', '.join(f'{x:,.0f}' for x in clocks)} |")
    for t in (8, 32):
        print(f"| raw client, {t} threads (same PUTs, bodies encoded ahead, answers not decoded) | "
              f"{statistics.median(raws[t]):,.0f} writes/s | {', '.join(f'{x:,.0f}' for x in raws[t])} |")
    print(f"| **replay end to end vs ceiling ({threads} threads)** | **{end / raw * 100:.0f}%** (own clock: "
          f"{clock / raw * 100:.0f}%; failed {failed}) | |")
    print(f"| (as computed until 2026-11-30: the better of 8 and 32 threads in each round) | {end / old * 100:.0f}% "
          "| |")
    print("\nCPU ms per write (medians; runs in brackets): this process, and the API server; and the API server's etcd "
          "reads of pods per write (an update that found its watch-cache copy stale: done twice)\n")
    print("| arm | this process | kube-apiserver | etcd reads per write |\n|---|---:|---:|---:|")
    for arm, samples in cpu.items():
        name = "replay" if arm == "replay" else f"raw client, {arm} threads"
        mine_ms, server_ms = ([x[i] for x in samples] for i in (0, 1))
        print(f"| {name} | {statistics.median(mine_ms):.2f} ({', '.join(f'{x:.2f}' for x in mine_ms)}) | "
              f"{statistics.median(server_ms):.2f} ({', '.join(f'{x:.2f}' for x in server_ms)}) | "
              f"{statistics.median(reads[arm]):.3f} ({', '.join(f'{x:.3f}' for x in reads[arm])}) |")


def options_for(setting: str, speed: float, max_lead: float = 0.0) -> ReplayOptions:
    """A number: that many requests in flight (fixed); auto: the default, adapting between 4 and 32. ``max_lead``
    0 sends every change at its due time (bursts are not spread), as the workers benchmark has measured since
    before spreading existed; ``incident`` compares both."""
    if setting == "auto":
        return ReplayOptions(speed=speed, max_lead=max_lead)
    return ReplayOptions(speed=speed, workers=int(setting), adaptive=False, max_lead=max_lead)


def workers(args: argparse.Namespace, clusters: Clusters, tmp: Path) -> None:
    """A steady stream of writes at 10x with a fixed 4 or 32 requests in flight, or the adaptive default, against
    the local target directly and through a proxy that adds a round trip (bench/delay_proxy.py), interleaved."""
    cluster, pods = target(clusters)
    log = tmp / "workers.log"
    t0 = time.time_ns() - 86_400 * NS
    log.write_bytes(b"".join(orjson.dumps(status_event(pods, i, t0 + int(i * NS / args.rate)))
                             + b"\n" for i in range(args.events)))
    kubeconfig = cluster.kubeconfig.read_text()
    port = re.search(r"server: https://127\.0\.0\.1:(\d+)", kubeconfig)
    assert port, "no loopback server in the kubeconfig"
    rows: list[tuple[float, str, float, float, dict[str, int]]] = []
    for rtt in args.rtt_ms:
        proxy = None
        config = cluster.kubeconfig
        if rtt:
            proxy = subprocess.Popen([sys.executable, str(Path(__file__).parent / "delay_proxy.py"), "--target",
                                      f"127.0.0.1:{port.group(1)}", "--delay-ms", str(rtt / 2)],
                                     stdout=subprocess.PIPE, text=True)
            assert proxy.stdout is not None
            config = tmp / f"kubeconfig-{rtt:g}"
            config.write_text(kubeconfig.replace(port.group(0), f"server: https://127.0.0.1:"
                                                                f"{proxy.stdout.readline().strip()}"))
        try:
            for _ in range(args.runs):
                for setting in ("4", "32", "auto"):
                    with Client(load_config(str(config)), pool_size=32) as c:
                        events = audit_events([str(log)], FilterSpec(), ParseStats())
                        rep = Replayer(c, options_for(setting, 10)).run(events)
                    assert rep.failed == 0, rep.failures[:3]
                    rows.append((rtt, setting, rep.applied_lag.percentile(50) * 1000,
                                 rep.applied_lag.percentile(99) * 1000, rep.concurrency()))
        finally:
            if proxy is not None:
                proxy.terminate()
                proxy.wait()
    print(f"### Requests in flight: fixed 4, fixed 32, adaptive ({args.events} pod status writes at "
          f"{args.rate * 10:g}/s: {args.rate:g}/s recorded, replayed at 10x)\n")
    print(f"Command: `python bench/bench_replay.py workers --events {args.events} --rate {args.rate:g} --runs "
          f"{args.runs} --rtt-ms {' '.join(f'{r:g}' for r in args.rtt_ms)}`\n")
    print("Applied lag: from each write's deadline to the API server's answer (wall ms).\n")
    print("| added round trip | in flight | runs | applied lag p50 (median of runs) | applied lag p99 (median; range) "
          "| adaptive limit p50 (range) |")
    print("|---:|---|---:|---:|---:|---|")
    for rtt in args.rtt_ms:
        for setting in ("4", "32", "auto"):
            sel = [r for r in rows if r[0] == rtt and r[1] == setting]
            p50s, p99s = sorted(r[2] for r in sel), sorted(r[3] for r in sel)
            limits = ", ".join(f"{r[4]['p50']} ({r[4]['min']}-{r[4]['max']})" for r in sel if r[4]) or "-"
            print(f"| {rtt:g} ms | {setting} | {len(sel)} | {statistics.median(p50s):,.1f} | "
                  f"{statistics.median(p99s):,.1f}; {p99s[0]:,.1f} to {p99s[-1]:,.1f} | {limits} |")


CHURN_SLOTS = 600  # pods alive at once in the rss log; each lives for 6 of its slot's turns


def churn_event(pods: list[dict[str, Any]], w: int, at_ns: int) -> dict[str, Any]:
    """The ``w``-th write of the rss log: pods come and go. Slot ``w % CHURN_SLOTS`` hosts one pod for six turns:
    a create (by a user, the full pod), four kubelet status writes (Ready flipping), a delete (grace 0); then the
    next pod of that slot, under a new name and UID. Templates are the target's own pods, without owners and
    labels (so no controller of the target claims them)."""
    slot, turn = w % CHURN_SLOTS, w // CHURN_SLOTS
    step, k = turn % 6, slot + CHURN_SLOTS * (turn // 6)
    template = pods[k % len(pods)]
    meta = template["metadata"]
    name, ns = f"churn-{k}", meta["namespace"]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "uid": f"00000000-0000-4000-8000-{k:012d}",
                        "resourceVersion": str(1_000_000 + w), "creationTimestamp": ts(at_ns)[:19] + "Z",
                        "annotations": {"bench/churn": str(k)}},
           "spec": copy.deepcopy(template["spec"]), "status": copy.deepcopy(template["status"])}
    ready = "True" if step % 2 else "False"
    _set_ready(pod, ready, at_ns)
    uri = f"/api/v1/namespaces/{ns}/pods"
    ref = {"resource": "pods", "namespace": ns, "name": name, "apiVersion": "v1"}
    user = {"username": "alice", "groups": ["system:authenticated"]}
    agent = "kubectl/v1.36.3 (linux/amd64) kubernetes/abc"
    request: Any
    if step == 0:
        verb, request = "create", {k2: v for k2, v in pod.items() if k2 != "status"}
    elif step < 5:
        verb, uri, ref["subresource"] = "patch", f"{uri}/{name}/status", "status"
        user = {"username": f"system:node:{pod['spec'].get('nodeName', 'n')}", "groups": ["system:nodes"]}
        agent = "kubelet/v1.36.3 (linux/amd64) kubernetes/abc"
        request = {"status": {"conditions": [{"type": "Ready", "status": ready}]}}
    else:
        verb, uri = "delete", f"{uri}/{name}"
        request = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}
        pod["metadata"].update(deletionTimestamp=ts(at_ns)[:19] + "Z", deletionGracePeriodSeconds=0)
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": f"churn-{w}",
        "stage": "ResponseComplete", "verb": verb, "requestURI": uri, "user": user, "sourceIPs": ["10.0.0.1"],
        "userAgent": agent, "objectRef": ref, "responseStatus": {"metadata": {}, "code": 201 if step == 0 else 200},
        "requestObject": request, "responseObject": pod,
        "requestReceivedTimestamp": ts(at_ns), "stageTimestamp": ts(at_ns + 2_000_000),
    }


def rss(args: argparse.Namespace, clusters: Clusters, tmp: Path) -> None:
    """Peak RSS of the kwoksnap process replaying a log of ``--gb`` GB, at ``--speed max`` with default options
    (the final comparison included). One line in ``--every`` is a write at RequestResponse level with full pod
    bodies (:func:`churn_event`: thousands of pods created, changed and deleted); the rest are the reads, lease
    renewals and events that dominate real logs (Metadata level, dropped by the byte prefilter)."""
    cluster, pods = target(clusters)
    log = tmp / "big.log.gz" if args.gzip else tmp / "big.log"
    t0 = time.time_ns() - 86_400 * NS
    size = 0
    writes = 0
    opener = gzip.open if args.gzip else open
    with opener(log, "wb") as f:  # type: ignore[operator]
        i = 0
        while size < args.gb * 1e9:
            at = t0 + i * 1_000_000
            ev = churn_event(pods, writes, at) if i % args.every == 0 else noise(i, at)
            writes += i % args.every == 0
            line = orjson.dumps(ev) + b"\n"
            f.write(line)
            size += len(line)
            i += 1
    report_path = tmp / "report.json"
    with Client(load_config(str(cluster.kubeconfig))) as c:
        before = revision(c)
        seconds, peak, _ = timed([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(cluster.kubeconfig),
                                  "replay", "--audit", str(log), "--speed", "max", "--report", str(report_path)])
        report = orjson.loads(report_path.read_bytes())
        made = writes_since(c, before, report["applied"])
    pods_made = -(-writes // 6)
    print(f"### Peak RSS replaying a {size / 1e9:.2f} GB audit log ({i:,} lines, {writes:,} replayed writes: "
          f"{pods_made:,} pods created, changed and deleted)\n")
    print(f"Command: `python bench/bench_replay.py rss --gb {args.gb:g} --every {args.every}`\n")
    print("| measure | result |\n|---|---|")
    print(f"| wall time | {seconds:.1f} s ({i / seconds:,.0f} lines/s end to end) |")
    print(f"| events applied / failed / target writes | {report['applied']} / {report['failed']} / {made} |")
    print(f"| final states compared / mismatched | {report['fidelity']['checked']} / "
          f"{report['fidelity']['mismatchCount']} |")
    print(f"| **peak RSS** | **{peak:.0f} MiB** |")


INCIDENT_SNAPSHOT, INCIDENT_LOG = ROOT / "fixtures/incident/before.kws", str(ROOT / "fixtures/incident/audit.log.gz")


@contextlib.contextmanager
def restored_incident(clusters: Clusters, name: str) -> Iterator[tuple[LocalCluster, Client]]:
    """A fresh replay cluster holding the demo incident's snapshot, as the acceptance test restores it."""
    cluster = clusters.new(name, Profile.REPLAY, extra_args=())
    with Client(load_config(str(cluster.kubeconfig)), pool_size=32) as c, KwsReader(INCIDENT_SNAPSHOT) as r:
        assert restore(c, SnapshotSource(r), RestoreOptions(concurrency=32, adopt=False)).ok
        yield cluster, c


def replay_incident(clusters: Clusters, name: str, options: ReplayOptions) -> tuple[LocalCluster, ReplayReport]:
    """The demo incident restored into a fresh replay cluster and replayed, as the acceptance test does; returns
    once the target's audit log has been written (it is written asynchronously)."""
    with restored_incident(clusters, name) as (cluster, c):
        report = Replayer(c, options).run(audit_events([INCIDENT_LOG], FilterSpec(), ParseStats()))
    time.sleep(2)
    return cluster, report


def incident(args: argparse.Namespace, clusters: Clusters, tmp: Path) -> None:
    with KwsReader(INCIDENT_SNAPSHOT) as r:
        initial = initial_states([*SnapshotSource(r).objects("v1/pods"), *SnapshotSource(r).objects("v1/nodes")])
    rows: list[tuple[int, str, int, int, float, float, float, float, float, str]] = []
    settings = {f"{w}, lead {lead * 1000:g} ms": (w, lead) for w in args.workers for lead in args.max_lead}
    for run in range(args.runs):
        for setting, (workers, lead) in settings.items():  # interleaved: every setting sees the same background
            cluster, report = replay_incident(clusters, "incident-bench", options_for(workers, args.speed, lead))
            recorded = transitions(read_audit([INCIDENT_LOG]), since_ns=report.recorded_start_ns - NS, initial=initial)
            applied = transitions(read_audit([str(cluster.audit_log)]), since_ns=report.replay_start_ns - NS // 2,
                                  initial=initial)
            result = compare_transitions(recorded, applied, recorded_start=report.recorded_start_ns,
                                         replay_start=report.replay_start_ns, speed=args.speed)
            clusters.drop("incident-bench")
            if workers == "auto":
                print(f"run {run + 1} ({setting}): adaptive limit {report.concurrency()}", file=sys.stderr)
            signed = sorted(result.late)
            print(f"run {run + 1}: signed p10 {percentile(signed, 10):.3f} p50 {percentile(signed, 50):.3f} "
                  f"p90 {percentile(signed, 90):.3f}; send lag p50 {report.lag.percentile(50) * 1000:.1f} ms, "
                  f"applied lag p50 {report.applied_lag.percentile(50) * 1000:.1f} ms", file=sys.stderr)
            worst_at = max(zip(result.time_errors, result.recorded_at, strict=True), default=(0.0, math.nan))[1]
            early = max(0.0, -min(result.late, default=0.0))  # the most early a transition was (recorded seconds)
            spread = (f"{report.capacity:.0f}/s, {report.early} early, {report.lead_max * 1000:.0f} ms"
                      if report.capacity else "off")
            rows.append((run + 1, setting, len(result.time_errors), len(result.sequence_mismatches),
                         result.percentile(50), result.percentile(99),
                         report.applied_lag.percentile(100) * args.speed, worst_at, early, spread))
    print(f"### Demo incident replayed at {args.speed:g}x: transition-time error (recorded seconds)\n")
    print(f"Command: `python bench/bench_replay.py incident --runs {args.runs} --workers "
          f"{' '.join(map(str, args.workers))} --max-lead {' '.join(f'{x:g}' for x in args.max_lead)} "
          f"--speed {args.speed:g}`\n")
    print("| run | workers, max lead | transitions | sequence mismatches | p50 | p99 | applied lag max | worst at | "
          "most early | spread (measured rate, changes sent early, largest lead) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for run, setting, n, bad, p50, p99, lag, at, early, spread in rows:
        print(f"| {run} | {setting} | {n} | {bad} | {p50:.2f} | {p99:.2f} | {lag:.2f} | {at:.1f} s | {early:.2f} | "
              f"{spread} |")
    print("\n| workers, max lead | runs | p99 median | p99 range | runs with p99 ≤ 1 s |\n"
          "|---|---:|---:|---:|---:|")
    for setting in settings:
        p99s = sorted(r[5] for r in rows if r[1] == setting)
        print(f"| {setting} | {len(p99s)} | {statistics.median(p99s):.2f} | {p99s[0]:.2f} to {p99s[-1]:.2f} | "
              f"{sum(p <= 1.0 for p in p99s)} of {len(p99s)} |")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def cpu(args: argparse.Namespace, clusters: Clusters, tmp: Path) -> None:
    """Where the two cores go while the demo incident is replayed at 10x: CPU seconds of each process of the
    target and of the replaying process, over the whole ``Replayer.run`` (write-rate measurement included), and the
    same processes over as long a stretch of idle time just before (what they burn without replay traffic)."""
    events = list(audit_events([INCIDENT_LOG], FilterSpec(), ParseStats()))  # parsed before: not in the numbers
    names = ("kube-apiserver", "etcd", "kube-controller-manager", "kwok-controller")
    print("### CPU seconds per process while the demo incident is replayed at 10x\n")
    print(f"Command: `python bench/bench_replay.py cpu --runs {args.runs}`\n")
    print("| run | wall s | writes answered | " + " | ".join(names) + " | replayer | all / wall (cores) | "
          "kube-apiserver ms per write, idle subtracted |")
    print("|---:|---:|---:|" + "---:|" * (len(names) + 3))
    for run in range(args.runs):
        with restored_incident(clusters, "cpu-bench") as (cluster, c):
            pids = {p.stem: int(p.read_text()) for p in (cluster.directory / "pids").glob("*.pid")}
            time.sleep(3)  # let the restore's aftermath settle
            idle0 = {k: _cpu_seconds(v) for k, v in pids.items()}
            time.sleep(2.5)
            idle = {k: (_cpu_seconds(v) - idle0[k]) / 2.5 for k, v in pids.items()}  # CPU s per wall s
            before = {k: _cpu_seconds(v) for k, v in pids.items()}
            mine, wall = time.process_time(), time.monotonic()
            report = Replayer(c, ReplayOptions(speed=10)).run(events)
            mine, wall = time.process_time() - mine, time.monotonic() - wall
            used = {k: _cpu_seconds(v) - before[k] for k, v in pids.items()}
        clusters.drop("cpu-bench")
        writes = len(report.lag) + len(report.renewal_lag)  # every change and renewal the target answered
        per_write = (used["kube-apiserver"] - idle["kube-apiserver"] * wall) / writes * 1000
        cells = " | ".join(f"{used.get(n, 0.0):.2f}" for n in names)
        print(f"| {run + 1} | {wall:.2f} | {writes} | {cells} | {mine:.2f} | {(sum(used.values()) + mine) / wall:.2f}"
              f" | {per_write:.1f} |")


def burst(args: argparse.Namespace, clusters: Clusters, tmp: Path) -> None:
    """The demo incident's opening burst as the target applied it, read back from the target's audit log: how fast
    the target took it, against the write rate replay measured just before (which plans the spreading)."""
    print("### The demo incident's opening burst as applied at 10x (pod writes due in the first 20 ms)\n")
    print(f"Command: `python bench/bench_replay.py burst --runs {args.runs}`\n")
    print("| run | measured rate | writes | first received → last answered | rate taken | mean in flight | "
          "most early |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for run in range(args.runs):
        cluster, report = replay_incident(clusters, "burst-bench", ReplayOptions(speed=10))
        t0 = report.replay_start_ns
        # The opening burst: pod writes received from the lead before offset 0 until the burst's writes stop
        # (the next pod write is more than 100 ms after the previous one).
        writes = sorted((ev["received"], ev["ts"]) for ev in read_audit([str(cluster.audit_log)])
                        if ev["resource"] == "pods" and ev["verb"] in ("create", "update", "patch", "delete")
                        and ev["received"] >= t0 - int(report.lead_max * NS) - NS // 100)
        end = 1
        while end < len(writes) and writes[end][0] - writes[end - 1][0] < NS // 10:
            end += 1
        first, last = writes[0][0], max(ts for _, ts in writes[:end])
        span = (last - first) / NS
        busy = sum(ts - received for received, ts in writes[:end]) / NS
        clusters.drop("burst-bench")
        print(f"| {run + 1} | {report.capacity or 0:.0f}/s | {end} | {span * 1000:.0f} ms | {end / span:.0f}/s | "
              f"{busy / span:.1f} | {report.lead_max * 1000:.0f} ms |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("lag")
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--rate", type=float, default=15)
    p.add_argument("--speed", type=float, default=10)
    p.add_argument("--runs", type=int, default=3)
    p = sub.add_parser("max")
    p.add_argument("--events", type=int, default=4000)
    p.add_argument("--runs", type=int, default=3)
    p = sub.add_parser("incident")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--workers", nargs="+", default=["4", "32", "auto"],
                   help="settings to interleave: a fixed number in flight, or auto (the adaptive default)")
    p.add_argument("--max-lead", type=float, nargs="+", default=[0.0, 0.25],
                   help="wall seconds a burst may be sent early (0: off; 0.25: the default of replay), interleaved")
    p.add_argument("--speed", type=float, default=10)
    p = sub.add_parser("workers")
    p.add_argument("--events", type=int, default=3000)
    p.add_argument("--rate", type=float, default=40, help="recorded writes/s (replayed at 10x)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rtt-ms", type=float, nargs="+", default=[0, 20])
    p = sub.add_parser("burst")
    p.add_argument("--runs", type=int, default=3)
    p = sub.add_parser("cpu")
    p.add_argument("--runs", type=int, default=3)
    p = sub.add_parser("rss")
    p.add_argument("--gb", type=float, default=1.0)
    p.add_argument("--every", type=int, default=5, help="one line in EVERY is a replayed write (the rest noise)")
    p.add_argument("--gzip", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kwoksnap-rbench-"))
    clusters = Clusters(tmp / "work")
    try:
        commands = {"lag": lag, "max": speed_max, "rss": rss, "incident": incident, "workers": workers,
                    "burst": burst, "cpu": cpu}
        commands[args.cmd](args, clusters, tmp)
    finally:
        clusters.close()
        for f in tmp.glob("*.log*"):
            f.unlink()
    print(f"\n({os.cpu_count()} cores, {time.strftime('%Y-%m-%d')})")


if __name__ == "__main__":
    main()
