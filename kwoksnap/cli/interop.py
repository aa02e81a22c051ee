"""``kwoksnap export`` and ``kwoksnap import``: kwokctl's ``--format k8s`` YAML snapshots in and out."""

from __future__ import annotations

import dataclasses

import click

from kwoksnap.cli.options import (
    camel_keys,
    example_epilog,
    first_few,
    include_secrets,
    not_stdout,
    one_line,
    print_json,
    summary_format,
    warn,
)


@click.command(name="export", epilog=example_epilog(
    "kwoksnap export before.kws -o before.yaml",
    "kwokctl snapshot restore --name demo --format k8s --path before.yaml",
))
@click.argument("snapshot", type=click.Path(exists=True, dir_okay=False, readable=False))
@click.option("-o", "--output-file", "path", required=True, type=click.Path(dir_okay=False), callback=not_stdout,
              help="YAML file to write (.gz: gzipped; note kwokctl's restore does not read gzip).")
@click.option("--all-resources", is_flag=True, help="Export every resource, not only those kwokctl's default "
              "--filter accepts (then pass kwokctl a --filter naming them all).")
@summary_format
def export(snapshot: str, path: str, all_resources: bool, output_format: str) -> int:
    """Write a snapshot as kwokctl-compatible multi-document YAML (`kwokctl snapshot restore --format k8s`).

    By default only the kinds in kwokctl's default --filter are written: kwokctl v0.8.0 stops loading (and still
    exits 0) at the first object whose kind its filter does not list. Owners come before what they own, and Jobs
    get manualSelector so that their recorded selector stays valid.
    """
    from kwoksnap.restore.kwokctl import export_for_kwokctl

    stats, left_out, doomed = export_for_kwokctl(snapshot, path, all_resources=all_resources)
    if output_format == "json":
        print_json({"path": path, **camel_keys(vars(stats)), "leftOut": dict(sorted(left_out.items())),
                    "notCreatedByKwokctl": dict(sorted(doomed.items()))})
    else:
        click.echo(one_line(f"exported {stats.objects} objects to {path}"))
        if left_out:
            kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(left_out.items()))
            click.echo(f"left out {sum(left_out.values())} objects of kinds kwokctl's default --filter does not "
                       f"load ({kinds}); --all-resources writes them too")
        for why, n in sorted(doomed.items()):
            warn(f"kwokctl snapshot restore will not create {n} of them: {why}")
    return 0


@click.command(name="import", epilog=example_epilog(
    "kwokctl snapshot save --name demo --format k8s --path demo.yaml",
    "kwoksnap import demo.yaml -o demo.kws",
))
@click.argument("yaml_path", metavar="YAML", type=click.Path(exists=True, dir_okay=False, readable=False))
@click.option("-o", "--output-file", "path", required=True, type=click.Path(dir_okay=False), callback=not_stdout,
              help=".kws file to write.")
@click.option("--time-base", metavar="TIME", help="When the kwokctl file was made (RFC 3339): `kwokctl snapshot "
              "export` writes every time relative to it, as $(time-offset-nanosecond N), and a recording's changes "
              "as durations after it.  [default: now, as kwokctl's own restore and replay take it]")
@include_secrets
@summary_format
def import_(yaml_path: str, path: str, time_base: str | None, include_secrets: bool, output_format: str) -> int:
    """Read a kwokctl `--format k8s` snapshot or `export` (YAML, .gz accepted) into a .kws file.

    Object documents become a snapshot; a file with ResourcePatch documents (a kwokctl recording, `kwokctl
    snapshot export --record`) becomes a recording, which `restore` restores (its objects: the state the recording
    starts from) and `replay` replays. Secrets' values are replaced as `save` replaces them, unless
    --include-secrets.
    """
    import time

    from kwoksnap.capture.redact import redact_record
    from kwoksnap.errors import UsageError
    from kwoksnap.store.kwokyaml import import_to_kws, parse_time_ns

    if time_base is None:
        base = time.time_ns() // 1000 * 1000  # (microseconds: the times it makes have no more)
    elif (parsed := parse_time_ns(time_base)) is None or not -(2**63) <= parsed < 2**63:
        raise UsageError(f"--time-base {time_base!r} is not an RFC 3339 time with a zone between the years 1678 "
                         "and 2261 (2026-11-29T10:00:00Z)")
    else:
        base = parsed
    stats = import_to_kws(yaml_path, path, rewrite=None if include_secrets else redact_record,
                          header_meta={"secretsRedacted": not include_secrets}, base_time_ns=base)
    if output_format == "json":
        print_json({"path": path, **camel_keys(dataclasses.asdict(stats))})
    else:
        if stats.duplicates:
            warn(f"left out {len(stats.duplicates)} object(s) that came again under the same name "
                 f"(the first is kept): {first_few(stats.duplicates)}")
        if stats.guessed:
            click.echo(f"note: {len(stats.guessed)} kind(s) have no CustomResourceDefinition in the file, so their "
                       f"resource names are guessed: {first_few(stats.guessed)} (restore finds a kind the target "
                       "serves under another name)", err=True)
        for note in stats.notes:
            warn(note)
        if stats.defaulted:
            click.echo(f"note: {stats.defaulted} namespaced object(s) without a namespace are put in 'default'",
                       err=True)
        if not stats.objects and not stats.events:
            warn(f"{yaml_path} holds no Kubernetes object")
        if stats.redacted:
            click.echo(f"{stats.redacted} Secret(s) stored with their values replaced (--include-secrets keeps them)")
        click.echo(one_line(f"imported {sum(stats.objects.values())} objects of {len(stats.objects)} resources"
                            + (f" and {stats.events} events" if stats.events else "")
                            + f" into {path} ({stats.content_type})"))
    return 0
