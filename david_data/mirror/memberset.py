"""The member set of a SynthHuman part: safe names, five files per sample, nothing stray.

:func:`check_member_name` refuses names that could escape a folder (extraction uses it
before writing anything); :func:`member_set_problems` lists what is wrong with a part's
names as a whole (see :func:`david_data.facts.sample_member_names`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from .. import facts
from ..errors import UnsafeMemberError
from ..zipformat import ZipEntry

_UNSAFE_CHARACTER = re.compile(r"[\x00-\x1f\\]")
"""A control character (NUL included) or a backslash."""


def check_member_name(name: str) -> None:
    """Raise :class:`UnsafeMemberError` for names that could escape a folder."""
    parts = name.split("/")
    bad = (
        not name
        or name.startswith("/")
        or _UNSAFE_CHARACTER.search(name) is not None
        or (len(name) > 1 and name[1] == ":")
        or any(p in ("..", ".") for p in parts)
        or "" in parts[:-1]
    )
    if bad:
        raise UnsafeMemberError(
            f"unsafe zip member name {name!r}: absolute, with '..', a drive or control "
            "characters; refusing to use this archive",
            member=name,
        )


def member_set_problems(
    entries: Sequence[ZipEntry],
) -> tuple[list[tuple[str, str]], list[int]]:
    """``(member, problem)`` for names that are unsafe, stray or duplicated and for
    files missing from a sample; and the sample ids found."""
    problems: list[tuple[str, str]] = []
    kinds: dict[int, set[str]] = {}
    seen: Counter[str] = Counter()
    for entry in entries:
        try:
            check_member_name(entry.name)
        except UnsafeMemberError as exc:
            problems.append((entry.name, exc.message))
            continue
        if entry.is_dir:
            continue
        base = entry.name.rsplit("/", 1)[-1]
        seen[base] += 1
        if seen[base] == 2:
            problems.append((entry.name, "duplicate member"))
        ref = facts.parse_member_name(entry.name)
        if ref is None:
            problems.append((entry.name, "unexpected member (not a SynthHuman sample file)"))
            continue
        kinds.setdefault(ref.sample_id, set()).add(ref.kind)
    for sample_id, have in sorted(kinds.items()):
        for kind in facts.FILE_KINDS:
            if kind not in have:
                problems.append((facts.member_name(kind, sample_id), "missing from the archive"))
    return problems, sorted(kinds)
