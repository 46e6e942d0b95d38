"""Typed errors for david-data.

Every error derives from :class:`DavidDataError` and from the built-in that fits
(``OSError`` for I/O, ``ValueError`` for bad input), so callers can catch either.
Constructors take one message plus optional keyword context stored as attributes,
which keeps them picklable: Prefect and Dask ship exceptions between processes.
Messages name the object, what was expected versus found, and what to do next.
"""

from __future__ import annotations

from typing import Any


class DavidDataError(Exception):
    """Base class of every error raised by david-data."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        for key, value in context.items():
            setattr(self, key, value)

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigError(DavidDataError, ValueError):
    """A command-line option, parameter or environment value is invalid."""


class DownloadError(DavidDataError, OSError):
    """A transfer failed and may succeed if retried (network error, 5xx, stall)."""


class PermanentDownloadError(DownloadError):
    """A transfer failed in a way that retrying will not fix (403, 404, bad size)."""


class RemoteChangedError(DownloadError):
    """The remote file changed (ETag or size) between requests; the part restarts."""


class UnreachableError(DownloadError):
    """The host (or the proxy) cannot be reached at all: its name does not resolve, the
    connection is refused or times out, or its TLS certificate is not trusted."""


class JobInterrupted(DavidDataError):
    """A work unit stopped at a checkpoint because a stop was requested (Ctrl-C, SIGTERM)."""


class RangeNotSupportedError(PermanentDownloadError):
    """The server answered a ranged request with the whole file: no single-sample reads."""


class VerificationError(DavidDataError, ValueError):
    """A file's bytes do not match what was expected (size, hash, CRC, member set)."""


class ZipFormatError(VerificationError):
    """A zip's records cannot be read: a signature is missing, or an offset, size or
    count points outside the file or disagrees with another record. ``offset`` is where
    the damage was seen (re-fetching from there may repair it), ``member`` the entry it
    belongs to ("" for whole-file records)."""


class UnsafeMemberError(VerificationError):
    """A zip member name would escape its destination folder or is otherwise unsafe."""


class InsufficientSpaceError(DavidDataError, OSError):
    """The destination does not have room for the planned work."""


class LockedError(DavidDataError, OSError):
    """Another run holds the lock on this destination or part."""


class SampleDecodeError(DavidDataError, ValueError):
    """A sample's PNG, EXR or camera file is missing, corrupt or malformed."""


class StoreError(DavidDataError, OSError):
    """A converted store is missing, incomplete or of an unsupported format."""


class ModelError(DavidDataError, ValueError):
    """An ONNX model does not fit the task it is used for, or cannot be loaded."""


class DeviceError(DavidDataError, RuntimeError):
    """The requested execution device (e.g. CUDA) is not available."""


class ImageDecodeError(DavidDataError, ValueError):
    """An input image cannot be read or made into a 3-channel image."""


class NoInputsError(ConfigError):
    """A job's input selection (folder, glob, store query) matched nothing to do."""
