"""The public resumable, verified, segmented downloader (used by the model registry).

``download_file(url, dest)`` fetches with several ranged connections into
``dest.part`` (resume state in ``dest.state``), hashing it as it lands, checks the size, ``Content-MD5`` when the
server sends it and ``expected_sha256`` when given, and only then gives the file its
final name. A killed download, rerun, fetches only what is missing. For an object-store
``dest`` the partial file lives in a local scratch folder and the verified file is
staged, then promoted.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import VerificationError
from ..fsutil import open_folder
from ..net.http import HttpClient, RemoteInfo, head_with_retries
from ..net.retry import RetryPolicy
from ..progress import NullProgress, Progress
from .lock import hold_lock
from .promote import promote, scratch_dir_for
from .segmented import FetchOptions, fetch_file, part_paths, remove_partial
from .transfer import read_blocks

logger = logging.getLogger(__name__)

__all__ = ["DownloadResult", "download_file"]


@dataclass(frozen=True, kw_only=True)
class DownloadResult:
    size: int
    sha256: str
    etag: str | None


def _digests(reader: BinaryIO, info: RemoteInfo) -> tuple[str, str | None]:
    """SHA-256 (hex) and, when the server sent Content-MD5, MD5 (base64) of a file,
    read once in large blocks (as it downloads)."""
    sha = hashlib.sha256()
    md = hashlib.md5() if info.content_md5 else None
    for block in read_blocks(reader, info.size):
        sha.update(block)
        if md is not None:
            md.update(block)
    return sha.hexdigest(), base64.b64encode(md.digest()).decode() if md is not None else None


def download_file(
    url: str,
    dest: str,
    *,
    storage_options: dict[str, Any] | None = None,
    segments: int = 4,
    progress: Progress = NullProgress(),  # noqa: B008
    expected_sha256: str | None = None,
    policy: RetryPolicy | None = None,
) -> DownloadResult:
    """Download ``url`` to ``dest`` (local path or fsspec URL), resumably and verified.

    ``dest`` appears only when complete and verified. Raises
    :class:`~david_data.errors.PermanentDownloadError` for 403/404,
    :class:`~david_data.errors.DownloadError` when retries are exhausted and
    :class:`~david_data.errors.VerificationError` on a hash mismatch (the partial data
    is then deleted, so a rerun starts clean).
    """
    fs, path = open_folder(dest, storage_options)
    name = path.rsplit("/", 1)[-1]
    folder = path.rsplit("/", 1)[0] if "/" in path else "."
    work = scratch_dir_for(fs, folder) / name
    policy = policy or RetryPolicy()
    options = FetchOptions(segments=segments, policy=policy)
    client = HttpClient(connect_timeout=policy.connect_timeout, stall_timeout=policy.stall_timeout)
    part, state = part_paths(work)
    with hold_lock(work.with_name(name + ".lock"), str(dest)):
        handle = progress.task(f"download {name}", total=None, unit="bytes")
        try:
            info = head_with_retries(client, url, policy)
            handle.update(total=info.size)
            info, (sha, md5) = fetch_file(
                url,
                work,
                client=client,
                check=_digests,
                options=options,
                on_bytes=handle.advance,
                info=info,
            )
        except BaseException:
            handle.finish("failed")
            raise
        finally:
            client.close()
        size = os.path.getsize(part)
        problem = None
        if size != info.size:
            problem = f"size is {size} bytes, the server announced {info.size}"
        elif info.content_md5 is not None and md5 != info.content_md5:
            problem = f"MD5 {md5} differs from the server's Content-MD5 {info.content_md5}"
        elif expected_sha256 is not None and sha != expected_sha256.lower():
            problem = f"SHA-256 {sha} differs from the expected {expected_sha256}"
        if problem:
            remove_partial(part, state)
            handle.finish("corrupt")
            raise VerificationError(
                f"{url}: downloaded file failed verification: {problem}; the partial data was "
                "deleted, rerun to download it again",
                url=url,
            )
        promote(part, fs, path)
        state.unlink(missing_ok=True)
        handle.finish("done")
    logger.info("downloaded %s -> %s (%d bytes, sha256 %s)", url, dest, size, sha)
    return DownloadResult(size=size, sha256=sha, etag=info.etag)
