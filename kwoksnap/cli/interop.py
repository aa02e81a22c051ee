"""``kwoksnap export`` and ``kwoksnap import``: kwokctl's ``--format k8s`` YAML snapshots in and out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from kwoksnap.cli.options import example_epilog, print_json, summary_format

# kwokctl v0.8.0 `snapshot save/restore --filter` default (group-kinds, lower case).
KWOKCTL_DEFAULT_FILTER = frozenset({
    "namespace", "node", "serviceaccount", "configmap", "secret", "limitrange", "runtimeclass.node.k8s.io",
    "priorityclass.scheduling.k8s.io", "clusterrolebinding.rbac.authorization.k8s.io",
    "clusterrole.rbac.authorization.k8s.io", "rolebinding.rbac.authorization.k8s.io",
    "role.rbac.authorization.k8s.io", "daemonset.apps", "deployment.apps", "replicaset.apps", "statefulset.apps",
    "cronjob.batch", "job.batch", "persistentvolumeclaim", "persistentvolume", "pod", "service", "endpoints",
})


def group_kind(obj: dict[str, Any]) -> str:
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    kind = str(obj.get("kind", "")).lower()
    return f"{kind}.{group}" if group else kind


def for_kwokctl(obj: dict[str, Any]) -> dict[str, Any]:
    """A Job's generated selector names the source's Job uid, so the API server refuses it on create: keep it valid
    with ``manualSelector: true``, as kwoksnap's own restore does."""
    spec = obj.get("spec")
    if obj.get("kind") == "Job" and isinstance(spec, dict) and spec.get("selector") and not spec.get("manualSelector"):
        return {**obj, "spec": {**spec, "manualSelector": True}}
    return obj


@click.command(name="export", epilog=example_epilog(
    "kwoksnap export before.kws -o before.yaml",
    "kwokctl snapshot restore --name demo --format k8s --path before.yaml",
))
@click.argument("snapshot", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output-file", "path", required=True, type=click.Path(dir_okay=False),
              help="YAML file to write (.gz: gzipped; note kwokctl's restore does not read gzip).")
@click.option("--all-resources", is_flag=True, help="Export every resource, not only those kwokctl's default "
              "--filter accepts (then pass kwokctl a --filter naming them all).")
@summary_format
def export(snapshot: str, path: str, all_resources: bool, output_format: str) -> int:
    """Write a snapshot as kwokctl-compatible multi-document YAML (`kwokctl snapshot restore --format k8s`).

    By default only the kinds in kwokctl's default --filter are written: kwokctl v0.8.0 stops loading (and still
    exits 0) at the first object whose kind its filter does not list.
    """
    from kwoksnap.restore.plan import PHASES, plan
    from kwoksnap.restore.source import SnapshotSource
    from kwoksnap.store import KwsReader
    from kwoksnap.store.kwokyaml import export_yaml

    with KwsReader(snapshot) as reader:
        source = SnapshotSource(reader)

        # kwokctl relinks owner references top-down and skips a dependent whose owner came later in the file, so
        # the export order is owners first (kwoksnap's own restore goes bottom-up, see docs/design.md).
        order = [name for name, _ in PHASES]
        for owner_first in ("top-controllers", "controllers", "replicasets"):
            order.remove(owner_first)
            order.insert(order.index("pods"), owner_first)

        def records() -> Iterator[dict[str, Any]]:
            for step in sorted(plan(source.counts()), key=lambda s: order.index(s.phase)):
                for obj in source.objects(step.resource):
                    if all_resources or group_kind(obj) in KWOKCTL_DEFAULT_FILTER:
                        yield {"type": "object", "resource": step.resource, "object": for_kwokctl(obj)}

        stats = export_yaml(records(), path)
    if output_format == "json":
        print_json({"path": path, **vars(stats)})
    else:
        click.echo(f"exported to {path}: {vars(stats)}")
    return 0


@click.command(name="import", epilog=example_epilog(
    "kwokctl snapshot save --name demo --format k8s --path demo.yaml",
    "kwoksnap import demo.yaml -o demo.kws",
))
@click.argument("yaml_path", metavar="YAML", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output-file", "path", required=True, type=click.Path(dir_okay=False),
              help=".kws file to write.")
@summary_format
def import_(yaml_path: str, path: str, output_format: str) -> int:
    """Read a kwokctl `--format k8s` snapshot or `export` (YAML, .gz accepted) into a .kws file.

    Object documents become a snapshot; a file with ResourcePatch documents (a kwokctl recording) becomes a
    recording.
    """
    from kwoksnap.store import KwsWriter
    from kwoksnap.store.kwokyaml import import_yaml

    counts: dict[str, int] = {}
    events = 0
    # A first streaming pass decides the content type (a kwokctl recording has ResourcePatch documents).
    content = "recording" if any(r.get("type") == "event" for r in import_yaml(yaml_path)) else "snapshot"
    with KwsWriter(path, content_type=content, source={"kind": "kwokctl-yaml", "path": yaml_path}) as w:
        for rec in import_yaml(yaml_path):
            if rec.get("type") == "object":
                key = str(rec.get("resource", ""))
                counts[key] = counts.get(key, 0) + 1
            elif rec.get("type") == "event":
                events += 1
            w.write(rec)
    if output_format == "json":
        print_json({"path": path, "contentType": content, "objects": counts, "events": events})
    else:
        click.echo(f"imported {sum(counts.values())} objects of {len(counts)} resources"
                   + (f" and {events} events" if events else "") + f" into {path} ({content})")
    return 0
