"""Which resources a cluster serves: core, every API group (preferred versions), CRDs and their custom resources.

Why this module exists: save must list everything listable, restore must map a recorded ``group/version/resource``
back to a URL in a target that may serve other versions, and replay must know whether a resource is namespaced.
Discovery answers all three from the API server itself, never from a hard-coded table.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

from kwoksnap.errors import APIError, NotFound, TransportError
from kwoksnap.kube.client import Client, RetryPolicy


@dataclasses.dataclass(frozen=True)
class Resource:
    group: str
    version: str
    name: str  # plural, e.g. "deployments"
    kind: str
    namespaced: bool
    verbs: frozenset[str]
    subresources: frozenset[str] = frozenset()
    short_names: frozenset[str] = frozenset()  # `deploy`, `po`: discovery's shortNames
    singular: str = ""  # discovery's singularName ("" from servers that leave it out)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """``v1/pods``, ``apps/v1/deployments``: the resource key used in .kws records."""
        return f"{self.group_version}/{self.name}"

    @property
    def group_resource(self) -> str:
        """``pods``, ``deployments.apps``: version-independent, as kubectl spells it."""
        return f"{self.name}.{self.group}" if self.group else self.name

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.name}"
        if name:  # (percent-encoded: an RBAC object's name may hold a space, `?`, `#` or any character but `/`)
            base += f"/{quote(name, safe=':@')}"
            if subresource:
                base += f"/{subresource}"
        return base


def parse_key(key: str) -> tuple[str, str, str]:
    """``apps/v1/deployments`` -> (apps, v1, deployments); ``v1/pods`` -> ("", v1, pods)."""
    parts = key.split("/")
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise ValueError(f"not a resource key: {key!r}")


@dataclasses.dataclass
class Discovery:
    """Served resources, preferred versions first. Lookups by key, by group+resource, and by apiVersion+kind."""

    resources: list[Resource]
    server_version: str = ""
    # Group versions the cluster lists but does not serve (an aggregated API whose server is down): "group/v: why"
    unavailable: list[str] = dataclasses.field(default_factory=list)
    _by_key: dict[str, Resource] = dataclasses.field(default_factory=dict, repr=False)
    _by_gr: dict[tuple[str, str], Resource] = dataclasses.field(default_factory=dict, repr=False)
    _by_kind: dict[tuple[str, str], Resource] = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for r in self.resources:
            self._by_key.setdefault(r.key, r)
            self._by_gr.setdefault((r.group, r.name), r)  # first seen = preferred version
            self._by_kind.setdefault((r.group_version, r.kind), r)

    def by_key(self, key: str) -> Resource | None:
        """Exact version if served, else the preferred version of the same group and resource."""
        found = self._by_key.get(key)
        if found is not None:
            return found
        group, _version, name = parse_key(key)
        return self._by_gr.get((group, name))

    def by_kind(self, api_version: str, kind: str) -> Resource | None:
        found = self._by_kind.get((api_version, kind))
        if found is not None:
            return found
        group = api_version.rpartition("/")[0]
        for r in self.resources:
            if r.group == group and r.kind == kind:
                return r
        return None

    def listable(self) -> list[Resource]:
        """One entry per group+resource (preferred version) that supports list."""
        seen: set[tuple[str, str]] = set()
        out = []
        for r in self.resources:
            if "list" in r.verbs and (r.group, r.name) not in seen:
                seen.add((r.group, r.name))
                out.append(r)
        return out


# An aggregated API whose server is down answers 503 at once, every time: a few quick tries, not the 16-31 s of
# retries that ride out an API server restart (a save took 24 s for a metrics.k8s.io with no metrics-server). Any
# other failure (no connection, 429, another 5xx) gets the client's full retries, as every request does.
_ONE_TRY = RetryPolicy(attempts=1)
_UNAVAILABLE_RETRY = RetryPolicy(attempts=2)  # (after the first: 3 in all)


def _resources_of(client: Client, path: str, group: str, version: str,
                  unavailable: list[str]) -> list[Resource]:
    try:
        try:
            doc = client.request("GET", path, retry=_ONE_TRY)
        except APIError as exc:
            if exc.status == 503:
                doc = client.request("GET", path, retry=_UNAVAILABLE_RETRY)
            elif exc.retryable:
                doc = client.get(path)
            else:
                raise
        except TransportError:
            doc = client.get(path)
    except (NotFound, APIError) as exc:
        if isinstance(exc, NotFound) or exc.status == 503:  # an aggregated API that is down: skip its group
            unavailable.append(f"{group}/{version}: {exc.status} {exc.reason or 'ServiceUnavailable'}")
            return []
        raise
    subs: dict[str, set[str]] = {}
    main: list[dict[str, object]] = []
    for item in doc.get("resources", []):
        name = str(item["name"])
        if "/" in name:
            parent, sub = name.split("/", 1)
            subs.setdefault(parent, set()).add(sub)
        else:
            main.append(item)
    return [
        Resource(
            group=group, version=version, name=str(item["name"]), kind=str(item["kind"]),
            namespaced=bool(item.get("namespaced")), verbs=frozenset(item.get("verbs", ()) or ()),  # type: ignore[call-overload]
            subresources=frozenset(subs.get(str(item["name"]), ())),
            short_names=frozenset(str(n) for n in item.get("shortNames") or () if isinstance(n, str)),  # type: ignore[attr-defined]
            singular=str(item.get("singularName") or ""),
        )
        for item in main
    ]


def discover(client: Client) -> Discovery:
    """Fetch discovery documents (in parallel); preferred version of each group listed first."""
    version = client.get("/version").get("gitVersion", "")
    core_versions = client.get("/api").get("versions", ["v1"])
    groups = client.get("/apis").get("groups", [])
    jobs: list[tuple[str, str, str]] = [(f"/api/{v}", "", v) for v in core_versions]
    for g in groups:
        preferred = g.get("preferredVersion", {}).get("version")
        versions = [v["version"] for v in g.get("versions", [])]
        ordered = ([preferred] if preferred else []) + [v for v in versions if v != preferred]
        jobs += [(f"/apis/{g['name']}/{v}", g["name"], v) for v in ordered]
    unavailable: list[str] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda j: _resources_of(client, j[0], j[1], j[2], unavailable), jobs))
    return Discovery([r for rs in results for r in rs], server_version=str(version),
                     unavailable=sorted(unavailable))
