"""``kwoksnap save``: list every selected resource of a live cluster into a .kws snapshot, streaming.

Why this module exists: a snapshot must be complete (every listable resource, CRDs and custom resources included),
consistent per resource (one paginated list at one resourceVersion; should etcd compact it while the pages are read,
the rest is listed at a newer one), safe to share (secrets redacted) and fast.
Pages are fetched on worker threads while the main thread encodes the previous page, so the API server and the
encoder work at the same time; at most a few pages per resource are ever held in memory.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from kwoksnap import __version__
from kwoksnap.capture.redact import redact_secret
from kwoksnap.capture.selection import matches, resolve, selected
from kwoksnap.errors import APIError, UsageError
from kwoksnap.kube.client import Client
from kwoksnap.kube.discovery import Discovery, Resource, discover
from kwoksnap.kube.objects import MINTED_TOKEN_KEYS, SA_TOKEN_TYPE
from kwoksnap.store import KwsWriter

log = logging.getLogger("kwoksnap.capture")

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class SaveOptions:
    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    selector: str | None = None  # label selector applied to every list
    include_secrets: bool = False  # keep secret values (redacted by default)
    keep_managed_fields: bool = False
    page_size: int = 500
    concurrency: int = 4  # resources listed at the same time
    level: int = 3  # zstd level


@dataclasses.dataclass
class ResourceCount:
    resource: str
    objects: int = 0
    skipped: int = 0  # objects outside the namespaces
    error: str = ""


@dataclasses.dataclass
class SaveSummary:
    path: str
    objects: int
    resources: list[ResourceCount]
    seconds: float
    bytes: int
    server_version: str
    unmatched_exclude: list[str] = dataclasses.field(default_factory=list)  # --exclude names of nothing served
    unmatched_include: list[str] = dataclasses.field(default_factory=list)  # --include names of nothing served
    unavailable_apis: list[str] = dataclasses.field(default_factory=list)  # listed, not served (Discovery)

    @property
    def rate(self) -> float:
        return self.objects / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "objects": self.objects, "seconds": round(self.seconds, 3),
            "objectsPerSecond": round(self.rate, 1), "bytes": self.bytes, "serverVersion": self.server_version,
            "resources": {r.resource: {"objects": r.objects, "skipped": r.skipped, **({"error": r.error}
                                                                                       if r.error else {})}
                          for r in self.resources},
            "unmatchedExclude": self.unmatched_exclude, "unmatchedInclude": self.unmatched_include,
            "unavailableApis": self.unavailable_apis,
        }


Progress = Callable[[str, int], None]  # (resource key, objects of it so far)

_DONE = object()


def _clean(obj: Obj, resource: Resource, options: SaveOptions) -> Obj:
    obj.setdefault("apiVersion", resource.group_version)
    obj.setdefault("kind", resource.kind)
    meta = obj.get("metadata")
    if isinstance(meta, dict) and not options.keep_managed_fields:
        meta.pop("managedFields", None)
    if resource.group == "" and resource.name == "secrets":
        if obj.get("type") == SA_TOKEN_TYPE and isinstance(obj.get("data"), dict):
            # A live bearer token, each cluster's own (restore leaves the target to mint its own): never kept, even
            # with --include-secrets (review finding).
            obj["data"] = {k: v for k, v in obj["data"].items() if k not in MINTED_TOKEN_KEYS}
        if not options.include_secrets:
            return redact_secret(obj)
    return obj


def at_storage_versions(client: Client, disc: Discovery, resources: list[Resource]) -> list[Resource]:
    """``resources``, each custom resource read in its CRD's storage version when that is served and not the
    preferred one: read through another version, an object loses what that version's schema prunes (black-box
    finding: a v1beta1-stored custom resource read through v1 was saved as ``spec: {}``, exit 0, and restore failed
    it). Without the right to list CRDs, the preferred versions."""
    crds = disc.by_key("apiextensions.k8s.io/v1/customresourcedefinitions")
    if crds is None or all(r.group in ("", "apiextensions.k8s.io") for r in resources):
        return resources
    storage: dict[tuple[str, str], str] = {}
    try:
        for crd, _ in client.list_items(crds.path()):
            spec = crd.get("spec") or {}
            version = next((v.get("name") for v in spec.get("versions") or () if isinstance(v, dict)
                            and v.get("storage")), None)
            if isinstance(version, str):
                storage[(str(spec.get("group", "")), str((spec.get("names") or {}).get("plural", "")))] = version
    except APIError as exc:
        log.info("cannot list CRDs (%s): custom resources are read in their preferred versions", exc)
        return resources
    out = []
    for r in resources:
        version = storage.get((r.group, r.name))
        stored = disc.by_key(f"{r.group}/{version}/{r.name}") if version and version != r.version else None
        out.append(stored if stored is not None and stored.version == version and "list" in stored.verbs else r)
    return out


def outside(kind: str, group: str, obj: Obj, namespaces: Collection[str]) -> bool:
    """With -n, cluster-scoped objects that belong to other namespaces: their Namespace, PVs bound to their claims
    (``save`` leaves them out, ``diff`` compares what it saved)."""
    if group:
        return False
    if kind == "Namespace":
        return (obj.get("metadata") or {}).get("name") not in namespaces
    if kind == "PersistentVolume":
        claim = (obj.get("spec") or {}).get("claimRef") or {}
        return bool(claim.get("namespace")) and claim.get("namespace") not in namespaces
    return False


def _list_paths(resource: Resource, options: SaveOptions) -> list[str]:
    if resource.namespaced and options.namespaces:
        return [resource.path(namespace=ns) for ns in options.namespaces]
    return [resource.path()]


def _pages(client: Client, resource: Resource, options: SaveOptions) -> Iterator[Obj]:
    params: dict[str, str | int] = {}
    if options.selector:
        params["labelSelector"] = options.selector
    for path in _list_paths(resource, options):
        yield from client.list_pages(path, limit=options.page_size, params=params)


# Aggregated APIs that serve only live readings, nothing stored: one of them down loses nothing of a snapshot.
METRICS_GROUPS: Final = frozenset({"metrics.k8s.io", "custom.metrics.k8s.io", "external.metrics.k8s.io"})


def lost_apis(unavailable: list[str]) -> list[str]:
    """The unavailable APIs (``group/version: why``, :attr:`Discovery.unavailable`) whose objects a snapshot lacks:
    all but the metrics APIs (black-box finding: an unavailable aggregated API was a warning, exit 0, and the file
    did not say it was not whole)."""
    return [api for api in unavailable if api.split("/", 1)[0] not in METRICS_GROUPS]


def _put(out: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Block until there is room, unless the save was stopped (then drop the item and say so)."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def _producer(client: Client, resource: Resource, options: SaveOptions, out: queue.Queue[object],
              stop: threading.Event) -> None:
    try:
        for page in _pages(client, resource, options):
            if not _put(out, page, stop):
                return
    except Exception as exc:  # handed to the consumer, which records it against this resource
        _put(out, exc, stop)
    _put(out, _DONE, stop)


def save_snapshot(
    client: Client,
    path: str | Path,
    options: SaveOptions = SaveOptions(),
    *,
    discovery: Discovery | None = None,
    progress: Progress = lambda _r, _n: None,
) -> SaveSummary:
    """Write a snapshot of the cluster to ``path`` (atomically: temp file + rename). Returns per-resource counts.

    A resource whose list fails (forbidden, not found) is recorded in the summary and the rest is saved; the caller
    decides whether that is a failure.
    """
    started = time.monotonic()
    disc = discovery or discover(client)
    listable = disc.listable()
    include, exclude = resolve(options.include, listable), resolve(options.exclude, listable)
    resources = at_storage_versions(client, disc, [r for r in listable if selected(r, include, exclude)])
    if options.include and not resources:
        included = [r for r in listable if selected(r, include, frozenset())]
        if included:  # served, but --exclude took every one of them
            raise UsageError(f"--exclude leaves nothing of --include {', '.join(sorted(options.include))}")
        raise UsageError(f"--include matched no served resource: {', '.join(sorted(options.include))}")
    keep = set(options.namespaces)
    counts = [ResourceCount(r.key) for r in resources]
    stop = threading.Event()
    queues: list[queue.Queue[object]] = [queue.Queue(maxsize=4) for _ in resources]
    source = {"server": client.config.server, "serverVersion": disc.server_version}
    meta = {
        "namespaces": list(options.namespaces), "selector": options.selector or "",
        "secretsRedacted": not options.include_secrets, "kwoksnapVersion": __version__,
    }
    total = 0
    # Not `with ThreadPoolExecutor`: its exit joins the producers, and a Ctrl-C (or SIGTERM) arriving while they are
    # submitted would join them before `stop` is set, while they wait for room in their queues: a hang.
    pool = ThreadPoolExecutor(max_workers=max(1, options.concurrency), thread_name_prefix="save")
    try:
        for r, q in zip(resources, queues, strict=True):
            pool.submit(_producer, client, r, options, q, stop)
        with KwsWriter(path, content_type="snapshot", source=source, meta=meta, level=options.level) as writer:
            for resource, q, count in zip(resources, queues, counts, strict=True):
                header_written = False
                written: list[tuple[str, str]] = []  # (namespace, name) of the objects written so far
                seen: set[tuple[str, str]] = set()
                while True:
                    item = q.get()
                    if item is _DONE:
                        break
                    if isinstance(item, Exception):
                        count.error = str(item) if isinstance(item, APIError) else f"{type(item).__name__}: {item}"
                        continue
                    assert isinstance(item, dict)
                    if item.get("kind") == "Restart":  # continue token expired, none offered: the list restarts,
                        seen = set(written)            # and what was written already is not written again
                        continue
                    if not header_written:
                        writer.write({
                            "type": "resource", "resource": resource.key, "kind": resource.kind,
                            "namespaced": resource.namespaced,
                            "listResourceVersion": str((item.get("metadata") or {}).get("resourceVersion", "")),
                        })
                        header_written = True
                    for obj in item.get("items") or []:
                        meta = obj.get("metadata") or {}
                        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
                        if key in seen:
                            continue
                        if keep and outside(resource.kind, resource.group, obj, keep):
                            count.skipped += 1
                            continue
                        writer.write({"type": "object", "resource": resource.key,
                                      "object": _clean(obj, resource, options)})
                        written.append(key)
                        count.objects += 1
                    progress(resource.key, count.objects)
                if count.error:  # (the file says so: inspect shows it, diff --live does not compare it)
                    writer.incomplete(resource.key, count.error)
                log.info("%s: %d object(s)%s%s", resource.key, count.objects,
                         f", {count.skipped} left out" if count.skipped else "",
                         f"; failed: {count.error}" if count.error else "")
                total += count.objects
            for api in lost_apis(disc.unavailable):  # (the file says so: whatever that API serves is not in it)
                writer.incomplete(api.split(":", 1)[0], api)
    except BaseException:  # Ctrl-C, SIGTERM, a write refused: the producers' lists have nothing left to finish,
        client.abort()     # so one riding out a server outage in its retries (up to 30 s), or waiting for an answer
        raise              # that never comes (its 60 s read timeout: review finding), gives up at once
    finally:
        stop.set()  # producers still waiting for room give up
        pool.shutdown(wait=True, cancel_futures=True)  # producers not started never start
    size = Path(path).stat().st_size
    def unmatched(names: frozenset[str]) -> list[str]:
        return sorted(n for n in names if not any(matches(r, frozenset({n})) for r in disc.listable()))

    return SaveSummary(str(path), total, counts, time.monotonic() - started, size, disc.server_version,
                       unmatched(options.exclude), unmatched(options.include), list(disc.unavailable))
