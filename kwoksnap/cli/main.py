"""The ``kwoksnap`` command group, its global options, and the one error boundary of the program.

Subcommands are imported lazily (only the one being run), so ``kwoksnap --help`` never imports the kubernetes
client, msgpack or zstandard.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import traceback
from typing import Any, Final

import click

from kwoksnap import __version__
from kwoksnap.cli.options import GlobalOptions, one_line
from kwoksnap.errors import REFUSALS, WRITE_REFUSALS, ExitCode, FormatError, KwoksnapError

# command name -> "module:attribute", loaded on first use.
COMMANDS = {
    "cluster": "kwoksnap.cli.cluster:cluster",
    "convert": "kwoksnap.cli.convert:convert",
    "replay": "kwoksnap.cli.replay:replay",
    "record": "kwoksnap.cli.record:record",
    "diff": "kwoksnap.cli.diff:diff",
    "export": "kwoksnap.cli.interop:export",
    "import": "kwoksnap.cli.interop:import_",
    "inspect": "kwoksnap.cli.inspect:inspect",
    "restore": "kwoksnap.cli.restore:restore",
    "salvage": "kwoksnap.cli.salvage:salvage",
    "save": "kwoksnap.cli.save:save",
}


class _OutputClosed(Exception):
    """stdout (or stderr) was closed early; not an OSError, so that click does not turn it into a silent exit 1."""


class LazyGroup(click.Group):
    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:  # (--help and --version write while the arguments are parsed)
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError:
            raise _OutputClosed from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _OutputClosed from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="Shell completion: eval \"$(_KWOKSNAP_COMPLETE=bash_source kwoksnap)\" (zsh_source, fish_source).",
)
@click.option("--kubeconfig", envvar="KUBECONFIG", metavar="PATH", help="Kubeconfig file (default: $KUBECONFIG, "
              "~/.kube/config).")
@click.option("--context", metavar="NAME", help="Kubeconfig context to use.")
@click.option("-v", "--verbose", count=True, help="Log what each stage does on stderr (resources saved and "
              "restored, retries, the replay's preparation); -vv also every API request with its status and time "
              "(never headers or bodies).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, prog_name="kwoksnap")
@click.pass_context
def cli(ctx: click.Context, kubeconfig: str | None, context: str | None, verbose: int, debug: bool) -> None:
    """Capture a Kubernetes incident and replay it, faster, in a KWOK cluster."""
    # Only kwoksnap's own loggers get louder: other libraries' debug logs hold what kwoksnap never shows (the
    # kubernetes package's OIDC refresh logs the client secret and the tokens through requests_oauthlib).
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger("kwoksnap").setLevel(logging.WARNING - 10 * min(verbose, 2))
    ctx.obj = GlobalOptions(kubeconfig=kubeconfig, context=context, verbose=verbose, debug=debug)


class _Formatter(logging.Formatter):
    """kwoksnap's own warnings as every other warning it prints (``warning: ...``: review finding, a kept
    recording was named by "WARNING kwoksnap.record: ..."); -v's lines and other libraries' as they were."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno == logging.WARNING and record.name.partition(".")[0] == "kwoksnap":
            return f"warning: {one_line(record.getMessage())}"
        return super().format(record)


def main(argv: list[str] | None = None, *, process: bool = False) -> None:
    """Run the CLI; every error leaves as one line on stderr and a documented exit code (README, "Exit codes").

    ``process``: this is the process's entry point (:func:`entry`), so once the command has ended, its outcome
    said, a Ctrl-C, SIGTERM or SIGHUP changes nothing and is ignored. Until then, one a moment after `save`'s
    summary (the interpreter's exit joining the pools' threads) made the process die of SIGINT, its file whole
    (review finding)."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    prog = "kubectl kwoksnap" if sys.argv and sys.argv[0].endswith("kubectl-kwoksnap") else "kwoksnap"
    code: int
    # SIGTERM (a CI job's timeout, a service manager, `kill`) and SIGHUP (a closed terminal or SSH session) stop a
    # command like Ctrl-C: the writes in flight finish, the report is printed, child processes are not left behind
    # (a binaries build runs in its own session, which a hangup does not reach). Only the main thread can set them.
    stops = (signal.SIGTERM, signal.SIGHUP)
    previous = ({sig: signal.signal(sig, _interrupt) for sig in stops}
                if threading.current_thread() is threading.main_thread() else None)
    try:
        try:
            result: Any = cli.main(args=argv, prog_name=prog, standalone_mode=False)
        finally:
            if process and previous is not None:  # the outcome is decided: said below whatever comes now (a
                for sig in (signal.SIGINT, *stops):  # Ctrl-C while "interrupted" or an error line was printed
                    signal.signal(sig, signal.SIG_IGN)  # showed a traceback)
        code = result if isinstance(result, int) else ExitCode.OK
    except KwoksnapError as exc:
        code = _error(prog, error_line(exc), exc.exit_code, debug)
    except click.exceptions.Abort:
        click.echo(f"{prog}: interrupted", err=True)
        code = ExitCode.INTERRUPTED
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted", err=True)
        code = ExitCode.INTERRUPTED
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.UsageError as exc:  # click's own checks (unknown option, a value out of range): one line too
        if type(exc).__name__ == "NoArgsIsHelpError":  # click >= 8.2: `kwoksnap` or `kwoksnap cluster` alone
            exc.show()
        else:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"{prog}: error: {one_line(exc.format_message())}{hint}", err=True)
        code = ExitCode.USAGE
    except click.ClickException as exc:
        click.echo(f"{prog}: error: {one_line(exc.format_message())}", err=True)
        code = exc.exit_code
    except (_OutputClosed, BrokenPipeError):  # the reader went away (`| head`): nothing to say, nowhere to say it
        with contextlib.suppress(OSError):  # and no second failure when the interpreter flushes stdout at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        code = ExitCode.OUTPUT_CLOSED
    except OSError as exc:
        if exc.errno not in REFUSALS:  # anything else (a missing file the code should have checked): a bug
            code = _internal(prog, exc, debug)
        else:  # the disk is full, a file-size limit, an I/O error (files are written whole or not at all:
            # store/atomic.py and KwsWriter remove their temporary files on the way out)
            where = f"{exc.filename}: " if exc.filename else ""
            said = " (nothing was left half-written)" if exc.errno in WRITE_REFUSALS else ""  # (not of a read)
            code = _error(prog, f"{where}{exc.strerror or exc}{said}", ExitCode.SYSTEM, debug)
    except TypeError as exc:
        # orjson refuses more than 255 levels of maps and lists ("Recursion limit reached", a TypeError): an object
        # nested that deep (the API server accepts them) cannot be compared or exported. (The data kwoksnap reads,
        # JSON, msgpack, alias-checked YAML, cannot be cyclic, orjson's other reason for that message.)
        if "Recursion limit reached" not in str(exc):
            code = _internal(prog, exc, debug)
        else:
            code = _error(prog, "an object is nested more deeply than kwoksnap can process (over 255 levels of maps "
                          "and lists)", ExitCode.INPUT, debug)
    except RecursionError:  # an object deeper than some step can walk (the API server accepts deeper ones)
        code = _error(prog, "an object is nested more deeply than kwoksnap can process (about 1,000 levels of "
                      "maps and lists; about 500 in YAML `import` reads)", ExitCode.INPUT, debug)
    except Exception as exc:  # the boundary: anything else is a bug, reported as such
        code = _internal(prog, exc, debug)
    finally:
        if not process:
            for sig, handler in (previous or {}).items():
                signal.signal(sig, handler)
    if sys.stdout is None and code == ExitCode.OK:  # started with stdout closed (`>&-`): Python drops what is
        code = ExitCode.OUTPUT_CLOSED  # printed without a word, so the output was lost as surely as into a gone pipe
    sys.exit(int(code))


#: What the error line about a damaged .kws file ends with (the store says which errors those are).
SALVAGE_HINT: Final = "; `kwoksnap salvage` copies the readable part"


def error_line(exc: KwoksnapError) -> str:
    """An error as its one line says it: a damaged .kws file's with the way to what is left of it."""
    return f"{exc}{SALVAGE_HINT}" if isinstance(exc, FormatError) and exc.salvageable else str(exc)


def _error(prog: str, message: str, code: ExitCode, debug: bool) -> ExitCode:
    """The one error line (a traceback first with --debug), and the exit code to leave with."""
    if debug:
        traceback.print_exc()
    click.echo(f"{prog}: error: {one_line(message)}", err=True)
    return code


def _internal(prog: str, exc: Exception, debug: bool) -> ExitCode:
    if debug:
        traceback.print_exc()
    click.echo(f"{prog}: internal error: {type(exc).__name__}: {one_line(str(exc))} (rerun with --debug for a "
               "traceback)", err=True)
    return ExitCode.INTERNAL


def entry() -> None:
    """The ``kwoksnap`` and ``kubectl-kwoksnap`` console scripts and ``python -m kwoksnap``."""
    main(process=True)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
