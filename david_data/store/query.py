"""SQL over a store's metadata: one DuckDB connection per open store, locked read-only.

The ``samples`` table is an in-memory Arrow table (read by
:func:`david_data.format.consolidated.read_metadata`) that DuckDB scans in place. The
connection is created with external access disabled and its configuration locked, and
only one ``SELECT`` (or ``EXPLAIN``) statement runs per call: SQL sees the store's tables
(``samples``, and ``metrics``: per-sample metrics of the store's runs, see
:mod:`david_data.store.runs`) and nothing else (no ``read_text``/``read_csv`` of local files, no ``COPY ... TO``, no
``ATTACH``, no ``INSTALL``/``LOAD``, no changes to the table). That holds for every SQL
string that reaches a store: ``store.query``, ``store.subset``, ``query``, ``show --query``
and ``infer --query``, deployment parameters included.

Ctrl-C while a statement runs interrupts DuckDB (:func:`interruptible`): the statement
stops within moments and ``KeyboardInterrupt`` is raised, which the CLI turns into exit 130.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pyarrow as pa

from ..errors import ConfigError

logger = logging.getLogger(__name__)
T = TypeVar("T")

TABLE = "samples"
_LOCKED: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}
_ALLOWED = ("SELECT", "EXPLAIN")


def _one_line(exc: Exception) -> str:
    """DuckDB's message without its multi-line caret drawing."""
    lines = []
    for line in str(exc).splitlines():
        if not line.strip() or line.startswith("LINE "):
            break
        lines.append(line.strip())
    return " ".join(lines) or type(exc).__name__


_DICTIONARY = ("part", "scenario", "status", "part_sha256")
"""Low-cardinality string columns DuckDB scans about twice as fast dictionary-encoded
(GROUP BY scenario over 298,008 rows: ~15 -> ~7 ms of CPU). Encoding them costs ~0.1 s
once (pyarrow.compute loads), so a connection does it when it is reused: a one-off query
(the ``query`` command) does not pay for it. Results come back as plain strings."""


def _dictionary_encoded(table: pa.Table) -> pa.Table:
    for name in _DICTIONARY:
        if name in table.column_names and pa.types.is_string(table.schema.field(name).type):
            index = table.column_names.index(name)
            table = table.set_column(index, name, table.column(name).dictionary_encode())
    return table


def interruptible(connection: Any, work: Callable[[], T]) -> T:
    """``work()`` (statements on ``connection``), stopped by SIGINT: DuckDB is interrupted
    and ``KeyboardInterrupt`` raised. The statement runs on a helper thread while this
    (main) thread waits, so the signal handler runs at once: Python's default handler
    would wait for DuckDB to return, which a long statement never does. Outside the main
    thread (where no handler can be set) ``work`` just runs."""
    import duckdb

    if threading.current_thread() is not threading.main_thread():
        return work()
    values: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            values.append(work())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            errors.append(exc)

    hit = threading.Event()

    def interrupt(signum: int, frame: object) -> None:
        hit.set()
        connection.interrupt()

    thread = threading.Thread(target=run, name="david-data-sql", daemon=True)
    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, interrupt)
        logger.debug("running SQL (Ctrl-C interrupts it)")
        thread.start()
        while thread.is_alive():
            thread.join(1.0)  # signal handlers run during the wait
            if hit.is_set() and thread.is_alive():
                connection.interrupt()  # the statement had not started at the first one
    finally:
        signal.signal(signal.SIGINT, previous)
    error = errors[0] if errors else None
    if hit.is_set() or isinstance(error, duckdb.InterruptException):
        raise KeyboardInterrupt from None
    if error is not None:
        raise error
    return values[0]


class MetadataSQL:
    """DuckDB SQL over one metadata table, exposed as ``samples``, and optional other
    tables by name (a store's ``metrics``); safe to share between threads (queries run one
    at a time)."""

    def __init__(self, table: pa.Table, others: dict[str, pa.Table] | None = None) -> None:
        import duckdb

        self.columns = table.column_names
        self._others = {name: t.column_names for name, t in (others or {}).items()}
        self._duckdb = duckdb
        self._connection = duckdb.connect(config=_LOCKED)
        self._connection.register(TABLE, table)
        for name, other in (others or {}).items():
            self._connection.register(name, other)
        self._plain: pa.Table | None = table  # until the second query swaps in its encoded copy
        self._queries = 0
        self._lock = threading.Lock()

    def query(self, sql: str) -> pa.Table:
        """Run one read-only statement; its result as an Arrow table."""
        duckdb = self._duckdb
        with self._lock:
            self._queries += 1
            if self._queries == 2 and self._plain is not None:
                self._connection.register(TABLE, _dictionary_encoded(self._plain))
                self._plain = None
            try:
                statements = self._connection.extract_statements(sql)
            except duckdb.Error as exc:
                raise self._failed(exc) from exc
            kinds = [s.type.name for s in statements]
            if len(kinds) != 1 or kinds[0] not in _ALLOWED:
                raise ConfigError(
                    f"query refused: SQL over a store runs one SELECT over table '{TABLE}', "
                    f"got {' + '.join(kinds) or 'no statement'}; writing, COPY, ATTACH, "
                    "INSTALL/LOAD and settings are disabled"
                )
            try:
                return interruptible(self._connection, lambda: _arrow(self._connection, sql))
            except duckdb.PermissionException as exc:
                raise ConfigError(
                    f"query refused: {_one_line(exc)}; SQL over a store reads only its table "
                    f"'{TABLE}' (file access, COPY, ATTACH and extensions are disabled)"
                ) from exc
            except duckdb.Error as exc:
                raise self._failed(exc) from exc

    def _failed(self, exc: Exception) -> ConfigError:
        others = "".join(
            f"; table '{name}' with columns {', '.join(columns)}"
            for name, columns in self._others.items()
        )
        return ConfigError(
            f"query failed: {_one_line(exc)} (the table is '{TABLE}' with columns "
            f"{', '.join(self.columns)}{others})"
        )

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def _arrow(connection: Any, sql: str) -> pa.Table:
    relation = connection.sql(sql)
    return relation.to_arrow_table() if relation is not None else pa.table({})


def run_query(table: pa.Table, sql: str, others: dict[str, pa.Table] | None = None) -> pa.Table:
    """Run ``sql`` against ``table`` exposed as ``samples`` (and ``others`` by name; a
    one-off locked connection; an open store keeps one: :meth:`SynthHumanStore.query`)."""
    sql_view = MetadataSQL(table, others)
    try:
        return sql_view.query(sql)
    finally:
        sql_view.close()


def ids_of(result: pa.Table) -> Any:
    """The ``sample_id`` column of a query result, as int64 numpy array."""
    if "sample_id" not in result.column_names:
        raise ConfigError(
            f"the query must return a sample_id column (got {', '.join(result.column_names)}); "
            "e.g. SELECT sample_id FROM samples WHERE scenario = 'face'"
        )
    return result.column("sample_id").to_numpy(zero_copy_only=False).astype("int64")


def format_table(table: pa.Table) -> str:
    """A query result as a plain-text table for a terminal, with its row count."""
    import io

    from rich.console import Console
    from rich.table import Table

    out = Table(show_header=True, header_style="bold")
    for name in table.column_names:
        out.add_column(name)
    for row in table.to_pylist():
        out.add_row(*("" if v is None else str(v) for v in row.values()))
    console = Console(width=max(80, 14 * len(table.column_names)), record=True, file=io.StringIO())
    console.print(out)
    return console.export_text() + f"({table.num_rows} rows)\n"


def plain_records(table: pa.Table, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` rows as records of JSON values (numbers, text, None; anything
    else, such as a date or a list, as its text), e.g. for a Prefect table artifact."""
    plain = (int, float, str, type(None))
    return [
        {k: v if isinstance(v, plain) else str(v) for k, v in row.items()}
        for row in table.slice(0, limit).to_pylist()
    ]
