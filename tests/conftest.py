"""Shared fixtures: one real KWOK cluster per test session, a fresh namespace per test.

The cluster is created through kwoksnap's own `cluster` stage (cached binaries built from the Go module proxy),
in a private work directory, and deleted at the end. With CI=true a cluster test that cannot run is a failure,
never a skip.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kwoksnap.cluster.binaries import Binaries, ensure_binaries
from kwoksnap.cluster.local import LocalCluster, Profile, create_cluster, delete_cluster
from kwoksnap.kube import Client, load_config

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def binaries() -> Binaries:
    try:
        return ensure_binaries(lambda msg: print(msg, flush=True))
    except Exception as exc:  # without binaries no cluster test can run
        if IN_CI:
            pytest.fail(f"cannot obtain cluster binaries in CI: {exc}")
        pytest.skip(f"cluster binaries unavailable: {exc}")


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kwok-workdir")


def _make_cluster(name: str, binaries: Binaries, workdir: Path, profile: Profile,
                  extra_args: tuple[str, ...] = ()) -> LocalCluster:
    try:
        return create_cluster(name, binaries, profile=profile, workdir=workdir, extra_args=extra_args)
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"cannot create a KWOK cluster in CI: {exc}")
        pytest.skip(f"cannot create a KWOK cluster: {exc}")


@pytest.fixture(scope="session")
def kwok_cluster(binaries: Binaries, workdir: Path) -> Iterator[LocalCluster]:
    name = f"t{os.getpid()}"
    cluster = _make_cluster(name, binaries, workdir, Profile.STANDARD)
    try:
        yield cluster
    finally:
        delete_cluster(name, binaries, workdir=workdir)


ClusterFactory = Callable[..., LocalCluster]


class _Maker:
    """Creates extra clusters and deletes them when its fixture's scope ends: on this 2-core machine every idle
    cluster left running costs CPU (controllers, leader election) and slows every later test."""

    def __init__(self, binaries: Binaries, workdir: Path) -> None:
        self.binaries, self.workdir, self.made = binaries, workdir, list[str]()

    def __call__(self, name: str, profile: Profile = Profile.STANDARD,
                 extra_args: tuple[str, ...] = ()) -> LocalCluster:
        full = f"{name}{os.getpid()}"
        delete_cluster(full, self.binaries, workdir=self.workdir)
        self.made.append(full)
        return _make_cluster(full, self.binaries, self.workdir, profile, extra_args)

    def delete_all(self) -> None:
        for name in self.made:
            delete_cluster(name, self.binaries, workdir=self.workdir)


@pytest.fixture
def make_cluster(binaries: Binaries, workdir: Path) -> Iterator[ClusterFactory]:
    """Clusters for one test, deleted when it ends: ``make_cluster("dst", Profile.REPLAY)``."""
    maker = _Maker(binaries, workdir)
    yield maker
    maker.delete_all()


@pytest.fixture(scope="module")
def make_module_cluster(binaries: Binaries, workdir: Path) -> Iterator[ClusterFactory]:
    """Clusters shared by a module's tests, deleted when the module ends."""
    maker = _Maker(binaries, workdir)
    yield maker
    maker.delete_all()


def client_for(cluster: LocalCluster, pool_size: int = 16) -> Client:
    return Client(load_config(str(cluster.kubeconfig)), pool_size=pool_size)


@pytest.fixture(scope="session")
def client(kwok_cluster: LocalCluster) -> Iterator[Client]:
    with Client(load_config(str(kwok_cluster.kubeconfig))) as c:
        yield c


@pytest.fixture
def namespace(client: Client) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    client.create("/api/v1/namespaces", {"metadata": {"name": name}})
    deadline = time.monotonic() + 30  # pods are admitted only once the namespace's default ServiceAccount exists
    while not client.exists(f"/api/v1/namespaces/{name}/serviceaccounts/default") and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        yield name
    finally:
        client.delete(f"/api/v1/namespaces/{name}", {"propagationPolicy": "Background"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if {"kwok_cluster", "make_cluster", "make_module_cluster"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


_skipped_cluster_tests: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "cluster" in report.keywords:
        _skipped_cluster_tests.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if IN_CI and _skipped_cluster_tests:
        print(f"\nCI=true but {len(_skipped_cluster_tests)} cluster test(s) were skipped: {_skipped_cluster_tests[:5]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
