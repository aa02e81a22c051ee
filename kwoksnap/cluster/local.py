"""Create, list and delete local KWOK clusters through kwokctl's binary runtime (no Docker, loopback only).

Why this module exists: every test, demo and replay needs a real kube-apiserver + etcd + controllers + kwok. kwokctl
already knows how to wire them; kwoksnap adds what it needs on top: its cached binaries (or the user's own
kwokctl), a loopback bind address, the capture audit policy, and the kwok setting that lets restore/replay own the
status of the objects they mark (see docs/design.md, "Who owns status"). It must never touch the user's
~/.kube/config (kwokctl is always called with an empty ``--kubeconfig``) and ``delete`` must leave no process and
no file behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import yaml

from kwoksnap.cluster.binaries import Binaries, taking_turns
from kwoksnap.errors import KwoksnapError, ToolError, Unremovable, UsageError
from kwoksnap.interrupts import DeferredInterrupts

log = logging.getLogger("kwoksnap.cluster")

ENV_WORKDIR = "KWOKSNAP_WORKDIR"  # where kwokctl keeps clusters (its KWOK_WORKDIR); default ~/.local/share/kwoksnap

# kwok leaves alone every node and pod whose annotations match this selector: no stage (node-initialize,
# pod-ready, pod-complete, pod-delete), no heartbeat, no lease. Restore and replay mark the objects whose recorded
# status must win with it.
FROZEN_ANNOTATION = "kwoksnap.io/frozen"
FROZEN_SELECTOR = f"{FROZEN_ANNOTATION}=true"


class Profile(enum.StrEnum):
    """What runs in the cluster besides the API server.

    ``standard``: scheduler, all controllers and kwok, as kwokctl starts them (restore, ``replay --mode inputs``).
    ``replay``: for verbatim replay, where the recording *is* the controllers: no scheduler, and
    kube-controller-manager without the controllers that would re-do what the recording already did (workload
    controllers, garbage collector, node lifecycle, volume binding and protection).
    """

    STANDARD = "standard"
    REPLAY = "replay"


# Controllers that would duplicate a verbatim replay's recorded actions. Leaving out a controller whose name this
# version does not know makes kube-controller-manager refuse to start, so this list is tied to KUBE_VERSION.
# Endpoints/endpointslices and node TTL annotations are only derived data, but deriving them costs a write per
# replayed pod change, which is what bounds replay speed on a small machine (docs/design.md, "Replay").
REPLAY_DISABLED_CONTROLLERS = (
    "deployment-controller", "replicaset-controller", "statefulset-controller", "daemonset-controller",
    "job-controller", "cronjob-controller", "replicationcontroller-controller", "garbage-collector-controller",
    "node-lifecycle-controller", "taint-eviction-controller", "pod-garbage-collector-controller",
    "horizontal-pod-autoscaler-controller", "disruption-controller", "ttl-after-finished-controller",
    "endpoints-controller", "endpointslice-controller", "endpointslice-mirroring-controller", "ttl-controller",
    # Storage: binding claims to volumes, releasing them, the protection finalizers' removal, expansion, attaching
    # and the claims of ephemeral volumes are all recorded writes too; the target's own raced them (a replayed
    # write met a claim its binder had changed: 404, exit 5; black-box finding).
    "persistentvolume-binder-controller", "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller", "persistentvolume-expander-controller",
    "persistentvolume-attach-detach-controller", "ephemeral-volume-controller",
)

# Admission plugins off in the replay profile. Recorded pods already carry what the mutating ones would add
# (service-account volume, tolerations, priority); the validating ones (pod security, quota, limit ranges) would
# reject or alter recorded objects; webhooks and admission policies restored from a production cluster have no
# backend here and would block writes. NamespaceLifecycle and the storage protections stay on.
REPLAY_DISABLED_ADMISSION = (
    "MutatingAdmissionWebhook", "ValidatingAdmissionWebhook", "ValidatingAdmissionPolicy", "MutatingAdmissionPolicy",
    "PodSecurity", "ResourceQuota", "LimitRanger", "ServiceAccount", "Priority", "DefaultTolerationSeconds",
    "TaintNodesByCondition", "RuntimeClass", "PodTopologyLabels",
)


def workdir_root() -> Path:
    env = os.environ.get(ENV_WORKDIR)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "kwoksnap"


def _root(workdir: Path | None) -> Path:
    """The work directory as one absolute path, whichever way it was named: a relative one (kwokctl started the
    components from another directory: "no such file"), or a symlink (the processes of a cluster made through the
    link were not recognised as its own through the real path, and a delete left them running; black-box findings).
    A path with a space is refused: kwokctl cut it there and made the cluster outside it, left running."""
    root = (workdir or workdir_root()).expanduser().resolve()
    if any(c.isspace() for c in str(root)):
        raise UsageError(f"{ENV_WORKDIR}: {str(root)!r} holds a space, which kwokctl cannot run a cluster from: "
                         "choose a directory without one")
    return root


def audit_policy_text() -> str:
    return resources.files("kwoksnap.cluster").joinpath("data/audit-policy.yaml").read_text()


@dataclasses.dataclass(frozen=True)
class LocalCluster:
    name: str
    directory: Path

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig.yaml"

    @property
    def audit_log(self) -> Path:
        return self.directory / "logs" / "audit.log"

    @property
    def profile(self) -> Profile | None:
        """The profile it was made with; None when it has no valid marker: its create never finished (killed
        outright: the marker is written last), or the marker was damaged."""
        try:
            return Profile((self.directory / "kwoksnap-profile").read_text().strip())
        except (OSError, ValueError):
            return None


def _env(workdir: Path) -> dict[str, str]:
    # kwokctl looks up kubectl on PATH; the dev extras install one into this interpreter's bin directory.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return dict(os.environ, KWOK_WORKDIR=str(workdir), PATH=path)


def validate_name(name: str) -> None:
    """Refuse a name kwokctl cannot take (a UsageError): checked first, not after the binaries are built."""
    import re

    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?", name):
        raise UsageError(f"invalid cluster name {name!r}: use lowercase letters, digits and '-', starting and "
                         "ending with a letter or digit (max 42)")


def cluster_config(binaries: Binaries, profile: Profile, policy_path: Path) -> list[dict[str, object]]:
    """The kwokctl configuration documents for a cluster (KwokctlConfiguration + KwokConfiguration)."""
    options: dict[str, object] = {
        "runtime": "binary",
        "bindAddress": "127.0.0.1",
        "kubeAuditPolicy": str(policy_path),
    }
    if binaries.complete:
        options.update(
            kubeApiserverBinary=str(binaries.kube_apiserver),
            kubeControllerManagerBinary=str(binaries.kube_controller_manager),
            kubeSchedulerBinary=str(binaries.kube_scheduler),
            kwokControllerBinary=str(binaries.kwok),
            etcdBinary=str(binaries.etcd),
        )
    kubectl = shutil.which("kubectl", path=_env(Path("/"))["PATH"])
    if kubectl:
        options["kubectlBinary"] = kubectl
    # A local simulation cluster needs no durability: etcd without fsync takes ~30% more writes/s here
    # (docs/benchmarks.md), which is what restore and replay are limited by.
    patches: list[dict[str, object]] = [
        {"name": "etcd", "extraArgs": [{"key": "unsafe-no-fsync", "value": "true"}]},
    ]
    kwokctl_doc: dict[str, object] = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": options,
        "componentsPatches": patches,
    }
    # A controller manager or scheduler that cannot renew its leader lease within the renew deadline (10 s by
    # default: an API server restart, a machine too busy to answer) exits, and kwokctl's binary runtime never
    # restarts it, so the cluster silently loses its controllers for good. There is only ever one instance here:
    # a long lease costs nothing, and the lease is still renewed often enough for replay's target checks.
    leader = [{"key": "leader-elect-lease-duration", "value": "90s"},
              {"key": "leader-elect-renew-deadline", "value": "60s"},
              {"key": "leader-elect-retry-period", "value": "5s"}]
    kcm_args = list(leader)
    patches.append({"name": "kube-controller-manager", "extraArgs": kcm_args})
    if profile is not Profile.REPLAY:  # the replay profile runs no scheduler
        patches.append({"name": "kube-scheduler", "extraArgs": list(leader)})
    if profile is Profile.REPLAY:
        options["disableKubeScheduler"] = True
        kcm_args.insert(0, {"key": "controllers", "value": ",".join(
            ["*", *(f"-{c}" for c in REPLAY_DISABLED_CONTROLLERS)])})
        # The replay target's API server is what a burst waits for; these cut its CPU per write by about a quarter
        # (profile and measurements in docs/design.md): no API priority and fairness (one client, no tenants),
        # audit events written off the request path, fewer garbage collections, and no admission plugins whose
        # mutations the recorded objects already carry (or whose checks a simulation does not want).
        patches.append({
            "name": "kube-apiserver",
            "extraArgs": [
                {"key": "enable-priority-and-fairness", "value": "false"},
                {"key": "audit-log-mode", "value": "batch"},
                {"key": "audit-log-batch-buffer-size", "value": "100000"},
                {"key": "disable-admission-plugins", "value": ",".join(REPLAY_DISABLED_ADMISSION)},
            ],
            "extraEnvs": [{"name": "GOGC", "value": "400"}],
        })
    kwok_doc: dict[str, object] = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokConfiguration",
        # kwokctl passes a user KwokConfiguration to kwok without applying its defaults (kwok v0.8.0), and kwok
        # then refuses to start ("node leases parallelism must be greater than 0"); so every defaulted option is
        # spelled out here with kwok's own default value (zz_generated.defaults.go).
        "options": {
            "disregardStatusWithAnnotationSelector": FROZEN_SELECTOR,
            "cidr": "10.0.0.0/24",
            "enableDebuggingHandlers": True,
            "enableContentionProfiling": False,
            "enableProfilingHandler": True,
            "podPlayStageParallelism": 4,
            "nodePlayStageParallelism": 4,
            "nodeLeaseParallelism": 4,
            "podsOnNodeSyncParallelism": 1,
            "enablePodsOnNodeSyncListPager": True,
            "enablePodsOnNodeSyncStreamWatch": False,
        },
    }
    return [kwokctl_doc, kwok_doc]


def create_cluster(
    name: str,
    binaries: Binaries,
    *,
    profile: Profile = Profile.STANDARD,
    workdir: Path | None = None,
    wait: float = 120.0,
    extra_args: tuple[str, ...] = (),
) -> LocalCluster:
    """Start a cluster; on any failure nothing of it is left running. A cluster that did not come up is made again
    once: on a loaded machine etcd can start so late that the API server has given up on it (exit, "error creating
    storage factory: context deadline exceeded"), and kwokctl's binary runtime never starts it again. Both attempts
    hold the cluster's lock (:func:`_cluster_lock`): between them, a delete waiting for the create found nothing and
    said so, and the second attempt then made the cluster (review finding)."""
    validate_name(name)
    root = _root(workdir)
    root.mkdir(parents=True, exist_ok=True)
    with _cluster_lock(root, name):
        try:
            return _create_locked(name, binaries, root, profile, wait, extra_args)
        except _NotReady as exc:
            log.warning("%s; making it again", exc)
        return _create_locked(name, binaries, root, profile, wait, extra_args)


# How long kwokctl create may run beyond its --wait (it builds nothing here: it writes its config, starts the
# processes, then waits): a kwokctl that hung (a component that never exits, a lock) held `cluster create`, and every
# test's session cluster, for ever (left from review).
CREATE_GRACE = 120.0


class _NotReady(ToolError):
    """A cluster kwokctl made that did not become ready (it was deleted)."""


def _create_locked(name: str, binaries: Binaries, root: Path, profile: Profile, wait: float,
                   extra_args: tuple[str, ...]) -> LocalCluster:
    cluster = LocalCluster(name, root / "clusters" / name)
    begun = False  # kwokctl was started: from here on, any failure or interrupt removes what it made
    try:
        with tempfile.TemporaryDirectory(prefix="kwoksnap-create-") as tmp:
            policy = Path(tmp) / "audit-policy.yaml"
            policy.write_text(audit_policy_text())
            config = Path(tmp) / "kwokctl.yaml"
            config.write_text(yaml.safe_dump_all(cluster_config(binaries, profile, policy), sort_keys=False))
            args = [
                str(binaries.kwokctl), "create", "cluster", "--name", name, "--runtime", "binary",
                "--config", str(config), "--kubeconfig=", f"--wait={int(wait)}s", *extra_args,
            ]
            with _creating(root):
                # Checked under the lock: two creates of one name both passed the check before, and the second
                # overwrote the first's profile marker (kwokctl said 0 for the cluster that existed).
                if cluster.directory.exists():
                    raise UsageError(f"cluster {name!r} already exists ({cluster.directory}); delete it first")
                started = time.monotonic()  # (not the time queued behind another create: review finding)
                begun = True
                try:
                    proc = subprocess.run(args, env=_env(root), capture_output=True, text=True,
                                          timeout=wait + CREATE_GRACE)
                except OSError as exc:  # not started at all (not executable, another architecture): nothing made
                    begun = False
                    raise ToolError(f"cannot run kwokctl {binaries.kwokctl}: {exc.strerror or exc}") from None
                except subprocess.TimeoutExpired as exc:  # (killed by run; what it started is removed below)
                    said = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
                    raise ToolError(f"kwokctl create cluster {name} did not end in {wait + CREATE_GRACE:.0f}s "
                                    f"(--wait {wait:.0f}s and {CREATE_GRACE:.0f}s more), stopped: "
                                    f"{_last_lines(said) or 'it printed nothing'}") from None
                for key in (cluster.directory / "pki").glob("*.key"):  # kwokctl leaves them 0644 (black-box
                    key.chmod(0o600)  # finding): at once, not once ready (a create killed later left them so)
        if proc.returncode != 0 or not cluster.kubeconfig.exists():
            detail = _last_lines(proc.stderr + proc.stdout)
            raise ToolError(f"kwokctl create cluster {name} failed (exit {proc.returncode}): {detail}")
        # kwokctl exits 0 even when its --wait timed out (it only logs "Failed to wait for cluster to be ready"),
        # and on a loaded machine that happens: check readiness ourselves before handing the cluster out.
        problem = wait_ready(cluster, max(30.0, started + wait - time.monotonic()),
                             service_account=profile is Profile.STANDARD)
        if problem:
            tail = _last_lines(_tail(cluster.directory / "logs" / "kube-apiserver.log"), 3)
            raise _NotReady(f"cluster {name} did not become ready in {time.monotonic() - started:.0f}s ({problem}); "
                            f"kube-apiserver log: {tail}")
        (cluster.directory / "kwoksnap-profile").write_text(profile.value + "\n")
    except BaseException:  # a failure, or Ctrl-C/SIGTERM at any point after kwokctl began: nothing is left running
        if begun:
            _clean_up(name, binaries, root)
        raise
    return cluster


def _clean_up(name: str, binaries: Binaries, root: Path) -> None:
    """Remove what a failed or interrupted create made, with Ctrl-C and SIGTERM deferred meanwhile (a second one,
    a CI runner's repeated TERM, cut the removal short and left the cluster running); a failure to remove is logged,
    not raised over the create's own error or interrupt (review findings)."""
    with DeferredInterrupts():
        try:
            _delete_locked(name, binaries, root)
        except Exception as exc:
            log.error("cluster %s was not removed: %s", name, exc)


@contextlib.contextmanager
def _cluster_lock(root: Path, name: str) -> Iterator[None]:
    """One cluster's create and delete take turns (black-box finding: a delete while the create still waited for
    readiness removed the cluster, and the create then said it was made, or made it again after the user's delete).
    An advisory lock on a file beside the clusters' directories (a delete removes the cluster's own), released when
    the process ends, however it ends; the file stays (removing it would let two processes hold two locks). Without
    a lock file (a read-only work directory: nothing can be created there anyway) it goes on unlocked."""
    try:
        (root / "locks").mkdir(parents=True, exist_ok=True)
        lock = open(root / "locks" / name, "a")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        log.debug("no lock for cluster %s: %s", name, exc)
        yield
        return
    with lock, taking_turns(lock, lambda: log.warning("waiting for another create or delete of cluster %s to "
                                                      "finish", name)):
        yield


@contextlib.contextmanager
def _creating(root: Path) -> Iterator[None]:
    """kwokctl picks free ports when it creates a cluster, and they are taken only once its processes listen: two
    creates at once picked the same ports, and the second cluster's kubeconfig named the first's API server. Creates
    take turns: under one work directory (which also guards the check that a name is free), and across work
    directories of one user on the machine (``KWOKSNAP_WORKDIR`` differs, the ports are the same), through advisory
    locks released when the process ends, however it ends."""
    def waiting() -> None:
        log.warning("waiting for another cluster create on this machine to finish (kwokctl picks free ports: two at "
                    "once would pick the same)")

    with contextlib.ExitStack() as stack:
        machine = _machine_lock()
        if machine is not None:  # (this one first, always)
            stack.enter_context(taking_turns(stack.enter_context(machine), waiting))
        stack.enter_context(taking_turns(stack.enter_context(open(root / ".create.lock", "a")), waiting))
        yield


def _machine_lock(base: Path | None = None) -> IO[str] | None:
    """The lock file creates take turns on across work directories: in a directory of this user's own under /tmp
    (whatever TMPDIR says: two processes with different ones would not share it), mode 0700. A file at a fixed
    name in /tmp itself could be made, or held, or pointed elsewhere by another user (review finding). None, and
    only the work directory's lock is taken, where there is no such directory of ours to be had."""
    base = base or Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir())
    directory = base / f"kwoksnap-{os.getuid()}"
    try:
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
        st = os.lstat(directory)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            log.warning("%s is not a private directory of this user: creates in other work directories are not "
                        "waited for", directory)
            return None
        fd = os.open(directory / "create.lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    except OSError as exc:  # (a temp directory that cannot be written: the work directory's lock only)
        log.debug("no machine-wide create lock: %s", exc)
        return None
    return os.fdopen(fd, "a")


def wait_ready(cluster: LocalCluster, timeout: float, *, service_account: bool = False) -> str | None:
    """Poll the API server's /readyz until it answers ok; returns what was wrong if ``timeout`` seconds passed.

    With ``service_account``, then wait until the ``default`` namespace's ``default`` ServiceAccount exists: where
    the ServiceAccount admission plugin runs (the standard profile), no pod is admitted there before
    kube-controller-manager has made it, a moment after start, so ``kubectl run`` or a replay's first pod right
    after ``cluster create`` failed with "serviceaccount default not found"."""
    from kwoksnap.kube import Client, RetryPolicy, load_config

    once = RetryPolicy(attempts=1)
    problem = "no answer"
    end = time.monotonic() + timeout
    checks = ["/readyz", *(["/api/v1/namespaces/default/serviceaccounts/default"] if service_account else [])]
    with Client(load_config(str(cluster.kubeconfig)), pool_size=1) as client:
        for path in checks:
            while True:
                try:
                    resp = client.raw("GET", path, retry=once, timeout=5.0)
                except KwoksnapError as exc:
                    problem = str(exc)
                else:
                    if path != "/readyz" or resp.data.strip() == b"ok":
                        break
                    problem = resp.data[:200].decode("utf-8", "replace")
                if time.monotonic() >= end:
                    return problem
                time.sleep(min(0.5, timeout))
    return None


def _tail(path: Path, size: int = 4096) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _last_lines(text: str, n: int = 6) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:]) or "(no output)"


def _pid_files(cluster_dir: Path) -> list[int]:
    """The numbers in the cluster's pid files, whatever runs under them now."""
    pids = []
    for pid_file in (cluster_dir / "pids").glob("*.pid") if (cluster_dir / "pids").is_dir() else []:
        try:
            pids.append(int(pid_file.read_text().strip()))
        except (ValueError, OSError):
            continue
    return pids


def _pids(cluster_dir: Path) -> list[int]:
    """The processes the cluster's pid files name that are still the cluster's: after a reboot, or once a component
    died, its number may belong to any other process (which `cluster delete` then killed); and any other process
    run from the cluster's own binaries (CI finding: after a create interrupted in its readiness wait, one
    component was left running that no pid file named)."""
    named = [pid for pid in _pid_files(cluster_dir) if _ours(pid, cluster_dir)]
    return named + [pid for pid in _run_from(cluster_dir) if pid not in named]


def _run_from(cluster_dir: Path) -> list[int]:
    """Processes whose program lies under ``cluster_dir`` (its ``bin/``); none without /proc."""
    prefixes = {os.fsencode(d) + b"/" for d in {cluster_dir.resolve(), cluster_dir}}
    out = []
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                program = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
            except OSError:
                continue  # (gone meanwhile, or not ours to read)
            if program.startswith(tuple(prefixes)):
                out.append(int(entry.name))
    return out


def _ours(pid: int, cluster_dir: Path) -> bool:
    """Whether ``pid`` is a component of the cluster in ``cluster_dir``: kwokctl starts each with files of that
    directory on its command line. Without /proc (not Linux) the pid file is trusted."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return False
    # Each argument on its own, and each --flag=value's value (split at the first "=": a path holding one was
    # never recognised, so a running cluster was listed stopped; review finding).
    args = b"\0" + b"\0".join(part for arg in cmdline.split(b"\0") for part in (arg, arg.partition(b"=")[2]) if part)
    return any(b"\0" + os.fsencode(d) + end in args + b"\0" for d in {cluster_dir.resolve(), cluster_dir}
               for end in (b"/", b"\0"))  # the directory itself or a path under it: not another one it prefixes


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) answers signal 0 too
        return Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def delete_cluster(name: str, binaries: Binaries | None, *, workdir: Path | None = None) -> bool:
    """Stop every process of the cluster and remove its directory. Returns False if there was no such cluster.

    Without a kwokctl the processes are stopped from their pid files, so a cluster can always be cleaned up.
    """
    validate_name(name)
    root = _root(workdir)
    if not root.is_dir():  # (a create makes it before it takes the cluster's lock)
        return False
    with _cluster_lock(root, name):  # first: a create may hold it before kwokctl has made the directory
        return _delete_locked(name, binaries, root)


def _delete_locked(name: str, binaries: Binaries | None, root: Path) -> bool:
    directory = root / "clusters" / name
    if not directory.exists():  # (removed by the create that held the lock: it failed)
        return False
    pids = _pids(directory)
    stopped = False
    if binaries is not None:
        with contextlib.suppress(OSError):  # (a kwokctl that cannot run: the components are stopped below)
            subprocess.run(
                [str(binaries.kwokctl), "delete", "cluster", "--name", name, "--kubeconfig="],
                env=_env(root), capture_output=True, text=True,
            )
            stopped = True
    if not stopped:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    # kwokctl stops the components itself; make sure, since a leaked apiserver keeps ports and memory. Not 10 s:
    # kube-apiserver's graceful shutdown outlasts that (a docs walkthrough measured every delete at 10.3 s), and a
    # cluster being removed has nothing to finish.
    deadline = time.monotonic() + 3
    killed = []
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    deadline = time.monotonic() + 5  # (a SIGKILL is not instant: CI found one still there right after)
    for pid in killed:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    try:
        shutil.rmtree(directory)
    except OSError as exc:  # (black-box finding: "deleted" said of a directory left in place, exit 0)
        raise Unremovable(f"cluster {name}: its processes are stopped, but its directory {directory} could not be "
                         f"removed: {exc.strerror or exc}") from None
    return True


def list_clusters(*, workdir: Path | None = None) -> list[LocalCluster]:
    root = _root(workdir) / "clusters"
    if not root.is_dir():
        return []
    return [LocalCluster(d.name, d) for d in sorted(root.iterdir()) if d.is_dir()]


def profile_for_server(server: str, *, workdir: Path | None = None) -> Profile | None:
    """The profile of the kwoksnap-made local cluster serving at ``server`` (a URL), if there is one."""
    try:
        clusters = list_clusters(workdir=workdir)
    except UsageError:  # a work directory no cluster can be made in (a space in it) holds none
        return None
    for cluster in clusters:
        try:
            doc = yaml.safe_load(cluster.kubeconfig.read_text())
            servers = {_endpoint(c["cluster"]["server"]) for c in doc.get("clusters") or []}
        except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError):
            continue  # a half-deleted cluster directory: not ours to judge
        try:
            if _endpoint(server) in servers:
                return cluster.profile
        except ValueError:
            return None
    return None


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _endpoint(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a server URL, every loopback name as one: a kubeconfig naming the cluster at
    https://localhost:PORT is the same cluster as kwokctl's https://127.0.0.1:PORT (black-box finding: a replay
    profile cluster was taken for a standard one, and restore waited for adoptions that never came)."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    return parts.scheme.lower(), "127.0.0.1" if host in _LOOPBACK else host, parts.port


def cluster_running(cluster: LocalCluster) -> bool:
    pids = _pid_files(cluster.directory)
    return bool(pids) and all(_alive(p) and _ours(p, cluster.directory) for p in pids)
