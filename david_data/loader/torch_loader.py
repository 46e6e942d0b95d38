"""``StoreLoader``: the stateful, distributed-aware PyTorch loader over a store.

Each rank builds one loader (``store.loader(batch_size, ...)``); the main process plans
the rank's batches (:mod:`.order`) and a ``torch.utils.data.DataLoader`` with
``batch_size=None`` runs them on ``num_workers`` worker processes, each reading whole
batches through a :class:`~.batch.BatchSource` and handing tensors back through shared
memory: a few buffers per worker, refilled once the main process holds nothing of them
(:mod:`._slots`; fresh shared memory per batch cost more in page faults than the workers
gained). The workers start at the first iteration and serve every later one (persistent:
an epoch does not pay their start again); at each iteration's start each process forgets
the shard versions and indexes it learnt, so shards rewritten since are read anew. They
start with ``fork`` (no import again) when the store is local and the process runs no
other thread, else with ``spawn``: a forked worker inherits the state of the parent's
threads (fsspec/adlfs event loops, a Dask client's IO loop) and can die at its first
read. ``start_method`` overrides the choice. Each planned batch also names the next few shards of the rank, which the worker
starts fetching into the shard cache (object stores only).

State: ``state_dict()`` returns plain data (JSON-safe): the order's parameters (seed,
shuffle, shard size, window, a digest of the selected ids), the epoch and the segments
consumed so far. It is the same on every rank and restores on any number of ranks. It
follows the ``state_dict``/``load_state_dict`` protocol of torchdata's ``Stateful`` (so
``torch.distributed.checkpoint`` and trainers that checkpoint a ``StatefulDataLoader``
take it as is), but unlike ``StatefulDataLoader``'s own state (per-worker snapshots,
restorable only with the same number of workers) it holds the global position only.
"""

from __future__ import annotations

import ast
import multiprocessing
import sys
import threading
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .._extras import require
from .._parse import parse_int
from ..errors import ConfigError, NoInputsError
from ..format.metadata import STATUS_OK
from ..fsutil import is_local
from ._slots import Released, SlotPool, SlotTracker, shared_array
from .batch import BatchSource, Transform, parse_fields
from .cache import DEFAULT_CACHE_LIMIT, default_cache_dir
from .order import (
    SHUFFLE_WINDOW,
    Batch,
    Segment,
    epoch_order,
    rank_batches,
    replay,
    selection_digest,
    steps_per_rank,
)

if TYPE_CHECKING:
    from types import FrameType

    import pyarrow as pa

    from ..format.layout import StoreLayout

STATE_FORMAT = "david_data.loader/1"
PREFETCH_SHARDS = 4
"""Shards beyond the current batch's that a worker starts fetching (object stores)."""
START_METHODS = ("fork", "forkserver", "spawn")
SLOT_KEY = "__david_data_slot__"
"""A worker's batch's key for its slot tag (:mod:`._slots`); the loader pops it."""


class LoadableStore(Protocol):
    """What a loader needs of a store (:class:`david_data.store.SynthHumanStore` is one):
    the loader depends on this, never on the store package, which makes loaders."""

    url: str
    storage_options: dict[str, Any] | None

    @property
    def layout(self) -> StoreLayout: ...

    @property
    def sample_ids(self) -> np.ndarray: ...

    def query(self, sql: str) -> pa.Table: ...

    def run(self, name: str) -> object:
        """The run ``name`` (an error naming the runs there when it is unknown)."""
        ...


def require_torch() -> Any:
    """Import torch, or explain how to install the optional extra."""
    require("torch", "store.loader()")
    import torch

    return torch


def _distributed(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``rank``/``world_size``, defaulting to torch.distributed's when it is initialised."""
    import torch.distributed as dist

    active = dist.is_available() and dist.is_initialized()
    if world_size is None:
        world_size = dist.get_world_size() if active else 1
    if rank is None:
        rank = dist.get_rank() if active else 0
    world_size = parse_int("world_size", world_size, minimum=1)
    rank = parse_int("rank", rank, minimum=0)
    if rank >= world_size:
        raise ConfigError(
            f"rank {rank} is out of range for world_size {world_size} (0 ... {world_size - 1})"
        )
    return rank, world_size


def check_spawn_safe(num_workers: int) -> None:
    """Refuse to start ``spawn`` workers from code that ``spawn`` runs again in each worker.

    A spawned worker imports the main script again; when the training sits at the script's
    top level, not under ``if __name__ == "__main__":``, each worker would start the
    training too and die with multiprocessing's bootstrapping error (after the workers have
    paid their start-up). Checked here, in the parent, where the script's top-level line
    running now is known: it is refused when no ``if`` encloses it (a plain top-level
    statement always runs again). Inside a worker that imports such a script anyway, the
    same advice is raised at once.
    """
    fix = (
        f"store.loader(num_workers={num_workers}) may start its worker processes with 'spawn' "
        "(always for object stores and in processes that run other threads), which imports "
        "the main script again in each worker{where}; put the code that runs the training "
        'under `if __name__ == "__main__":` (see the README\'s Training example)'
    )
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise ConfigError(fix.format(where=", and this worker's import reached the loader"))
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if not main_file:  # an interactive session or python -c: nothing runs again
        return
    line = None
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:  # the outermost frame of the script's top-level code
        if frame.f_code.co_name == "<module>" and frame.f_code.co_filename == main_file:
            line = frame.f_lineno
        frame = frame.f_back
    if line is None:
        return
    try:
        tree = ast.parse(Path(main_file).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return
    if _unguarded(tree.body, line):
        raise ConfigError(
            fix.format(where=f", and line {line} of {main_file} would start the training there")
        )


def choose_start_method(requested: str | None, *, local: bool) -> str:
    """The workers' start method: ``requested`` when given, else ``fork`` where it is safe
    (the platform has it, the store is local and no other thread runs here), else ``spawn``."""
    if requested is not None:
        if requested not in START_METHODS:
            raise ConfigError(
                f"start_method must be one of {', '.join(START_METHODS)} or None, got {requested!r}"
            )
        if requested not in multiprocessing.get_all_start_methods():
            raise ConfigError(
                f"start_method {requested!r} is not available on this platform; choose one of "
                f"{', '.join(multiprocessing.get_all_start_methods())}"
            )
        return requested
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    # multiprocessing's queue feeders (another loader's workers) reset themselves at fork
    others = [t for t in others if t.name != "QueueFeederThread"]
    fork_safe = local and not others and "fork" in multiprocessing.get_all_start_methods()
    return "fork" if fork_safe else "spawn"


def _unguarded(body: list[ast.stmt], line: int) -> bool:
    """Whether the top-level statement running ``line`` runs whenever the script is
    imported: no ``if`` (or ``match``) encloses it."""
    for node in body:
        if not node.lineno <= line <= (node.end_lineno or node.lineno):
            continue
        if isinstance(node, ast.If | ast.Match):
            return False
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return True  # a decorator or a default value, evaluated at import
        inner = [*getattr(node, "body", []), *getattr(node, "orelse", [])]
        inner += [s for h in getattr(node, "handlers", []) for s in h.body]
        inner += getattr(node, "finalbody", [])
        return _unguarded(inner, line)
    return True


def select_ids(store: LoadableStore, where: str | None) -> np.ndarray:
    """Ids of the store's converted samples that ``where`` (SQL over ``samples``) keeps."""
    if where is None:
        return np.asarray(store.sample_ids, dtype=np.int64)
    table = store.query(
        f"SELECT sample_id FROM samples WHERE status = '{STATUS_OK}' AND ({where}) ORDER BY sample_id"
    )
    return np.asarray(table.column("sample_id").to_numpy(zero_copy_only=False), dtype=np.int64)


class _BatchDataset:
    """Map-style dataset whose index is a planned batch, the shards to prefetch, the
    iteration's number and the slots the main process released (:mod:`._slots`); returns
    a dict of tensors. A new iteration number refreshes the source (in each worker: what
    it learnt of the shards is forgotten at each epoch). In a worker, the batch goes into
    one of its reusable shared-memory slots, tagged under :data:`SLOT_KEY`."""

    def __init__(self, source: BatchSource, pool: str) -> None:
        self.source = source
        self.pool = pool
        self._iteration: int | None = None
        self._slots: SlotPool | None = None  # made in the worker

    def __getitem__(self, item: tuple[Batch, tuple[int, ...], int, Released]) -> dict[str, Any]:
        import torch

        batch, ahead, iteration, released = item
        if iteration != self._iteration:
            self.source.refresh()
            self._iteration = iteration
        self.source.prefetch(ahead)
        shared: dict[str, Any] = {}
        allocate = slot = None
        if torch.utils.data.get_worker_info() is not None:
            if self._slots is None:
                self._slots = SlotPool(self.pool)
            slot = self._slots.take(released)
            allocate = partial(shared_array, torch, shared, self._slots, slot)
        try:
            arrays = self.source.read(batch.sample_ids, allocate)
        except BaseException:
            if self._slots is not None and slot is not None:
                self._slots.abandon(slot)
            raise
        arrays["sample_id"] = np.array(batch.sample_ids, dtype=np.int64)
        arrays["padding"] = np.array(batch.padding, dtype=bool)
        for key in ("sample_id", "padding"):
            shared.pop(key, None)  # a transform's own key of that name is replaced
            if allocate is not None:
                target = allocate(key, arrays[key].shape, arrays[key].dtype)
                if target is not None:
                    target[...] = arrays[key]
        out = {n: shared[n] if n in shared else torch.from_numpy(a) for n, a in arrays.items()}
        if self._slots is not None and slot is not None:  # the slot's tensors, as handles
            handles, out[SLOT_KEY] = self._slots.tag(slot, shared)
            out.update(handles)
        return out


def _as_is(batch: dict[str, Any]) -> dict[str, Any]:
    return batch


class _Plan:
    """The persistent DataLoader's sampler: the current iteration's planned batches, each
    handed out with the slots released so far (read when the DataLoader dispatches it)."""

    def __init__(self) -> None:
        self.items: list[tuple[Batch, tuple[int, ...], int]] = []
        self.slots = SlotTracker()

    def __iter__(self) -> Iterator[tuple[Batch, tuple[int, ...], int, Released]]:
        for batch, ahead, iteration in self.items:
            yield batch, ahead, iteration, self.slots.released()

    def __len__(self) -> int:
        return len(self.items)


class StoreLoader:
    """Batches of one rank over a store, deterministic in (seed, epoch) and resumable.

    Iterating yields dicts of tensors: the ``fields`` (or what ``transform`` returns),
    ``sample_id`` (int64) and ``padding`` (bool, True for entries that repeat a sample
    to fill a rank's final batch when ``drop_last`` is False). Every batch has
    ``batch_size`` entries. Each iteration continues where the last one stopped. Once an
    epoch's last batch has been yielded the position is the start of the next epoch:
    ``state_dict()`` says so at once (a state saved after the last batch resumes at the
    next epoch, nothing replayed) and ``epoch`` moves on when the iteration ends.
    ``set_epoch(e)`` moves to the start of epoch ``e`` (keeping the position when ``e`` is
    the current epoch, so a resumed job may call it as usual).

    Options: ``shuffle``/``seed`` fix the order (:mod:`.order`); ``rank``/``world_size``
    default to torch.distributed's when it is initialised, else 0/1; ``num_workers``
    worker processes read whole batches (started at the first iteration, kept until
    :meth:`close`, an error or the loader's end; ``start_method`` is theirs: None picks
    ``fork`` for a local store in a process that runs no other thread, else ``spawn``); ``fields`` picks store arrays (default all);
    ``transform`` maps each sample dict (fields + ``sample_id``, numpy) to a dict of
    arrays and must pickle (see :mod:`david_data.transforms`); ``drop_last`` drops the
    tail instead of padding; ``where`` is an SQL predicate over the ``samples`` metadata
    table (``status = 'ok'`` always applies); ``cache_dir``/``cache_limit`` (bytes) set
    the shard cache used for stores on object storage (:mod:`.cache`); ``runs`` adds,
    for each run R of the store, its predictions ``R/<field>`` (float32, NaN-filled where
    the run does not hold the sample) and ``R/covered`` (bool per sample).
    """

    def __init__(
        self,
        store: LoadableStore,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        num_workers: int = 0,
        fields: Sequence[str] | None = None,
        transform: Transform | None = None,
        drop_last: bool = False,
        where: str | None = None,
        cache_dir: str | Path | None = None,
        cache_limit: int = DEFAULT_CACHE_LIMIT,
        start_method: str | None = None,
        runs: Sequence[str] = (),
    ) -> None:
        self._torch = require_torch()
        self.batch_size = parse_int("batch_size", batch_size, minimum=1)
        self.seed = parse_int("seed", seed, minimum=0)
        self.num_workers = parse_int("num_workers", num_workers, minimum=0)
        parse_int("cache_limit", cache_limit, minimum=1)
        self.rank, self.world_size = _distributed(rank, world_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.fields = parse_fields(fields)
        self.runs = tuple(dict.fromkeys([runs] if isinstance(runs, str) else runs))
        for name in self.runs:
            store.run(name)  # an unknown run is an error here, naming the runs there
        self.store = store
        self.sample_ids = select_ids(store, where)
        if self.sample_ids.size == 0:
            raise NoInputsError(
                f"the loader's selection is empty: no converted sample of {store.url} "
                f"matches where={where!r}; loosen the predicate or convert more parts"
            )
        self.shard_size = store.layout.shard_size
        self._remote = not is_local(store.layout.fs)
        if start_method is not None:
            choose_start_method(start_method, local=not self._remote)  # validated up front
        self._requested_start = start_method
        self.start_method: str | None = None
        """The workers' start method, once they have started."""
        self._source = BatchSource(
            store.url,
            store.storage_options,
            self.fields,
            transform,
            Path(cache_dir) if cache_dir is not None else default_cache_dir(),
            cache_limit,
            self.runs,
        )
        if len(self) == 0:
            raise NoInputsError(
                f"the loader yields no batch: {self.sample_ids.size} selected samples over "
                f"{self.world_size} ranks in batches of {self.batch_size} with drop_last=True; "
                "lower batch_size or pass drop_last=False"
            )
        self._digest = selection_digest(self.sample_ids)
        self._epoch = 0
        self._segments: list[Segment] = []
        self._steps = 0  # batches yielded in the current segment
        self._planned: int | None = None  # batches of the current segment, once it is planned
        self._token: object | None = None
        self._iterations = 0
        self._sampler = _Plan()
        self._loader: Any = None  # the DataLoader, kept across iterations with its workers

    def __repr__(self) -> str:
        return (
            f"StoreLoader({self.store.url!r}, {self.sample_ids.size} samples, batch_size={self.batch_size}, "
            f"rank={self.rank}/{self.world_size}, epoch={self._epoch})"
        )

    # -- position ------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        return self._epoch

    def _position(self) -> tuple[int, list[Segment]]:
        """The epoch and the segments consumed in it; a complete epoch is the start of the
        next one (so a state saved after an epoch's last batch never replays it)."""
        if self._planned is not None and self._steps >= self._planned:
            return self._epoch + 1, []
        current = Segment(self.world_size, self.batch_size, self.drop_last, self._steps)
        return self._epoch, [*self._segments, current] if self._steps else list(self._segments)

    def _move(self, epoch: int, segments: list[Segment]) -> None:
        self._epoch, self._segments, self._steps, self._planned = epoch, segments, 0, None

    def _order(self, epoch: int) -> np.ndarray:
        return epoch_order(
            self.sample_ids, self.shard_size, seed=self.seed, epoch=epoch, shuffle=self.shuffle
        )

    def set_epoch(self, epoch: int) -> None:
        """Go to the start of ``epoch`` (no change when it is the current epoch)."""
        epoch = parse_int("epoch", epoch, minimum=0)
        if epoch != self._epoch:
            self._move(epoch, [])
            self._token = None

    def __len__(self) -> int:
        """Batches this rank yields in a whole epoch."""
        return steps_per_rank(
            self.sample_ids.size, self.world_size, self.batch_size, self.drop_last
        )

    def state_dict(self) -> dict[str, Any]:
        """The global position (the same on every rank): plain, JSON-safe data. Taken after
        an epoch's last batch, it is the start of the next epoch."""
        epoch, segments = self._position()
        return {
            "format": STATE_FORMAT,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "shard_size": self.shard_size,
            "window": SHUFFLE_WINDOW,
            "selection": {"count": int(self.sample_ids.size), "digest": self._digest},
            "epoch": epoch,
            "segments": [[s.world_size, s.batch_size, s.drop_last, s.steps] for s in segments],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a position saved by ``state_dict()`` (on any number of ranks)."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ConfigError(
                f"not a loader state (expected format {STATE_FORMAT!r}, found "
                f"{state.get('format') if isinstance(state, dict) else type(state).__name__!r}); "
                "pass what StoreLoader.state_dict() returned"
            )
        mine = self.state_dict()
        for key in ("seed", "shuffle", "shard_size", "window", "selection"):
            if state.get(key) != mine[key]:
                raise ConfigError(
                    f"the loader state was saved with {key}={state.get(key)!r}, this loader has "
                    f"{mine[key]!r}; restore it into a loader over the same store, where= and seed"
                )
        try:
            segments = [
                Segment(int(w), int(b), bool(d), int(k)) for w, b, d, k in state.get("segments", [])
            ]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"the loader state's segments are malformed: {exc}") from exc
        epoch = parse_int("epoch", state.get("epoch"), minimum=0)
        remaining = replay(self._order(epoch), segments)  # raises if they do not fit the selection
        if steps_per_rank(remaining.size, self.world_size, self.batch_size, self.drop_last) == 0:
            epoch, segments = epoch + 1, []  # that epoch is complete (a state of older versions)
        self._move(epoch, segments)
        self._token = None

    # -- iteration -----------------------------------------------------------------------
    def _plan(self) -> list[tuple[Batch, tuple[int, ...]]]:
        """This rank's batches still to come in the current epoch, with shards to prefetch."""
        order = self._order(self._epoch)
        remaining = replay(order, self._segments)
        batches = list(
            rank_batches(
                remaining,
                order,
                world_size=self.world_size,
                rank=self.rank,
                batch_size=self.batch_size,
                drop_last=self.drop_last,
            )
        )
        if not self._remote:
            return [(b, ()) for b in batches]
        # Shards in the order this rank first needs them, with the batch that first needs each:
        # batch i prefetches the next PREFETCH_SHARDS shards first needed after it.
        firsts: list[tuple[int, int]] = []
        seen: set[int] = set()
        for i, batch in enumerate(batches):
            for shard in (batch.sample_ids // self.shard_size).tolist():
                if shard not in seen:
                    seen.add(shard)
                    firsts.append((i, shard))
        plan, j = [], 0
        for i, batch in enumerate(batches):
            while j < len(firsts) and firsts[j][0] <= i:
                j += 1
            plan.append((batch, tuple(shard for _, shard in firsts[j : j + PREFETCH_SHARDS])))
        return plan

    def _dataloader(self) -> Any:
        """The DataLoader, made at the first iteration; its workers serve every later one."""
        if self._loader is None:
            method = None
            if self.num_workers:
                method = choose_start_method(self._requested_start, local=not self._remote)
            self._loader = self._torch.utils.data.DataLoader(
                _BatchDataset(self._source, self._sampler.slots.pool),
                batch_size=None,
                sampler=self._sampler,
                num_workers=self.num_workers,
                collate_fn=_as_is,
                prefetch_factor=2 if self.num_workers else None,
                persistent_workers=bool(self.num_workers),
                multiprocessing_context=method,
            )
            self.start_method = method
        return self._loader

    def close(self) -> None:
        """Stop the worker processes now (the next iteration starts new ones)."""
        loader, self._loader = self._loader, None
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        self._sampler.slots.clear()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.num_workers:
            check_spawn_safe(self.num_workers)
        self._move(*self._position())
        plan = self._plan()
        token = self._token = object()
        self._planned = len(plan)
        self._iterations += 1
        loader = self._dataloader()
        self._sampler.items = [(batch, ahead, self._iterations) for batch, ahead in plan]
        batches = iter(loader)  # the same workers, set to this plan (a stopped one's is drained)
        try:
            while self._token is token:  # else a newer iteration or set_epoch took over
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                batch.pop(SLOT_KEY, None)
                self._steps += 1
                yield batch
                del batch  # held here, it would keep its slot from being refilled
        except Exception:
            self.close()  # after a worker's error, the next iteration starts fresh workers
            raise
        finally:
            if self._token is token and self._steps >= len(plan):
                self._move(self._epoch + 1, [])  # also when the loop stopped at the last batch
