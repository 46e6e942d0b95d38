"""The faults :class:`~david_data.synth.host.LocalHost` can inject, as plain data: what a
fault does (:class:`Fault`), the faults armed on one host (:class:`FaultSet`), and their
command-line spelling (:func:`parse_fault`, :func:`add_fault_option`). Nothing here loads
the HTTP server, so building ``david-data serve``'s options stays light.

Faults, for tests (thread-safe and deterministic in count)::

    host.faults.add(Fault.reset(after_bytes=1 << 20), times=2, path="SynthHuman_0001.zip")
    host.faults.add(Fault.status(503, retry_after=0))          # next request of any file
    host.faults.add(Fault.rate_cap(50_000_000), times=None)    # every connection, forever

``add(fault, *, times=1, path=None)`` arms ``fault`` for ``times`` requests (``None`` = every
request) to the file ``path`` (relative to ``root``; ``None`` = any file) and returns an
:class:`ArmedFault` whose ``.fired`` / ``.remaining`` tell how often it was used. A fault is
used up only by a request it actually applies to, so a retrying client eventually succeeds.
Armed faults are tried in the order added; at most one per group applies to a request:

=================================  ===========================================================
``Fault.status(code, retry_after)`` any request (``GET``/``HEAD``, before everything else):
                                    reply ``code`` (e.g. 503, 429) with ``Retry-After`` seconds
                                    (omitted when ``None``) and a small Azure-style XML body.
``Fault.ignore_range()``            a satisfiable ranged ``GET``: ``200`` with the whole file.
``Fault.malformed_range(value)``    a satisfiable ranged ``GET``: ``206`` with the asked bytes
                                    but ``Content-Range: value`` (default ``bytes garbage``).
``Fault.shifted_range(shift,        a ranged ``GET`` shorter than the file: ``206`` whose body
claim)``                            starts ``shift`` bytes later (earlier when there is no room
                                    after), same length; ``Content-Range`` states the range
                                    that was asked (``claim="asked"``) or the bytes actually
                                    sent (``claim="true"``).
``Fault.reset(after_bytes)``        a ``GET`` whose body is longer than ``after_bytes``: send
                                    exactly that many body bytes, wait until the client has
                                    them, then reset the connection (TCP RST).
``Fault.stall(after_bytes,          a ``GET`` whose body is longer than ``after_bytes``: send
seconds)``                          that many bytes, go silent ``seconds``, then carry on.
``Fault.rate_cap(bytes_per_second)`` a ``GET`` with a body: pace it at ``bytes_per_second``.
                                    One connection carries one reply at a time, so
                                    ``times=None`` caps every connection (a remote server).
``Fault.corrupt(offset, xor)``      a ``GET`` whose body carries file byte ``offset``: send
                                    that byte XOR ``xor`` (default 0xFF), as a bit flipped in
                                    flight; the file on disk is untouched.
=================================  ===========================================================

Groups: status; range (ignore/malformed/shifted); and each of reset, stall, rate cap and
corrupt, which combine with each other and with a range fault.
"""

from __future__ import annotations

import argparse
import posixpath
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from david_data.errors import ConfigError

__all__ = [
    "FAULT_KINDS",
    "ArmedFault",
    "Fault",
    "FaultKind",
    "FaultSet",
    "RANGE_FAULTS",
    "add_fault_option",
    "parse_fault",
    "served_name",
]

FaultKind = Literal[
    "status",
    "ignore_range",
    "malformed_range",
    "shifted_range",
    "reset",
    "stall",
    "rate_cap",
    "corrupt",
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
RANGE_FAULTS: frozenset[FaultKind] = frozenset({"ignore_range", "malformed_range", "shifted_range"})
"""The range group: at most one of them applies to a request."""


def add_fault_option(parser: argparse.ArgumentParser) -> None:
    """``--fault KIND[:KEY=VALUE,...]`` (repeatable), shared with ``david-data serve``."""
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault, repeatable: KIND[:KEY=VALUE,...] with KIND one of "
        + ", ".join(FAULT_KINDS)
        + "; keys: times (a count or 'all', default 1), path (one file), after_bytes, seconds, "
        "code, retry_after, shift, claim, content_range, bytes_per_second, offset, xor. "
        "E.g. --fault reset:after_bytes=1000000,times=2 --fault status:code=503,retry_after=1",
    )


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One kind of misbehaviour; build it with the class methods (``Fault.reset(...)`` etc.)."""

    kind: FaultKind
    after_bytes: int = 0
    seconds: float = 0.0
    code: int = 503
    retry_after: int | None = None
    shift: int = 1
    claim: Literal["asked", "true"] = "asked"
    content_range: str = "bytes garbage"
    bytes_per_second: int = 0
    offset: int = 0
    xor: int = 0xFF

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(
                f"unknown fault kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}"
            )
        if self.after_bytes < 0:
            raise ConfigError(f"fault after_bytes must be >= 0, got {self.after_bytes}")
        if self.kind == "stall" and self.seconds <= 0:
            raise ConfigError(f"stall seconds must be > 0, got {self.seconds}")
        if self.kind == "status" and not 400 <= self.code <= 599:
            raise ConfigError(f"status fault code must be 4xx or 5xx, got {self.code}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ConfigError(f"retry_after must be >= 0 seconds, got {self.retry_after}")
        if self.kind == "shifted_range" and self.shift <= 0:
            raise ConfigError(f"shift must be > 0 bytes, got {self.shift}")
        if self.claim not in ("asked", "true"):
            raise ConfigError(f"claim must be 'asked' or 'true', got {self.claim!r}")
        if self.kind == "rate_cap" and self.bytes_per_second <= 0:
            raise ConfigError(f"rate cap must be > 0 bytes/s, got {self.bytes_per_second}")
        if self.kind == "corrupt" and (self.offset < 0 or not 1 <= self.xor <= 0xFF):
            raise ConfigError(
                f"corrupt needs offset >= 0 and xor in 1..255, got {self.offset} and {self.xor}"
            )

    @classmethod
    def status(cls, code: int = 503, *, retry_after: int | None = 1) -> Fault:
        """Reply ``code`` (503, 429, ...) with ``Retry-After: retry_after`` (None: no header)."""
        return cls(kind="status", code=code, retry_after=retry_after)

    @classmethod
    def ignore_range(cls) -> Fault:
        """Answer a ranged GET with 200 and the whole file."""
        return cls(kind="ignore_range")

    @classmethod
    def malformed_range(cls, content_range: str = "bytes garbage") -> Fault:
        """Answer a ranged GET with 206, the asked bytes and ``Content-Range: content_range``."""
        return cls(kind="malformed_range", content_range=content_range)

    @classmethod
    def shifted_range(cls, shift: int = 1, *, claim: Literal["asked", "true"] = "asked") -> Fault:
        """Answer a ranged GET with bytes ``shift`` off; Content-Range claims ``asked`` or ``true``."""
        return cls(kind="shifted_range", shift=shift, claim=claim)

    @classmethod
    def reset(cls, *, after_bytes: int) -> Fault:
        """Reset the connection after exactly ``after_bytes`` body bytes."""
        return cls(kind="reset", after_bytes=after_bytes)

    @classmethod
    def stall(cls, *, after_bytes: int, seconds: float) -> Fault:
        """Send nothing for ``seconds`` after ``after_bytes`` body bytes, then go on."""
        return cls(kind="stall", after_bytes=after_bytes, seconds=seconds)

    @classmethod
    def rate_cap(cls, bytes_per_second: int) -> Fault:
        """Pace a reply body (hence its connection) at ``bytes_per_second``."""
        return cls(kind="rate_cap", bytes_per_second=bytes_per_second)

    @classmethod
    def corrupt(cls, offset: int, *, xor: int = 0xFF) -> Fault:
        """Send file byte ``offset`` XOR ``xor`` in a reply that carries it (a flip in flight)."""
        return cls(kind="corrupt", offset=offset, xor=xor)


_FAULT_KEYS: dict[str, type] = {
    "after_bytes": int,
    "seconds": float,
    "code": int,
    "retry_after": int,
    "shift": int,
    "claim": str,
    "content_range": str,
    "bytes_per_second": int,
    "offset": int,
    "xor": int,
}


def parse_fault(spec: str) -> tuple[Fault, int | None, str | None]:
    """``KIND[:KEY=VALUE,...]`` -> (fault, times, path), e.g. ``reset:after_bytes=1000,times=2``,
    ``status:code=429,retry_after=1``, ``ignore_range:times=all``, ``corrupt:offset=4096``.

    ``times`` is a count or ``all`` (default 1); ``path`` limits it to one file."""
    kind, _, rest = spec.strip().partition(":")
    kinds = ", ".join(FAULT_KINDS)
    if kind not in FAULT_KINDS:
        raise ConfigError(f"--fault {spec!r}: unknown kind {kind!r}; use one of {kinds}")
    values: dict[str, Any] = {}  # each converted by its _FAULT_KEYS type
    times: int | None = 1
    path: str | None = None
    for item in filter(None, (i.strip() for i in rest.split(","))):
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError("no '='")
            if key == "times":
                times = None if value == "all" else int(value)
            elif key == "path":
                path = value
            elif key in _FAULT_KEYS:
                values[key] = _FAULT_KEYS[key](value)
            else:
                raise ValueError(f"unknown key {key!r}")
        except ValueError as exc:
            raise ConfigError(
                f"--fault {spec!r}: cannot read {item!r} ({exc}); write KEY=VALUE with KEY one "
                f"of times, path, {', '.join(_FAULT_KEYS)}"
            ) from None
    if kind == "status" and "retry_after" not in values:
        values["retry_after"] = 1
    if kind == "stall" and "seconds" not in values:
        values["seconds"] = 5.0
    return Fault(kind=kind, **values), times, path


@dataclass(kw_only=True, eq=False)
class ArmedFault:
    """A fault armed on a host; ``remaining`` is None when it never runs out."""

    fault: Fault
    path: str | None
    remaining: int | None
    fired: int = 0

    @property
    def active(self) -> bool:
        return self.remaining is None or self.remaining > 0


class FaultSet:
    """The faults armed on one host. All methods are thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[ArmedFault] = []

    def add(self, fault: Fault, *, times: int | None = 1, path: str | None = None) -> ArmedFault:
        """Arm ``fault`` for ``times`` applicable requests (None: all) to ``path`` (None: any)."""
        if times is not None and times < 1:
            raise ConfigError(f"times must be >= 1 or None (forever), got {times}")
        armed = ArmedFault(fault=fault, path=served_name(path) if path else None, remaining=times)
        with self._lock:
            self._armed.append(armed)
        return armed

    def remove(self, armed: ArmedFault) -> None:
        """Disarm one fault returned by :meth:`add`."""
        with self._lock:
            self._armed = [a for a in self._armed if a is not armed]

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._armed.clear()

    @property
    def armed(self) -> list[ArmedFault]:
        """The faults that can still fire, in the order they were added."""
        with self._lock:
            return [a for a in self._armed if a.active]

    def take(
        self, kinds: frozenset[str], path: str, applies: Callable[[Fault], bool] = lambda f: True
    ) -> Fault | None:
        """Use up one occurrence of the first active fault of ``kinds`` that fits this request."""
        with self._lock:
            for armed in self._armed:
                if (
                    armed.active
                    and armed.fault.kind in kinds
                    and (armed.path is None or armed.path == path)
                    and applies(armed.fault)
                ):
                    if armed.remaining is not None:
                        armed.remaining -= 1
                    armed.fired += 1
                    return armed.fault
        return None


def served_name(path: str) -> str:
    """URL or user path -> name relative to the root ('' for the root; may start with '..')."""
    norm = posixpath.normpath("/" + path.replace("\\", "/").lstrip("/"))
    return norm.lstrip("/")
