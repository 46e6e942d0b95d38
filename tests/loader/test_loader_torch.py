"""The torch loader over a local store: coverage, order, resume, elastic resume, transforms
(acceptance 1 and 2 of issue 12)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the loader needs PyTorch: pip install 'david-data[torch]'"
)

from loader_helpers import BROKEN, OK_IDS  # noqa: E402

from david_data import open_store  # noqa: E402
from david_data import transforms as T  # noqa: E402
from david_data.errors import ConfigError, NoInputsError  # noqa: E402


@pytest.fixture()
def store(store_path: Path):
    return open_store(str(store_path))


def ids_of(batches) -> list[list[int]]:
    return [b["sample_id"].tolist() for b in batches]


def real(batches) -> list[int]:
    return [
        i
        for b in batches
        for i, pad in zip(b["sample_id"].tolist(), b["padding"].tolist(), strict=True)
        if not pad
    ]


def epoch_of(store, world_size, **options):
    """One epoch's batches of every rank (light: only the intrinsics are read)."""
    options.setdefault("fields", ["intrinsics"])
    return [
        list(store.loader(4, rank=r, world_size=world_size, **options)) for r in range(world_size)
    ]


def test_two_ranks_cover_every_selected_sample_once_per_epoch(store):
    ranks = epoch_of(store, 2, seed=5)
    assert len(ranks[0]) == len(ranks[1]) == 5  # 35 samples over 2 x 4: 5 steps, lockstep
    seen = real(ranks[0]) + real(ranks[1])
    assert sorted(seen) == OK_IDS  # the failed sample is never selected
    for rank in ranks:
        for batch in rank:
            assert batch["sample_id"].shape == batch["padding"].shape == (4,)
            assert batch["padding"].dtype == torch.bool
            assert set(batch["sample_id"][batch["padding"]].tolist()) <= set(OK_IDS)
    assert sum(int(b["padding"].sum()) for r in ranks for b in r) == 2 * 5 * 4 - 35


def test_same_seed_same_order_and_epochs_differ(store):
    first = ids_of(epoch_of(store, 2, seed=5)[0])
    assert ids_of(epoch_of(store, 2, seed=5)[0]) == first
    assert ids_of(epoch_of(store, 2, seed=6)[0]) != first
    loader = store.loader(4, seed=5, rank=0, world_size=2, fields=["intrinsics"])
    epoch0, epoch1 = ids_of(loader), ids_of(loader)  # the next iteration is the next epoch
    assert epoch0 == first and epoch1 != first
    assert loader.epoch == 2
    loader.set_epoch(1)
    assert ids_of(loader) == epoch1
    plain = store.loader(5, shuffle=False, fields=["intrinsics"])
    assert real(list(plain)) == OK_IDS


def test_batches_hold_the_stores_arrays_writable(store):
    loader = store.loader(3, seed=1, num_workers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "The given NumPy array is not writable"
        batches = list(loader)
    assert sorted(real(batches)) == OK_IDS
    batch = batches[1]
    expected = store.read_batch(batch["sample_id"].tolist())
    for name in ("rgb", "alpha", "depth", "normal", "intrinsics"):
        assert np.array_equal(batch[name].numpy(), expected[name]), name
        assert batch[name].numpy().flags.writeable
    batch["depth"] += 1  # in place, no error


def test_resume_after_k_batches_yields_exactly_the_rest_in_order(store):
    full = epoch_of(store, 2, seed=3, fields=["alpha"])
    k = 2
    loaders = [store.loader(4, seed=3, rank=r, world_size=2, fields=["alpha"]) for r in range(2)]
    head = [[b for _, b in zip(range(k), loader, strict=False)] for loader in loaders]
    state = loaders[0].state_dict()
    assert state == loaders[1].state_dict()  # any rank's state is the global position
    for rank in range(2):
        assert ids_of(head[rank]) == ids_of(full[rank][:k])
        resumed = store.loader(4, seed=3, rank=rank, world_size=2, fields=["alpha"], num_workers=2)
        resumed.load_state_dict(state)
        resumed.set_epoch(0)  # a training loop calls it: the position is kept
        rest = list(resumed)
        assert ids_of(rest) == ids_of(full[rank][k:])
        assert [b["padding"].tolist() for b in rest] == [
            b["padding"].tolist() for b in full[rank][k:]
        ]
        for a, b in zip(rest, full[rank][k:], strict=True):
            assert torch.equal(a["alpha"], b["alpha"])


def test_restoring_on_three_ranks_covers_the_rest_exactly_once(store):
    loaders = [
        store.loader(2, seed=9, rank=r, world_size=2, fields=["intrinsics"]) for r in range(2)
    ]
    consumed = []
    for loader in loaders:
        consumed += real([b for _, b in zip(range(3), loader, strict=False)])
    state = loaders[1].state_dict()
    rest = []
    for rank in range(3):
        loader = store.loader(3, seed=9, rank=rank, world_size=3, fields=["intrinsics"])
        loader.load_state_dict(state)
        rest += real(list(loader))
    assert sorted(consumed + rest) == OK_IDS
    # ... and a position reached on three ranks restores on one, with another batch size
    middle = [
        store.loader(3, seed=9, rank=r, world_size=3, fields=["intrinsics"]) for r in range(3)
    ]
    consumed_then = []
    for loader in middle:
        loader.load_state_dict(state)
        consumed_then += real([b for _, b in zip(range(1), loader, strict=False)])
    last = store.loader(5, seed=9, fields=["intrinsics"])
    last.load_state_dict(middle[0].state_dict())
    assert len(last.state_dict()["segments"]) == 2
    assert sorted(consumed + consumed_then + real(list(last))) == OK_IDS


def test_a_state_is_only_restored_into_a_matching_loader(store):
    state = store.loader(4, seed=1, fields=["intrinsics"]).state_dict()
    with pytest.raises(ConfigError, match="seed=1"):
        store.loader(4, seed=2, fields=["intrinsics"]).load_state_dict(state)
    with pytest.raises(ConfigError, match="selection"):
        store.loader(4, seed=1, where="sample_id < 30", fields=["intrinsics"]).load_state_dict(
            state
        )
    with pytest.raises(ConfigError, match="not a loader state"):
        store.loader(4, fields=["intrinsics"]).load_state_dict({"epoch": 3})


def test_where_filters_metadata_and_always_skips_failed_samples(store):
    loader = store.loader(4, where="sample_id BETWEEN 10 AND 19", fields=["intrinsics"])
    assert sorted(real(list(loader))) == [i for i in range(10, 20) if i != BROKEN]
    with pytest.raises(NoInputsError, match="empty"):
        store.loader(4, where=f"sample_id = {BROKEN}")
    with pytest.raises(ConfigError, match="query failed|samples"):
        store.loader(4, where="no_such_column > 1")


def test_options_are_validated(store):
    with pytest.raises(ConfigError, match="batch_size"):
        store.loader(0)
    with pytest.raises(ConfigError, match="rank 2 is out of range"):
        store.loader(4, rank=2, world_size=2)
    with pytest.raises(ConfigError, match="fields"):
        store.loader(4, fields=["colour"])


def test_a_transform_runs_in_the_workers(store):
    transform = T.Compose(
        T.metric_depth, T.foreground_crop, partial(T.resize, height=64, width=48), T.hflip
    )
    loader = store.loader(
        4, fields=["alpha", "depth", "intrinsics"], transform=transform, num_workers=2
    )
    batch = next(iter(loader))
    assert batch["depth"].shape == batch["valid"].shape == (4, 64, 48)
    assert batch["valid"].dtype == torch.bool and batch["depth"].dtype == torch.float32
    assert bool(batch["valid"].any()) and float(batch["depth"].max()) < 100  # metres


def test_without_torch_the_loader_says_how_to_install_it(store_path: Path):
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from david_data import open_store\n"
        f"store = open_store({str(store_path)!r})\n"
        "try:\n    store.loader(4)\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "MissingExtraError" in out.stdout and "pip install 'david-data[torch]'" in out.stdout


def test_the_state_is_plain_data_in_torchdatas_stateful_protocol(store):
    stateful = pytest.importorskip("torchdata.stateful_dataloader").Stateful
    loader = store.loader(4, seed=8, fields=["intrinsics"])
    assert isinstance(loader, stateful)
    head = [b for _, b in zip(range(2), loader, strict=False)]
    saved = json.loads(json.dumps(loader.state_dict()))  # e.g. stored beside a checkpoint
    resumed = store.loader(4, seed=8, fields=["intrinsics"])
    resumed.load_state_dict(saved)
    assert sorted(real(head) + real(list(resumed))) == OK_IDS


def readme_loop(loader, epochs, seen):
    """The README's training loop: set_epoch, then a state_dict() after every batch."""
    state = None
    for epoch in range(loader.epoch, epochs):
        loader.set_epoch(epoch)
        for batch in loader:
            seen.append((epoch, real([batch])))
            state = loader.state_dict()
    return state


@pytest.mark.parametrize("resume_world", [3, 2])
def test_a_state_saved_after_an_epochs_last_batch_resumes_at_the_next_epoch(store, resume_world):
    options = {"seed": 7, "fields": ["intrinsics"]}
    first: list = []
    states = [
        readme_loop(store.loader(4, rank=r, world_size=3, **options), 1, first) for r in range(3)
    ]
    assert states[0] == states[1] == states[2]
    assert sorted(i for _, ids in first for i in ids) == OK_IDS
    # a fresh job restores it (on as many ranks, or on another number) and runs epoch 1 on
    resumed: list = []
    for rank in range(resume_world):
        loader = store.loader(4, rank=rank, world_size=resume_world, **options)
        loader.load_state_dict(json.loads(json.dumps(states[0])))
        readme_loop(loader, 2, resumed)
    assert {epoch for epoch, _ in resumed} == {1}  # nothing of epoch 0 replayed
    assert sorted(i for _, ids in resumed for i in ids) == OK_IDS  # each sample exactly once
    expected = []
    for rank in range(resume_world):
        loader = store.loader(4, rank=rank, world_size=resume_world, **options)
        loader.set_epoch(1)
        expected += real(list(loader))
    assert [i for _, ids in resumed for i in ids] == expected  # as without the interruption
    assert states[0]["epoch"] == 1 and states[0]["segments"] == []  # the start of epoch 1


def test_a_loop_stopped_at_an_epochs_last_batch_goes_on_with_the_next_epoch(store):
    loader = store.loader(4, seed=2, rank=1, world_size=3, fields=["intrinsics"])
    steps = len(loader)
    head = [b for _, b in zip(range(steps), loader, strict=False)]  # stops after the last batch
    assert loader.epoch == 1 and loader.state_dict()["segments"] == []
    reference = store.loader(4, seed=2, rank=1, world_size=3, fields=["intrinsics"])
    assert ids_of(head) == ids_of(list(reference))
    assert ids_of(list(loader)) == ids_of(list(reference))  # epoch 1, once
    assert loader.epoch == 2


def test_a_loader_that_would_yield_nothing_is_refused(store):
    with pytest.raises(NoInputsError, match="no batch"):
        store.loader(32, drop_last=True, world_size=2, rank=0)
