"""Helpers for tests of any folder that drive a command in a child process."""

from __future__ import annotations

import subprocess
import threading


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
