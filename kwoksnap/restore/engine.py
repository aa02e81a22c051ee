"""Execute a restore: phases in order, objects within a phase in parallel, every outcome counted.

Why this module exists: it is the only place that writes a snapshot into a cluster. It guarantees what the README
promises: a target with real nodes is refused; one failing object never stops the rest; every object ends as
created, updated, skipped or failed (a pod whose status write failed is reported as failed, never silently left
Pending); a rerun is idempotent (existing objects are skipped, half-restored pods completed); and success is only
reported once the target's controllers have adopted every dependent whose controller reference was dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final, Literal

from kwoksnap.errors import APIError, ClusterError, Conflict, Invalid, KwoksnapError, NotFound, TransportError
from kwoksnap.interrupts import INTERRUPT_POLL, DeferredInterrupts
from kwoksnap.kube.client import FIELD_MANAGER, OUTAGE_SECONDS, STRATEGIC_MERGE_PATCH, Client
from kwoksnap.kube.discovery import Discovery, Resource, discover
from kwoksnap.kube.objects import SA_NAME_ANNOTATION, SA_TOKEN_TYPE, scrub_secret_values, scrubbed_error
from kwoksnap.restore.dependencies import missing_dependencies
from kwoksnap.restore.plan import ADMISSION, PHASES, PlanStep, plan
from kwoksnap.restore.transform import (
    CREATED_BY_LABEL,
    FAKE_NODE_ANNOTATION,
    FROZEN_ANNOTATION,
    JOB_TRACKING_FINALIZER,
    SUSPENDED_ANNOTATION,
    Adoption,
    Prepared,
    fails_closed_without_backend,
    finished_job,
    kept_in_place,
    prepare,
    redacted,
    regenerated,
    selectorless,
    spec_after_refusal,
    ttl_expired,
    without_cluster_ip,
)

log = logging.getLogger("kwoksnap.restore")

Obj = dict[str, Any]
OnConflict = Literal["skip", "replace", "fail"]
Phase = Literal["objects", "relink", "settle", "mark", "admission"]  # the stages of a restore, in order


class RecordSource:
    """What restore needs from a snapshot: counts per resource and a stream of one resource's objects."""

    def counts(self) -> dict[str, int]:
        raise NotImplementedError

    def objects(self, resource: str) -> Iterable[Obj]:
        raise NotImplementedError

    def taken_at(self) -> str | None:
        """When the cluster was captured (RFC 3339), if the source is a capture of a live cluster."""
        return None


# Restore marks the target with the time its snapshot was taken (on the kube-system namespace), so that a replay
# into it can tell which events of a log the snapshot already holds.
SNAPSHOT_TAKEN_ANNOTATION = "kwoksnap.io/snapshot-taken-at"


@dataclasses.dataclass(frozen=True)
class RestoreOptions:
    on_conflict: OnConflict = "skip"
    concurrency: int = 16
    allow_real_nodes: bool = False
    include_regenerated: bool = False  # default ServiceAccounts, kube-root-ca.crt, the kubernetes Service
    settle_timeout: float = 120.0  # seconds to wait for controllers to adopt restored dependents
    # False for targets without workload controllers (kwoksnap's replay profile): controller references are
    # relinked through the UID map instead of being left to adoption.
    adopt: bool = True
    # Whether the target runs the controllers that make Endpoints and EndpointSlices (a replay profile's does not:
    # then restore restores the snapshot's).
    endpoint_controllers: bool = True
    # Whether the target runs admission webhooks (a replay profile's does not), and whether to restore those that
    # call an in-cluster Service and fail closed anyway (fails_closed_without_backend).
    admission_webhooks: bool = True
    keep_webhooks: bool = False
    crd_timeout: float = 60.0


@dataclasses.dataclass
class ResourceResult:
    resource: str
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    reallocated: int = 0  # services whose recorded cluster IP / node ports did not fit the target


@dataclasses.dataclass
class Failure:
    resource: str
    namespace: str
    name: str
    reason: str


@dataclasses.dataclass
class RestoreSummary:
    results: dict[str, ResourceResult]
    failures: list[Failure]
    not_adopted: list[Adoption]
    dropped_owner_refs: int
    seconds: float
    requests: int
    retries: int
    # References to an owner in another namespace, left out (the garbage collector deletes an object for one).
    invalid_owner_refs: list[str] = dataclasses.field(default_factory=list)
    # Claims recorded Bound whose volume is not in the target (left out of the snapshot, e.g. by --exclude): the PV
    # controller marks them Lost, and nothing restore writes can keep them Bound. Reported, not failed.
    claims_without_volume: list[str] = dataclasses.field(default_factory=list)
    # Ctrl-C: the objects being written were finished, the rest never sent; owner references were relinked to
    # the owners restored by then, and nothing waited for adoption.
    interrupted: bool = False
    # Restored objects whose owners are in the target, left without their references by a Ctrl-C in the relink
    not_relinked: list[str] = dataclasses.field(default_factory=list)
    relinked_in_place: int = 0  # objects found in place (skipped) whose owner references this run relinked
    # Objects Terminating in the snapshot (held by finalizers) that a stop before the end left alive: they are made
    # Terminating again once what depends on them is restored (terminate_deferred), which a rerun does.
    not_terminated: list[str] = dataclasses.field(default_factory=list)
    # A second Ctrl-C while the writes in flight were finishing: those writes ("resource namespace/name"), whose
    # outcome is unknown (None: not so stopped). Their threads may still be waiting on the target.
    abandoned: list[str] | None = None
    planned: int = 0  # objects in the snapshot's plan
    # Secrets that --on-conflict replace did not replace: the snapshot holds placeholders for their values.
    kept_secrets: list[str] = dataclasses.field(default_factory=list)
    # Admission webhook configurations not restored: no pod serves them here, and they fail closed.
    left_out_webhooks: list[str] = dataclasses.field(default_factory=list)
    # Namespaces Terminating in the snapshot, restored Active: only a delete makes a namespace Terminating, and
    # deleting it would make the target's namespace controller delete what was just restored in it.
    active_namespaces: list[str] = dataclasses.field(default_factory=list)
    # Namespaces objects of the snapshot are in that it did not hold (a `save -l`), made by restore (labelled).
    namespaces_created: list[str] = dataclasses.field(default_factory=list)
    # Finished Jobs whose ttlSecondsAfterFinished had run out (transform.ttl_expired): a target running the
    # TTL-after-finished controller deletes them and their pods at once.
    ttl_expired: list[str] = dataclasses.field(default_factory=list)
    # Restored dependents that were waited for to be adopted, and were deleted in the target meanwhile.
    deleted_meanwhile: list[str] = dataclasses.field(default_factory=list)
    # Pods Terminating in the snapshot that had finished (or were never scheduled) and had no finalizer: the API
    # server removes such a pod at once when it is deleted (no grace period for a pod no kubelet runs), so restore
    # created it and its delete removed it, as the source's kubelet was about to. Counted as created.
    removed_at_once: list[str] = dataclasses.field(default_factory=list)
    # Namespaces of the snapshot that the target holds being deleted: nothing new can be created in them.
    terminating_namespaces: list[str] = dataclasses.field(default_factory=list)
    # What the snapshot's objects name and neither it nor the target held, one line per kind (restore/dependencies).
    missing_dependencies: list[str] = dataclasses.field(default_factory=list)
    # An error that stopped the restore after it had begun writing (the target stopped answering, a CRD never
    # became established): the summary still says what is in the target; the caller raises it after showing that.
    error: KwoksnapError | None = dataclasses.field(default=None, repr=False)
    # Where that error stopped it (None without one): "objects" (writing the snapshot's objects: neither relinking
    # nor the wait for adoption was done), "relink" (linking owner references), "settle" (making objects
    # Terminating again, keeping claims Bound, waiting for adoption: relinking was done) or "admission" (the
    # admission objects, written last of all: the rest was done).
    error_phase: Phase | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and not self.not_adopted and not self.interrupted and self.error is None

    @property
    def objects(self) -> int:
        return sum(r.created + r.updated + r.skipped for r in self.results.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "seconds": round(self.seconds, 3), "requests": self.requests, "retries": self.retries,
            "droppedOwnerReferences": self.dropped_owner_refs,
            "invalidOwnerReferences": self.invalid_owner_refs[:200],
            "resources": {k: dataclasses.asdict(v) for k, v in self.results.items()},
            "failures": [dataclasses.asdict(f) for f in self.failures[:200]],
            "failureCount": len(self.failures),
            "notAdopted": [dataclasses.asdict(a) for a in self.not_adopted[:200]],
            "notAdoptedCount": len(self.not_adopted),
            "claimsWithoutVolume": self.claims_without_volume[:200],
            "interrupted": self.interrupted, "planned": self.planned, "keptSecrets": self.kept_secrets[:200],
            "leftOutWebhooks": self.left_out_webhooks[:200],
            "notRelinked": self.not_relinked[:200], "notRelinkedCount": len(self.not_relinked),
            "relinkedInPlace": self.relinked_in_place, "abandonedInFlight": self.abandoned,
            "notTerminated": self.not_terminated[:200], "notTerminatedCount": len(self.not_terminated),
            "activeNamespaces": self.active_namespaces[:200], "namespacesCreated": self.namespaces_created[:200],
            "ttlExpiredJobs": self.ttl_expired[:200], "deletedMeanwhile": self.deleted_meanwhile[:200],
            "removedAtOnce": self.removed_at_once[:200],
            "terminatingNamespaces": self.terminating_namespaces[:200],
            "missingDependencies": self.missing_dependencies,
            "error": str(self.error) if self.error is not None else None, "errorPhase": self.error_phase,
        }


Progress = Callable[[str, int, int], None]  # (resource, done in it, total in it)
BoundClaim = tuple[Resource, str, str, str, Obj]  # (resource, key, namespace, name, recorded status)
REPLACE_ATTEMPTS: Final = 3  # GET and PUT of an --on-conflict replace, when the object changes in between
NOT_READY_TAINT = "node.kubernetes.io/not-ready"  # added to every new node by the TaintNodesByCondition admission


def check_target(client: Client, allow_real_nodes: bool, *, what: str = "restore") -> None:
    """Refuse a cluster with nodes that KWOK does not manage: restoring (or replaying, ``what``) into real nodes is
    never an accident."""
    real = [n["metadata"]["name"] for n, _ in client.list_items("/api/v1/nodes")
            if (n["metadata"].get("annotations") or {}).get(FAKE_NODE_ANNOTATION) is None]
    if real and not allow_real_nodes:
        shown = ", ".join(real[:3]) + (f" and {len(real) - 3} more" if len(real) > 3 else "")
        raise ClusterError(f"target has {len(real)} node(s) not managed by KWOK ({shown}); refusing to {what} "
                           "into a real cluster (use --allow-real-nodes to override)")


class _NoAnswer(Exception):
    """A write after an object's create got no answer (``error``): the object is failed already ("created, but
    ..."), and ``_one`` only counts the silence towards the target's outage. Never leaves the engine."""

    def __init__(self, error: TransportError) -> None:
        super().__init__(str(error))
        self.error = error


class _Restorer:
    def __init__(self, client: Client, source: RecordSource, options: RestoreOptions, progress: Progress) -> None:
        self.client = client
        self.source = source
        self.options = options
        self.progress = progress
        self.lock = threading.Lock()
        self.uid_map: dict[str, str] = {}
        self.snapshot_uids: dict[str, str] = {}  # every UID of the snapshot -> its object's namespace
        self.never_adopt: frozenset[str] = frozenset()  # owners whose controller adopts nothing (_snapshot_uids)
        self.results: dict[str, ResourceResult] = {}
        self.failures: list[Failure] = []
        self._failed_at: dict[tuple[str, str, str], int] = {}  # (resource, namespace, name) -> its failure's index
        self.adoptions: list[Adoption] = []
        # (resource as served, its key in the snapshot, namespace, name, references kept, references to relink,
        # found in place: not written by this run)
        self.deferred: list[tuple[Resource, str, str, str, list[Obj], list[Obj], bool]] = []
        self.relinked_in_place = 0  # objects found in place whose owner references this run relinked
        self.in_flight: set[str] = set()  # "resource namespace/name" of the objects being written now
        self._answered = time.monotonic()  # when an object's write last got an answer (any: a refusal too)
        self.gone: TransportError | None = None  # set once the target has answered nothing for OUTAGE_SECONDS
        self.not_relinked: list[str] = []  # objects whose owners were restored, left unlinked by a Ctrl-C
        self.dropped = 0
        self.invalid_owners: list[str] = []  # references to an owner in another namespace, left out
        self.created_crds: list[str] = []
        self.crd_outcomes: dict[str, str] = {}  # created or updated: undone in the counts if it never serves
        self._defined: set[tuple[str, str]] | None = None  # (group, plural) of the snapshot's CRDs
        self.bound_claims: list[BoundClaim] = []
        self.claims_without_volume: list[str] = []
        self.ttl_expired: list[str] = []
        self.deleted_meanwhile: list[str] = []
        self.removed_at_once: list[str] = []  # Terminating pods the API server removed when deleted again
        self.kept_secrets: list[str] = []  # not replaced: redacted in the snapshot
        self.left_out_webhooks: list[str] = []
        self._selectorless: frozenset[tuple[str, str]] | None = None
        self.active_namespaces: list[str] = []  # Terminating in the snapshot
        self.terminating_namespaces: list[str] = []  # found in the target being deleted
        self.namespaces_created: list[str] = []  # not in the snapshot nor the target (_create_in)
        self.snapshot_namespaces: frozenset[str] = frozenset()  # read before any worker starts (not thread-safe)
        # Namespaces of the target under a ResourceQuota (read before any worker starts): a create refused as
        # already there is charged to its quota all the same, until the quota controller counts again (black-box
        # finding: three reruns used up a quota, and a real create was then refused). Such an object is looked for
        # before it is created.
        self.quota_namespaces: frozenset[str] = frozenset()
        # Objects other than pods that were Terminating, held by finalizers: deleted again at the end
        self.to_terminate: list[tuple[Resource, str, Obj, Obj]] = []  # (resource, key, object, DELETE options)

    # -- bookkeeping -------------------------------------------------------------------------------------------

    def _fail(self, key: str, obj: Obj, reason: str) -> None:
        meta = obj.get("metadata") or {}
        if key == "v1/secrets":  # (a refusal may quote the Secret: an admission webhook's message)
            reason = scrub_secret_values(reason, obj)
        failure = Failure(key, str(meta.get("namespace", "")), str(meta.get("name", "")), reason)
        where = (key, failure.namespace, failure.name)
        with self.lock:
            if where in self._failed_at:  # a second failure of one object (created, but its status could not be
                # written, and then its owner references not relinked): one failure, both reasons (review finding:
                # counted twice)
                i = self._failed_at[where]
                self.failures[i] = dataclasses.replace(self.failures[i], reason=f"{self.failures[i].reason}; {reason}")
                return
            self._failed_at[where] = len(self.failures)
            self.results.setdefault(key, ResourceResult(key)).failed += 1
            self.failures.append(failure)

    # -- one object --------------------------------------------------------------------------------------------

    def _create(self, res: Resource, key: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace"), str(meta.get("name", ""))
        old_uid = str(meta.get("uid", ""))
        with self.lock:
            prep = prepare(obj, uid_map=self.uid_map, snapshot_uids=self.snapshot_uids,
                           has_status_subresource="status" in res.subresources, adopt=self.options.adopt,
                           never_adopt=self.never_adopt)
        result = self.results[key]
        if res.kind == "Secret" and prep.body.get("type") == SA_TOKEN_TYPE:
            account = str(((prep.body["metadata"].get("annotations") or {}).get(SA_NAME_ANNOTATION)) or "")
            if account and not self.client.exists(f"/api/v1/namespaces/{ns}/serviceaccounts/{account}"):
                # (restored before Secrets, when the snapshot holds it) Black-box finding: restored without its
                # ServiceAccount, the target's token controller deleted it at once, after restore said "created".
                raise KwoksnapError(f"its ServiceAccount {ns}/{account} is in neither the snapshot nor the target, "
                                    "and the target's token controller deletes a token Secret without one: save "
                                    "the ServiceAccount too, or create it first")
        if res.kind == "Job" and ttl_expired(obj, time.time_ns()):
            with self.lock:
                self.ttl_expired.append(f"{ns}/{name}")
        outcome: str
        if ns in self.quota_namespaces and self.client.exists(res.path(ns, name)):
            created, outcome = self._on_conflict(res, ns, name, prep)
        else:
            first_try = time.time()
            try:
                created = self._post(res, key, ns, prep)
                outcome = "created"
            except Conflict as exc:
                if not exc.already_exists:
                    raise
                made = self._made_by_the_lost_answer(res, ns, name, exc, first_try)
                if made is not None:
                    created, outcome = made, "created"
                else:
                    created, outcome = self._on_conflict(res, ns, name, prep)
            except APIError as exc:
                # Admission runs before the API server looks for the name: on a rerun, a quota, a LimitRange or a
                # webhook restored the first time refuses the create of an object that is there already.
                if isinstance(exc, NotFound) or not self.client.exists(res.path(ns, name)):
                    raise
                created, outcome = self._on_conflict(res, ns, name, prep)
        new_uid = str((created.get("metadata") or {}).get("uid", ""))
        if old_uid and new_uid:
            with self.lock:
                self.uid_map[old_uid] = new_uid
        if res.kind == "Namespace" and outcome == "skipped" and ((created.get("metadata") or {}).get(
                "labels") or {}).get(CREATED_BY_LABEL) == "restore" and CREATED_BY_LABEL not in (
                prep.body["metadata"].get("labels") or {}):
            # Made bare by an earlier restore of a snapshot without it (_create_in); this one holds it: it is the
            # snapshot's now, with its labels and annotations (a NetworkPolicy's namespaceSelector names them),
            # and without the mark (diff --live reported the label for good, and the recorded ones missing).
            recorded = prep.body["metadata"]
            with contextlib.suppress(NotFound):
                created = self.client.patch(res.path(None, name), {"metadata": {
                    "labels": {**(recorded.get("labels") or {}), CREATED_BY_LABEL: None},
                    **({"annotations": recorded["annotations"]} if recorded.get("annotations") else {})}})
        if res.kind == "Namespace" and outcome != "created" and (created.get("metadata") or {}).get(
                "deletionTimestamp"):
            # Being deleted in the target (its restored pods frozen, it may stay so): nothing can be created in it,
            # and writing the snapshot's status (Active) over it is refused. Said once; its objects fail each.
            prep.status = None
            with self.lock:
                self.terminating_namespaces.append(name)
        # The API server lets only a delete set a namespace Terminating (a status write saying so is invalid).
        if res.kind == "Namespace" and prep.status is not None and prep.status.get("phase") == "Terminating":
            prep.status = None
            if outcome != "skipped":  # an existing namespace is left as it is
                with self.lock:
                    self.active_namespaces.append(name)
        # What restore made: created or replaced now, or found in place from an earlier run (a frozen pod, an object
        # restore's own field manager wrote). --on-conflict skip leaves the target's own objects as they are: no
        # status, no deletion, no claim rebinding (review findings: it deleted the target's ConfigMap and pod that
        # the snapshot held Terminating, and wrote the snapshot's status over the target's custom resource).
        mine = outcome != "skipped" or (
            ((created.get("metadata") or {}).get("annotations") or {}).get(FROZEN_ANNOTATION) == "true"
            if res.kind == "Pod" else _written_by_restore(created))
        if prep.ephemeral is not None and mine and not (created.get("spec") or {}).get("ephemeralContainers"):
            try:  # (before the status, which names their states)
                self.client.patch(res.path(ns, name, "ephemeralcontainers"),
                                  {"spec": {"ephemeralContainers": prep.ephemeral}}, STRATEGIC_MERGE_PATCH)
            except ClusterError as exc:
                self._after_create_failed(res, key, obj, prep, outcome, "created, but its ephemeral containers "
                                          f"could not be added: {exc}", exc)
                return
        # A skipped (existing) pod still gets its status if a previous run was cut off between create and status;
        # likewise a finished Job still suspended by such a run.
        annotations = (created.get("metadata") or {}).get("annotations") or {}
        left_suspended = SUSPENDED_ANNOTATION in annotations
        left_without = mine and prep.status is not None and _status_never_written(created, prep.status)
        if outcome == "updated" and res.kind == "Node" and "status" in res.subresources:
            prep.status = prep.body.get("status") or {}  # (created with it; a replace of the object ignores it)
        if prep.status is not None and (outcome != "skipped" or left_without
                                        or (prep.resume is not None and left_suspended)):
            try:
                if outcome == "updated":  # replaced: the recorded status whole (a merge kept the target's other keys)
                    created = self._replace_status(res.path(ns, name), created, prep.status)
                else:
                    self.client.patch(res.path(ns, name, "status"), {"status": prep.status})
            except ClusterError as exc:
                self._after_create_failed(res, key, obj, prep, outcome,
                                          f"created, but its status could not be written: {exc}", exc)
                return
            if prep.resume is not None and (outcome != "skipped" or left_suspended):
                try:
                    self.client.patch(res.path(ns, name), prep.resume)
                except ClusterError as exc:
                    self._after_create_failed(res, key, obj, prep, outcome,
                                              f"created suspended, but could not be resumed: {exc}", exc)
                    return
        # The API server's TaintNodesByCondition admission adds node.kubernetes.io/not-ready to every new node, and
        # the node lifecycle controller removes it once the node is Ready: unless that controller is down, slow or
        # its request failed (an API server restart mid-restore). Restore writes the recorded taints itself; on a
        # node that already existed (a rerun, --on-conflict skip) only when that taint is the whole difference.
        if res.kind == "Node":
            recorded = (prep.body.get("spec") or {}).get("taints") or None
            live = (created.get("spec") or {}).get("taints") or None
            if live != recorded and (outcome != "skipped" or _without_admission_taint(live) == (recorded or [])):
                try:
                    self.client.patch(res.path(ns, name), {"spec": {"taints": recorded}})
                except ClusterError as exc:
                    self._after_create_failed(res, key, obj, prep, outcome,
                                              f"created, but its recorded taints could not be written: {exc}", exc)
                    return
        # A pod that was Terminating is deleted gracefully again (likewise completed on a rerun); another object held
        # by finalizers at the end (terminate_deferred).
        if prep.terminate is not None and mine and not (created.get("metadata") or {}).get("deletionTimestamp"):
            options = {**prep.terminate, "preconditions": {"uid": new_uid}}
            if res.kind != "Pod":
                with self.lock:
                    self.to_terminate.append((res, key, obj, options))
            else:
                try:
                    self.client.delete(res.path(ns, name), options)
                except ClusterError as exc:  # (not a delete sent again whose first attempt removed it: review finding)
                    if not (isinstance(exc, NotFound) and exc.resent):
                        self._after_create_failed(res, key, obj, prep, outcome,
                                                  f"created, but it could not be made Terminating again: {exc}", exc)
                        return
                if _removed_when_deleted(prep.body, prep.status):
                    with self.lock:
                        self.removed_at_once.append(f"{ns}/{name}")
                    prep.deferred_owners = []  # (gone: nothing to relink, and not "deleted meanwhile" either)
        with self.lock:
            if res.kind == "PersistentVolumeClaim" and mine and prep.status and prep.status.get("phase") == "Bound":
                self.bound_claims.append((res, key, str(ns or ""), name, prep.status))
            if outcome == "created":
                result.created += 1
            elif outcome == "updated":
                result.updated += 1
            else:
                result.skipped += 1
            if prep.adoption:
                self.adoptions.append(prep.adoption)
            self._keep_links(res, key, obj, prep, outcome)
            if res.key == "apiextensions.k8s.io/v1/customresourcedefinitions" and outcome != "skipped" \
                    and _established_or_unknown(obj):  # (one the source never served is not waited for)
                self.created_crds.append(name)
                self.crd_outcomes[name] = outcome

    def _keep_links(self, res: Resource, key: str, obj: Obj, prep: Prepared, outcome: str) -> None:
        """Note (under the lock) what the object in the target still needs of its owner references: those to owners
        not restored yet, relinked once they are (``deferred``), and the count of those left out."""
        meta = obj.get("metadata") or {}
        if prep.deferred_owners:
            kept = list(prep.body["metadata"].get("ownerReferences") or [])
            self.deferred.append((res, key, str(meta.get("namespace") or ""), str(meta.get("name", "")), kept,
                                  prep.deferred_owners, outcome == "skipped"))
        self.dropped += prep.dropped_owners
        if outcome != "skipped":  # (what a rerun found in place was not written: nothing left out of it)
            self.invalid_owners += prep.invalid_owners

    def _after_create_failed(self, res: Resource, key: str, obj: Obj, prep: Prepared, outcome: str, reason: str,
                             exc: ClusterError) -> None:
        """A write that follows the object's create (its status, taints, ephemeral containers, the delete that
        makes it Terminating again) failed: the object is failed with ``reason`` ("created, but ..."), and, as it
        is in the target all the same, its owner references are still relinked once its owners are restored
        (review finding: they were not, and a connection failure was listed as if the create itself had failed).
        Its adoption is not waited for: it is failed already. A connection failure (no answer) also counts towards
        the target's outage (:meth:`_unanswered`): raised as :class:`_NoAnswer`, for ``_one``, which has nothing
        more to report."""
        self._fail(key, obj, reason)
        with self.lock:
            self._keep_links(res, key, obj, prep, outcome)
        if isinstance(exc, TransportError):
            raise _NoAnswer(exc) from exc

    def _replace_status(self, path: str, obj: Obj, status: Obj) -> Obj:
        """PUT ``status`` as the status of ``obj`` (at ``path``), read again when something else wrote it meanwhile
        (a node's, by the target's controllers)."""
        for attempt in range(3):
            try:
                return self.client.replace(f"{path}/status", {**obj, "status": status})
            except Conflict:
                if attempt == 2:
                    raise
                obj = self.client.get(path)
        raise AssertionError("unreachable")

    def _made_by_the_lost_answer(self, res: Resource, ns: str | None, name: str, exc: Conflict,
                                 since: float) -> Obj | None:
        """The object, when a create sent again after an attempt the server may have acted on (sent whole, then no
        answer; a 5xx) is refused as AlreadyExists, and the object was created since the first attempt: that
        attempt made it, and only its answer was lost. (Review finding: it was "skipped", exit 0, and its status,
        which restore writes after the create, was never written.)"""
        if not exc.resent:
            return None
        try:
            live = self.client.get(res.path(ns, name))
            stamp = str((live.get("metadata") or {}).get("creationTimestamp") or "")
            created_at = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except (NotFound, ValueError):
            return None
        return live if created_at >= int(since) - 1 else None  # (whole seconds; a second of clock skew)

    def _post(self, res: Resource, key: str, ns: str | None, prep: Prepared) -> Obj:
        try:
            return self._create_in(res, ns, prep.body)
        except Invalid as exc:
            if res.kind != "Service" or not any(w in exc.api_message for w in ("clusterIP", "nodePort", "allocated",
                                                                                  "range", "IP")):
                raise
            body = without_cluster_ip(prep.body)
            created = self._create_in(res, ns, body)
            with self.lock:
                self.results[key].reallocated += 1
            return created

    def _create_in(self, res: Resource, ns: str | None, body: Obj) -> Obj:
        """POST ``body``; when its namespace is not in the snapshot nor the target (a `save -l` selects
        namespaces by the label too), create the namespace, labelled, report it, and post again."""
        try:
            return self.client.create(res.path(ns), body)
        except NotFound as exc:
            if not ns or exc.details.get("kind") != "namespaces" or ns in self.snapshot_namespaces:
                raise  # (one the snapshot holds failed in its own step: not made up bare here)
        with contextlib.suppress(Conflict):  # another object's create made it meanwhile
            self.client.create("/api/v1/namespaces", {"metadata": {"name": ns,
                                                                   "labels": {CREATED_BY_LABEL: "restore"}}})
            with self.lock:
                self.namespaces_created.append(ns)
        with contextlib.suppress(APIError):  # pods are admitted once it exists: the controller makes it later
            self.client.create(f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "default"}})
        return self.client.create(res.path(ns), body)

    def _on_conflict(self, res: Resource, ns: str | None, name: str, prep: Prepared) -> tuple[Obj, str]:
        """The object in the way of a create, and what ``--on-conflict`` made of it: skipped, or replaced (written
        over with the live resourceVersion). A replace refused with 409 Conflict (the object changed in the target
        between the GET and the PUT: its controllers write it) is read and tried again, up to
        ``REPLACE_ATTEMPTS`` times in all (review finding: it failed at the first)."""
        existing = self.client.get(res.path(ns, name))
        policy = self.options.on_conflict
        if policy == "fail":
            if _made_by_the_api_server(existing):  # every target has it: not what --on-conflict fail guards
                return existing, "skipped"
            raise KwoksnapError("already exists (--on-conflict fail)")
        if policy == "skip":
            return existing, "skipped"
        if redacted(prep.body):  # placeholders must never replace real values
            with self.lock:
                self.kept_secrets.append(f"{ns}/{name}")
            return existing, "skipped"
        attempt = 1
        while True:
            if (existing.get("metadata") or {}).get("deletionTimestamp") and prep.terminate is None \
                    and res.kind != "Namespace":  # (a Namespace being deleted is said once: terminating_namespaces)
                # No write undoes a deletion (black-box finding: a Terminating pod was counted "updated", exit 0).
                raise KwoksnapError("being deleted in the target, and a replace cannot undo a deletion: wait until "
                                    "it is gone (or delete it with --grace-period=0), then restore again")
            try:
                return self._replace(res, ns, name, prep, existing), "updated"
            except Conflict as exc:
                if exc.already_exists:
                    raise
                if attempt == REPLACE_ATTEMPTS:
                    raise KwoksnapError(f"changed in the target during each of {REPLACE_ATTEMPTS} attempts to replace "
                                        f"it: {exc}") from exc
                log.info("%s %s/%s changed in the target before it was replaced (attempt %d of %d): %s", res.kind,
                         ns, name, attempt, REPLACE_ATTEMPTS, exc)
            attempt += 1
            existing = self.client.get(res.path(ns, name))

    def _replace(self, res: Resource, ns: str | None, name: str, prep: Prepared, existing: Obj) -> Obj:
        """PUT the snapshot's object over ``existing``, at its resourceVersion (a Conflict if it changed since)."""
        body = dict(prep.body)
        body["metadata"] = {**prep.body["metadata"],
                            "resourceVersion": existing["metadata"]["resourceVersion"]}
        refs = body["metadata"].get("ownerReferences") or []
        if prep.controller is not None and not any(ref.get("controller") for ref in refs):
            # The body leaves its controller out (to be adopted, or not in the snapshot); the object in the way may
            # have been adopted by the recorded owner already (an earlier restore, the source itself), and a replace
            # must not orphan it: not every controller looks again (a StatefulSet's ControllerRevision stayed
            # orphaned for good).
            kind, owner = prep.controller
            kept = [ref for ref in existing["metadata"].get("ownerReferences") or []
                    if ref.get("controller") and ref.get("kind") == kind and ref.get("name") == owner]
            if kept:
                body["metadata"]["ownerReferences"] = [*refs, *kept[:1]]
        live = existing.get("spec") or {}
        if "spec" in body:
            body["spec"] = kept_in_place(res.kind, body["spec"], live)
        try:
            return self.client.replace(res.path(ns, name), body)
        except Invalid as exc:
            again = spec_after_refusal(res.kind, body.get("spec") or {}, live, exc.api_message)
            if again is None:
                immutable = _immutable_fields(exc.api_message)
                if immutable:  # (the API server's message quotes both whole values: one line of kilobytes)
                    raise KwoksnapError(f"differs in a field that cannot change ({', '.join(immutable)}): a "
                                        "replace cannot write it; delete the object in the target, then restore "
                                        "again") from None
                raise
        body["spec"] = again
        return self.client.replace(res.path(ns, name), body)

    def _one(self, res: Resource, key: str, obj: Obj) -> None:
        if self.gone is not None:  # (queued before the target was found gone: not sent, as those never queued)
            return
        meta = obj.get("metadata") or {}
        name = f"{key} {meta['namespace']}/{meta.get('name')}" if meta.get("namespace") else f"{key} {meta.get('name')}"
        with self.lock:
            self.in_flight.add(name)
        try:
            self._create(res, key, obj)
            self._answered = time.monotonic()
        except TransportError as exc:  # (after the client's retries, 16-31 s)
            self._fail(key, obj, str(exc))
            self._unanswered(exc)
        except _NoAnswer as exc:  # (a write after the create: failed already, "created, but ...")
            self._unanswered(exc.error)
        except KwoksnapError as exc:  # (a Secret's refusal scrubbed whole, before it is cut to one line)
            if isinstance(exc, APIError):  # an answer: a refusal
                self._answered = time.monotonic()
            self._fail(key, obj, scrubbed_error(exc, obj) if key == "v1/secrets" else str(exc))
        except Exception as exc:  # one object never stops the rest; the reason is reported
            self._fail(key, obj, f"{type(exc).__name__}: {exc}")
        finally:
            with self.lock:
                self.in_flight.discard(name)

    def _unanswered(self, exc: TransportError) -> None:
        """A write got no answer: once the target has answered none for OUTAGE_SECONDS, it is taken for gone."""
        if time.monotonic() - self._answered > OUTAGE_SECONDS and self.gone is None:
            self.gone = TransportError(f"the target stopped answering (nothing for over {OUTAGE_SECONDS:.0f} s; "
                                       f"last: {exc}): the restore stopped")
            self.client.cancel()  # the writes in flight fail at their next failure instead of retrying on

    # -- phases ------------------------------------------------------------------------------------------------

    def _manual_endpoints(self) -> frozenset[tuple[str, str]]:
        """The snapshot's Services without a selector (their Endpoints are a user's), read once."""
        if self._selectorless is None:
            self._selectorless = manual_endpoints(self.source)
        return self._selectorless

    def _snapshot_defines(self, key: str) -> bool:
        """Whether a CRD of the snapshot defines resource ``key`` (group/version/plural)."""
        if self._defined is None:
            self._defined = set()
            for crd in self.source.objects("apiextensions.k8s.io/v1/customresourcedefinitions"):
                spec = crd.get("spec") or {}
                self._defined.add((str(spec.get("group", "")), str((spec.get("names") or {}).get("plural", ""))))
        parts = key.split("/")
        return len(parts) == 3 and (parts[0], parts[2]) in self._defined

    def run_step(self, step: PlanStep, disc: Discovery, pool: ThreadPoolExecutor) -> None:
        key = step.resource
        self.results.setdefault(key, ResourceResult(key))
        res = disc.by_key(key)
        if res is None and not self._snapshot_defines(key):
            # a plural guessed by `import` (no CRD in the file): the target knows the kind's own. Not when the
            # snapshot's own CRD defines it (then never Established here): another CRD of the same kind took them.
            first = next(iter(self.source.objects(key)), None)
            if first is not None and "." in key.split("/")[0]:
                res = disc.by_kind(str(first.get("apiVersion", "")), str(first.get("kind", "")))
        if res is None or "create" not in res.verbs:
            for obj in self.source.objects(key):
                self._fail(key, obj, "resource not served by the target" if res is None else "not creatable")
            return
        served = f"{res.group}/{res.version}" if res.group else res.version
        recorded = key.rpartition("/")[0]
        if recorded != served and recorded.rpartition("/")[0] == res.group:
            # (black-box finding: written as the served version with the recorded apiVersion in the body, every
            # object was refused, 400 "the API version in the data does not match")
            log.warning("the target does not serve %s: %s objects are written as %s (what that version lacks "
                        "is dropped by the API server)", recorded, res.kind, served)
        window = threading.BoundedSemaphore(self.options.concurrency * 4)  # bounds objects held in memory
        futures: list[Future[None]] = []
        done = 0

        def finished(_f: Future[None]) -> None:
            nonlocal done
            window.release()
            with self.lock:
                done += 1
                n = done
            self.progress(key, n, step.objects)

        with DeferredInterrupts() as interrupts:
            for obj in self.source.objects(key):
                interrupts.check()
                if self.gone is not None:  # (black-box finding: a target killed mid-restore was retried object by
                    break  # object, ~23 s each, silently for hours)
                if not self.options.include_regenerated and regenerated(
                        obj, endpoint_controllers=self.options.endpoint_controllers, manual=self._manual_endpoints()):
                    with self.lock:
                        self.results[key].skipped += 1
                    continue
                if (self.options.admission_webhooks and not self.options.keep_webhooks
                        and fails_closed_without_backend(obj)):
                    with self.lock:
                        self.results[key].skipped += 1
                        self.left_out_webhooks.append(
                            f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name', '')}")
                    continue
                if obj.get("apiVersion") != served and recorded != served:
                    obj = {**obj, "apiVersion": served}
                while not window.acquire(timeout=INTERRUPT_POLL):
                    interrupts.check()
                fut = pool.submit(self._one, res, key, obj)
                fut.add_done_callback(finished)
                futures.append(fut)
            for fut in futures:
                while not fut.done():
                    interrupts.wait(fut)
                fut.result()
        if self.gone is not None:
            raise self.gone
        r = self.results[key]
        log.info("%s (%s): %d created, %d updated, %d skipped, %d failed", key, step.phase, r.created, r.updated,
                 r.skipped, r.failed)

    def wait_crds(self, deadline: float) -> None:
        """Wait for the created CRDs to be Established; one that is not by the deadline fails (its custom
        resources then fail as not served), and the rest of the snapshot is restored."""
        pending = set(self.created_crds)
        hopeless: set[str] = set()
        conditions: dict[str, list[Obj]] = {}
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                try:
                    crd = self.client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                except NotFound:
                    continue
                conds = (crd.get("status") or {}).get("conditions") or []
                conditions[name] = conds
                if any(c.get("type") == "Established" and c.get("status") == "True" for c in conds):
                    pending.discard(name)
                elif any(c.get("type") == "NamesAccepted" and c.get("status") == "False" for c in conds):
                    pending.discard(name)  # its names are taken: never Established here, nothing to wait for
                    hopeless.add(name)
            if pending:
                time.sleep(0.2)
        key = "apiextensions.k8s.io/v1/customresourcedefinitions"
        for name in sorted(pending | hopeless):
            why = "; ".join(f"{c.get('type')} {c.get('status')}: {c.get('message') or c.get('reason') or ''}"
                            for c in conditions.get(name, []) if c.get("status") != "True")
            with self.lock:
                counts = self.results[key]
                if self.crd_outcomes.get(name) == "updated":
                    counts.updated -= 1
                else:
                    counts.created -= 1
                self.created_crds.remove(name)
            waited = "" if name in hopeless else f" after {self.options.crd_timeout:.0f}s"
            self._fail(key, {"metadata": {"name": name}}, f"created, but not Established{waited}"
                       f"{f' ({why})' if why else ''}: its custom resources are not served")

    def ensure_default_service_accounts(self, timeout: float = 15.0) -> None:
        """Pods are admitted only once their namespace's ``default`` ServiceAccount exists. The serviceaccount
        controller creates it shortly after the namespace (restore skips the recorded one as regenerated); wait for
        it, and create it if no controller does."""
        namespaces = {str((o.get("metadata") or {}).get("name")) for o in self.source.objects("v1/namespaces")}
        namespaces -= set(self.terminating_namespaces)  # no controller makes one there, and no create is taken
        deadline = time.monotonic() + timeout
        missing = set(namespaces)
        while missing and time.monotonic() < deadline:
            missing = {ns for ns in missing
                       if not self.client.exists(f"/api/v1/namespaces/{ns}/serviceaccounts/default")}
            if missing:
                time.sleep(0.2)
        for ns in sorted(missing):
            try:
                self.client.create(f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "default"}})
            except Conflict:
                pass
            except APIError as exc:  # one namespace's problem (deleted meanwhile, refused): its pods fail each
                log.info("namespace %s: its default ServiceAccount could not be created: %s", ns, exc)

    def wait_served(self, deadline: float) -> Discovery:
        """Discovery once every created CRD's resource is in it (or the deadline passed: then the CRs fail,
        reported as not served)."""
        wanted = set()
        for crd in self.source.objects("apiextensions.k8s.io/v1/customresourcedefinitions"):
            spec = crd.get("spec") or {}
            if crd.get("metadata", {}).get("name") in self.created_crds:
                wanted.add((str(spec.get("group", "")), str((spec.get("names") or {}).get("plural", ""))))
        while True:
            disc = discover(self.client)
            served = {(r.group, r.name) for r in disc.resources}
            if wanted <= served or time.monotonic() >= deadline:
                return disc
            time.sleep(0.2)

    def terminate_deferred(self) -> None:
        """Make the objects that were Terminating in the snapshot (held by finalizers) Terminating again, now that
        what depends on them is restored (a claim's pod, say): a delete of that UID, which their finalizers hold.
        Each is taken off ``to_terminate`` once done: what a stop leaves there is reported (``not_terminated``)."""
        while self.to_terminate:
            res, key, obj, options = self.to_terminate[0]
            meta = obj.get("metadata") or {}
            try:
                self.client.delete(res.path(meta.get("namespace") or None, str(meta.get("name", ""))), options)
            except NotFound:
                pass  # its finalizers were lifted meanwhile: gone, as it would have gone in the source
            except APIError as exc:
                self._fail(key, obj, f"restored, but it could not be made Terminating again: {exc}")
            self.to_terminate.pop(0)

    def relink(self) -> None:
        """Owner references to the owners restored (or found in place) by now. An object none of whose owners is
        in the target is left as it was written (after a Ctrl-C: most pods, whose owners came later). A Ctrl-C here
        stops it: the objects it did not reach are listed (``not_relinked``), as a run with --on-conflict skip links
        them."""
        done = 0
        try:
            for entry in self.deferred:
                self._relink(*entry)
                done += 1
        except KeyboardInterrupt:
            self.not_relinked = [f"{res.kind} {ns}/{name}" if ns else f"{res.kind} {name}"
                                 for res, _, ns, name, _, refs, _ in self.deferred[done:]
                                 if any(str(r.get("uid", "")) in self.uid_map for r in refs)]
            raise

    def _relink(self, res: Resource, key: str, ns: str, name: str, kept: list[Obj], refs: list[Obj],
                in_place: bool) -> None:
        new_refs = list(kept)
        for ref in refs:
            new_uid = self.uid_map.get(str(ref.get("uid", "")))
            if new_uid:
                new_refs.append({**ref, "uid": new_uid})
            else:
                self.dropped += 1
        if len(new_refs) == len(kept):
            return  # (no owner of it is in the target: it was written with these; nothing to send)
        try:
            if self._set_owner_refs(res.path(ns or None, name), new_refs):
                self.relinked_in_place += in_place
        except NotFound:  # deleted by the target meanwhile (a finished Job's TTL, then its pods): said, not failed
            gone = f"{res.kind} {ns}/{name}" if ns else f"{res.kind} {name}"
            with self.lock:
                if gone not in self.deleted_meanwhile:
                    self.deleted_meanwhile.append(gone)
        except APIError as exc:  # (under the snapshot's key: the target may serve another version of it)
            self._fail(key, {"metadata": {"namespace": ns, "name": name}},
                       f"owner references could not be relinked: {exc}")

    def _set_owner_refs(self, path: str, refs: list[Obj]) -> bool:
        """The object's owner references made ``refs``, keeping a controller reference the target added meanwhile
        (a controller that adopted it: the whole list, written blind, took that away again), unless ``refs`` holds
        a controller itself. Written with the live resourceVersion, read again after a conflict. False when they
        were so already (a rerun over what an earlier run relinked): nothing is written."""
        for attempt in range(3):
            live = self.client.get(path).get("metadata") or {}
            adopted = [] if any(r.get("controller") for r in refs) else [
                r for r in live.get("ownerReferences") or () if isinstance(r, dict) and r.get("controller")
                and r.get("uid") not in {x.get("uid") for x in refs}]
            if live.get("ownerReferences") == refs + adopted:
                return False
            try:
                self.client.patch(path, {"metadata": {"ownerReferences": refs + adopted,
                                                      "resourceVersion": live.get("resourceVersion")}})
                return True
            except Conflict:
                if attempt == 2:
                    raise
        return True  # (not reached: the third conflict is raised)

    def rebind_claims(self, timeout: float) -> None:
        """Write the recorded status again on bound claims the PV controller marked Lost while their volume did not
        exist yet (claims are restored before volumes, so a volume's claimRef can name the new claim uid; a claim
        synced in between is "bound to a non-existing volume"). Once the volume is in the controller's cache, a
        claim sync finds it and keeps the claim Bound. Gives up after ``timeout`` and reports what is left. A claim
        whose volume is not in the target at all is reported in ``claims_without_volume`` instead: nothing can keep
        it Bound."""
        pending: list[BoundClaim] = []
        for res, key, ns, name, status in self.bound_claims:
            try:
                volume = str((self.client.get(res.path(ns or None, name)).get("spec") or {}).get("volumeName") or "")
                if volume and self.client.exists(f"/api/v1/persistentvolumes/{volume}"):
                    pending.append((res, key, ns, name, status))
                else:
                    self.claims_without_volume.append(f"{ns}/{name}" + (f" (volume {volume})" if volume else ""))
            except APIError as exc:
                self._fail(key, {"metadata": {"namespace": ns, "name": name}},
                           f"created, but its volume could not be checked: {exc}")
        deadline = time.monotonic() + timeout
        while pending:
            time.sleep(1.0)  # the controller's cache catches up with the volumes just created
            still: list[BoundClaim] = []
            for res, key, ns, name, status in pending:
                try:
                    live = self.client.get(res.path(ns or None, name))
                    if (live.get("status") or {}).get("phase") == status.get("phase"):
                        continue
                    self.client.patch(res.path(ns or None, name, "status"), {"status": status})
                    still.append((res, key, ns, name, status))
                except APIError as exc:
                    self._fail(key, {"metadata": {"namespace": ns, "name": name}},
                               f"created, but its Bound status could not be checked: {exc}")
            pending = still
            if pending and time.monotonic() >= deadline:
                for _, key, ns, name, _ in pending:
                    self._fail(key, {"metadata": {"namespace": ns, "name": name}},
                               "created, but the PV controller keeps marking it Lost")
                return

    def settle(self, disc: Discovery) -> list[Adoption]:
        """Wait until every dependent restored without its controller reference has been adopted again (pods of
        finished Jobs were relinked instead; they are checked the same way)."""
        by_kind: dict[str, list[Adoption]] = defaultdict(list)
        for a in self.adoptions:
            by_kind[a.kind].append(a)
        deadline = time.monotonic() + self.options.settle_timeout
        missing: list[Adoption] = []
        while True:
            missing = []
            fixed = 0
            for kind, wanted in by_kind.items():
                res = disc.by_kind("v1" if kind == "Pod" else "apps/v1", kind)
                if res is None:
                    missing += wanted
                    continue
                owners: dict[tuple[str, str], tuple[str, str]] = {}
                finalizers: dict[tuple[str, str], list[str]] = {}
                for item, _ in self.client.list_items(res.path()):
                    m = item["metadata"]
                    finalizers[(m.get("namespace", ""), m["name"])] = list(m.get("finalizers") or [])
                    for ref in m.get("ownerReferences") or []:
                        if ref.get("controller"):
                            owners[(m.get("namespace", ""), m["name"])] = (ref.get("kind"), ref.get("name"))
                gone = [a for a in wanted if (a.namespace, a.name) not in finalizers]
                if gone:  # deleted in the target meanwhile (a Job's TTL, a controller scaling down): not waited for
                    self.deleted_meanwhile += [said for said in (f"{a.kind} {a.namespace}/{a.name}" for a in gone)
                                               if said not in self.deleted_meanwhile]  # (relink may have said it)
                    wanted[:] = [a for a in wanted if (a.namespace, a.name) in finalizers]
                for a in wanted:
                    if owners.get((a.namespace, a.name)) != (a.owner_kind, a.owner_name):
                        missing.append(a)
                    elif not a.keep_job_finalizer and JOB_TRACKING_FINALIZER in finalizers.get((a.namespace,
                                                                                                 a.name), []):
                        self._drop_finalizer(res, a, finalizers[(a.namespace, a.name)])
                        fixed += 1
            # Done after one pass that found nothing to wait for and nothing to fix (the Job controller may add its
            # finalizer just after adopting).
            if (not missing and not fixed) or time.monotonic() >= deadline:
                return missing
            time.sleep(1.0)

    def _drop_finalizer(self, res: Resource, a: Adoption, finalizers: list[str]) -> None:
        """Remove the Job tracking finalizer the Job controller added on adoption (the recorded pod had none)."""
        kept = [f for f in finalizers if f != JOB_TRACKING_FINALIZER]
        try:
            self.client.patch(res.path(a.namespace, a.name), {"metadata": {"finalizers": kept or None}})
        except APIError as exc:
            self._fail(res.key, {"metadata": {"namespace": a.namespace, "name": a.name}},
                       f"could not remove the Job tracking finalizer added on adoption: {exc}")


def _named(res: Resource, obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{res.kind} {meta['namespace']}/{meta.get('name')}" if meta.get("namespace") else \
        f"{res.kind} {meta.get('name')}"


def _without_admission_taint(taints: list[Obj] | None) -> list[Obj]:
    return [t for t in taints or [] if not (t.get("key") == NOT_READY_TAINT and t.get("effect") == "NoSchedule")]


def _status_never_written(existing: Obj, status: Obj) -> bool:
    """Whether ``existing`` was left half-restored (created, its status write lost): it shows no more than the
    fresh status the API server gives a new object (Pending, a pod's QoS class, a gated pod's SchedulingGated
    condition), and the recorded one says more. One written since (by the target, a replay: Failed with its
    reason) is no longer fresh, and stays (black-box finding: a skip wrote the snapshot's phase over a pod evicted
    since, leaving it Running with the reason Evicted). (Review finding: a pod recorded Pending, unschedulable or
    being started, was taken for one whose status was written, as only its phase and IP were compared.)"""
    current = existing.get("status") or {}
    conditions = [c for c in current.get("conditions") or () if not (
        isinstance(c, dict) and c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated")]
    fresh = set(current) - {"conditions"} <= {"phase", "qosClass"} and not conditions and current.get("phase") in (
        None, "Pending")
    return fresh and _without(status, "qosClass") != _without(current, "qosClass")


def _without(obj: Obj, key: str) -> Obj:
    return {k: v for k, v in obj.items() if k != key}


def _written_by_restore(obj: Obj) -> bool:
    """Whether kwoksnap's own field manager (its user agent's) wrote the object itself: one restore made on an
    earlier run (or kwoksnap replay wrote), as opposed to the target's own."""
    return any(isinstance(entry, dict) and entry.get("manager") == FIELD_MANAGER and not entry.get("subresource")
               for entry in (obj.get("metadata") or {}).get("managedFields") or ())


def manual_endpoints(source: RecordSource) -> frozenset[tuple[str, str]]:
    """(namespace, name) of the source's Services without a selector: their Endpoints are a user's."""
    keys = [key for key in source.counts() if key.count("/") == 1 and key.endswith("/services")]
    return selectorless(obj for key in keys for obj in source.objects(key))


def _quota_namespaces(client: Client) -> frozenset[str]:
    """The namespaces with a ResourceQuota in the target (none when they may not be listed)."""
    try:
        return frozenset(str((q.get("metadata") or {}).get("namespace", ""))
                         for q, _ in client.list_items("/api/v1/resourcequotas"))
    except APIError:
        return frozenset()


_REFUSED_FIELD: Final = re.compile(r"([A-Za-z][\w.\[\]/-]*): (?:Invalid value: |Forbidden: )")


def _refused_as_immutable(text: str) -> bool:
    """Whether an update's refusal says a field cannot change: "field is immutable", a pod's "may not change
    fields", a StatefulSet's "updates to statefulset spec for fields other than ... are forbidden"."""
    return "immutable" in text or "may not change fields" in text or ("updates to" in text and "are forbidden" in text)


def _immutable_fields(message: str) -> list[str]:
    """The fields an API server's refusal of an update names as immutable (``data``, ``spec.selector``; a pod's
    ``spec``: "pod updates may not change fields other than ..."), at most five; empty for any other refusal."""
    if not _refused_as_immutable(message):  # (a PVC's, a PV's: "spec is immutable after creation",
        return []  # "spec.persistentvolumesource is immutable after creation")
    fields: list[str] = []
    for part in re.split(r", (?=[A-Za-z][\w.\[\]/-]*: (?:Invalid value|Forbidden))", message):
        if _refused_as_immutable(part):
            found = _REFUSED_FIELD.search(part)
            if found and found.group(1) not in fields:
                fields.append(found.group(1))
    return fields[:5]


def _snapshot_uids(source: RecordSource, keys: Iterable[str]) -> tuple[dict[str, str], frozenset[str]]:
    """Every UID in the snapshot (with its object's namespace), and those of the owners whose controller adopts
    nothing: finished Jobs (never synced again) and objects being deleted (restored Terminating:
    terminate_deferred)."""
    uids: dict[str, str] = {}
    never: set[str] = set()
    for key in keys:
        for obj in source.objects(key):
            meta = obj.get("metadata") or {}
            uid = meta.get("uid")
            if uid:
                uids[str(uid)] = str(meta.get("namespace") or "")
                if finished_job(obj) or (meta.get("deletionTimestamp") and meta.get("finalizers")):
                    never.add(str(uid))
    return uids, frozenset(never)


def restore(
    client: Client,
    source: RecordSource,
    options: RestoreOptions = RestoreOptions(),
    *,
    progress: Progress = lambda _r, _d, _t: None,
    notice: Callable[[str], None] = lambda _line: None,
) -> RestoreSummary:
    """Restore every object of ``source`` into the cluster behind ``client``; see the module docstring.

    ``notice`` hears each of what the snapshot's objects name that neither it nor the target holds
    (:func:`~kwoksnap.restore.dependencies.missing_dependencies`) before anything is written; the summary keeps them.
    """
    started = time.monotonic()
    requests0, retries0 = client.requests, client.retries
    check_target(client, options.allow_real_nodes)
    steps = plan(source.counts())
    r = _Restorer(client, source, options, progress)
    r.snapshot_uids, r.never_adopt = _snapshot_uids(source, [s.resource for s in steps])
    r.snapshot_namespaces = frozenset(str((o.get("metadata") or {}).get("name", ""))
                                      for o in source.objects("v1/namespaces"))
    r.quota_namespaces = _quota_namespaces(client)
    disc = discover(client)
    missing = missing_dependencies(source.counts(), source.objects, client, disc)
    for line in missing:
        notice(line)
    crd_steps = [s for s in steps if s.phase == PHASES[0][0]]
    admission = [s for s in steps if s.phase == ADMISSION]
    interrupted = False
    abandoned: list[str] | None = None  # a second Ctrl-C: the writes in flight then, not waited for
    error: KwoksnapError | None = None
    error_phase: Phase | None = None
    not_adopted: list[Adoption] = []
    pool = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="restore")

    def stage(phase: Phase, work: Callable[[], None], *, after_ctrl_c: bool = False) -> None:
        """Run one stage of the restore unless an error stopped it before (or a Ctrl-C, unless ``after_ctrl_c``).
        Ctrl-C or an error in it is kept for the summary: the objects being written finish whole (each write is one
        task) and the queued never start. A second Ctrl-C while they finish (a target that does not answer) stops
        the waiting: what was in flight then is listed, its outcome unknown, and nothing more is done."""
        nonlocal interrupted, error, error_phase, abandoned
        if abandoned is not None or error is not None or (interrupted and not after_ctrl_c):
            return
        try:
            work()
        except KeyboardInterrupt:
            interrupted = True
        except KwoksnapError as exc:  # after writes began: what is in the target is still reported (summary.error)
            error, error_phase = exc, phase
        if interrupted or error is not None:
            try:
                pool.shutdown(wait=True, cancel_futures=True)
            except KeyboardInterrupt:
                with r.lock:
                    abandoned = sorted(r.in_flight)
                client.cancel()  # (no retries for them: they fail as soon as the target answers, or times out)
                pool.shutdown(wait=False, cancel_futures=True)

    restored: list[bool] = []  # every step of the objects ran to its end

    def objects() -> None:
        nonlocal disc
        for step in crd_steps:
            r.run_step(step, disc, pool)
        if crd_steps:
            deadline = time.monotonic() + options.crd_timeout
            r.wait_crds(deadline)
            disc = r.wait_served(deadline)  # Established comes a moment before discovery serves the resource
        waited = False
        for step in steps[len(crd_steps):len(steps) - len(admission)]:
            if step.phase in ("nodes", "claims", "volumes", "pods") and not waited:
                r.ensure_default_service_accounts()
                waited = True
            r.run_step(step, disc, pool)
        restored.append(True)

    def settle() -> None:
        nonlocal not_adopted
        r.terminate_deferred()
        r.rebind_claims(options.settle_timeout)
        not_adopted = r.settle(disc) if r.adoptions else []

    def mark() -> None:
        # The mark names this restore's snapshot, or none (an imported YAML has no capture time): never an older
        # one; and never after an error, nor a Ctrl-C before the objects' steps were all done (the snapshot is not in
        # the target, and a replay would be told it is: review finding). A Ctrl-C in the wait for adoption marks it;
        # the admission objects (quotas, webhooks), written last, are not waited for.
        if not restored:
            return
        with contextlib.suppress(KwoksnapError):  # no right to annotate kube-system, or unreachable
            client.patch("/api/v1/namespaces/kube-system",
                         {"metadata": {"annotations": {SNAPSHOT_TAKEN_ANNOTATION: source.taken_at()}}})

    def admit() -> None:
        for step in admission:
            r.run_step(step, disc, pool)

    # An earlier restore's mark goes first: a run stopped before its own is set leaves the target holding more than
    # that snapshot (review finding: a replay was told the target held the older one).
    with contextlib.suppress(KwoksnapError):
        client.patch("/api/v1/namespaces/kube-system", {"metadata": {"annotations": {SNAPSHOT_TAKEN_ANNOTATION: None}}})
    try:
        stage("objects", objects)
        stage("relink", r.relink, after_ctrl_c=True)  # owner references to the owners restored by then
        stage("settle", settle)  # Ctrl-C is likeliest in this wait for adoption: the summary survives it
        stage("mark", mark, after_ctrl_c=True)
        # Admission last of all: a webhook whose backend does not run here, or a policy, would refuse the writes
        # of the target's controllers adopting what was restored, and a quota the restored objects themselves.
        stage("admission", admit)
    finally:
        pool.shutdown(wait=abandoned is None)
    return RestoreSummary(
        results=r.results, failures=r.failures, not_adopted=not_adopted, dropped_owner_refs=r.dropped,
        invalid_owner_refs=r.invalid_owners,
        seconds=time.monotonic() - started, requests=client.requests - requests0,
        retries=client.retries - retries0, claims_without_volume=r.claims_without_volume,
        ttl_expired=r.ttl_expired, deleted_meanwhile=r.deleted_meanwhile, removed_at_once=r.removed_at_once,
        missing_dependencies=missing,
        terminating_namespaces=sorted(r.terminating_namespaces),
        interrupted=interrupted, planned=sum(s.objects for s in steps), kept_secrets=sorted(r.kept_secrets),
        left_out_webhooks=sorted(r.left_out_webhooks),
        not_relinked=r.not_relinked, relinked_in_place=r.relinked_in_place, abandoned=abandoned,
        not_terminated=[_named(res, obj) for res, _, obj, _ in r.to_terminate],
        active_namespaces=sorted(r.active_namespaces), namespaces_created=sorted(r.namespaces_created), error=error,
        error_phase=error_phase,
    )


# Field managers of the objects an API server makes itself when it starts: the default namespaces, RBAC defaults,
# the kubernetes Service, PriorityClasses, API priority-and-fairness configuration. No client writes under them.
_API_SERVER_MANAGERS = frozenset({"kube-apiserver", "api-priority-and-fairness-config-producer-v1"})
_SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


def _made_by_the_api_server(obj: Obj) -> bool:
    """An object every cluster has from its start (black-box finding: `--on-conflict fail` failed 139 of them on a
    brand-new target), known by its bootstrap label or by being written by the API server's own field managers
    alone."""
    meta = obj.get("metadata") or {}
    if "kubernetes.io/bootstrapping" in (meta.get("labels") or {}):
        return True
    if obj.get("kind") == "Namespace" and meta.get("name") in _SYSTEM_NAMESPACES:
        return True  # (kube-system also carries restore's own snapshot mark)
    # Only who wrote the object itself: the API server writes the status of every CRD (and APIService) it serves.
    writers = {entry.get("manager") for entry in meta.get("managedFields") or ()
               if isinstance(entry, dict) and entry.get("subresource") != "status"}
    return bool(writers) and writers <= _API_SERVER_MANAGERS


def _removed_when_deleted(body: Obj, status: Obj | None) -> bool:
    """Whether a graceful delete removes the pod at once: the API server gives no grace period to a pod that has
    finished or was never scheduled (pod strategy, CheckGracefulDelete), and without a finalizer nothing holds it."""
    phase = (status or {}).get("phase")
    unscheduled = not (body.get("spec") or {}).get("nodeName")
    return (phase in ("Succeeded", "Failed") or unscheduled) and not (body.get("metadata") or {}).get("finalizers")


def _established_or_unknown(crd: Obj) -> bool:
    """Whether a CRD of the snapshot was Established in the source, or its status says nothing (an imported YAML):
    one that was not (its names taken by another CRD) is not waited for, as it may never be here either."""
    conds = (crd.get("status") or {}).get("conditions") or []
    established = [c for c in conds if isinstance(c, dict) and c.get("type") == "Established"]
    return not established or established[0].get("status") == "True"
