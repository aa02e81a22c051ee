"""``kwoksnap replay``: re-drive recorded changes into a cluster, faster."""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any

import click

from kwoksnap.cli.options import (
    FiniteFloat,
    a_previous_report,
    audit_input,
    example_epilog,
    exit_abandoning,
    expand_audit_paths,
    filter_spec,
    finished_partly,
    first_few,
    include_secrets,
    make_client,
    not_an_input,
    not_stdout,
    one_line,
    outcome_decided,
    output_format,
    print_json,
    replaceable,
    warn,
    warn_clock_skew,
    warn_if_nothing_kept,
    warn_made_with,
    warn_out_of_order,
    warn_unmatched_namespaces,
    warn_unmatched_resources,
    warn_unmatched_users,
    warn_unusable_files,
    window_beyond,
    writable_target,
)

MIN_GAP = 0.001  # seconds: the shortest --max-gap (a shorter one compresses every gap, as 0 would)


@click.command(epilog=example_epilog(
    "kwoksnap replay --audit audit.log --speed 10x",
    "kwoksnap replay trace.kws --speed max --report report.json",
    "kwoksnap replay --audit 'audit-*.log.gz' --mode inputs --max-gap 30s -n shop",
    "kwoksnap replay --audit audit.log --actor 'agent:argocd*=user' --mode inputs",
))
@click.argument("recording", required=False, type=click.Path(exists=True, dir_okay=False, readable=False))
@audit_input
@click.option("--speed", default="1x", show_default=True, help="10x, 10, 0.5x, 1x, or max (no waiting).")
@click.option("--max-gap", metavar="DURATION", help="Compress idle stretches of recorded time to at most this "
              "(30s, 5m; a bare number is seconds).")
@click.option("--mode", type=click.Choice(["verbatim", "inputs"]), default="verbatim", show_default=True,
              help="verbatim: every recorded change (controllers, scheduler, kubelets too); inputs: only users "
                   "and external clients, the target's controllers react.")
@click.option("--actor", "actor_rules", multiple=True, metavar="PATTERN=ACTOR",
              help="Override actor classification (user:, agent:, group: glob prefixes), e.g. "
                   "'agent:argocd*=user'.")
@click.option("--keep-timestamps", is_flag=True, help="Keep the recorded times inside objects instead of moving "
              "them onto the replay clock.")
@click.option("--workers", type=click.IntRange(1, 256), default=32, show_default=True,
              help="The most requests in flight. At a paced speed, how many are in flight adapts to the "
                   "target's latency between 4 and this; --speed max uses all.")
@click.option("--fixed-workers", is_flag=True, help="Keep --workers requests in flight whenever there is work, "
              "instead of adapting to the target's latency (better for a remote target loaded near its capacity).")
@click.option("--lease-interval", type=FiniteFloat(min=0), default=1.0, show_default=True, metavar="SECONDS",
              help="Coalesce node-lease renewals of one lease to at most one per this many wall seconds (0: replay "
                   "every renewal).")
@click.option("--max-lead", default="250ms", show_default=True, metavar="DURATION",
              help="Send a burst the target cannot take on time up to this much (wall time) early, so that it lands "
                   "around its recorded time instead of after it; 0 never sends early.")
@click.option("--capacity", type=FiniteFloat(min=0, min_open=True), metavar="WRITES/S",
              help="The target's write rate for --max-lead (default: measured before the clock starts, with a few "
                   "scratch pods in the default namespace, bound to no real node; ConfigMaps if pods are refused).")
@click.option("--allow-real-nodes", is_flag=True, help="Replay even if the target has nodes KWOK does not manage.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), callback=not_stdout,
              help="Also write the report as JSON.")
@click.option("--no-fidelity", is_flag=True, help="Skip the final comparison with the recorded states.")
@include_secrets
@output_format
@click.pass_context
def replay(ctx: click.Context, recording: str | None, audit_paths: tuple[str, ...], resources: tuple[str, ...],
           namespaces: tuple[str, ...], exclude_user: tuple[str, ...], since: str | None, until: str | None,
           strict: bool, speed: str, max_gap: str | None, mode: str, actor_rules: tuple[str, ...],
           keep_timestamps: bool, workers: int, fixed_workers: bool, lease_interval: float, max_lead: str,
           capacity: float | None, allow_real_nodes: bool,
           report_path: str | None, no_fidelity: bool, include_secrets: bool,
           output_format: str) -> int:
    """Replay the changes of an audit log (or a recording from `kwoksnap convert`) at the chosen speed.

    Exit code 0 when every event applied and the final states match the recording, 5 otherwise; 130 when
    interrupted (Ctrl-C), after the report of what was sent.
    """
    from kwoksnap.audit import ParseStats, classify, make_classifier, parse_rule
    from kwoksnap.audit.actors import doubtful_field
    from kwoksnap.errors import ExitCode, KwoksnapError, UsageError
    from kwoksnap.replay.checks import check_target, snapshot_taken
    from kwoksnap.replay.engine import Replayer, ReplayOptions
    from kwoksnap.replay.limit import RENEWAL_YIELD
    from kwoksnap.replay.recording import (
        audit_events,
        read_recording,
        recording_filters,
        recording_gaps,
        recording_source,
        redact_credentials,
    )
    from kwoksnap.replay.timing import parse_duration, parse_speed

    if bool(recording) == bool(audit_paths):
        raise UsageError("give either a recording file or --audit logs")
    if recording and strict:  # (black-box finding: taken without a word)
        warn("--strict has no effect on a recording (its lines were parsed when it was made)")
    gap = parse_duration(max_gap) if max_gap is not None else None
    if gap is not None and not gap >= MIN_GAP:  # (black-box finding: 1e-10 s was taken, and compressed every gap)
        raise UsageError("--max-gap must be at least 1ms (less would compress every gap, not only the idle ones)")
    inputs = [str(recording)] if recording else expand_audit_paths(audit_paths)
    if report_path:
        replaceable(report_path, "--report")  # (first: no probe file made beside /dev/null)
        writable_target(report_path, "--report")  # now, not after a long replay
        not_an_input(report_path, inputs, "--report")
        a_previous_report(report_path, "--report")
    made_of = recording_source(str(recording)) if recording else ""
    gaps = [f"the recording lacks events of {key}: {reason}; the replay lacks their changes"
            for key, reason in (recording_gaps(recording) if recording else {}).items()]
    kwokctl = made_of == "kwokctl-yaml"
    if made_of in ("kwokctl-yaml", "watch") and mode == "inputs":
        what = "a kwokctl recording" if kwokctl else "a recording of a watch"
        raise UsageError(f"{recording}: {what} names no user or client, so --mode inputs cannot tell users' changes "
                         "from the cluster's own: replay it with --mode verbatim")
    # (A kwokctl recording holds every change of every resource it watched: the same defaults as an audit log's.)
    spec = filter_spec(resources, namespaces, exclude_user, since, until, recording=bool(recording) and not kwokctl)
    made_with = recording_filters(recording) if recording else {}  # (read once: two warnings use it)
    if recording and (since or until):
        gaps += window_beyond(str(recording), made_with, spec.since_ns, spec.until_ns)
    stats = ParseStats()
    events = (read_recording(recording, spec, stats) if recording
              else audit_events(inputs, spec, stats, strict=strict))
    if not include_secrets:
        events = redact_credentials(events, stats)
    rules = [parse_rule(r) for r in actor_rules]
    if rules and mode != "inputs":
        warn("--actor has no effect in --mode verbatim (every recorded change is replayed, "
             "whoever made it); it decides what --mode inputs replays")
    for pattern, _ in rules:
        if (word := doubtful_field(pattern)) is not None:
            warn(f"--actor {pattern!r}: {word!r} is not a field (user:, agent:, group:), so the whole "
                 "pattern is matched against user names and user agents")
    options = ReplayOptions(
        speed=parse_speed(speed), max_gap=gap,
        mode=mode,  # type: ignore[arg-type]
        keep_timestamps=keep_timestamps, workers=workers, adaptive=not fixed_workers,
        lease_interval=lease_interval, max_lead=parse_duration(max_lead), capacity=capacity,
        classifier=make_classifier(rules) if rules else classify,
    )
    # What stopped the replay after changes were sent (--strict's bad line, the target or the input failing), or
    # kept the comparison from being made: raised once the report of what was sent is out.
    stopped: Exception | None = None
    unchecked = ""  # why fidelity was not checked, when it was meant to be
    tty = sys.stderr.isatty() and output_format == "text"
    last = [0.0]

    def progress(r: Any, elapsed: float) -> None:
        now = time.monotonic()
        if tty and now - last[0] >= 0.2:
            last[0] = now
            lag = r.lag.recent_percentile(99) * 1000 if len(r.lag) else 0.0  # the last 10,000 changes
            failed = f", {r.failed} failed" if r.failed else ""  # (they were counted as applied)
            click.echo(f"\r{r.applied:>8} applied{failed}/{r.events} read, recorded {r.recorded_seconds:7.1f}s, "
                       f"wall {elapsed:6.1f}s, recent lag p99 {lag:6.1f} ms", nl=False, err=True)

    with make_client(ctx, pool_size=workers) as client:
        told: set[str] = set()  # warnings printed when the replay met them, not again at the end

        def notice(message: str) -> None:
            told.add(message)
            click.echo(("\n" if tty else "") + f"warning: {one_line(message)}", err=True)

        taken: tuple[str, int] | None = None
        checked = False
        try:
            warnings = check_target(client, options.mode, allow_real_nodes=allow_real_nodes)
            taken = snapshot_taken(client)
            checked = True
        except KeyboardInterrupt:  # (the probe: a few seconds) the report is still written: this run's, not the last
            warnings = ["interrupted while the target was checked: no recorded change was sent"]
        warnings[:0] = gaps
        if taken is not None:
            options = dataclasses.replace(options, snapshot_taken_ns=taken[1])
        for w in warnings:
            warn(w)
        replayer = Replayer(client, options, progress=progress, notice=notice)
        replayer.report.interrupted = not checked
        try:
            report = replayer.run(events) if checked else replayer.report
        except (KwoksnapError, OSError) as exc:  # --strict's bad line, an input or a target failing: say what was
            if not replayer.report.applied and not replayer.report.failed:  # sent, then fail as that error
                raise  # nothing reached the target
            report, stopped = replayer.report, exc
            report.interrupted = True
        decided = report.interrupted
        if decided:
            outcome_decided(ctx)
        if report.interrupted and stats.kept + replayer.split_extra > report.events:
            # Stopped early: events the filters kept and the planner had not reached yet (read ahead, or held for
            # ordering) were not sent either; counted as planned (a split collection delete as its named deletes),
            # they are among the unsent.
            report.events = stats.kept + replayer.split_extra
        if tty:
            click.echo("", err=True)
        warn_unusable_files(stats)
        warn_out_of_order(stats)
        warn_clock_skew(stats)
        if not report.interrupted:  # stopped before reading, the reader has kept nothing yet
            said = warn_if_nothing_kept(stats)
            if stats.kept:
                said = (warn_unmatched_resources(resources, stats) + warn_unmatched_namespaces(namespaces, stats)
                        + warn_unmatched_users(exclude_user, stats))
            if said and made_of == "audit-log":  # (a recording convert made: the filters it was made with)
                said += warn_made_with(recording or "", made_with, resources, namespaces, exclude_user, stats)
            report.warnings += said  # (in --report too: re-test finding)
            told.update(said)
        if taken is not None and report.before_snapshot:
            report.warnings.append(
                f"{report.before_snapshot} event(s) were recorded before the snapshot restored in this target was "
                f"taken ({taken[0]}): it already holds their changes, so replaying them again can fail or undo "
                f"later ones; --from {taken[0]} starts the replay there")
        for w in report.warnings:  # found while replaying
            if w not in told:
                warn(w)
        report.warnings[:0] = warnings
        if not no_fidelity and not report.interrupted:
            known = len(report.warnings)
            try:
                replayer.check_fidelity()
            except KeyboardInterrupt:  # the replay itself is done: report it, without a half-made comparison
                report.interrupted = True
                report.mismatches.clear()
                report.fidelity_checked = 0
            except KwoksnapError as exc:  # the target stopped answering at the end: the replay's report stands
                report.mismatches.clear()
                report.fidelity_checked = 0
                unchecked, stopped = f"the target could not be listed: {exc}", exc
                report.warnings.append(f"fidelity not checked: {unchecked}")
            for w in report.warnings[known:]:  # found by the comparison
                warn(w)
        if not decided:
            outcome_decided(ctx)  # (once the comparison is done)
    data = report.to_dict()
    data["input"] = stats.to_dict()
    unwritten: OSError | None = None  # the report's write failed: raised after the summary
    if report_path:
        import orjson

        from kwoksnap.store.atomic import atomic_output

        # No object bodies in it: a plain file's mode; but the target's answers it quotes (a refused write's message
        # may repeat the patch) could hold a Secret's value when --include-secrets sent them: then the user's alone.
        # A report that cannot be written (a full disk, a file-size limit) fails the command after the summary:
        # the target was changed, and what was sent must still be said (black-box finding: nothing was).
        try:
            with atomic_output(report_path, private=include_secrets) as out:
                out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        except OSError as exc:
            unwritten = exc
    if output_format == "json":
        print_json(data)
    else:
        for f in report.failures[:10]:
            click.echo(f"failed: {one_line(f)}", err=True)
        if report.failed > 10:
            click.echo(f"... and {report.failed - 10} more failures (--report lists the first 200)", err=True)
        for m in report.mismatches[:10]:
            click.echo(f"mismatch: {one_line(m)}", err=True)
        if len(report.mismatches) > 10:
            click.echo(f"... and {len(report.mismatches) - 10} more mismatches (--report lists the first 500)",
                       err=True)
        lag = data["lagMs"]
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items())) or "none"
        click.echo(f"events {report.events}: applied {report.applied}, failed {report.failed}, skipped {skipped}")
        if stats.skipped:  # (black-box finding: in --report only; convert's summary says them)
            left = ", ".join(f"{k} {v}" for k, v in sorted(stats.skipped.items()))
            click.echo(f"left out by the filters before planning: {left}")
        nothing_sent = report.interrupted and not (len(report.lag) or len(report.renewal_lag) or report.failed)
        if nothing_sent:  # (black-box finding: "1 of the 1 events planned were not sent" and zero lags, of a log
            # that kept 428: the planner had read that far)
            click.echo(f"interrupted before the first change was sent: nothing was replayed (the {report.events} "
                       "event(s) read and planned so far were not sent; the rest of the log was not read)")
        elif report.abandoned is not None:  # (re-test finding: it said each change sent was answered)
            click.echo(f"interrupted: {report.unsent} of the {report.events} events planned were not sent, or were "
                       f"sent and not waited for (a second Ctrl-C: the changes to {len(report.abandoned)} object(s), "
                       "named below)")
        elif report.interrupted:
            click.echo(f"interrupted: {report.unsent} of the {report.events} events planned were not sent (each "
                       "change sent was answered before the replay stopped, or failed: "
                       f"{report.failed} listed above)" if report.failed else
                       f"interrupted: {report.unsent} of the {report.events} events planned were not sent (each "
                       "change sent was answered before the replay stopped)")
        if report.degraded:
            levels = ", ".join(f"{level} {n}" for level, n in sorted(report.degraded.items()))
            click.echo(f"degraded (the audit level lacked the bodies to replay them as recorded): {levels}")
        if stats.malformed:
            click.echo(f"malformed input lines: {stats.malformed} (first: {'; '.join(stats.malformed_examples[:3])})")
        applied = data["appliedLagMs"]
        if nothing_sent:
            pass
        elif options.speed is None:  # every change is due at the start: its "lag" is only how long the replay ran
            # (Not "answered": a failed change may have had no answer, e.g. a create that waited in vain for an
            # older copy to go, or a target gone.)
            done = report.applied + report.failed
            rate = done / report.wall_seconds if report.wall_seconds > 0 else 0.0
            outcome = f"{report.applied} applied, {report.failed} failed" if report.failed else "all applied"
            click.echo(f"recorded {report.recorded_seconds:.1f}s replayed in {report.wall_seconds:.1f}s at --speed "
                       f"max: {done} changes done ({outcome}), {rate:.0f}/s (no deadlines, so no lag)")
        else:
            click.echo(f"recorded {report.recorded_seconds:.1f}s replayed in {report.wall_seconds:.1f}s; lag p50 "
                       f"{lag['p50']:.1f} ms, p99 {lag['p99']:.1f} ms, max {lag['max']:.1f} ms (sent); applied p50 "
                       f"{applied['p50']:.1f} ms, p99 {applied['p99']:.1f} ms, max {applied['max']:.1f} ms "
                       "(answered)")
        if data["renewals"] and options.speed is not None:
            renewal = data["renewalLagMs"]
            click.echo(f"node-lease renewals: {data['renewals']}, answered p50 {renewal['p50']:.1f} ms, p99 "
                       f"{renewal['p99']:.1f} ms, max {renewal['max']:.1f} ms after due (not in the lag above: they "
                       f"give way to object changes for up to {RENEWAL_YIELD:g} s)")
        if report.early:
            click.echo(f"bursts spread: {report.early} changes released early (at most "
                       f"{report.lead_max * 1000:.0f} ms) to land around their recorded times; the target's write "
                       f"rate: {report.capacity:.0f}/s")
        if data["concurrency"]:
            c = data["concurrency"]
            click.echo(f"requests in flight: limit {c['min']}-{c['max']}, median {c['p50']} (adapted to the target's "
                       "latency)")
        if no_fidelity or report.interrupted or unchecked:
            click.echo("fidelity: not checked (" + ("--no-fidelity" if no_fidelity else "interrupted"
                                                   if report.interrupted else unchecked) + ")")
        elif not report.fidelity_checked:
            click.echo("fidelity: no replayed pod or node to compare" + (
                " (inputs mode compares only those the replay itself wrote)" if mode == "inputs" else ""))
        else:
            click.echo(f"fidelity: {report.fidelity_checked - len(report.mismatches)}/{report.fidelity_checked} "
                       "pods and nodes match their last recorded state (the only kinds it compares)")
    if report.abandoned is not None:
        exit_abandoning(f"warning: stopped without waiting for the changes in flight to {len(report.abandoned)} "
                        "object(s) (a second Ctrl-C): whether they reached the target is unknown: "
                        f"{first_few(report.abandoned)}")
    if stopped is not None:
        raise stopped
    if unwritten is not None:
        raise unwritten
    if report.interrupted:
        return ExitCode.INTERRUPTED
    if report.failed or report.mismatches:
        return finished_partly((report.failed, "event(s) failed"),
                               (len(report.mismatches), "replayed object(s) differ from the recording"),
                               output_format=output_format, shown=10,
                               rest="--report lists up to 200 failures and 500 differences")
    return ExitCode.OK
