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


output_format = click.option(
    "-o", "--output", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="Summary format.",
)

cluster_name = click.option(
    "--name", default="kwoksnap", show_default=True, help="Name of the local cluster.",
)


def example_epilog(*lines: str) -> str:
    """Help-text epilog with examples; click's \\b keeps the lines unwrapped."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
