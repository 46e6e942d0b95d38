"""Where SynthHuman samples come from: one reader per kind of part.

``open_source(url)`` (:mod:`.resolve`) looks at the URL once and accepts

- a folder (local or fsspec URL) holding ``SynthHuman_NNNN.zip`` / ``SynthHuman_sample.zip``
  parts, as ``david-data mirror`` leaves them, or one part zip: members are read straight
  out of the zips (:mod:`.zip`);
- an extracted ``SynthHuman/`` folder (or its parent), members as loose files, in any
  sub-folders (:mod:`.folder`);
- an ``http(s)://`` base URL of the parts (or of one part zip): members are known from the
  sample catalog and read by verified ranged requests, with no local copy (:mod:`.http`).

Reading is split so that a worker never re-lists a part: :meth:`PartSource.locate` turns
sample ids into plain, picklable :class:`SampleMembers` (zip directory entries, catalogued
members or file paths) and :func:`read_files` reads them given only a :class:`PartRef`,
whose ``kind`` names the reader (:mod:`.parts`). ``convert`` and ``verify-store`` read
through here.
"""

from .base import PartSource, Source
from .parts import PartRef, RawFiles, SampleMembers
from .resolve import open_source, read_files

__all__ = [
    "PartRef",
    "PartSource",
    "RawFiles",
    "SampleMembers",
    "Source",
    "open_source",
    "read_files",
]
