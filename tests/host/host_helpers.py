"""Small http.client helpers shared by the host tests."""

from __future__ import annotations

import http.client

from david_data.synth.host import LocalHost

PART_A = "SynthHuman_0000.zip"
PART_B = "SynthHuman_0001.zip"


def fetch(
    host: LocalHost,
    method: str,
    name: str,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, headers, body)."""
    c = http.client.HTTPConnection("127.0.0.1", host.port, timeout=timeout)
    try:
        c.request(method, "/" + name, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def read_until_error(
    host: LocalHost, name: str, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, bytes, BaseException | None]:
    """GET and read with read1 (no bytes lost in a buffer): (status, body so far, error)."""
    c = http.client.HTTPConnection("127.0.0.1", host.port, timeout=timeout)
    got = bytearray()
    try:
        c.request("GET", "/" + name, headers=headers or {})
        r = c.getresponse()
        try:
            while chunk := r.read1(65536):
                got += chunk
        except (OSError, http.client.HTTPException) as exc:
            return r.status, bytes(got), exc
        return r.status, bytes(got), None
    finally:
        c.close()
