"""Recordings: the parsed, filtered, time-sorted change stream stored as a .kws file (content type recording).

Why this module exists: parsing a large audit log costs far more than decoding msgpack, and a replay is often run
many times (different speeds, modes, targets). ``kwoksnap convert`` pays the parsing once; ``replay`` accepts the
recording instead of the logs. All events of a recording are one time-ordered stream, so they share one resource
key in the .kws index (frames are per resource); the real resource of each event is inside it.

A recording ``kwoksnap import`` made of a kwokctl one (``kwokctl snapshot export --record``) is read too: its flat
changes become audit events through :mod:`kwoksnap.audit.kwokctl`.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final, cast

from kwoksnap.audit import AuditEvent, FilterSpec, ParseStats, filter_events, read_audit
from kwoksnap.audit.kwokctl import owners_first, recording_events
from kwoksnap.capture.redact import (
    WEBHOOK_PATCH_ANNOTATION,
    decoded_body,
    is_secrets,
    redact_audit_annotations,
    redact_secret_body,
    redact_token_body,
)
from kwoksnap.clock import Clock, RealClock
from kwoksnap.errors import WRITE_REFUSALS, InputError, OutputKept, Unstorable
from kwoksnap.store import KwsReader, KwsWriter

log = logging.getLogger("kwoksnap.record")

STREAM = "audit.k8s.io/v1/events"


def audit_events(paths: list[str], spec: FilterSpec, stats: ParseStats, *, strict: bool = False) -> Iterator[
        AuditEvent]:
    """Replayable events of audit logs: parsed, merged by time, filtered."""
    return filter_events(read_audit(paths, stats=stats, strict=strict, prefilter=spec), spec, stats)


def redact_credentials(events: Iterable[AuditEvent], stats: ParseStats) -> Iterator[AuditEvent]:
    """The events with the values in Secrets' bodies replaced (``capture.redact``), counted in ``stats.redacted``:
    by default neither a recording nor a replay carries a Secret's values, as a snapshot does not. So are the
    patches mutating webhooks made of a Secret (audit annotations), and the bearer tokens of TokenRequests and
    TokenReviews (which ``--resources '*'`` keeps). A body re-exported as a JSON string is decoded first."""
    for ev in events:
        redact = _redactor(ev["group"], ev["resource"], ev["subresource"])
        if redact is None and (_secret_kind(ev["request"]) or _secret_kind(ev["response"])):
            redact = redact_secret_body  # a Secret logged under another resource (no API server does): by kind
        if redact is not None and (ev["request"] is not None or ev["response"] is not None
                                   or any(str(k).startswith(WEBHOOK_PATCH_ANNOTATION) for k in ev["annotations"])):
            ev = cast(AuditEvent, {**ev, "request": redact(decoded_body(ev["request"])),
                                   "response": redact(decoded_body(ev["response"])),
                                   "annotations": redact_audit_annotations(ev["annotations"])})
            stats.redacted += 1
        yield ev


def _secret_kind(body: Any) -> bool:
    """Whether an audit body is a Secret by its kind (a body re-exported as a JSON string too)."""
    if isinstance(body, str) and '"Secret"' in body:
        body = decoded_body(body)
    return isinstance(body, dict) and body.get("kind") == "Secret"


def _redactor(group: str, resource: str, subresource: str) -> Callable[[Any], Any] | None:
    """What replaces the values in the bodies of an event of this resource (None: nothing to hide). Generous: the
    core group also as ``core``, any letter case (:func:`is_secrets`), a Secret's any subresource, TokenReviews of
    any group (GKE says ``authentication``; a custom resource of that name loses only its token)."""
    if is_secrets(group, resource):
        return redact_secret_body
    resource = resource.lower()
    if (resource == "serviceaccounts" and group in ("", "core") and subresource.lower() == "token") or (
            resource == "tokenreviews"):
        return redact_token_body
    return None


def write_recording(events: Iterable[AuditEvent], path: str | Path, *, meta: dict[str, Any],
                    source: dict[str, Any] | None = None, flush_every: float | None = None,
                    clock: Clock | None = None, left_out: list[str] | None = None,
                    on_failure: Callable[[], object] | None = None,
                    in_hand: Callable[[], Iterable[AuditEvent]] | None = None) -> tuple[int, Path]:
    """Write ``events`` (time-sorted) as a recording; its header's ``source`` is ``{"kind": "audit-log"}`` unless
    given (``kwoksnap record``'s). ``flush_every``: every so many seconds (of ``clock``), what was written is handed
    to the system, however quiet the source, so that a process killed outright leaves it in the temporary file (no
    writer removes such a file: ``store.atomic.killed_recording``), and a file that appeared under ``path``
    meanwhile makes the recording go beside it, and a failure (a full disk, a second Ctrl-C) leaves what was written
    in the temporary file, named in a warning (``kwoksnap record``). An event the file cannot hold (a body of many
    MiB that compresses beyond what readers accept) is left out and named in ``left_out`` (``file:line: why``), and
    the others are written. When a periodic flush fails, it is said at once (a warning) and ``on_failure`` is
    called, which should end ``events`` (``kwoksnap record`` stops: black-box finding, a full disk was said only at
    Ctrl-C, while events went on being taken). ``in_hand``: when the writing is given up (KeyboardInterrupt: a
    second Ctrl-C), the events received and not written yet (``kwoksnap record``'s time-order window and queues),
    written into the temporary file before it is kept (known defect: they were lost). Returns the events written
    and the file they are in."""
    count, said = 0, False
    live = flush_every is not None
    w = KwsWriter(path, content_type="recording", source=source or {"kind": "audit-log"}, meta=meta,
                  beside_if_taken=live, keep_on_failure=live)
    try:
        with w:
            lock, done = threading.Lock(), threading.Event()
            failed: list[BaseException] = []

            def flush_now_and_then(every: float, clock: Clock) -> None:
                try:
                    while clock.sleep_until(clock.now() + every, done):
                        with lock:
                            w.flush()
                except BaseException as exc:  # (a full disk: the writing stops)
                    failed.append(exc)
                    if isinstance(exc, OSError):
                        log.warning("the recording cannot be written (%s: %s): it stops", exc.filename or path,
                                    exc.strerror or exc)
                    if on_failure is not None:
                        on_failure()

            flusher = None
            if flush_every is not None:
                flusher = threading.Thread(target=flush_now_and_then, args=(flush_every, clock or RealClock()),
                                           name="kwoksnap-flush", daemon=True)
                flusher.start()
            def put(ev: AuditEvent) -> int:
                record = {"type": "event", "resource": STREAM, "ts": ev["ts"], "namespace": ev["namespace"],
                          "event": ev}
                try:
                    with lock:
                        w.write(record)
                except Unstorable as exc:
                    if left_out is not None:
                        left_out.append(f"{ev['source']}: {exc}")
                    return 0
                return 1

            try:
                for ev in events:
                    if failed:
                        raise failed[0]
                    count += put(ev)
            except KeyboardInterrupt:
                # Given up (a second Ctrl-C): what is in hand is written, then the temporary file is kept as before.
                # Once the flusher has ended (between two flushes it ends at once; a flush in progress, on a slow
                # disk, is waited for, as the `finally` always did: review finding, its 1 s wait gave up on it and
                # the events in hand were dropped without a word). (A third Ctrl-C ends this too: what was written
                # stays.)
                done.set()
                if flusher is not None:
                    flusher.join()
                if in_hand is not None and not failed:
                    for ev in in_hand():
                        count += put(ev)
                raise
            finally:
                done.set()
                if flusher is not None:
                    flusher.join()
            if failed:
                raise failed[0]
    except OSError as exc:
        if w.kept is None or exc.errno not in WRITE_REFUSALS:
            raise
        said = True
        # (black-box finding: the error line said "nothing was left half-written" right after the warning that
        # the temporary file holds the recording)
        raise OutputKept(f"{exc.filename or path}: {exc.strerror or exc}; what was recorded until then is in "
                         f"{w.kept}: `kwoksnap salvage {w.kept} -o FILE` makes a recording of it") from exc
    finally:
        if w.kept is not None and not said:
            log.warning("what was recorded until then is in %s: `kwoksnap salvage %s -o FILE` makes a recording of "
                        "it", w.kept, w.kept)
    return count, w.path


def read_recording(path: str | Path, spec: FilterSpec | None = None, stats: ParseStats | None = None) -> Iterator[
        AuditEvent]:
    """Events of a recording, optionally filtered again (e.g. a narrower --namespace or --from)."""
    reader = KwsReader(path)
    if reader.content_type != "recording":
        reader.close()
        raise InputError(f"{path}: is a {reader.content_type}, not a recording (use `kwoksnap restore` for "
                         "snapshots)")
    if not reader.clean:  # found now, not after the part before the break was replayed
        # What the walk found there (black-box finding: bytes added to a whole file were said to be a cut).
        found = reader.scan()
        reader.close()
        why = found.reason or ""
        if not found.appended:
            why = f"not closed cleanly (cut short, or convert was interrupted{': ' + why if why else ''})"
        raise InputError(f"{path}: {why}; `kwoksnap salvage` copies what is readable into a whole file, and "
                         "`kwoksnap convert` writes it again from the audit log")
    try:  # and every frame's checksum, before the target is touched (black-box finding: a damaged frame was
        reader.verify_checksums()  # found after inputs mode had handed the restored pods and nodes back to kwok)
    except BaseException:
        reader.close()
        raise

    if stats is not None:
        stats.files[str(path)] = "recording"
    if _source_kind(reader) == "kwokctl-yaml":
        if "timeBase" not in (reader.header.get("meta") or {}):
            reader.close()
            raise InputError(f"{path}: imported by an older kwoksnap, which left the recording's times relative "
                             "($(time-offset-nanosecond N)): `kwoksnap import` the kwokctl file again")

        def changes() -> Iterator[AuditEvent]:
            with reader:
                # Frames are per resource: each resource's records are in the recording's order, and the
                # resources' streams are merged by time (each stream reads its objects before its first change,
                # so the UIDs of the objects the recording starts from are known when the first change comes).
                known: set[str] = set()
                yield from owners_first(heapq.merge(*(
                    recording_events(reader.records(key), source=f"{path} {key}", stats=stats, known=known)
                    for key in reader.resources() if key), key=lambda ev: ev["ts"]), known)

        return filter_events(changes(), spec, stats) if spec is not None else changes()

    def events() -> Iterator[AuditEvent]:
        with reader:
            for n, rec in enumerate(reader.records(STREAM), 1):
                if rec.get("type") != "event":
                    continue
                event = rec.get("event")
                if (problem := _event_problem(event)) is not None:  # (a hand-made or damaged file's)
                    if stats is not None:
                        stats.add_malformed(f"{path}: record {n}", problem)
                    continue
                if stats is not None:  # the recording's events are what the report's input counts
                    stats.events += 1
                    stats.formats["recording"] += 1
                yield cast(AuditEvent, event)

    return filter_events(events(), spec, stats) if spec is not None else events()


def recording_source(path: str | Path) -> str:
    """What a recording was made of (its header's ``source.kind``): ``audit-log`` (``convert``), ``audit-file``,
    ``audit-webhook`` or ``watch`` (``record``), ``kwokctl-yaml`` (``import`` of a kwokctl recording: its changes
    are not filtered yet); "" if it is no recording or says nothing. Neither a watch's changes nor kwokctl's name
    who made them."""
    with KwsReader(path) as reader:
        return _source_kind(reader) if reader.content_type == "recording" else ""


def recording_gaps(path: str | Path) -> dict[str, str]:
    """What a recording lacks, by resource (its index's ``incomplete``: records lost to damage, left out by
    ``kwoksnap salvage``); empty for a whole one or no recording."""
    with KwsReader(path) as reader:
        return reader.incomplete() if reader.clean else {}


def recording_filters(path: str | Path) -> dict[str, Any]:
    """The filters ``convert`` made a recording with (its header's ``meta.filters``: ``resources``, ``namespaces``,
    ``excludeUsers``, ``from``, ``to``, each only when given); empty for none, or a recording made otherwise."""
    with KwsReader(path) as reader:
        meta = reader.header.get("meta")
        filters = meta.get("filters") if isinstance(meta, dict) else None
        return filters if isinstance(filters, dict) else {}


def _source_kind(reader: KwsReader) -> str:
    source = reader.header.get("source")
    kind = source.get("kind") if isinstance(source, dict) else None
    return kind if isinstance(kind, str) else ""


# The type of every key of an event (docs/audit.md §3) that the replay and the filters rely on.
_EVENT_TYPES: Final[dict[str, type]] = {
    **dict.fromkeys(("ts", "received", "code"), int),
    **dict.fromkeys(("auditID", "stage", "level", "verb", "user", "userAgent", "group", "version", "resource",
                     "subresource", "namespace", "name", "uri", "source"), str),
    "groups": list, "annotations": dict,
}


def _event_problem(event: object) -> str | None:
    """Why a recording's event is not one ``convert`` writes (None if it is): a key missing or of another type."""
    if not isinstance(event, dict):
        return "an event record without an audit event (its `event` map)"
    for key, kind in _EVENT_TYPES.items():
        value = event.get(key)
        if type(value) is not kind:
            found = "missing" if key not in event else type(value).__name__
            return f"the event's {key!r} is {found}, not {kind.__name__}"
    if "request" not in event or "response" not in event:
        return "the event lacks 'request' or 'response'"
    if not all(type(g) is str for g in event["groups"]) or not all(
            type(k) is str and type(v) is str for k, v in event["annotations"].items()):
        return "the event's 'groups' or 'annotations' hold something other than strings"
    return None
