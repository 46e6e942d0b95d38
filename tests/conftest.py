"""Fixtures shared by the whole suite: Azurite, the Prefect harness, free ports, and a
loopback host serving a private copy of the folder's ``source_parts``.

Azurite is installed into ``.tools/`` by ``scripts/setup.sh --azurite`` and started here,
once per session, in memory on a free loopback port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from david_data.synth.host import LocalHost

ROOT = Path(__file__).resolve().parents[1]
# The Prefect server's telemetry heartbeat races the tests for SQLite's lock (noisy errors).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# In-process CLI calls would otherwise hook Prefect's console handler, bound to one test's
# captured stderr, onto the david_data logger for the rest of the session. The deployment
# test checks with a real worker that david_data's records reach the Prefect run logs.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "")
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


SERVER_TIMEOUT_S = 900
"""Per-test timeout for tests on real servers (pyproject's ``timeout`` is for the rest):
starting a Prefect server, a Dask cluster or Azurite on a loaded 2-core machine is slow."""
SERVER_FIXTURES = frozenset(
    {"azurite", "az_container", "prefect_harness", "prefect_env", "dask_cluster",
     "dask_cluster_factory", "prefect_server"}
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        on_a_server = fixtures & SERVER_FIXTURES or item.get_closest_marker("azurite")
        if on_a_server and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SERVER_TIMEOUT_S))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (where prefect.yaml and the flows live)."""
    return ROOT


@pytest.fixture(scope="session")
def get_free_port():
    """A callable returning a free loopback TCP port."""
    return free_port


@dataclass(frozen=True)
class Azurite:
    port: int

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT};"
        )

    @property
    def storage_options(self) -> dict[str, str]:
        return {"connection_string": self.connection_string}

    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess (adlfs reads the connection string from it)."""
        return {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    def new_container(self) -> str:
        """Create an empty container and return its ``az://`` URL."""
        import fsspec

        name = f"t{uuid.uuid4().hex[:12]}"
        fs = fsspec.filesystem("az", connection_string=self.connection_string, skip_instance_cache=True)
        fs.mkdir(name)
        return f"az://{name}"


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A running Azurite blob emulator (in memory, loopback, free port)."""
    binary = ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        found = shutil.which("azurite-blob")
        if found is None:
            pytest.fail("Azurite is not installed: run 'bash scripts/setup.sh --azurite' (the test command does)")
        binary = Path(found)
    port = free_port()
    workdir = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen(
        [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(workdir), "--skipApiVersionCheck", "--silent", "--loose"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                proc.kill()
                pytest.fail(f"Azurite did not start on port {port}: {err[-2000:]}")
            time.sleep(0.2)
    try:
        yield Azurite(port=port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture()
def az_container(azurite: Azurite) -> str:
    """A fresh, empty container on Azurite, as an ``az://`` URL."""
    return azurite.new_container()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test harness (temporary database, ephemeral server) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def prefect_env(prefect_harness: None) -> dict[str, str]:
    """Environment for a subprocess (e.g. the CLI) that should use the harness's Prefect
    server instead of starting its own ephemeral one (saves ~10 s per process)."""
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}


DASK = [sys.executable, "-m", "dask"]
"""The ``dask`` command line, run by this interpreter (no path into a virtualenv)."""


def as_user(uid: int) -> list[str]:
    """The prefix that runs a command as user ``uid`` (with that user's group, no others)."""
    return ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups"]


def _closed_folder(uid: int, paths: list[str]) -> str | None:
    """The first folder on the way to ``paths`` that user ``uid`` may not enter, if any."""
    import stat

    for path in paths:
        for folder in [*reversed(Path(path).parents)]:
            mode = folder.stat().st_mode
            if folder.stat().st_uid != uid and not mode & stat.S_IXOTH:
                return f"{folder} (mode {stat.S_IMODE(mode):04o})"
    return None


def skip_unless_user_can_run_dask(uid: int, workdir: Path) -> None:
    """Skip the test, naming the cause, when user ``uid`` cannot run this interpreter with
    its packages (dask, david_data) from ``workdir``: e.g. a checkout cloned under a private
    folder (``mktemp -d``, a home directory: mode 0700) that only its owner may enter."""
    import david_data

    probe = subprocess.run(
        [*as_user(uid), sys.executable, "-c", "import distributed, david_data.infer"],
        cwd=workdir, env={**os.environ, "HOME": str(workdir)}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    if probe.returncode == 0:
        return
    closed = _closed_folder(uid, [sys.executable, sys.prefix, david_data.__file__])
    said = (probe.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1]
    pytest.skip(
        f"user {uid} cannot run {sys.executable} with this checkout's packages ({said})"
        + (f": it may not enter {closed}" if closed else "")
        + "; clone into a folder other users can enter to run this test"
    )


@dataclass
class DaskCluster:
    """A Dask cluster started from the shell as a user would (``dask scheduler`` and
    ``dask worker`` processes), run from a working directory of its own so that a path
    resolved on a worker instead of the client would land somewhere else."""

    address: str
    workdir: Path
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    user: int | None = None
    """Workers run as this user id (None: as this process's user)."""

    def add_worker(self) -> subprocess.Popen[bytes]:
        """Start one more worker (one process, one thread), in its own process group."""
        env, prefix, processes = dict(os.environ), [], ["--nworkers", "1"]
        if self.user is not None:  # (a nanny cannot spawn its worker as another user here)
            env["HOME"] = str(self.workdir)
            prefix = as_user(self.user)
            processes = ["--no-nanny"]
        proc = subprocess.Popen(
            [*prefix, *DASK, "worker", self.address, *processes,
             "--nthreads", "1", "--no-dashboard", "--local-directory", str(self.workdir / "space")],
            cwd=self.workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.workers.append(proc)
        return proc

    def wait_for_workers(self, count: int, timeout: float = 60) -> None:
        from distributed import Client

        with Client(self.address, timeout=timeout) as client:
            client.wait_for_workers(count, timeout=timeout)

    @contextlib.contextmanager
    def busy(self, folder: Path) -> Iterator[None]:
        """Hold every worker thread (a cluster of one worker, one thread) until the block
        exits: units submitted meanwhile wait, so a test stops a job at a known point."""
        from distributed import Client

        started, release = folder / "dask-busy-started", folder / "dask-busy-release"
        script = f"touch {started}; while [ ! -e {release} ]; do sleep 0.05; done"
        with Client(self.address, timeout=30) as client:
            held = client.submit(subprocess.run, ["sh", "-c", script], pure=False)
            deadline = time.monotonic() + 60
            while not started.exists():
                assert time.monotonic() < deadline and not held.done(), "the worker is not held"
                time.sleep(0.02)
            try:
                yield
            finally:
                release.touch()
                held.result(timeout=30)

    def kill_worker(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a worker and its nanny (the whole group), as a machine dying would."""
        import signal

        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def close(self) -> None:
        import signal

        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self.user is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_dask_cluster(workdir: Path, workers: int = 2, *, user: int | None = None) -> DaskCluster:
    """``dask scheduler --port P`` plus ``workers`` x ``dask worker tcp://127.0.0.1:P
    --nworkers 1 --nthreads 1``, all started in ``workdir``; returns once they are up.
    With ``user`` the workers run as that user id (e.g. 65534, nobody) in a fresh
    world-writable folder of /tmp instead: they then cannot read this user's files."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    if user is not None:
        import tempfile

        workdir = Path(tempfile.mkdtemp(prefix="dask-workers-"))
        workdir.chmod(0o777)
        try:
            skip_unless_user_can_run_dask(user, workdir)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
    scheduler = subprocess.Popen(
        [*DASK, "scheduler", "--host", "127.0.0.1", "--port",
         str(port), "--no-dashboard"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    cluster = DaskCluster(
        address=f"tcp://127.0.0.1:{port}", workdir=workdir, scheduler=scheduler, workers=[],
        user=user,
    )
    try:
        for _ in range(workers):
            cluster.add_worker()
        cluster.wait_for_workers(workers)
    except BaseException:
        cluster.close()
        raise
    return cluster


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address (``tcp://127.0.0.1:PORT``) of a two-worker Dask cluster started from
    the shell in a working directory of its own; shared by the whole session."""
    cluster = start_dask_cluster(tmp_path_factory.mktemp("dask-cluster"))
    try:
        yield cluster.address
    finally:
        cluster.close()


@pytest.fixture()
def dask_cluster_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Start private clusters (for tests that kill workers or run them as another user):
    ``factory(workers=2, user=None)`` returns a :class:`DaskCluster`; all are stopped
    after the test."""
    started: list[DaskCluster] = []

    def factory(workers: int = 2, user: int | None = None) -> DaskCluster:
        cluster = start_dask_cluster(tmp_path_factory.mktemp("dask-private"), workers, user=user)
        started.append(cluster)
        return cluster

    try:
        yield factory
    finally:
        for cluster in started:
            cluster.close()


@pytest.fixture()
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody, root included, can create files in (skipped where that cannot be
    arranged: root on a file system without the immutable attribute)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    made = chattr and subprocess.run([chattr, "+i", str(folder)], capture_output=True)
    if not made or made.returncode != 0:
        pytest.skip("cannot make a read-only folder as root here (no chattr +i)")
    try:
        yield folder
    finally:
        subprocess.run([str(chattr), "-i", str(folder)], check=False)


@pytest.fixture()
def served(tmp_path: Path, source_parts: Path) -> Path:
    """A private copy of the folder's ``source_parts`` (the parts its tests serve), which a
    test may corrupt or replace files in."""
    root = tmp_path / "served"
    shutil.copytree(source_parts, root)
    return root


@pytest.fixture()
def host(served: Path) -> Iterator[LocalHost]:
    """``served`` on a loopback :class:`~david_data.synth.host.LocalHost`."""
    from david_data.synth.host import LocalHost

    with LocalHost(served) as running:
        yield running
