"""Set-up shared by the commands that run Prefect flow runs (``--prefect``, a configured
Prefect API, ``pipeline``, ``demo``). Called before ``david_data.flows`` is imported.

When no Prefect API is configured, a flow run needs a server: :func:`temporary_server`
starts one for this command only (its own home and database under a temporary folder)
and ties its life to this process with Linux's parent-death signal, so it ends with the
CLI however the CLI ends, SIGKILL included. Prefect's own "ephemeral" server would
outlive a killed CLI for good.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import ConfigError
from ..log import LOGGER_NAME
from ..settings import cache_dir

STARTUP_TIMEOUT_S = 180.0
_HOME_PREFIX = "david-data-prefect-"


def prefect_api_configured() -> bool:
    """Whether a Prefect server is configured, read without importing Prefect (slow)."""
    return configured_api_url() is not None


def configured_api_url() -> tuple[str, str] | None:
    """The configured Prefect API URL and where it was set (the variable, or the profile),
    read without importing Prefect; None when there is none."""
    if url := os.environ.get("PREFECT_API_URL"):
        return url, "the environment"
    home = Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()
    try:
        text = (home / "profiles.toml").read_text()
    except OSError:
        return None
    import tomllib  # here: most runs have no profiles file to parse

    try:
        profiles = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    url = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    if not url:
        return None
    return str(url), f"the Prefect profile {active!r} ({home / 'profiles.toml'})"


def prepare_prefect() -> None:
    """Route david_data's logging through Prefect (so it reaches run logs and the UI) and
    keep Prefect quiet. Explicit environment settings win."""
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", LOGGER_NAME)
    # No SDK telemetry, and so no "Prefect collects anonymous usage data" notice.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # A server's telemetry heartbeat races the CLI for the SQLite lock.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Records from threads outside a run's context (progress lines) are printed, not sent.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    logger_ = logging.getLogger(LOGGER_NAME)
    for handler in [h for h in logger_.handlers if getattr(h, "_david_data", False)]:
        logger_.removeHandler(handler)  # Prefect's handler prints these records now


def _api_configured() -> bool:
    if prefect_api_configured():
        return True
    if "prefect.settings" in sys.modules:  # e.g. a test harness's temporary settings
        from prefect.settings import PREFECT_API_URL

        return bool(PREFECT_API_URL.value())
    return False


# Run as ``python -c _LAUNCHER PARENT_PID ARGV...``: ask Linux to SIGKILL this process when
# its parent ends (PR_SET_PDEATHSIG survives exec), give up if the parent is already gone,
# then become the server. A launcher rather than ``preexec_fn``, which is unsafe in a
# process that runs threads.
_LAUNCHER = """
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
if os.getppid() != int(sys.argv[1]):
    os._exit(1)
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sweep_stale_homes() -> None:
    """Remove the folders of temporary servers whose CLI died without cleaning up."""
    for home in Path(tempfile.gettempdir()).glob(f"{_HOME_PREFIX}*"):
        try:
            pid = int((home / "cli.pid").read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(home, ignore_errors=True)
        except (OSError, ValueError):
            continue


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Wait until the server answers; a Ctrl-C meanwhile ends the command (exit 130)."""
    import urllib.request

    from ..engine import stop_requested

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if stop_requested():
            raise KeyboardInterrupt
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ConfigError(
                f"the temporary Prefect server did not start within {STARTUP_TIMEOUT_S:.0f} s "
                f"(its log ends: {tail.strip()[-500:] or 'nothing'}); set PREFECT_API_URL to a "
                "running server ('prefect server start') or run without --prefect"
            )
        time.sleep(0.25)


def _drain_prefect() -> None:
    """Send Prefect's buffered logs and events while the server still listens (else
    "Error logging to API" follows the summary)."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    with contextlib.suppress(Exception):
        APILogWorker.instance().drain()
    with contextlib.suppress(Exception):
        EventsWorker.drain_all(timeout=10)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _database_template() -> Path | None:
    """Where an empty, migrated database of the installed Prefect version is kept between
    commands: a server started on a copy skips its ~7 s of migrations."""
    try:
        import importlib.metadata  # here: every job run imports this module, few use it

        version = importlib.metadata.version("prefect")
    except importlib.metadata.PackageNotFoundError:
        return None
    return cache_dir() / "prefect-server" / f"empty-{version}.db"


def _copy_quietly(template: Path | None, database: Path) -> bool:
    """Start ``database`` as a copy of ``template``; False when there is none to copy."""
    if template is None:
        return False
    try:
        shutil.copyfile(template, database)
    except OSError:
        return False
    return True


def _save_template(database: Path, template: Path | None) -> None:
    """Keep a consistent copy of the just-migrated ``database`` (sqlite's online backup)
    as the template, written beside it and renamed into place. Only a speed-up: any
    failure leaves things as they were."""
    if template is None:
        return
    partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
    import sqlite3

    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        with (
            contextlib.closing(sqlite3.connect(database)) as src,
            contextlib.closing(sqlite3.connect(partial)) as dst,
        ):
            src.backup(dst)
        os.replace(partial, template)
    except (OSError, sqlite3.Error) as exc:
        logging.getLogger(LOGGER_NAME).debug("no Prefect database template kept: %s", exc)
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def temporary_server(while_starting: Callable[[], object] | None = None) -> Iterator[str | None]:
    """A Prefect API for this command: the configured one (yields ``None``, starts
    nothing), or a temporary server on a free loopback port that ends with this process
    (yields its API URL, also set as ``PREFECT_API_URL`` for this process). Call it on
    the main thread: the server gets SIGKILL when the thread that started it ends.
    ``while_starting`` (e.g. importing the flow, ~3 s) runs while the server boots."""
    if _api_configured():
        _check_configured_api()
        yield None
        return
    if not sys.platform.startswith("linux"):  # pragma: no cover - the parent-death signal is Linux's
        yield None  # Prefect starts its own ephemeral server
        return
    _sweep_stale_homes()
    home = Path(tempfile.mkdtemp(prefix=_HOME_PREFIX))
    (home / "cli.pid").write_text(str(os.getpid()))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    database = home / "prefect.db"
    template = _database_template()
    seeded = _copy_quietly(template, database)
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{database}",
        # A copy of the template has its tables and block types already (~1 s saved).
        "PREFECT_API_BLOCKS_REGISTER_ON_START": "false" if seeded else "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    env.pop("PREFECT_API_URL", None)
    log_path = home / "server.log"
    print(
        "starting a temporary Prefect server for this flow run (it stops with this command; "
        "set PREFECT_API_URL to use a running server instead)",
        file=sys.stderr,
        flush=True,
    )
    command = [
        sys.executable, "-c", _LAUNCHER, str(os.getpid()),
        "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C is for the CLI, which stops the job
        )
    try:
        if while_starting is not None:
            while_starting()
        _wait_healthy(proc, url, log_path)
        if not seeded:
            _save_template(database, template)
        os.environ["PREFECT_API_URL"] = url
        try:
            with _prefect_settings(url):
                try:
                    yield url
                finally:
                    _drain_prefect()
        finally:
            os.environ.pop("PREFECT_API_URL", None)
    finally:
        _stop(proc)
        shutil.rmtree(home, ignore_errors=True)


def _check_configured_api() -> None:
    """Fail at once, in one line, when the configured Prefect API does not answer (rather
    than with Prefect's traceback once a flow run starts). Any HTTP reply counts as an
    answer: only a connection that cannot be made is refused here."""
    import urllib.error
    import urllib.request

    found = configured_api_url()
    if found is None:
        return
    url, where = found
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=10):
            return
    except urllib.error.HTTPError:
        return  # it answers
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ConfigError(
            f"PREFECT_API_URL={url} (from {where}) does not answer ({reason}): start that "
            "Prefect server ('prefect server start'), or unset PREFECT_API_URL to run the job "
            "in this process"
        ) from exc


@contextlib.contextmanager
def _prefect_settings(url: str) -> Iterator[None]:
    """Point an already imported Prefect at ``url`` too (its settings are read at import)."""
    if "prefect.settings" not in sys.modules:
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}):
        yield
