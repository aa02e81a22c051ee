"""``kwoksnap diff``: semantic difference between two snapshots, or a snapshot and a live cluster."""

from __future__ import annotations

from typing import Final

import click

from kwoksnap.cli.options import (
    example_epilog,
    first_few,
    make_client,
    namespace_option,
    output_format,
    print_json,
    warn,
)


@click.command(epilog=example_epilog(
    "kwoksnap diff before.kws after.kws",
    "kwoksnap --kubeconfig \"$(kwoksnap cluster kubeconfig --name demo)\" diff before.kws --live",
    "kwoksnap diff a.kws b.kws -o json",
))
@click.argument("a", type=click.Path(exists=True, dir_okay=False, readable=False))
@click.argument("b", required=False, type=click.Path(exists=True, dir_okay=False, readable=False))
@click.option("--live", is_flag=True, help="Compare A with the live cluster (the resources A holds).")
@namespace_option("Only these namespaces (default: those A was saved with, if any)")
@click.option("--include-regenerated", is_flag=True, help="Also compare controller-created objects "
              "(default ServiceAccounts, kube-root-ca.crt, the kubernetes Service).")
@output_format
@click.pass_context
def diff(ctx: click.Context, a: str, b: str | None, live: bool, namespaces: tuple[str, ...],
         include_regenerated: bool, output_format: str) -> int:
    """Compare what restore can reproduce, ignoring uids, resourceVersions, timestamps and allocated IPs.

    A is the reference: B, or the cluster with --live, is looked at as A was saved: only the resources A holds,
    its -n namespaces (and the cluster-scoped objects save keeps with them) and its -l label selector. The resources
    B holds beyond A's are named on stderr, not compared (`diff B A` compares them). A resource one side holds
    under another name (`import` guesses a custom resource's plural when the file lacks its CRD) is compared with
    the other's resource of the same group and kind.

    Secret values are never compared, nor shown (only their keys and type): snapshots hold placeholders unless
    saved with --include-secrets, and a changed password would otherwise be printed.

    Exit code 0 when equal, 1 when different.
    """
    from kwoksnap.diff.compare import compare, kinds_of, pair_by_kind
    from kwoksnap.errors import UsageError
    from kwoksnap.kube.discovery import discover
    from kwoksnap.restore.plan import group_resource
    from kwoksnap.restore.source import LiveSource, SnapshotSource
    from kwoksnap.store import KwsReader
    from kwoksnap.store.salvage import SALVAGED

    if live == (b is not None):
        raise UsageError("give either a second snapshot B or --live")
    with KwsReader(a) as ra:
        left = SnapshotSource(ra)
        partial = {gr: f"{a}: {reason}" for gr, reason in left.incomplete().items()}
        resources = [gr for gr in left.group_resources() if gr not in partial]
        scope = frozenset(namespaces) or left.namespaces
        beyond: list[str] = []  # resources only B holds objects of (not compared)
        narrower = ""  # how B was saved narrower than A is compared
        if live:
            with make_client(ctx) as client:
                disc = discover(client)
                right = LiveSource(client, disc, selector=left.selector, versions=left.resource_keys())
                served = {r.group_resource: (r.group, r.kind) for r in disc.listable()}
                aliases = pair_by_kind(kinds_of(left.by_group_resource, [g for g in resources if g not in served]),
                                       {gr: kind for gr, kind in served.items() if gr not in resources})
                result = compare(resources, left.by_group_resource, right.by_group_resource,
                                 include_regenerated=include_regenerated, namespaces=scope, aliases=aliases,
                                 live_b=True)
        else:
            assert b is not None
            with KwsReader(b) as rb:
                other = SnapshotSource(rb)
                partial |= {gr: f"{b}: {reason}" for gr, reason in other.incomplete().items()}
                resources = [gr for gr in resources if gr not in partial]
                theirs = [gr for gr in other.group_resources() if gr not in partial]
                aliases = pair_by_kind(kinds_of(left.by_group_resource, [g for g in resources if g not in theirs]),
                                       kinds_of(other.by_group_resource, [g for g in theirs if g not in resources]))
                # B is looked at as A was saved, as --live looks at the cluster: only A's resources are compared
                # (and compare() takes A's namespaces and selector); what B holds beyond them is not, and is said
                # (a known defect: after `save --include pods`, every other object of a full B was "added").
                held = {group_resource(key) for key in other.counts()}
                beyond = [g for g in theirs if g not in resources and g not in aliases.values() and g in held]
                result = compare(resources, left.by_group_resource, other.by_group_resource,
                                 include_regenerated=include_regenerated, namespaces=scope, selector=left.selector,
                                 aliases=aliases)
                if any(d.change == "missing" for d in result.differences):  # (else nothing shows it)
                    narrower = _narrower(b, other.namespaces, other.selector, scope, left.selector)
    if narrower:  # (black-box finding: B saved with -n listed everything of A outside it as missing, unexplained)
        warn(narrower)
    if beyond:
        click.echo(f"note: not compared: {len(beyond)} resource(s) {b} holds and {a} does not (A is the reference; "
                   f"`diff B A` compares them): {first_few(beyond, 10)}", err=True)
    unheld = [ns for ns in dict.fromkeys(namespaces) if ns not in result.seen_namespaces]
    if unheld:  # (exit 0 all the same when nothing differs: "equal" is what README's exit codes say of it)
        them = "it" if len(unheld) == 1 else "them"
        warn(f"-n {', '.join(unheld)}: neither {a} nor {b or 'the cluster'} holds anything in {them} "
             "(of the resources compared): is the name right?")
    for gr, reason in partial.items():  # (black-box finding: what save could not list showed as "added")
        why = reason if SALVAGED in reason else f"save could not list it whole ({reason})"  # (review finding)
        warn(f"{gr} not compared: {why}")
    if partial and not result.compared:  # (black-box finding: "equal" of a file whose every resource was left out)
        warn("nothing was compared: what A holds is all in the resources left out above, so 'equal' "
             "says nothing of them")
    if output_format == "json":
        print_json(result.to_dict())
    else:
        for d in result.differences[:100]:
            where = f"{d.namespace}/{d.name}" if d.namespace else d.name
            click.echo(f"{d.change:<8} {d.resource} {where}" + (f": {_fields(d.fields)}" if d.fields else ""))
        if len(result.differences) > 100:
            click.echo(f"... {len(result.differences) - 100} more (-o json lists them)")
        click.echo(f"{'equal' if result.equal else 'different'}: {result.compared} objects compared, "
                   f"{len(result.differences)} difference{'' if len(result.differences) == 1 else 's'}")
    return 0 if result.equal else 1


_SHOWN: Final = 8  # changed fields of one object in the text (black-box finding: it showed 4, and said nothing more)


def _fields(fields: list[str]) -> str:
    """The changed fields of one object (the telling ones come first: field_differences), at most ``_SHOWN``, and
    how many more."""
    from kwoksnap.diff.normalize import FIELDS_LIMIT

    more = len(fields) - _SHOWN
    if more <= 0:
        return "; ".join(fields)
    said = f"at least {more}" if len(fields) >= FIELDS_LIMIT else str(more)  # (the walk stops at the limit)
    return "; ".join(fields[:_SHOWN]) + f"; and {said} more (-o json lists up to {FIELDS_LIMIT})"


def _narrower(b: str, namespaces: frozenset[str], selector: str, scope: frozenset[str], a_selector: str) -> str:
    """What to say when B was saved narrower than A is compared (``save -n`` or ``-l``), so that what A holds
    outside it shows as missing from B; empty if it was not."""
    said = []
    names = ",".join(sorted(namespaces)) if namespaces and not (scope and scope <= namespaces) else ""
    if names:
        said.append(f"-n {names}")
    if selector and selector != a_selector:
        said.append(f"-l {selector}")
    if not said:
        return ""
    return (f"{b} was saved with {' and '.join(said)}: what A holds beyond that shows as missing from it"
            + (f" (diff -n {names} compares only those namespaces)" if names else ""))
