"""``kwoksnap save``: capture a live cluster into a .kws snapshot."""

from __future__ import annotations

import os

import click

from kwoksnap.cli.options import (
    Progress,
    example_epilog,
    finished_partly,
    include_secrets,
    make_client,
    namespace_option,
    not_stdout,
    one_line,
    print_json,
    split_commas,
    summary_format,
    warn,
)


@click.command(epilog=example_epilog(
    "kwoksnap save -o before.kws",
    "kwoksnap save -o team.kws -n team-a -n team-b --exclude secrets",
    "kwoksnap --context prod save -o prod.kws -l app=checkout --format json",
))
@click.option("-o", "--output-file", "path", required=True, type=click.Path(dir_okay=False, writable=True),
              callback=not_stdout,
              help="Snapshot file to write (.kws); written atomically, mode 0600.")
@click.option("--include", multiple=True, callback=split_commas,
              help="Only these resources, named as kubectl names them (pods, deploy, deployments.apps, "
                   "Deployment, widget.example.com; repeatable, comma-separated).")
@click.option("--exclude", multiple=True, callback=split_commas,
              help="Leave these resources out (repeatable, comma-separated).")
@namespace_option("Only these namespaces; cluster-scoped resources are always saved")
@click.option("-l", "--selector", help="Label selector applied to every list.")
@include_secrets
@click.option("--keep-managed-fields", is_flag=True, help="Keep metadata.managedFields (dropped by default).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Resources listed at the same time.")
@summary_format
@click.pass_context
def save(ctx: click.Context, path: str, include: tuple[str, ...], exclude: tuple[str, ...],
         namespaces: tuple[str, ...], selector: str | None, include_secrets: bool, keep_managed_fields: bool,
         concurrency: int, output_format: str) -> int:
    """Save every listable resource of the cluster (CRDs and custom resources included) into a snapshot.

    Exit code 0 when every resource was saved, 5 when some could not be listed, or an API the cluster lists is not
    served (an aggregated API whose server is down; the metrics APIs, which store nothing, aside) (named; the rest
    is saved, and the file says what it lacks).
    """
    from kwoksnap.capture.snapshot import SaveOptions, lost_apis, save_snapshot
    from kwoksnap.errors import APIError, ExitCode, UsageError

    options = SaveOptions(include=frozenset(include), exclude=frozenset(exclude), namespaces=namespaces,
                          selector=selector, include_secrets=include_secrets,
                          keep_managed_fields=keep_managed_fields, concurrency=concurrency)
    with make_client(ctx) as client:
        if selector:  # checked once by the server, instead of failing every list and saving nothing
            try:
                client.request("GET", "/api/v1/namespaces", params={"labelSelector": selector, "limit": "1"})
            except APIError as exc:
                if exc.status == 400:
                    raise UsageError(f"-l {selector}: {exc.api_message}") from None
        for ns in dict.fromkeys(namespaces):  # a typo would otherwise give a snapshot of cluster-scoped objects only
            try:
                missing = not client.exists(f"/api/v1/namespaces/{ns}")
            except APIError:  # e.g. no permission to read namespaces, only what is in them: nothing to tell
                missing = False
            if missing:
                warn(f"namespace {ns} does not exist in the cluster: nothing of it is saved")
        with Progress(output_format == "text") as bar:
            try:
                summary = save_snapshot(client, path, options, progress=lambda r, n: bar.update(r, n))
            except KeyboardInterrupt:
                if not os.path.exists(path):  # (save never writes over a file: one there now is this run's, whole)
                    raise
                click.echo(one_line(f"saved to {path}: the snapshot was complete when the Ctrl-C came"), err=True)
                return ExitCode.OK
    errors = [r for r in summary.resources if r.error]
    lost = lost_apis(summary.unavailable_apis)
    if output_format == "json":
        print_json(summary.to_dict())
    else:
        for option, names in (("--exclude", summary.unmatched_exclude), ("--include", summary.unmatched_include)):
            for name in names:  # likely a typo that kept what it meant to leave out, or left out what it meant to keep
                warn(f"{option} {name}: the cluster serves no such resource (is the name right?)")
        for api in summary.unavailable_apis:  # (an aggregated API whose server is down: nothing to list)
            warn(f"{api}: the cluster lists this API but does not serve it, so nothing of it is "
                 "saved" + ("" if api in lost else " (a metrics API: it stores nothing)"))
        for r in errors:  # a list that failed part-way has written its first pages
            said = f"only {r.objects} object(s) saved, then the list failed" if r.objects else "not saved"
            warn(f"{r.resource}: {said}: {r.error}")
        size = f"{summary.bytes / 1e6:.1f} MB" if summary.bytes >= 100_000 else f"{summary.bytes / 1e3:.1f} kB"
        held = sum(1 for r in summary.resources if r.objects)
        # (Review finding: `-l nothing=here` said "0 objects of 0 resources", the file listing 18 resources empty.)
        listed_empty = sum(1 for r in summary.resources if not r.objects and not r.error)
        empty = f" ({listed_empty} more listed, empty)" if listed_empty else ""
        click.echo(one_line(f"saved {summary.objects} objects of {held} resources{empty} "
                            f"to {path} in {summary.seconds:.1f}s ({summary.rate:,.0f} objects/s, {size})"
                            + (f"; {len(errors)} resource(s) not saved, or not whole" if errors else "")
                            + (f"; {len(lost)} API(s) not served, so not saved" if lost else "")))
    if errors or lost:
        return finished_partly((len(errors), "resource(s) not saved, or not whole"),
                               (len(lost), "API(s) the cluster lists and does not serve, not saved"),
                               output_format=output_format)
    return ExitCode.OK
