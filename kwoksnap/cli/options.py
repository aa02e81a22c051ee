"""Options shared by several commands, defined once, and the global settings object commands receive."""

from __future__ import annotations

import atexit
import dataclasses
import math
import os
import re
import sys
from collections.abc import Callable
from typing import Any, Final, NoReturn, TypeVar

import click

from kwoksnap.errors import ExitCode

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class GlobalOptions:
    kubeconfig: str | None
    context: str | None
    verbose: int
    debug: bool


def global_options(ctx: click.Context) -> GlobalOptions:
    obj = ctx.find_object(GlobalOptions)
    return obj if obj is not None else GlobalOptions(None, None, 0, False)


# Commands that print a report take -o text|json; commands whose -o is the file they write take --format.
output_format = click.option(
    "-o", "--output", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="Report format.",
)
summary_format = click.option(
    "--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="Summary format.",
)

def _valid_cluster_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from kwoksnap.cluster.local import validate_name

    validate_name(value)  # (black-box finding: `create` said so only after building the binaries, minutes later)
    return value


cluster_name = click.option(
    "--name", default="kwoksnap", show_default=True, help="Name of the local cluster.", callback=_valid_cluster_name,
)


class FiniteFloat(click.FloatRange):
    """A float option within a range that also refuses nan and inf (click's FloatRange lets nan through: every
    comparison with it is false)."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def example_epilog(*lines: str) -> str:
    """Help-text epilog with examples; click's \\b keeps the lines unwrapped."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def make_client(ctx: click.Context, pool_size: int = 16) -> Any:
    """A raw API client from the global --kubeconfig/--context options (imported lazily: keeps --help fast)."""
    import os

    from kwoksnap.errors import UsageError
    from kwoksnap.kube import Client, load_config

    g = global_options(ctx)
    given = ctx.find_root().get_parameter_source("kubeconfig") is click.core.ParameterSource.COMMANDLINE
    if given and g.kubeconfig and not os.path.exists(g.kubeconfig):  # (a $KUBECONFIG list may name missing files)
        raise UsageError(f"--kubeconfig {g.kubeconfig}: no such file")
    if given and g.kubeconfig and os.path.isdir(g.kubeconfig):
        raise UsageError(f"--kubeconfig {g.kubeconfig}: is a directory, not a kubeconfig file")
    if g.context == "":
        raise UsageError("--context: an empty name (leave the option out for the kubeconfig's current context)")
    # $KUBECONFIG (click reads it for --kubeconfig) is read by load_config as kubectl reads it: a list of files.
    return Client(load_config(g.kubeconfig if given else None, g.context), pool_size=pool_size)


def writable_target(path: str, option: str) -> None:
    """Refuse (before any work) an output file whose directory does not exist, cannot be written or takes no
    new file."""
    import errno
    import os
    from pathlib import Path

    from kwoksnap.errors import UsageError

    directory = Path(path).resolve().parent
    if not directory.is_dir():
        raise UsageError(f"{option} {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):  # the system's refusal (exit 7), as a write there would meet
        raise PermissionError(errno.EACCES, f"{option}: directory {directory} is not writable", path)
    # A directory the permission bits allow may still take no file (/proc, a read-only disk): the temporary file
    # the output will be written to is made there and removed, so that the refusal comes before the work
    # (black-box finding: `record -o /proc/x.kws` said "recording ..." first).
    from kwoksnap.store.atomic import temp_beside

    fd, probe = temp_beside(Path(path), keep_strays=True)  # (strays are for the command to name or remove)
    try:
        os.close(fd)
    finally:
        probe.unlink(missing_ok=True)


def replaceable(path: str, option: str) -> None:
    """Refuse an output that replaces what is there (a report) where something other than a plain file is: a
    device, a pipe or a link would be replaced by a file (as root, /dev/null itself; black-box finding)."""
    import os
    import stat

    from kwoksnap.errors import UsageError

    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError:
        return  # (said by the write itself, as the system's refusal)
    if not stat.S_ISREG(mode):
        what = ("a symbolic link" if stat.S_ISLNK(mode) else "a pipe" if stat.S_ISFIFO(mode) else "a device"
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file")
        raise UsageError(f"{option} {path} is {what}, which the written file would replace: give a plain file's "
                         "name")


def a_previous_report(path: str, option: str) -> None:
    """Refuse to replace a file that is not a report this option wrote before (black-box finding: `--report
    ~/.kube/config` replaced the kubeconfig in use): an empty file, or a JSON object with a report's ``applied``."""
    import orjson

    from kwoksnap.errors import UsageError

    try:
        with open(path, "rb") as f:
            head = f.read(64 << 20)
    except OSError:  # (not there: a new file; unreadable: said by the write itself)
        return
    if not head.strip():
        return
    try:
        data = orjson.loads(head)
    except orjson.JSONDecodeError:
        data = None
    if not (isinstance(data, dict) and "applied" in data):
        raise UsageError(f"{option} {path} exists and is not a report kwoksnap wrote: not replaced (give a new "
                         "file's name, or remove that file first)")


def not_an_input(path: str, inputs: list[str], option: str) -> None:
    """Refuse an output file that is one of the command's inputs (black-box finding: `replay --audit x.log --report
    x.log` replaced the incident's audit log by the report)."""
    import os

    from kwoksnap.errors import UsageError

    for given in inputs:
        try:
            same = os.path.samefile(path, given)
        except OSError:  # (not there yet, or unreadable: not the same file)
            continue
        if same:
            raise UsageError(f"{option} {path} is an input of this command ({given}): give another file")


def not_stdout(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """An output file option's check: ``-`` would make a file named ``-``, not write to standard output."""
    if value == "-":
        raise click.BadParameter("'-' (standard output) is not supported: give a file name")
    if value is not None and not value.strip():  # an unset variable: nothing would be written, silently
        raise click.BadParameter(f"{value!r} names no file")
    return value


def print_json(data: object) -> None:
    import orjson

    try:
        text = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=_jsonable).decode()
    except TypeError:  # an integer beyond 64 bits, a bytes key (a hand-made file's header may hold them)
        import json

        text = json.dumps(_plain(data), indent=2, ensure_ascii=False)
    click.echo(text)


def _plain(value: object) -> object:
    """``value`` with every key a string and every value one JSON has (for :func:`print_json`'s slow road)."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(_jsonable(k) if isinstance(k, bytes) else k): _plain(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float)):
        return value
    return _jsonable(value)


def camel_keys(fields: dict[str, Any]) -> dict[str, Any]:
    """A dataclass's fields (``dataclasses.asdict``) with the camelCase keys every JSON output of kwoksnap uses."""
    return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): v for k, v in fields.items()}


def _jsonable(value: object) -> object:
    """What JSON shows of a value msgpack holds and JSON has no form for (only a hand-made file's header has one):
    bytes as text where they are UTF-8, else as hex; anything else as its repr."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value.hex()
    return repr(value)


class Progress:
    """A live progress bar on a terminal (rich), nothing otherwise: the caller prints one summary line at the end."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                     console=Console(stderr=True), transient=True)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def update(self, name: str, done: int, total: int | None = None) -> None:
        if self._bar is None:
            return
        task = self._tasks.get(name)
        if task is None:
            task = self._tasks[name] = self._bar.add_task(name, total=total, rate="")
        elapsed = self._bar.tasks[task].elapsed or 0
        rate = f"{done / elapsed:,.0f}/s" if elapsed > 0 else ""
        self._bar.update(task, completed=done, rate=rate)


def split_commas(_ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """A repeatable option's values with commas as separators too: ``-n a,b -n c`` as ``("a", "b", "c")``, once
    each (namespace and resource names cannot hold a comma). The callback of -n, --resources, --include and
    --exclude."""
    for item in value:
        if not item.replace(",", "").strip():  # `-n ''` (an unset variable, say): not "every namespace"
            raise click.BadParameter(f"{item!r} names nothing", param=param)
    return tuple(dict.fromkeys(part.strip() for item in value for part in item.split(",") if part.strip()))


def not_empty(_ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """A repeatable option whose every value must say something (``--exclude-user ''`` is a mistake)."""
    for item in value:
        if not item.strip():
            raise click.BadParameter("an empty value names nothing", param=param)
    return value


_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # a DNS-1123 label, as the API server checks them


def namespace_names(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """``-n``'s values (:func:`split_commas`), each a name a namespace can have: one that cannot matched nothing,
    and said so only as a warning (black-box finding: `-n 'Bad_NS!'`)."""
    names = split_commas(ctx, param, value)
    for name in names:
        if not _NAMESPACE.fullmatch(name):
            raise click.BadParameter(f"{name!r} is no namespace name (lowercase letters, digits and '-', at most 63, "
                                     "starting and ending with a letter or digit)", param=param)
    return names


def namespace_option(help_text: str) -> Callable[[F], F]:
    """The one ``-n/--namespace`` option: repeatable and comma-separated (save, diff, replay, convert)."""
    return click.option("-n", "--namespace", "namespaces", multiple=True, callback=namespace_names,
                        help=f"{help_text} (repeatable, comma-separated).")


def event_filters(f: F) -> F:
    """Options selecting which events are kept: ``--resources``, ``-n``, ``--exclude-user`` (replay, convert,
    record)."""
    decorators = [
        click.option("--resources", multiple=True, metavar="NAME", callback=split_commas,
                     help="Keep these resources too (deployments, jobs.batch, widgets.example.com, pods/*; "
                          "a resource brings its status and scale writes along); added to the defaults: nodes, "
                          "nodes/status, pods, pods/status, pods/binding, pods/eviction, pods/ephemeralcontainers, "
                          "pods/resize, node leases. A recording `convert` wrote replays every resource it holds "
                          "unless --resources is given (an imported kwokctl one: the defaults, as an audit log)."),
        namespace_option("Only these namespaces"),
        click.option("--exclude-user", multiple=True, metavar="USER", callback=not_empty,
                     help="Skip events by these users (globs)."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def audit_input(f: F) -> F:
    """Options selecting which audit events drive a replay (shared by `replay` and `convert`)."""
    decorators = [
        click.option("--audit", "audit_paths", multiple=True, metavar="FILE|GLOB",
                     help="Audit log(s): JSON lines, .gz, EventList batches, GKE/EKS/AKS exports; repeatable, "
                          "globs accepted."),
        event_filters,
        click.option("--from", "since", metavar="TIME", help="Skip events before this RFC 3339 time (UTC when it "
                     "names no offset, as audit logs are written)."),
        click.option("--to", "until", metavar="TIME", help="Skip events at or after this RFC 3339 time (UTC when "
                     "it names no offset)."),
        click.option("--strict", is_flag=True, help="Stop at the first malformed line instead of counting it."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def filter_spec(resources: tuple[str, ...], namespaces: tuple[str, ...], exclude_user: tuple[str, ...],
                since: str | None, until: str | None, *, recording: bool = False) -> Any:
    """The filter of ``--resources``, ``-n``, ``--exclude-user``, ``--from`` and ``--to``. For a ``recording``
    (already filtered by ``convert``, perhaps with more resources than the defaults) no ``--resources`` keeps every
    resource it holds."""
    from kwoksnap.audit import FilterSpec, parse_timestamp
    from kwoksnap.audit.filters import DEFAULT_RESOURCES
    from kwoksnap.audit.timestamps import TimestampOutOfRange
    from kwoksnap.errors import UsageError

    def ts(value: str | None, name: str) -> int | None:
        if value is None:
            return None
        try:
            return parse_timestamp(value)
        except TimestampOutOfRange as exc:  # (`--to 9999-12-31T23:59:59Z`: no end)
            return exc.nearest
        except ValueError:
            raise UsageError(f"{name} {value!r} is not an RFC 3339 time (e.g. 2026-11-28T01:00:00Z)") from None

    extra = frozenset(resources)
    selected = frozenset({"*"}) if recording and not extra else DEFAULT_RESOURCES | extra
    since_ns, until_ns = ts(since, "--from"), ts(until, "--to")
    if since_ns is not None and until_ns is not None and since_ns >= until_ns:
        raise UsageError(f"--from {since} is not earlier than --to {until}")
    return FilterSpec(resources=selected, namespaces=frozenset(namespaces),
                      exclude_users=frozenset(exclude_user), since_ns=since_ns, until_ns=until_ns)


def expand_audit_paths(paths: tuple[str, ...]) -> list[str]:
    """The files of ``--audit`` (globs expanded), checked before any cluster is contacted."""
    from kwoksnap.audit import expand_paths
    from kwoksnap.errors import InputError, UsageError

    if not paths:
        raise UsageError("no audit log given (--audit FILE)")
    for path in paths:  # a file named that is a link to nothing: as a missing one (black-box finding: skipped
        # among others). A pattern's match that is one is skipped with a warning, as any unusable file it matches.
        if not any(c in path for c in "*?[") and os.path.islink(path) and not os.path.exists(path):
            raise InputError(f"{path}: no such file (a symbolic link to a missing file)")
    return expand_paths(paths)


def outcome_decided(ctx: click.Context) -> None:
    """From now until the command ends a Ctrl-C (SIGTERM, SIGHUP) is only noted: what was done is said and written
    whole, then the command exits 130 (black-box finding: a second Ctrl-C 0.06 s after the first, as the replay's
    report was printed, lost the report). For a replay or restore that was interrupted, or has finished."""
    from kwoksnap.interrupts import DeferredInterrupts

    ctx.with_resource(DeferredInterrupts())


def exit_abandoning(warning: str) -> NoReturn:
    """Say ``warning`` and exit 130 at once, after a second Ctrl-C left requests in flight: the interpreter would
    first wait for their threads, still waiting on the target. What it runs at exit runs first (the kubernetes
    package removes the client key files it wrote), then output is flushed."""
    click.echo(one_line(warning), err=True)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(ExitCode.INTERRUPTED)


def finished_partly(*counts: tuple[int, str], output_format: str, shown: int | None = None,
                    rest: str = "") -> int:
    """The closing ``kwoksnap: error: ...`` line of a run that finished but left things out or wrong (exit 5), like
    every other error: ``counts`` are ``(n, "object(s) failed")`` pairs (zeros left out); the text report lists
    them above (at most ``shown`` of each, the others where ``rest`` says), the JSON one holds them."""
    ctx = click.get_current_context(silent=True)
    prog = ctx.find_root().info_name if ctx is not None else "kwoksnap"
    what = ", ".join(f"{n} {text}" for n, text in counts if n)
    where = "listed above" if output_format == "text" else "in the JSON report"
    if output_format == "text" and shown is not None and any(n > shown for n, _ in counts):
        where = f"the first {shown} of each listed above; {rest}"  # (it said "listed above" of 55, 20 shown)
    click.echo(f"{prog}: error: {what} ({where})", err=True)
    return int(ExitCode.PARTIAL)


include_secrets = click.option(
    "--include-secrets", is_flag=True,
    help="Keep Secrets' values (by default every value is replaced by a placeholder).")


def first_few(items: list[str], n: int = 5) -> str:
    """``a, b, c and 4 more``: the first ``n`` of a list a warning names."""
    more = len(items) - n
    return ", ".join(items[:n]) + (f" and {more} more" if more > 0 else "")


# What a terminal would not show as written: C0 and C1 control characters (line breaks, tab, backspace, the escape
# that starts a colour or cursor sequence), DEL, and the Unicode line and paragraph separators.
_UNPRINTABLE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def one_line(message: str) -> str:
    """A message as the one line it must be, saying what it quotes: a line break, or any other character a terminal
    would not show as written (a file named with a newline, a backspace or a colour sequence; a server's multi-line
    answer), is shown escaped, as ``\\n`` or ``\\x1b`` (black-box findings: one line became two; ``b\\b\\bfake.kws``
    showed as ``fake.kws``; a name's colour sequence vanished)."""
    return _UNPRINTABLE.sub(_escaped, message) if _UNPRINTABLE.search(message) else message


def warn(message: str) -> None:
    """A warning on stderr: ``warning: ...``, one line whatever it quotes (:func:`one_line`)."""
    click.echo(f"warning: {one_line(message)}", err=True)


def _warn(message: str) -> str:
    warn(message)
    return message


def warn_if_nothing_kept(stats: Any) -> list[str]:
    """A warning line when no event passed the filters, with what they skipped; the warnings said."""
    if stats.kept:
        return []
    if not stats.events and not stats.skipped:  # (black-box finding: an empty recording was said "filtered")
        return [_warn("the input holds no audit event to replay")]
    skipped = ", ".join(f"{reason} {count}" for reason, count in sorted(stats.skipped.items()))
    hint = (" (replay drives nodes, pods and node leases unless --resources adds more)"
            if "resource-not-selected" in stats.skipped else "")
    if stats.outside_window:  # (black-box finding: the user was not told where the log is)
        from kwoksnap.audit import format_timestamp

        first, last = stats.outside_window
        hint += f"; the events --from/--to left out are from {format_timestamp(first)} to {format_timestamp(last)}"
    return [_warn("no event passed the filters" + (f" (skipped: {skipped})" if skipped else "") + hint)]


def warn_unmatched_resources(resources: tuple[str, ...], stats: Any, *, live: bool = False) -> list[str]:
    """A warning line per --resources entry that selected no event: a misspelt name, or one the log lacks
    (``live``: a recording, during which none of it changed); the warnings said."""
    from kwoksnap.audit import unmatched_resources

    why = "did any of it change while recording" if live else "does the log hold its writes"
    return [_warn(f"--resources {entry}: no event of it passed the filters (is the name right, and {why}?)")
            for entry in unmatched_resources(resources, stats.kept_kinds)]


def unmatched_namespaces(namespaces: tuple[str, ...], stats: Any) -> list[str]:
    """The -n namespaces no kept event was in."""
    return [namespace for namespace in namespaces if namespace not in stats.kept_namespaces]


def unused_exclusion(exclude_user: tuple[str, ...], stats: Any) -> bool:
    """Whether --exclude-user was given and left out no event."""
    return bool(exclude_user) and not stats.skipped.get("user-excluded")


def warn_unmatched_namespaces(namespaces: tuple[str, ...], stats: Any, *, live: bool = False) -> list[str]:
    """A warning line per -n namespace that no kept event was in: a misspelt name, or one the log lacks (``live``:
    a recording, in which nothing changed there while it ran); the warnings said."""
    why = "did anything change in it while recording" if live else "does the log hold writes in it"
    said = []
    for namespace in unmatched_namespaces(namespaces, stats):
        later = stats.namespace_skips.get(namespace)
        if later:  # (black-box finding: a --from past its events blamed the name)
            left = ", ".join(f"{_BY_OPTION.get(reason, reason)} {n}" for reason, n in sorted(later.items()))
            said.append(_warn(f"-n {namespace}: its events were all left out by the other filters ({left})"))
        else:  # (the byte prefilter drops other resources' lines unread: their namespaces are not known)
            also = (" of the resources replayed (--resources adds more than nodes, pods and node leases)"
                    if not live and stats.skipped.get("resource-not-selected") else "")
            said.append(_warn(f"-n {namespace}: no event in it passed the filters (is the name right, and {why}"
                              f"{also}?)"))
    return said


def warn_unmatched_users(exclude_user: tuple[str, ...], stats: Any) -> list[str]:
    """A warning line when --exclude-user left out nothing, as -n and --resources say theirs (black-box finding: a
    name in the wrong case excluded nothing, silently); the warnings said."""
    if not unused_exclusion(exclude_user, stats):
        return []
    return [_warn(f"--exclude-user {', '.join(exclude_user)}: left out no event of those the other filters kept "
                  "(names match exactly, case included; `*` and `?` match any characters)")]


def warn_made_with(recording: str, filters: dict[str, Any], resources: tuple[str, ...], namespaces: tuple[str, ...],
                   exclude_user: tuple[str, ...], stats: Any) -> list[str]:
    """After warnings that the replay's filters kept nothing of something (a --resources entry, an -n namespace, an
    --exclude-user that left out nothing, or no event at all): the filters ``convert`` made the recording with that
    left such events out for good, if any could have (black-box findings: a replay's --resources jobs was told the
    log held no Job write, when the recording had been converted without them, also without --resources at all;
    and the filters were named when none of them explained the warning); the warnings said. ``filters``: the
    recording's (:func:`converted_with`), empty for one converted without any."""
    from kwoksnap.audit import unmatched_resources

    nothing = not stats.kept
    unmatched = [] if nothing else unmatched_resources(resources, stats.kept_kinds)
    elsewhere = [] if nothing else unmatched_namespaces(namespaces, stats)
    users = not nothing and unused_exclusion(exclude_user, stats)
    given: list[str] = []  # the options that explain it
    without = False  # no --resources: the default resources only
    kept = filters.get("resources")
    if unmatched or nothing:
        if not kept:
            without = True
        elif nothing or ("*" not in kept and any(entry not in kept for entry in unmatched)):
            given.append(f"--resources {','.join(map(str, kept))}")
    only = filters.get("namespaces")
    if only and (nothing or any(namespace not in only for namespace in elsewhere)):
        given.append(f"-n {','.join(map(str, only))}")
    excluded = filters.get("excludeUsers")
    if excluded and (users or nothing):
        given.append(f"--exclude-user {','.join(map(str, excluded))}")
    if nothing:
        given += [f"{flag} {filters[key]}" for key, flag in (("from", "--from"), ("to", "--to")) if filters.get(key)]
    said = ([f"with {' '.join(given)}"] if given else []) + (
        ["without --resources (nodes, pods and node leases only)"] if without else [])
    if not said:
        return []
    return [_warn(f"{recording} was converted {' and '.join(said)}: what those left out is not in it (convert the "
                  "audit log again to replay it)")]


def converted_with(filters: dict[str, Any], keys: tuple[str, ...] = ("resources", "namespaces", "excludeUsers",
                                                                      "from", "to")) -> str:
    """The options ``convert`` made a recording with (its header's ``meta.filters``), as they were given."""
    flags = {"resources": "--resources", "namespaces": "-n", "excludeUsers": "--exclude-user", "from": "--from",
             "to": "--to"}
    return " ".join(f"{flags[key]} {','.join(map(str, v)) if isinstance(v, list) else v}" for key in keys
                    if (v := filters.get(key)))


def window_beyond(recording: str, filters: dict[str, Any], since_ns: int | None, until_ns: int | None) -> list[str]:
    """The warning when a replay's --from/--to reach beyond the window ``convert`` made the recording with (black-box
    finding: a wider window replayed the recording's 14 events, the log held 64 in it, without a word)."""
    from kwoksnap.audit import parse_timestamp

    def at(key: str) -> int | None:
        value = filters.get(key)
        if not isinstance(value, str):
            return None
        try:
            return parse_timestamp(value)
        except ValueError:
            return None

    made_from, made_to = at("from"), at("to")
    earlier = made_from is not None and (since_ns is None or since_ns < made_from)
    later = made_to is not None and (until_ns is None or until_ns > made_to)
    if not earlier and not later:
        return []
    window = converted_with(filters, ("from", "to"))
    return [f"{recording} was converted with {window}: the events outside that window are not in it, so the "
            "replay's --from/--to window is narrowed to it (convert the audit log again to replay the rest)"]


_BY_OPTION = {"resource-not-selected": "--resources (nodes, pods and node leases unless it adds more)",
              "time-window": "--from/--to", "user-excluded": "--exclude-user", "dry-run": "dry runs",
              "non-2xx": "refused requests", "kwoksnap-scratch": "kwoksnap's own scratch objects"}


def warn_unstorable(stats: Any) -> None:
    """A warning for the events a recording could not hold (left out; the others are written)."""
    if stats.unstorable:
        warn(f"{len(stats.unstorable)} event(s) left out of the recording: "
             f"{first_few(stats.unstorable, 3)}")


def warn_unusable_files(stats: Any) -> None:
    """One warning line per audit file the reader skipped (empty, binary, unreadable) while others were usable, and
    per file that ends early (a cut last line, a gzip stream that stops): what came after the cut is not there, and
    that must not pass for the whole incident (``--strict`` makes it an error)."""
    for path, why in stats.unusable_files.items():
        warn(f"skipped {path}: {why}")
    for path, where in stats.truncated.items():
        if "is corrupt" in where:
            found, _, why = where.partition(": ")
            warn(f"{path}: {why} (found at {found}, the end of a gzip member); --strict refuses such "
                 "a file")
        elif "not gzip" in where:
            found, _, why = where.partition(": ")
            warn(f"{path}: {why} (found after {found}); every event before it was read; --strict "
                 "refuses such a file")
        else:
            warn(f"{path} ends early, read up to the cut ({where}); events after it are missing")


def warn_clock_skew(stats: Any) -> None:
    """A warning line per file whose clock was measured behind another's (several API servers' logs)."""
    for path, seconds in stats.clock_skew.items():
        behind = f"{seconds:g} s" if seconds < 100 else f"{seconds:,.0f} s" + (
            f" ({seconds / 86400:,.1f} days)" if seconds >= 86400 else "")  # (not 1.63594e+08 s: black-box finding)
        warn(f"{path}: its clock is at least {behind} behind another file's (its events showed "
             "later commits at earlier times), so its changes are replayed that much early, and can come "
             "before changes they followed (docs/audit.md §4)")


def warn_out_of_order(stats: Any) -> None:
    """A warning line when events were further out of time order inside a file than the reader's reorder window
    mends: they were kept where they stood, so what came after them in the file was replayed before them."""
    if stats.late:
        from kwoksnap.audit.reader import DEFAULT_WINDOW_NS

        if stats.late * 2 > stats.events:  # most of it: a log written newest first, not parts joined wrongly
            warn(f"{stats.late} of {stats.events} event(s) came more than {DEFAULT_WINDOW_NS / 1e9:g} "
                 "s out of time order within their file and were kept where they stood: is it newest first "
                 "(`gcloud logging read` returns entries so)? Reverse it first (tac, or jq -c 'reverse[]' for "
                 "one JSON document; `gcloud logging read --order=asc`)")
            return
        warn(f"{stats.late} event(s) came more than {DEFAULT_WINDOW_NS / 1e9:g} s out of time order "
             "within their file and were kept where they stood, and such an event's copy earlier in the file "
             "is not recognised (parts of a log joined in the wrong order or overlapping, e.g. rotated files "
             "concatenated newest first? give each file its own --audit: files are merged by time, and an "
             "event two files hold is read once)")

