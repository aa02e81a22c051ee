"""``kwoksnap restore``: recreate a snapshot in a (KWOK) cluster."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import click

from kwoksnap.cli.options import (
    FiniteFloat,
    Progress,
    example_epilog,
    exit_abandoning,
    finished_partly,
    first_few,
    make_client,
    one_line,
    outcome_decided,
    output_format,
    print_json,
    warn,
)

if TYPE_CHECKING:
    from kwoksnap.restore.engine import RestoreSummary

_SHOWN = 20  # failures (and objects not adopted) listed on stderr; -o json lists every one


@click.command(epilog=example_epilog(
    "kwoksnap --kubeconfig \"$(kwoksnap cluster kubeconfig --name demo)\" restore before.kws",
    "kwoksnap restore before.kws --dry-run",
    "kwoksnap restore before.kws --on-conflict replace --concurrency 32 -o json",
))
@click.argument("snapshot", type=click.Path(exists=True, dir_okay=False, readable=False))
@click.option("--on-conflict", type=click.Choice(["skip", "replace", "fail"]), default="skip", show_default=True,
              help="What to do with objects that already exist (fail: each is a failure, except those every API "
                   "server makes itself, such as the default namespaces and RBAC, which are skipped).")
@click.option("--dry-run", is_flag=True, help="Read the whole snapshot, print the plan (order, counts) and write "
              "nothing.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Requests in flight.")
@click.option("--allow-real-nodes", is_flag=True, help="Restore even if the target has nodes KWOK does not manage.")
@click.option("--include-regenerated", is_flag=True, help="Also restore objects the target's controllers create "
              "(default ServiceAccounts, kube-root-ca.crt, the kubernetes Service).")
@click.option("--include-webhooks", is_flag=True, help="Also restore admission webhook configurations that call an "
              "in-cluster Service and fail closed (no pod serves them in a KWOK cluster: they refuse every write "
              "they match, the target's own controllers' included).")
@click.option("--settle-timeout", type=FiniteFloat(min=0), default=120, show_default=True,
              help="Seconds to wait for controllers to adopt restored pods and ReplicaSets, and, before that, "
                   "for bound claims to stay Bound (each wait up to this long).")
@output_format
@click.pass_context
def restore(ctx: click.Context, snapshot: str, on_conflict: str, dry_run: bool, concurrency: int,
            allow_real_nodes: bool, include_regenerated: bool, include_webhooks: bool, settle_timeout: float,
            output_format: str) -> int:
    """Restore a snapshot: nodes become KWOK fake nodes, pods keep their node and status.

    Also the objects of a kwokctl recording `kwoksnap import` made (the state it starts from; `replay` replays
    its changes).

    Exit code 0 when every object was restored and adopted, 5 when some failed (listed), 130 when interrupted
    (Ctrl-C: the objects being written are finished, and the summary says what is in the target).
    """
    from kwoksnap.errors import ExitCode, FormatError
    from kwoksnap.restore.engine import RestoreOptions, manual_endpoints
    from kwoksnap.restore.engine import restore as run_restore
    from kwoksnap.restore.plan import plan
    from kwoksnap.restore.source import SnapshotSource
    from kwoksnap.restore.transform import fails_closed_without_backend, regenerated
    from kwoksnap.store import KwsReader
    from kwoksnap.store.salvage import SALVAGED

    with KwsReader(snapshot) as reader:
        source = SnapshotSource(reader, recordings=True)
        for gr, reason in source.incomplete().items():  # (what save could not list, or salvage could not read)
            why = reason if reason.startswith(SALVAGED) else f"save could not list it ({reason})"
            warn(f"the snapshot does not hold all of {gr}: {why}")
        if dry_run:
            report = reader.scan()  # every frame's checksum, as the real restore reads every object before writing
            if not report.ok:
                raise FormatError(f"damaged: {report.reason}", path=snapshot, where=report.place, salvageable=True)
            left: Counter[str] = Counter()  # objects the target's controllers make, which restore leaves to them
            webhooks: Counter[str] = Counter()  # (in a target that runs webhook admission, as restore assumes here)
            manual = manual_endpoints(source)
            # Every object read as restore reads it, resource by resource through the index (black-box finding: a
            # frame holding another resource's records passed the dry run, read whole in file order, and failed the
            # restore), and every record's shape (an object without a name).
            for key in source.resource_keys():
                for obj in source.objects(key):
                    if not include_regenerated and regenerated(obj, manual=manual):
                        left[key] += 1
                    elif not include_webhooks and fails_closed_without_backend(obj):
                        webhooks[key] += 1
            steps = plan(source.counts())
            if output_format == "json":
                print_json([{"phase": s.phase, "resource": s.resource,
                             "objects": s.objects - left[s.resource] - webhooks[s.resource],
                             "leftToTheTarget": left[s.resource], "leftOutWebhooks": webhooks[s.resource]}
                            for s in steps])
            else:
                for s in steps:
                    restored = s.objects - left[s.resource] - webhooks[s.resource]
                    click.echo(f"{s.phase:<18} {s.resource:<55} {restored:>8}"
                               + (f"  (+{left[s.resource]} the target makes itself)" if left[s.resource] else "")
                               + (f"  (+{webhooks[s.resource]} left out: no pod serves them; --include-webhooks)"
                                  if webhooks[s.resource] else ""))
                click.echo(f"{sum(s.objects for s in steps) - left.total() - webhooks.total()} objects in "
                           f"{len(steps)} resources"
                           + (f", {left.total()} more left to the target's controllers (--include-regenerated "
                              "restores them too)" if left else "")
                           + " (dry run: nothing written; the target is not looked at, so objects already there, "
                           "missing dependencies and what a replay-profile target takes besides (webhooks, "
                           "controllers' Endpoints) show only in a real restore)")
            return 0
        with make_client(ctx, pool_size=concurrency) as client, Progress(output_format == "text") as bar:
            from kwoksnap.cluster.local import Profile, profile_for_server
            from kwoksnap.replay.checks import controllers_run
            from kwoksnap.restore.engine import check_target

            # A replay-profile cluster has no workload controllers to adopt pods: relink their owners instead.
            # (Nor the controllers that make Endpoints and EndpointSlices: the snapshot's are restored; nor webhook
            # admission: webhooks without a backend refuse nothing there.) A cluster with no profile on record here
            # (made under another KWOKSNAP_WORKDIR) is asked, once it is known to have no real nodes (a rerun into
            # a replay cluster waited for adoptions that never came, exit 5).
            profile = profile_for_server(client.config.server)
            if profile is None:
                check_target(client, allow_real_nodes)
                adopt = controllers_run(client)
            else:
                adopt = profile is not Profile.REPLAY
            options = RestoreOptions(on_conflict=on_conflict, concurrency=concurrency,  # type: ignore[arg-type]
                                     allow_real_nodes=allow_real_nodes, include_regenerated=include_regenerated,
                                     settle_timeout=settle_timeout, adopt=adopt, endpoint_controllers=adopt,
                                     admission_webhooks=adopt, keep_webhooks=include_webhooks)
            summary = run_restore(client, source, options, progress=lambda r, d, t: bar.update(r, d, t),
                                  notice=warn)
            if summary.interrupted:
                outcome_decided(ctx)
    if output_format == "json":
        print_json(summary.to_dict())
    else:
        for f in summary.failures[:_SHOWN]:
            where = f"{f.namespace}/" if f.namespace else ""
            click.echo(f"failed: {f.resource} {where}{f.name}: {one_line(f.reason)}", err=True)
        if len(summary.failures) > _SHOWN:
            click.echo(f"... and {len(summary.failures) - _SHOWN} more failures (-o json lists up to 200)", err=True)
        for a in summary.not_adopted[:_SHOWN]:
            click.echo(f"not adopted: {a.kind} {a.namespace}/{a.name} by {a.owner_kind} {a.owner_name}", err=True)
        if len(summary.not_adopted) > _SHOWN:
            click.echo(f"... and {len(summary.not_adopted) - _SHOWN} more not adopted (-o json lists up to 200)",
                       err=True)
        if summary.claims_without_volume:
            warn(f"{len(summary.claims_without_volume)} claim(s) were Bound to a volume that is not in "
                 f"the target, so a PV controller marks them Lost (a replay-profile target runs none): "
                 f"{first_few(summary.claims_without_volume)}")
        if summary.terminating_namespaces:
            warn(f"{len(summary.terminating_namespaces)} namespace(s) of the snapshot are being deleted "
                 "in the target, so their objects cannot be created there (pods restored earlier are frozen "
                 "and hold them; kubectl delete pods --force --grace-period=0 in them lets them go): "
                 f"{first_few(summary.terminating_namespaces)}")
        if summary.active_namespaces:
            warn(f"{len(summary.active_namespaces)} namespace(s) were Terminating in the snapshot and "
                 "are restored Active (only a delete makes a namespace Terminating, and the target's namespace "
                 f"controller would then delete what is restored in it): {first_few(summary.active_namespaces)}")
        if summary.namespaces_created:
            warn(f"created {len(summary.namespaces_created)} namespace(s) the snapshot's objects are "
                 f"in but it did not hold ({why_not_held(source.group_resources(), source.selector)}), "
                 f"labelled kwoksnap.io/created-by=restore: {first_few(summary.namespaces_created)}")
        if summary.ttl_expired:
            warn(f"{len(summary.ttl_expired)} finished Job(s) had run out their ttlSecondsAfterFinished "
                 "before this restore, so a target that runs the TTL-after-finished controller deletes them and "
                 "their pods at once (clusters made with --profile replay do not run it): "
                 f"{first_few(summary.ttl_expired)}")
        if summary.deleted_meanwhile:
            warn(f"{len(summary.deleted_meanwhile)} restored object(s) were deleted by the target "
                 f"before their owners adopted them: {first_few(summary.deleted_meanwhile)}")
        if summary.removed_at_once:
            warn(f"{len(summary.removed_at_once)} pod(s) were Terminating in the snapshot and had "
                 "finished (or were never scheduled), with no finalizer: the API server removes such a pod as "
                 "soon as it is deleted again, so they are gone, as the source's were about to be: "
                 f"{first_few(summary.removed_at_once)}")
        if summary.not_terminated:
            warn(f"{len(summary.not_terminated)} object(s) Terminating in the snapshot are left alive: "
                 "the restore stopped before it made them Terminating again (last of all, once what depends "
                 "on them is restored; a rerun does it): " + first_few(summary.not_terminated))
        if summary.dropped_owner_refs:
            stopped = summary.interrupted or summary.error is not None
            warn(f"{summary.dropped_owner_refs} owner reference(s) left out: their owners were not "
                 f"restored (not in the snapshot, {'not reached before the stop, ' if stopped else ''}or they "
                 "failed), so restore does not link them (diff --live "
                 "shows them as removed; a controller the target holds may still adopt what it selects)")
        if summary.invalid_owner_refs:
            warn(f"{len(summary.invalid_owner_refs)} owner reference(s) to an owner in another "
                 "namespace (or to a namespaced owner of a cluster-scoped object) left out (invalid: the "
                 "target's garbage collector would delete the object for them): "
                 f"{first_few(summary.invalid_owner_refs)}")
        if summary.not_relinked:
            warn(f"{len(summary.not_relinked)} restored object(s) are without the owner references "
                 "to their restored owners (the Ctrl-C came while restore was linking them): `restore "
                 f"--on-conflict skip` of the same snapshot links them: {first_few(summary.not_relinked)}")
        if summary.left_out_webhooks:
            warn(f"left out {len(summary.left_out_webhooks)} admission webhook configuration(s) that "
                 "call an in-cluster Service and fail closed: no pod serves them here, so they would refuse "
                 "the writes they match, the target's controllers' own included (--include-webhooks restores "
                 f"them): {first_few(summary.left_out_webhooks)}")
        if summary.kept_secrets:
            warn(f"kept {len(summary.kept_secrets)} existing Secret(s) as they were: the snapshot's "
                 f"values are redacted (save --include-secrets keeps them): {first_few(summary.kept_secrets)}")
        click.echo(f"{'resource':<55} {'created':>8} {'updated':>8} {'skipped':>8} {'failed':>7}")
        for key, r in summary.results.items():
            click.echo(f"{key:<55} {r.created:>8} {r.updated:>8} {r.skipped:>8} {r.failed:>7}"
                       + (f"  ({r.reallocated} given new cluster IPs or node ports)" if r.reallocated else ""))
        created = sum(r.created for r in summary.results.values())
        updated = sum(r.updated for r in summary.results.values())
        click.echo(f"{summary.objects} of the snapshot's objects restored or found in place in {summary.seconds:.1f}s "
                   f"({summary.objects / max(summary.seconds, 1e-9):,.0f}/s, {summary.retries} retries; "
                   f"{created} created, {updated} updated, {summary.objects - created - updated} skipped: already "
                   "there, or the target's own"
                   + (f", or left out as warned above ({len(summary.left_out_webhooks)} webhook configuration(s))"
                      if summary.left_out_webhooks else "")  # (black-box finding: it was neither)
                   + (f"; {summary.relinked_in_place} of those relinked to their owners)" if summary.relinked_in_place
                      else ")")
                   + ("" if not summary.failures and not summary.not_adopted else
                      f"; {len(summary.failures)} failed" + ("" if summary.interrupted or summary.error else
                                                             f", {len(summary.not_adopted)} not adopted")))
        if summary.interrupted:
            click.echo(f"interrupted: this run restored or found in place {summary.objects} of the snapshot's "
                       f"{summary.planned} objects, each whole; the rest were not sent by it (what an earlier run "
                       "restored is still there). Owner references to objects not restored yet "
                       "are missing, and adoption by the target's controllers was not waited for: a rerun of the "
                       "same restore completes it (--on-conflict skip, the default, keeps what is in place and "
                       "finishes what restore made)")
        elif summary.error is not None:
            click.echo(stopped_by_error(summary))
    if summary.abandoned is not None:
        exit_abandoning(f"warning: stopped without waiting for the {len(summary.abandoned)} write(s) in flight (a "
                        "second Ctrl-C): whether they reached the target is unknown (`kwoksnap diff --live` tells): "
                        f"{first_few(summary.abandoned)}")
    if summary.interrupted:
        return ExitCode.INTERRUPTED
    if summary.error is not None:
        raise summary.error  # the one error line and its exit code, after the summary of what was written
    if not summary.ok:
        return finished_partly((len(summary.failures), "object(s) failed"),
                               (len(summary.not_adopted), "not adopted by their controllers"),
                               output_format=output_format, shown=_SHOWN, rest="-o json lists up to 200")
    return ExitCode.OK


def why_not_held(resources: list[str], selector: str) -> str:
    """Why a snapshot holds objects in a namespace it does not hold, from what it says of itself: its resources
    (group/resource) and its label selector (review finding: `save -l` was named whatever the cause)."""
    if "namespaces" not in resources:
        return "it holds no Namespaces: saved with --include or --exclude leaving them out"
    if selector:
        return f"it was saved with -l {selector}, which selects Namespaces by their labels too"
    return "made after save had listed the Namespaces, or left out of an imported file"


def stopped_by_error(summary: RestoreSummary) -> str:
    """What a restore stopped by an error did and left undone, said for the phase the error came in (review
    finding: an error in the wait for adoption was said to have left the relinking undone, which had run)."""
    done = (f"stopped by the error below: this run restored or found in place {summary.objects} of the snapshot's "
            f"{summary.planned} objects, each whole")
    if summary.error_phase == "relink":
        return (f"{done}; the error came while it linked owner references to the restored owners: the objects it "
                "had not linked yet are without them (`restore --on-conflict skip` of the same snapshot links "
                "them), and the wait for adoption and the admission objects (written last) were not done")
    if summary.error_phase == "settle":
        return (f"{done}, and linked owner references to the restored owners; the error came in the wait for the "
                "target's controllers to adopt the restored objects (or for claims to stay Bound), so adoption was "
                "not confirmed, and the admission objects (written last) were not restored")
    if summary.error_phase == "admission":
        return (f"{done}; everything else was done (owner references linked, adoption waited for) and the error "
                "came in the admission objects (quotas, limits, webhooks), written last: those not written by then "
                "were not sent")
    return (f"{done}; the rest were not sent, and what comes after the objects (relinking, the wait for adoption, "
            "admission objects) was not done")
