"""``kwoksnap cluster``: obtain the control-plane binaries and manage local KWOK clusters."""

from __future__ import annotations

from pathlib import Path

import click

from kwoksnap.cli.options import FiniteFloat, cluster_name, example_epilog, warn


def _progress(message: str) -> None:
    click.echo(message if len(message) <= 160 else message[:157] + "...", err=True)


@click.group(epilog=example_epilog(
    "kwoksnap cluster binaries",
    "kwoksnap cluster create --name demo",
    "kubectl --kubeconfig \"$(kwoksnap cluster kubeconfig --name demo)\" get nodes",
    "kwoksnap cluster delete --name demo",
))
def cluster() -> None:
    """Local KWOK clusters (kube-apiserver + etcd + controllers + kwok) for restore and replay."""


@cluster.command(epilog=example_epilog(
    "kwoksnap cluster binaries", "KWOKSNAP_CACHE_DIR=/tmp/c kwoksnap cluster binaries",
))
def binaries() -> None:
    """Build (once) or find the pinned binaries; print their directory as the last line.

    Builds kwok/kwokctl, kube-apiserver, kube-controller-manager, kube-scheduler and etcd from the Go module proxy
    into a cache keyed by versions ($KWOKSNAP_CACHE_DIR, default ~/.cache/kwoksnap). $KWOKSNAP_BIN_DIR points
    at ready binaries instead.
    """
    from kwoksnap.cluster.binaries import ensure_binaries

    click.echo(str(ensure_binaries(_progress).directory))


def _binaries(kwokctl: str | None) -> object:
    from kwoksnap.cluster.binaries import Binaries, ensure_binaries

    if kwokctl:
        import os

        # As given: `./kwokctl` is this directory's (Path("./kwokctl") is "kwokctl", which the system looked up on
        # PATH: black-box finding, another kwokctl could run, and one not executable was "No such file").
        path = Path(os.path.abspath(kwokctl))
        return Binaries(directory=path.parent, kwokctl=path)
    return ensure_binaries(_progress)


@cluster.command(epilog=example_epilog(
    "kwoksnap cluster create --name demo",
    "kwoksnap cluster create --name replay --profile replay",
    "kwoksnap cluster create --name mine --kwokctl \"$(command -v kwokctl)\"",
    "kwoksnap cluster create --name fast --heartbeat-factor 0.25   # a dead node noticed in 10 s",
))
@cluster_name
@click.option("--profile", type=click.Choice(["standard", "replay"]), default="standard", show_default=True,
              help="standard: scheduler and all controllers; replay: for verbatim replay (no scheduler, no "
                   "workload/GC/node-lifecycle controllers).")
@click.option("--kwokctl", type=click.Path(exists=True, dir_okay=False), help="Use this kwokctl (it fetches "
              "its own binaries) instead of kwoksnap's cached build.")
@click.option("--wait", type=FiniteFloat(min=0), default=120, show_default=True,
              help="Seconds to wait until it is ready.")
@click.option("--heartbeat-factor", type=FiniteFloat(min=0, min_open=True), default=None,
              help="kwokctl's: scales how often nodes renew their Leases and how long the node lifecycle controller "
                   "waits before it marks a node that stopped NotReady (40 s x the factor; kwokctl's default 5 "
                   "makes 200 s). Give it the source's when an inputs-mode replay kills nodes: the demo incident's "
                   "is 0.25.")
def create(name: str, profile: str, kwokctl: str | None, wait: float, heartbeat_factor: float | None) -> None:
    """Create a local cluster bound to 127.0.0.1, with kwoksnap's capture audit policy."""
    from kwoksnap.cluster.binaries import Binaries
    from kwoksnap.cluster.local import Profile, create_cluster, list_clusters
    from kwoksnap.errors import UsageError

    existing = next((c for c in list_clusters() if c.name == name), None)
    if existing is not None:  # (said before "creating ..." and before the binaries are looked for; checked again
        # under the create lock, against a create of the same name meanwhile)
        raise UsageError(f"cluster {name!r} already exists ({existing.directory}); delete it first")
    bins = _binaries(kwokctl)
    assert isinstance(bins, Binaries)
    _progress(f"creating cluster {name} (profile {profile}) ...")
    c = create_cluster(name, bins, profile=Profile(profile), wait=wait,
                       extra_args=() if heartbeat_factor is None else (f"--heartbeat-factor={heartbeat_factor:g}",))
    click.echo(f"kubeconfig: {c.kubeconfig}")
    click.echo(f"audit log:  {c.audit_log}")


@cluster.command(epilog=example_epilog("kwoksnap cluster delete --name demo"))
@cluster_name
def delete(name: str) -> None:
    """Stop every process of a local cluster and remove all its files.

    Deleting a cluster that does not exist is not an error (exit 0, a note on stderr), so that cleanup scripts and
    traps can run it unconditionally, as `kind delete cluster` allows.
    """
    from kwoksnap.cluster.binaries import find_binaries, user_kwokctl
    from kwoksnap.cluster.local import delete_cluster
    from kwoksnap.errors import ToolError

    try:
        binaries = find_binaries() or user_kwokctl()
    except ToolError as exc:  # a wrong $KWOKSNAP_BIN_DIR must not keep a cluster running: it is stopped without
        warn(f"{exc}; stopping the cluster's processes from their pid files")  # kwokctl
        binaries = None
    if delete_cluster(name, binaries):
        click.echo(f"deleted cluster {name}")
    else:
        click.echo(f"no cluster named {name}: nothing to delete", err=True)


@cluster.command(name="list")
def list_() -> None:
    """List local clusters: name, state (running, stopped, or incomplete: its create has not finished, or was killed),
    profile, kubeconfig."""
    from kwoksnap.cluster.local import cluster_running, list_clusters

    clusters = list_clusters()
    for c in clusters:
        profile = c.profile
        # (no valid profile marker, written last by create: one killed outright, or a damaged marker; black-box
        # findings: it was listed "running standard", and a damaged marker was an internal error for every cluster)
        state = "incomplete" if profile is None else "running" if cluster_running(c) else "stopped"
        click.echo(f"{c.name}\t{state}\t{'?' if profile is None else profile.value}\t{c.kubeconfig}")
    if not clusters:  # (on stderr: the list a script reads stays empty)
        click.echo("no local clusters (`kwoksnap cluster create --name N` makes one)", err=True)


@cluster.command()
@cluster_name
def kubeconfig(name: str) -> None:
    """Print the kubeconfig path of a local cluster."""
    from kwoksnap.cluster.local import list_clusters
    from kwoksnap.errors import UsageError

    for c in list_clusters():
        if c.name == name:
            if not c.kubeconfig.exists():  # (black-box finding: a path that did not exist was printed, exit 0)
                raise UsageError(f"cluster {name} has no kubeconfig ({c.kubeconfig}): its create has not finished, "
                                 f"or was killed; `kwoksnap cluster delete --name {name}` removes what is left")
            click.echo(str(c.kubeconfig))
            return
    raise UsageError(f"no cluster named {name}")
