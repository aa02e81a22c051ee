"""``kwoksnap convert``: parse audit logs once into a .kws recording that replays without parsing."""

from __future__ import annotations

import click

from kwoksnap.cli.options import (
    audit_input,
    example_epilog,
    expand_audit_paths,
    filter_spec,
    include_secrets,
    not_stdout,
    one_line,
    print_json,
    summary_format,
    warn_clock_skew,
    warn_if_nothing_kept,
    warn_out_of_order,
    warn_unmatched_namespaces,
    warn_unmatched_resources,
    warn_unmatched_users,
    warn_unstorable,
    warn_unusable_files,
)


@click.command(epilog=example_epilog(
    "kwoksnap convert --audit audit.log -o trace.kws",
    "kwoksnap convert --audit 'logs/audit-*.log.gz' --resources deployments -o trace.kws",
    "kwoksnap replay trace.kws --speed 10x",
))
@audit_input
@click.option("-o", "--output-file", "path", required=True, type=click.Path(dir_okay=False), callback=not_stdout,
              help="Recording to write (.kws).")
@include_secrets
@summary_format
def convert(audit_paths: tuple[str, ...], resources: tuple[str, ...], namespaces: tuple[str, ...],
            exclude_user: tuple[str, ...], since: str | None, until: str | None, strict: bool, path: str,
            include_secrets: bool, output_format: str) -> int:
    """Store the parsed, filtered, time-sorted change stream of audit logs as a recording."""
    from kwoksnap.audit import ParseStats
    from kwoksnap.replay.recording import audit_events, redact_credentials, write_recording

    spec = filter_spec(resources, namespaces, exclude_user, since, until)
    stats = ParseStats()
    paths = expand_audit_paths(audit_paths)
    events = audit_events(paths, spec, stats, strict=strict)
    # The filters it was made with, so that a replay of it can say why what they left out is not there.
    given = {"resources": list(resources), "namespaces": list(namespaces), "excludeUsers": list(exclude_user),
             "from": since, "to": until}
    filters = {k: v for k, v in given.items() if v}
    n, _ = write_recording(events if include_secrets else redact_credentials(events, stats), path,
                           meta={"inputs": paths, "secretsRedacted": not include_secrets,
                                 **({"filters": filters} if filters else {})}, left_out=stats.unstorable)
    warn_unusable_files(stats)
    warn_unstorable(stats)
    warn_out_of_order(stats)
    warn_clock_skew(stats)
    d = stats.to_dict()
    if output_format == "json":
        print_json({"path": path, "events": n, "parse": d})
    else:
        skipped = ", ".join(f"{reason} {count}" for reason, count in d["skipped"].items())
        click.echo(one_line(f"wrote {n} events to {path} ({d['lines']} lines read, {d['malformed']} malformed"
                            + (f"; skipped: {skipped}" if skipped else "")
                            + (f"; {stats.duplicates} second copies left out" if stats.duplicates else "") + ")"))
        if stats.malformed:  # (as replay says them: which lines, not only how many)
            click.echo(one_line(f"malformed input lines: {stats.malformed} (first: "
                                f"{'; '.join(stats.malformed_examples[:3])})"))
        if stats.redacted:
            click.echo(f"{stats.redacted} event(s) of Secrets or tokens stored with their values replaced "
                       "(--include-secrets keeps them)")
    warn_if_nothing_kept(stats)
    if stats.kept:
        warn_unmatched_resources(resources, stats)
        warn_unmatched_namespaces(namespaces, stats)
        warn_unmatched_users(exclude_user, stats)
    return 0
