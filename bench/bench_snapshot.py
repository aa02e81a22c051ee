"""Snapshot benchmark: kwoksnap save/restore against `kwokctl snapshot save/restore --format k8s` and against a raw
parallel HTTP client, on the same generated cluster in the same run. Prints a markdown report.

    python bench/bench_snapshot.py --nodes 100 --pods 2000          # CI-sized smoke
    python bench/bench_snapshot.py --nodes 5000 --pods 100000       # the full run

Clusters are created with kwokctl's --disable-qps-limits (no API priority and fairness, no inflight limit), so the
numbers measure the clients, not the server's throttling. Each tool gets its own fresh target cluster.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kwoksnap.cluster.populate import Size, populate, wait_settled
from kwoksnap.kube import Client, load_config
from kwoksnap.restore.transform import prepare
from kwoksnap.store import KwsReader, KwsWriter

sys.path.insert(0, str(Path(__file__).parent))
from common import Clusters, timed

KWOKSNAP = [sys.executable, "-m", "kwoksnap"]
KWOKCTL_FILTER = ("namespace,node,serviceaccount,configmap,secret,limitrange,runtimeclass.node.k8s.io,"
                  "priorityclass.scheduling.k8s.io,clusterrolebindings.rbac.authorization.k8s.io,"
                  "clusterroles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io,"
                  "roles.rbac.authorization.k8s.io,daemonset.apps,deployment.apps,replicaset.apps,statefulset.apps,"
                  "cronjob.batch,job.batch,persistentvolumeclaim,persistentvolume,pod,service,endpoints")
SAME_AS_KWOKCTL = ("namespaces,nodes,serviceaccounts,configmaps,secrets,limitranges,runtimeclasses,priorityclasses,"
                   "clusterrolebindings,clusterroles,rolebindings,roles,daemonsets,deployments,replicasets,"
                   "statefulsets,cronjobs,jobs,persistentvolumeclaims,persistentvolumes,pods,services,endpoints")


def generate(template_snapshot: Path, out: Path, nodes: int, pods: int) -> int:
    """A large snapshot made of real objects from a small populated cluster, cloned with fresh names/uids/IPs."""
    with KwsReader(template_snapshot) as r:
        pod = next(o["object"] for o in r.records("v1/pods")
                   if o.get("type") == "object" and o["object"]["status"].get("phase") == "Running"
                   and o["object"]["metadata"].get("labels", {}).get("app", "").startswith("web"))
        node = next(o["object"] for o in r.records("v1/nodes") if o.get("type") == "object")
    namespaces = max(1, pods // 5000)
    count = 0
    with KwsWriter(out, content_type="snapshot", source={"server": "generated"}) as w:
        w.write({"type": "resource", "resource": "v1/namespaces", "kind": "Namespace", "namespaced": False})
        for n in range(namespaces):
            w.write({"type": "object", "resource": "v1/namespaces", "object": {
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": f"bench-{n}", "uid": f"ns-{n}",
                             "labels": {"kubernetes.io/metadata.name": f"bench-{n}"}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}})
            count += 1
        w.write({"type": "resource", "resource": "v1/nodes", "kind": "Node", "namespaced": False})
        for i in range(nodes):
            obj = copy.deepcopy(node)
            name = f"bench-node-{i:05d}"
            obj["metadata"].update(name=name, uid=f"node-{i}")
            obj["metadata"]["labels"]["kubernetes.io/hostname"] = name
            w.write({"type": "object", "resource": "v1/nodes", "object": obj})
            count += 1
        w.write({"type": "resource", "resource": "v1/pods", "kind": "Pod", "namespaced": True})
        for i in range(pods):
            obj = copy.deepcopy(pod)
            meta = obj["metadata"]
            meta.update(name=f"pod-{i:06d}", namespace=f"bench-{i % namespaces}", uid=f"pod-{i}")
            meta.pop("ownerReferences", None)
            meta.pop("generateName", None)
            obj["spec"]["nodeName"] = f"bench-node-{i % nodes:05d}"
            ip = f"10.{64 + i // 65536}.{(i // 256) % 256}.{i % 256}"
            obj["status"].update(podIP=ip, podIPs=[{"ip": ip}])
            w.write({"type": "object", "resource": "v1/pods", "object": obj})
            count += 1
    return count


def raw_ceiling(client: Client, snapshot: Path, threads: int) -> tuple[float, int]:
    """Seconds for a bare parallel client to send the same creates (+ pod status writes), bodies prepared ahead."""
    work: list[tuple[str, dict[str, Any], str | None, dict[str, Any] | None]] = []
    with KwsReader(snapshot) as r:
        for res in ("v1/namespaces", "v1/nodes", "v1/pods"):
            for rec in r.records(res):
                if rec.get("type") != "object":
                    continue
                obj = rec["object"]
                p = prepare(obj, uid_map={}, snapshot_uids=set(), has_status_subresource=res == "v1/pods")
                ns = obj["metadata"].get("namespace")
                base = f"/api/v1/namespaces/{ns}/pods" if ns else f"/api/v1/{res.split('/')[1]}"
                status_path = f"{base}/{obj['metadata']['name']}/status" if p.status else None
                work.append((base, p.body, status_path, p.status))
    started = time.monotonic()
    phases = [[w for w in work if "/namespaces/" not in w[0] and w[0].endswith("namespaces")],
              [w for w in work if w[0].endswith("/nodes")], [w for w in work if w[0].endswith("/pods")]]

    def send(item: tuple[str, dict[str, Any], str | None, dict[str, Any] | None]) -> None:
        client.create(item[0], item[1])
        if item[2]:
            client.patch(item[2], {"status": item[3]})

    with ThreadPoolExecutor(threads) as pool:
        for phase in phases:
            list(pool.map(send, phase))
    return time.monotonic() - started, len(work)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--pods", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kwoksnap-bench-"))
    clusters = Clusters(tmp / "work")
    env = dict(os.environ, KWOK_WORKDIR=str(tmp / "work"), KWOKSNAP_WORKDIR=str(tmp / "work"))
    kwokctl = str(clusters.bins.kwokctl)
    rows: list[tuple[str, str]] = []
    try:
        tpl = clusters.new("tpl")
        with Client(load_config(str(tpl.kubeconfig))) as c:
            size = Size(nodes=3, namespaces=1, deployments_per_namespace=1, replicas=3)
            wait_settled(c, populate(c, size), size.nodes, timeout=120)
        timed([*KWOKSNAP, "--kubeconfig", str(tpl.kubeconfig), "save", "-o", str(tmp / "tpl.kws")])
        clusters.drop("tpl")
        objects = generate(tmp / "tpl.kws", tmp / "big.kws", args.nodes, args.pods)
        print(f"generated {objects} objects ({args.nodes} nodes, {args.pods} pods)", file=sys.stderr)

        src = clusters.new("src")
        t, rss, _ = timed([*KWOKSNAP, "--kubeconfig", str(src.kubeconfig), "restore", str(tmp / "big.kws"),
                           "--concurrency", str(args.concurrency)])
        restore_rate = objects / t
        rows.append(("restore (populating the source)", f"{t:.1f} s, {restore_rate:,.0f} objects/s, "
                                                       f"peak RSS {rss:.0f} MiB"))

        # save: same resource set as kwokctl's default filter, then everything
        t_ks, rss_ks, _ = timed([*KWOKSNAP, "--kubeconfig", str(src.kubeconfig), "save", "-o", str(tmp / "s.kws"),
                                 "--include", SAME_AS_KWOKCTL])
        t_all, rss_all, _ = timed([*KWOKSNAP, "--kubeconfig", str(src.kubeconfig), "save", "-o",
                                   str(tmp / "all.kws")])
        t_kc, rss_kc, _ = timed([kwokctl, "snapshot", "save", "--name", "src", "--format", "k8s", "--path",
                                 str(tmp / "kwokctl.yaml"), "--filter", KWOKCTL_FILTER], env=env)
        size_ks, size_kc = (tmp / "s.kws").stat().st_size, (tmp / "kwokctl.yaml").stat().st_size
        rows += [
            ("save, kwoksnap (kwokctl's resource set)", f"{t_ks:.2f} s, {objects / t_ks:,.0f} objects/s, "
                                                         f"peak RSS {rss_ks:.0f} MiB"),
            ("save, kwoksnap (every resource)", f"{t_all:.2f} s, peak RSS {rss_all:.0f} MiB"),
            ("save, kwokctl snapshot save --format k8s", f"{t_kc:.2f} s, peak RSS {rss_kc:.0f} MiB"),
            ("**save speed-up vs kwokctl**", f"**{t_kc / t_ks:.1f}x**"),
            ("file size: kwoksnap .kws / kwokctl YAML", f"{size_ks / 1e6:.2f} MB / {size_kc / 1e6:.2f} MB "
                                                       f"= **{size_kc / size_ks:.1f}x smaller**"),
        ]
        clusters.drop("src")

        dst = clusters.new("dst")
        t_r, rss_r, _ = timed([*KWOKSNAP, "--kubeconfig", str(dst.kubeconfig), "restore", str(tmp / "s.kws"),
                               "--concurrency", str(args.concurrency)])
        clusters.drop("dst")
        raw = clusters.new("raw")
        with Client(load_config(str(raw.kubeconfig)), pool_size=args.concurrency) as c:
            t_raw, n_raw = raw_ceiling(c, tmp / "big.kws", args.concurrency)
        clusters.drop("raw")
        clusters.new("kc")
        t_kcr, rss_kcr, _ = timed([kwokctl, "snapshot", "restore", "--name", "kc", "--format", "k8s", "--path",
                                   str(tmp / "kwokctl.yaml"), "--filter", KWOKCTL_FILTER], env=env)
        clusters.drop("kc")
        rows += [
            ("restore, kwoksnap (create + pod status, settle wait)", f"{t_r:.1f} s, {objects / t_r:,.0f} objects/s, "
                                                                     f"peak RSS {rss_r:.0f} MiB"),
            ("restore, raw parallel client (same creates + status writes)", f"{t_raw:.1f} s, "
                                                                             f"{n_raw / t_raw:,.0f} objects/s"),
            ("**restore vs raw write ceiling**", f"**{t_raw / t_r * 100:.0f}%**"),
            ("restore, kwokctl snapshot restore --format k8s (no pod status)", f"{t_kcr:.1f} s, "
                                                                               f"peak RSS {rss_kcr:.0f} MiB"),
            ("**restore speed-up vs kwokctl**", f"**{t_kcr / t_r:.1f}x**"),
        ]
    finally:
        clusters.close()
        shutil.rmtree(tmp, ignore_errors=True)
    cmd = " ".join(["python", "bench/bench_snapshot.py", *sys.argv[1:]])
    print(f"### Snapshot: {args.nodes} nodes, {args.pods} pods ({objects} objects)\n")
    print(f"Command: `{cmd}` (clusters with `--disable-qps-limits`; {os.cpu_count()} cores; "
          f"{time.strftime('%Y-%m-%d')})\n")
    print("| measure | result |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
