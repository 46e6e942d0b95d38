"""Fixtures shared by the whole suite: Azurite, the Prefect harness, free ports.

Azurite is installed into ``.tools/`` by ``scripts/setup.sh --azurite`` and started here,
once per session, in memory on a free loopback port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The Prefect server's telemetry heartbeat races the tests for SQLite's lock (noisy errors).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# In-process CLI calls would otherwise hook Prefect's console handler, bound to one test's
# captured stderr, onto the david_data logger for the rest of the session. The deployment
# test checks with a real worker that david_data's records reach the Prefect run logs.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "")
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


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
