"""``kwoksnap record``: a running cluster's changes, recorded as they happen, into a recording replay reads."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import click

from kwoksnap.cli.options import (
    event_filters,
    example_epilog,
    filter_spec,
    finished_partly,
    first_few,
    include_secrets,
    make_client,
    not_stdout,
    one_line,
    print_json,
    summary_format,
    warn,
    warn_if_nothing_kept,
    warn_unmatched_namespaces,
    warn_unmatched_resources,
    warn_unstorable,
    writable_target,
)

MAX_DURATION = 366 * 24 * 3600.0  # (a timer beyond the platform's time_t failed in its own thread)


@click.command(epilog=example_epilog(
    "kwoksnap record -o incident.kws --duration 30m",
    "kwoksnap record --audit-file /var/log/kubernetes/audit.log -o incident.kws",
    "kwoksnap record --audit-webhook 127.0.0.1:8900 --duration 30m -o incident.kws",
    "kwoksnap replay incident.kws --speed 10x",
))
@click.option("-o", "--output-file", "path", required=True, type=click.Path(dir_okay=False), callback=not_stdout,
              help="Recording to write (.kws), whole, when recording stops.")
@click.option("--audit-file", metavar="FILE", help="Follow this audit log (the API server's --audit-log-path) as "
              "it grows, across rotations, from its end.")
@click.option("--from-start", is_flag=True, help="With --audit-file: read what the file already holds first.")
@click.option("--audit-webhook", metavar="HOST:PORT", help="Take the batches of the API server's audit webhook "
              "backend here (PORT alone: loopback; 0: a free port, printed). Point its "
              "--audit-webhook-config-file at the URL printed.")
@click.option("--tls-cert-file", type=click.Path(exists=True, dir_okay=False), help="With --audit-webhook: serve "
              "HTTPS with this certificate (PEM; its chain may follow it in the file).")
@click.option("--tls-key-file", type=click.Path(exists=True, dir_okay=False), help="With --tls-cert-file: its key.")
@click.option("--duration", metavar="DURATION", help="Stop after this long (30s, 10m, 2h; a bare number is "
              "seconds). Without it, recording goes on until Ctrl-C (or SIGTERM).")
@event_filters
@include_secrets
@summary_format
@click.pass_context
def record(ctx: click.Context, path: str, audit_file: str | None, from_start: bool, audit_webhook: str | None,
           tls_cert_file: str | None, tls_key_file: str | None, duration: str | None, resources: tuple[str, ...],
           namespaces: tuple[str, ...], exclude_user: tuple[str, ...], include_secrets: bool,
           output_format: str) -> int:
    """Record a running cluster's changes as they happen, into a recording `replay` reads.

    Without --audit-file or --audit-webhook, the API server's watch of the objects themselves (the cluster of
    --kubeconfig/--context; read access is enough): each change becomes the requests that made it, timed when it
    arrived, and replays verbatim only (a watch does not say who made a change). The recording holds what `convert`
    would keep of the same changes (nodes, pods and node leases unless --resources adds more; Secrets' values
    replaced unless --include-secrets). Ctrl-C, SIGTERM or --duration stop it: what was received by then is
    written, and the file appears whole. Restore a snapshot taken just before recording began (`kwoksnap save`),
    then replay the recording onto it.

    Killed outright (SIGKILL, the OOM killer), it leaves what it recorded but the last seconds in its temporary
    file beside the output (`.NAME.HOST-PID.*.tmp`, named when the next recording of the same file starts):
    `kwoksnap salvage` makes a recording of it.
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background by a script (SIGINT ignored), a Ctrl-C before recording began was lost, one
        # after it stopped the recording (black-box finding): it stops it, or ends the start-up, from the start.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    from kwoksnap.audit import ParseStats, unmatched_resources
    from kwoksnap.errors import UsageError
    from kwoksnap.record.pipeline import WINDOW_NS
    from kwoksnap.record.pipeline import record as write
    from kwoksnap.replay.timing import parse_duration
    from kwoksnap.store.atomic import killed_recording, strays

    if audit_file is not None and audit_webhook is not None:
        raise UsageError("give one source: --audit-file FILE, --audit-webhook HOST:PORT, or neither (the watch)")
    if from_start and audit_file is None:
        raise UsageError("--from-start goes with --audit-file")
    if (tls_cert_file or tls_key_file) and audit_webhook is None:
        raise UsageError("--tls-cert-file and --tls-key-file go with --audit-webhook")
    if bool(tls_cert_file) != bool(tls_key_file):
        raise UsageError("--tls-cert-file and --tls-key-file go together")
    seconds = parse_duration(duration) if duration is not None else None
    if seconds is not None and not 0 < seconds <= MAX_DURATION:
        raise UsageError("--duration must be more than 0 and at most a year")
    writable_target(path, "-o")
    if os.path.lexists(path):  # (black-box finding: "recording ..." was said first, then this)
        raise UsageError(f"{path}: already exists")
    spec = filter_spec(resources, namespaces, exclude_user, None, None)
    stats = ParseStats()
    stop = threading.Event()
    events: Iterator[Any]
    pending: Any = None  # what the source holds and has not handed out: written too when giving up (a queue)
    unserved: list[str] = []  # --resources entries the API server serves nothing of (the watch)
    absent: list[str] = []  # -n namespaces the cluster does not hold (the watch)
    if audit_file is not None:
        from kwoksnap.record.follow import Follower

        follower = Follower(audit_file, stats, from_start=from_start)
        events, source = follower.events(stop), {"kind": "audit-file", "path": audit_file}
        said = f"the audit log {audit_file}" + (" (from its start)" if from_start else "")
    elif audit_webhook is not None:
        from kwoksnap.record.webhook import WebhookServer

        server = WebhookServer(audit_webhook, stats, tls=_tls(tls_cert_file, tls_key_file))
        events, source, pending = server.events(stop), {"kind": "audit-webhook"}, server.pending
        said = f"the audit webhook batches sent to {server.url}"
    else:
        from kwoksnap.errors import APIError
        from kwoksnap.kube.config import without_password
        from kwoksnap.kube.discovery import discover
        from kwoksnap.record.watch import REDISCOVER_SECONDS, WatchRecorder, watched

        client = ctx.with_resource(make_client(ctx))
        discovery = discover(client)
        chosen = watched(discovery, spec)
        unserved = unmatched_resources(resources, [(r.name, r.group, "") for r in discovery.listable()
                                                   if "watch" in r.verbs])
        server_url = without_password(client.config.server)
        # Named resources may come to be served while recording (a CRD made then): looked for again.
        rediscover = (lambda: watched(discover(client), spec)) if resources else None
        watcher = WatchRecorder(client, chosen, stats, namespaces=spec.namespaces, server=server_url,
                                rediscover=rediscover)
        events, source = watcher.events(stop), {"kind": "watch", "server": server_url,
                                                "serverVersion": discovery.server_version}
        pending = watcher.pending
        said = f"the changes of {', '.join(r.group_resource for r in watcher.resources)} at {server_url}"
        for ns in spec.namespaces:  # (said as save says it; black-box finding: record did not)
            with contextlib.suppress(APIError):  # (no right to read namespaces, only what is in them: nothing to say)
                if not client.exists(f"/api/v1/namespaces/{ns}"):
                    absent.append(ns)
    with _StopOnSignals(stop):  # (before it says "Ctrl-C stops and writes it": a test's Ctrl-C came first)
        click.echo(one_line(f"recording {said} into {path}; Ctrl-C stops and writes it"), err=True)
        for stray in filter(killed_recording, strays(Path(path))):  # (no writer removes those)
            warn(f"{stray} is what a recording killed before this one held (a killed recording "
                 f"keeps all but its last seconds there, a failed one all): `kwoksnap salvage {stray} -o FILE` "
                 "reads it")
        if audit_file is None and audit_webhook is None and watcher.forbidden:
            warn(f"not recorded, as listing them is forbidden: {first_few(watcher.forbidden)}")
        if audit_file is None and audit_webhook is None:  # (black-box findings: said only at the end, or never)
            for entry in unserved:
                warn(f"--resources {entry}: the API server serves no such resource (yet): it is "
                     "recorded from when it is served (a custom resource whose definition comes later; looked "
                     f"for every {REDISCOVER_SECONDS:g} s), and a misspelt name never is")
            for ns in absent:
                warn(f"namespace {ns} does not exist in the cluster (yet): its changes are recorded "
                     "from when it is made")
            if exclude_user:
                warn("--exclude-user has no effect on a recording of the watch, which does not say who "
                     "made a change (--audit-file and --audit-webhook do)")
            # (black-box finding: docs/audit.md says it when recording starts; only the refusal said it)
            click.echo("note: a watch does not say who made a change: this recording replays with --mode verbatim "
                       "only (--audit-file or --audit-webhook record who did)", err=True)
        began = time.monotonic()
        timer = threading.Timer(seconds, stop.set) if seconds is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            n, written = write(events, path, spec=spec, stats=stats, include_secrets=include_secrets, source=source,
                               on_failure=stop.set, pending=pending)
        finally:
            if timer is not None:
                timer.cancel()
    took = time.monotonic() - began
    if written != Path(path):  # (black-box finding: the whole recording was lost, exit 2 "already exists")
        warn(f"{path} appeared while recording; the recording is {written} instead")
        path = str(written)
    d = stats.to_dict()
    if output_format == "json":
        extra = ({"rotations": follower.rotations, "betweenLooks": follower.between} if audit_file is not None
                 else {} if audit_webhook is not None
                 else {"reconnects": watcher.reconnects, "relists": watcher.relists, "revoked": watcher.revoked,
                       "servedLater": watcher.later})
        print_json({"path": path, "events": n, "seconds": round(took, 3), "input": d, **extra})
    else:
        skipped = ", ".join(f"{reason} {count}" for reason, count in d["skipped"].items())
        window_s = WINDOW_NS / 1e9
        unit = "lines" if audit_file is not None else "batches" if audit_webhook is not None else "watch events"
        click.echo(one_line(f"recorded {n} events into {path} in {took:.1f}s ({d['lines']} {unit} read, "
                            f"{d['events']} audit events, {d['malformed']} malformed"
                            + (f"; skipped: {skipped}" if skipped else "")
                            + (f"; {stats.duplicates} second copies left out" if stats.duplicates else "") + ")"))
        if stats.late:  # (a webhook batch the API server sent late, a log written out of order)
            warn(f"{stats.late} event(s) arrived more than {window_s:g} s after later ones and were "
                 "recorded where they arrived, out of time order")
        if audit_file is None and audit_webhook is None and watcher.later:
            click.echo(f"served only after recording began, recorded from then (the objects there by then as created "
                       f"then): {first_few(watcher.later)}")
        if audit_file is None and audit_webhook is None and (watcher.reconnects or watcher.relists):
            click.echo(f"the watches broke {watcher.reconnects} time(s) and went on from where they were; listed "
                       f"again {watcher.relists} time(s) (changes meanwhile are timed when they were seen)")
        if stats.malformed:
            click.echo(f"malformed input: {stats.malformed} (first: {'; '.join(stats.malformed_examples[:3])})")
        if audit_file is not None and follower.rotations:
            between = (f" ({follower.between} of the files made and rotated aside between two looks, found beside "
                       "the path)" if follower.between else "")
            click.echo(f"the log was rotated {follower.rotations} time(s){between}; each file was read until it "
                       "stayed quiet")
        for where in stats.truncated.values():
            warn(f"{where} when recording stopped: left out")
        if audit_file is not None and follower.unreadable:
            warn(f"after the last rotation the log could not be opened: {follower.unreadable}")
        if stats.redacted:
            click.echo(f"{stats.redacted} event(s) of Secrets or tokens stored with their values replaced "
                       "(--include-secrets keeps them)")
    warn_unstorable(stats)
    if stats.events:
        warn_if_nothing_kept(stats)
    if stats.kept:
        warn_unmatched_resources(tuple(r for r in resources if r not in unserved), stats, live=True)
        warn_unmatched_namespaces(namespaces, stats, live=True)
    if audit_file is not None and stats.lines and not stats.events:  # (black-box finding: exit 0, an empty file)
        if output_format == "text":
            warn(f"none of the {stats.lines} line(s) read from {audit_file} was an audit event: is it "
                 "the API server's audit log (--audit-log-path, JSON lines)?")
        return finished_partly((stats.lines, "line(s) read and no audit event"), output_format=output_format)
    if audit_file is None and audit_webhook is None and watcher.revoked:
        if output_format == "text":
            warn(f"access was refused while recording, so these changes stop early: "
                 f"{first_few(watcher.revoked)}")
        return finished_partly((len(watcher.revoked), "watch(es) refused while recording"),
                               output_format=output_format)
    return 0


def _tls(cert: str | None, key: str | None) -> Any:
    if cert is None or key is None:
        return None
    import ssl

    from kwoksnap.errors import UsageError

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:  # (no pass phrase is asked for: an encrypted key is refused, not prompted for on the terminal)
        context.load_cert_chain(cert, key, password=lambda: b"")
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(f"--tls-cert-file {cert} / --tls-key-file {key} cannot be used (a certificate and its "
                         f"unencrypted key, PEM): {getattr(exc, 'reason', None) or exc}") from None
    return context


AGAIN_AFTER = 1.0  # seconds after the first signal from which any second one gives up (a second Ctrl-C always)


class _StopOnSignals:
    """Ctrl-C, SIGTERM and SIGHUP set ``stop`` (recording ends, the file is written); a second Ctrl-C gives up (the
    file is not written: what was received by then goes into its temporary file without waiting for more, which is
    kept, as a failure's is: ``pipeline.record``), as does any signal ``AGAIN_AFTER`` seconds or more after the
    first. Only the main thread can set signal handlers: elsewhere (tests) nothing changes.

    ``stop`` is set, and the notice printed, by a thread of its own that the signal wakes (``signal.set_wakeup_fd``),
    not by the handler: a handler runs in the main thread between any two bytecodes, and one that took ``stop``'s
    lock (or stderr's) while the main thread held it, in the middle of a wait on ``stop``, would wait for ever
    (review: the class of hang of CPython issue 74174)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.previous: dict[int, Any] = {}
        self.signals = 0
        self.first = 0.0  # when the first signal came (time.monotonic)
        self._pipe: tuple[int, int] | None = None
        self._wakeup = -1
        self._watcher: threading.Thread | None = None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signals += 1  # (nothing here may take a lock: see the class)
        if self.signals == 1:
            self.first = time.monotonic()
        elif signum == signal.SIGINT or time.monotonic() - self.first > AGAIN_AFTER:
            # Given up on Ctrl-C again, or another signal later on; not on another signal of the same stop (review
            # finding: systemd's SIGTERM and SIGHUP back to back gave up a recording, temporary file and all).
            raise KeyboardInterrupt

    def _watch(self, fd: int) -> None:
        told = False
        while os.read(fd, 64):
            self.stop.set()
            if not told:
                told = True
                print("stopping: writing the recording (Ctrl-C again gives up)", file=sys.stderr, flush=True)

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        read, write = os.pipe()
        os.set_blocking(write, False)
        self._pipe = (read, write)
        self._wakeup = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # (a signal now waits in the pipe for the watcher)
            self.previous[sig] = signal.signal(sig, self._handle)
        self._watcher = threading.Thread(target=self._watch, args=(read,), name="kwoksnap-signals", daemon=True)
        self._watcher.start()

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        if self._pipe is not None:
            signal.set_wakeup_fd(self._wakeup)
            read, write = self._pipe
            os.close(write)  # (the watcher reads the end of the pipe and returns)
            if self._watcher is not None:
                self._watcher.join(5)
            os.close(read)
