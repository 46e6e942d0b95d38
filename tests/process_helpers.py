"""Helpers for tests of any folder that drive a command in a child process."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any


class Lines:
    """Reads a process's stderr on a thread; ``wait_for`` blocks until a line holds a text."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # end of stream
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(text in line for line in self.lines) or "" in self.lines,
                timeout=timeout,
            )
        assert found and any(text in line for line in self.lines), "".join(self.lines)

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


def interrupt_when(argv: list[str], text: str, *, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``argv``, send it SIGINT (Ctrl-C) once a line of its stderr holds ``text``, and
    return its exit status, stdout and stderr."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        stderr = Lines(proc)
        stderr.wait_for(text)
        proc.send_signal(signal.SIGINT)
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, stderr.text()


def kill_when(
    proc: subprocess.Popen[Any], ready: Callable[[], bool], *, timeout: float, what: str
) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds (``what``: the event, for the message);
    the test fails when the process ends first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, (f"the process ended before {what}", proc.communicate())
            assert time.monotonic() < deadline, f"no {what} within {timeout} s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
