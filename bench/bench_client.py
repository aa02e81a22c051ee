"""Benchmark: client CPU per API request, kwoksnap's Client against urllib3 and the ``kubernetes`` package.

Why this script exists: on a small machine the replaying client and the target kube-apiserver share the cores, so
every millisecond of client CPU per request is a millisecond the API server does not get during a burst. This
measures the CPU time of this process (not wall time: robust on a shared machine) per request for the same
requests (a merge PATCH of a ConfigMap and a GET of it) through three clients in the same run against one fresh
local cluster, and prints a markdown table with the ratios to kwoksnap's Client.

Usage: .venv/bin/python bench/bench_client.py [--requests 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import urllib3

from kwoksnap.kube.client import Client
from kwoksnap.kube.config import ClusterConfig, load_config

sys.path.insert(0, str(Path(__file__).parent))
from common import Clusters

NS = "default"
CM = f"/api/v1/namespaces/{NS}/configmaps/bench"


def per_request(n: int, repeat: int, send: Callable[[int], None]) -> float:
    """Best-of-``repeat`` CPU milliseconds per request."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for i in range(n):
            send(i)
        best = min(best, (time.process_time() - t0) / n * 1e3)
    return best


def urllib3_pool(cfg: ClusterConfig) -> urllib3.PoolManager:
    kw: dict[str, object] = {"cert_reqs": "CERT_REQUIRED", "ca_certs": cfg.ca_file} if cfg.verify_ssl else {
        "cert_reqs": "CERT_NONE"}
    if cfg.cert_file:
        kw.update(cert_file=cfg.cert_file, key_file=cfg.key_file)
    return urllib3.PoolManager(maxsize=4, **kw)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, repeat = args.requests, args.repeat

    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    with tempfile.TemporaryDirectory() as tmp:
        clusters = Clusters(Path(tmp))
        try:
            cluster = clusters.new("benchclient")
            cfg = load_config(str(cluster.kubeconfig))
            ours = Client(cfg, pool_size=4)
            ours.create(f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": "bench"}, "data": {"i": "0"}})
            pool = urllib3_pool(cfg)
            headers = {"Accept": "application/json"}
            if cfg.authorization:
                headers["Authorization"] = cfg.authorization
            api = k8s.CoreV1Api(k8s_config.new_client_from_config(str(cluster.kubeconfig)))

            def u3_patch(i: int) -> None:
                r = pool.request("PATCH", cfg.server + CM, body=orjson.dumps({"data": {"i": str(i)}}),
                                 headers={**headers, "Content-Type": "application/merge-patch+json"})
                assert r.status == 200
                orjson.loads(r.data)

            def u3_get(_i: int) -> None:
                r = pool.request("GET", cfg.server + CM, headers=headers)
                assert r.status == 200
                orjson.loads(r.data)

            rows = {
                "PATCH": {
                    "kwoksnap Client": per_request(n, repeat, lambda i: ours.patch(CM, {"data": {"i": str(i)}})),
                    "urllib3 + orjson": per_request(n, repeat, u3_patch),
                    "kubernetes CoreV1Api": per_request(n, repeat, lambda i: api.patch_namespaced_config_map(
                        "bench", NS, {"data": {"i": str(i)}})),
                },
                "GET": {
                    "kwoksnap Client": per_request(n, repeat, lambda _i: ours.get(CM)),
                    "urllib3 + orjson": per_request(n, repeat, u3_get),
                    "kubernetes CoreV1Api": per_request(n, repeat, lambda _i: api.read_namespaced_config_map(
                        "bench", NS)),
                },
            }
        finally:
            clusters.close()

    print(f"Client CPU per request, {n} requests per client and verb, best of {repeat} (CPU ms of this process):")
    print("| request | client | CPU ms/request | x kwoksnap |")
    print("|---|---|---:|---:|")
    for verb, results in rows.items():
        base = results["kwoksnap Client"]
        for name, ms in results.items():
            print(f"| {verb} | {name} | {ms:.3f} | {ms / base:.1f} |")


if __name__ == "__main__":
    main()
