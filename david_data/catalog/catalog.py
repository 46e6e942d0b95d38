"""The sample catalog of a set of parts, and SQL over it.

:func:`load_catalog` asks each part for its version (a HEAD, or ``info`` on a mirror),
takes the cached table when the version matches (:mod:`.cache`) and reads the central
directory otherwise (:mod:`.directory`, every reading confirmed by a second read before
it is cached), parts in parallel. A part that cannot be read is recorded with its reason;
the others are still catalogued. :meth:`Catalog.problems` names those parts and every
sample listed without all five files; :meth:`Catalog.strays` every entry whose name is not
a sample file.

SQL runs in DuckDB over two relations: ``members`` (one row per member, see
:mod:`.directory`) and the view ``samples`` (``sample_id``, ``part``, ``scenario``,
``bytes`` = compressed bytes of its members, ``members``, ``complete`` = all five kinds
present). The connection is locked once they are registered: no file or network access,
no configuration change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .. import facts
from ..errors import ConfigError, DavidDataError, JobInterrupted
from ..fsutil import join, resolve, to_url
from ..net.http import is_http
from ..net.retry import RetryPolicy
from .cache import load_cached, store_cached
from .directory import COLUMNS, PartCatalog, read_part, schema
from .remote import stat_part

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

logger = logging.getLogger(__name__)

_SCENARIO_SQL = (
    "CASE "
    + " ".join(
        f"WHEN sample_id < {facts.scenario_range(s).stop} THEN '{s}'" for s in facts.SCENARIOS
    )
    + " END"
)
SAMPLES_VIEW = f"""
CREATE VIEW samples AS
SELECT sample_id, part, {_SCENARIO_SQL} AS scenario,
       sum(compressed_size)::BIGINT AS bytes, count(*)::INTEGER AS members,
       count(DISTINCT kind) = {len(facts.FILE_KINDS)} AS complete
FROM members WHERE sample_id >= 0 GROUP BY sample_id, part ORDER BY sample_id
"""


@dataclass(frozen=True, kw_only=True)
class CatalogSource:
    """Where the parts are: an HTTP base URL, or a mirror folder (local or fsspec URL)."""

    base: str
    """The HTTP base URL (ending in ``/``) or the folder's absolute URL."""
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def http(self) -> bool:
        return is_http(self.base)

    def part_url(self, name: str) -> str:
        return facts.part_url(name, self.base) if self.http else join(self.base, name)

    def default_parts(self) -> list[str]:
        """All 60 parts on a host; the part zips present in a mirror folder."""
        if self.http:
            return facts.all_part_names()
        fs, path = resolve(self.base, self.storage_options)
        try:
            names = sorted(
                e.rstrip("/").rsplit("/", 1)[-1]
                for e in fs.ls(path, detail=False)
                if facts.is_part_name(e)
            )
        except FileNotFoundError:
            names = []
        if not names:
            raise ConfigError(
                f"{self.base} holds no SynthHuman part zips; give the folder 'david-data mirror' "
                "wrote, or an http(s) base URL"
            )
        return names


def open_catalog_source(
    base_url: str, storage_options: dict[str, Any] | None = None
) -> CatalogSource:
    """A :class:`CatalogSource` for an http(s) base URL or a mirror folder / fsspec URL."""
    if is_http(base_url):
        return CatalogSource(base=base_url.rstrip("/") + "/")
    fs, path = resolve(base_url, storage_options)
    if not fs.isdir(path):
        raise ConfigError(
            f"{base_url} is neither an http(s) URL nor a folder; give the data host's base URL "
            "or a mirror folder"
        )
    return CatalogSource(base=to_url(fs, path), storage_options=dict(storage_options or {}))


@dataclass(frozen=True, kw_only=True)
class Catalog:
    """The catalogued parts of one source, and the parts that could not be read."""

    source: CatalogSource
    parts: tuple[PartCatalog, ...]
    errors: tuple[tuple[str, str], ...] = ()
    """``(part, reason)`` for each part whose directory could not be read."""

    @cached_property
    def members(self) -> pa.Table:
        """Every member of every catalogued part, by part then offset."""
        if not self.parts:
            return schema().empty_table()
        import pyarrow as pa

        return pa.concat_tables([p.table for p in self.parts])

    def part(self, name: str) -> PartCatalog:
        for p in self.parts:
            if p.name == name:
                return p
        raise ConfigError(f"{name} is not in the catalog of {self.source.base}")

    def problems(self) -> list[str]:
        """One line per part that could not be read and per incomplete sample (naming the
        files it lacks): each makes a command exit 1."""
        lines = [f"{name} is left out: {reason}" for name, reason in self.errors]
        for part in self.parts:
            lines += part.problems()
        return lines

    def strays(self) -> list[str]:
        """One line per entry whose name is not a sample file (reported, not a failure)."""
        return [line for part in self.parts for line in part.strays()]

    @property
    def requests(self) -> int:
        """Ranged reads made to build it (0 when everything came from the cache)."""
        return sum(p.requests for p in self.parts)

    @cached_property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with ``members`` and ``samples``, locked read-only (made
        once: opening one costs more than most queries). Use it from one thread."""
        return connect(self.members)

    def query(self, sql: str) -> pa.Table:
        """Run ``sql`` over ``members`` and ``samples``."""
        return run_sql(self.connection, sql)


def connect(members: pa.Table) -> duckdb.DuckDBPyConnection:
    """A locked DuckDB connection over a members table and its ``samples`` view."""
    import duckdb  # here, not at the top: workers that only read members skip it

    connection = duckdb.connect()
    connection.register("members", members)
    connection.execute(SAMPLES_VIEW)
    connection.execute("SET python_enable_replacements = false")
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")
    return connection


def run_sql(connection: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run ``sql``; a DuckDB error becomes a :class:`ConfigError` naming the tables."""
    import duckdb
    import pyarrow as pa

    from ..store.query import interruptible

    def run() -> pa.Table:
        relation = connection.sql(sql)
        return relation.to_arrow_table() if relation is not None else pa.table({})

    try:
        return interruptible(connection, run)
    except duckdb.Error as exc:
        raise ConfigError(
            f"catalog query failed: {exc}\nTables: samples (sample_id, part, scenario, bytes, "
            f"members, complete) and members ({', '.join(COLUMNS)})"
        ) from exc


def load_part(
    source: CatalogSource,
    name: str,
    *,
    policy: RetryPolicy,
    use_cache: bool = True,
    table: bool = True,
) -> PartCatalog:
    """One part's catalog: from the cache when its version is unchanged, else read.
    ``table`` False: for a fetch by ids, cached as plain columns (see :mod:`.cache`)."""
    url = source.part_url(name)
    version = stat_part(url, policy=policy, storage_options=source.storage_options)
    if use_cache:
        cached = load_cached(source.base, name, url, version, table=table)
        if cached is not None:
            return cached
    catalog = read_part(name, url, version, policy=policy, storage_options=source.storage_options)
    logger.info(
        "catalogued %s: %d members (%d ranged reads)",
        name,
        catalog.num_rows,
        catalog.requests,
    )
    store_cached(source.base, catalog, table=table)
    return catalog


def load_catalog(
    source: CatalogSource,
    parts: Sequence[str] | None = None,
    *,
    policy: RetryPolicy | None = None,
    refresh: Iterable[str] = (),
    table: bool = True,
) -> Catalog:
    """Catalog ``parts`` of ``source`` (default: :meth:`CatalogSource.default_parts`);
    parts named in ``refresh`` are read again whatever the cache holds. ``table`` False
    caches plain columns rather than Parquet (:func:`load_part`)."""
    policy = policy or RetryPolicy()
    names = list(parts) if parts is not None else source.default_parts()
    again = set(refresh)

    def one(name: str) -> PartCatalog | DavidDataError:
        try:
            return load_part(source, name, policy=policy, use_cache=name not in again, table=table)
        except DavidDataError as exc:
            if isinstance(exc, JobInterrupted) or getattr(exc, "first_contact", False):
                raise  # stopped, or the host was never reached: one error for the command
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(names)))) as pool:
        got = list(pool.map(one, names))
    ok = tuple(g for g in got if isinstance(g, PartCatalog))
    errors = tuple(
        (name, g.message)
        for name, g in zip(names, got, strict=True)
        if isinstance(g, DavidDataError)
    )
    return Catalog(source=source, parts=ok, errors=errors)


def replace_part(catalog: Catalog, part: PartCatalog) -> Catalog:
    """The catalog with one part's entries replaced by a fresh reading."""
    parts = tuple(part if p.name == part.name else p for p in catalog.parts)
    return Catalog(source=catalog.source, parts=parts, errors=catalog.errors)


def overview(catalog: Catalog) -> tuple[pa.Table, pa.Table]:
    """Per-part and per-scenario counts and bytes (what ``catalog`` prints without SQL)."""
    by_part = catalog.query(
        "SELECT part, count(*) AS samples, count(*) FILTER (WHERE complete) AS complete, "
        "sum(members)::BIGINT AS members, sum(bytes)::BIGINT AS bytes, "
        "min(sample_id) AS first_id, max(sample_id) AS last_id FROM samples GROUP BY part ORDER BY part"
    )
    by_scenario = catalog.query(
        "SELECT scenario, count(*) AS samples, count(*) FILTER (WHERE complete) AS complete, "
        "sum(bytes)::BIGINT AS bytes FROM samples GROUP BY scenario ORDER BY scenario"
    )
    return by_part, by_scenario
