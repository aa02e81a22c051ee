"""Options shared by several commands, defined once, and the global settings object commands receive."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import click

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

cluster_name = click.option(
    "--name", default="kwoksnap", show_default=True, help="Name of the local cluster.",
)


def example_epilog(*lines: str) -> str:
    """Help-text epilog with examples; click's \\b keeps the lines unwrapped."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def make_client(ctx: click.Context, pool_size: int = 16) -> Any:
    """A raw API client from the global --kubeconfig/--context options (imported lazily: keeps --help fast)."""
    from kwoksnap.kube import Client, load_config

    g = global_options(ctx)
    return Client(load_config(g.kubeconfig, g.context), pool_size=pool_size)


def print_json(data: object) -> None:
    import orjson

    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


class Progress:
    """A live progress bar on a terminal (rich), nothing otherwise: the caller prints one summary line at the end."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and __import__("sys").stderr.isatty()
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
