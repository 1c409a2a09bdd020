"""Training orders: length-grouped (a permutation, grouped by length, dealt to ranks in aligned groups) or shuffled,
seeded per epoch; and the loader that resumes part-way through an epoch."""

import numpy as np
import pytest
from torch.utils.data import DataLoader

from ftlit.data.sampler import LengthGroupedSampler, ResumableDataLoader, ShuffledSampler, longest_first


@pytest.fixture
def lengths():
    return np.random.default_rng(0).integers(5, 400, size=1000)


def test_every_index_once_per_epoch(lengths):
    sampler = LengthGroupedSampler(lengths, group_size=16, seed=1)
    assert sorted(sampler) == list(range(1000)) and len(sampler) == 1000


def test_groups_pad_far_less_than_random_batches(lengths):
    def padding(order):
        batches = [lengths[order[i : i + 16]] for i in range(0, len(order), 16)]
        return sum(b.max() * len(b) - b.sum() for b in batches) / sum(b.max() * len(b) for b in batches)

    grouped = padding(np.array(list(LengthGroupedSampler(lengths, group_size=16, seed=1))))
    shuffled = padding(np.random.default_rng(1).permutation(1000))
    assert grouped < 0.1 < 0.4 < shuffled


def test_order_is_fixed_by_seed_and_epoch(lengths):
    first, again, other_seed = (LengthGroupedSampler(lengths, 16, seed=s) for s in (1, 1, 2))
    assert list(first) == list(again) != list(other_seed)
    epoch0 = list(first)
    first.set_epoch(1)
    epoch1 = list(first)
    assert epoch1 != epoch0
    resumed = LengthGroupedSampler(lengths, 16, seed=1)
    resumed.set_epoch(1)  # a run resumed at epoch 1 sees what the uninterrupted run saw
    assert list(resumed) == epoch1


def test_ranks_dealt_in_turn_get_batches_from_one_group(lengths):
    world, batch = 2, 8
    order = list(LengthGroupedSampler(lengths, group_size=world * batch, seed=3))
    full = len(order) // (world * batch) * (world * batch)
    for start in range(0, full, world * batch):
        group = lengths[order[start : start + world * batch]]
        assert (np.diff(group) <= 0).all()  # an aligned slice of a length-sorted mega-batch: one group
        for rank in range(world):
            rank_batch = lengths[order[start + rank : start + world * batch : world]]
            assert rank_batch.min() >= group.min() and rank_batch.max() <= group.max()
            assert len(rank_batch) == batch


def test_longest_first_for_evaluation():
    assert longest_first([3, 9, 1, 9]) == [1, 3, 0, 2]


def test_a_shuffled_order_depends_only_on_seed_and_epoch():
    first, again, other = ShuffledSampler(50, seed=3), ShuffledSampler(50, seed=3), ShuffledSampler(50, seed=3)
    other.set_epoch(1)
    assert list(first) == list(again) != list(other) and sorted(first) == list(range(50))


def test_a_resumed_loader_skips_the_batches_already_trained_on_once():
    rows = list(range(10))
    whole = [batch.tolist() for batch in DataLoader(rows, batch_size=3, sampler=ShuffledSampler(10, seed=1))]
    resumed = ResumableDataLoader(rows, batch_size=3, sampler=ShuffledSampler(10, seed=1), skip_batches=2)
    assert [batch.tolist() for batch in resumed] == whole[2:]
    assert [batch.tolist() for batch in resumed] == whole  # the next epoch starts from its beginning


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_the_training_order_follows_the_runs_seed_and_the_held_out_rows_follow_the_data_seed(
    tiny_bert, sentiment_files, monkeypatch
):
    from lightning import seed_everything

    from ftlit.tasks.classification.data import ClassificationDataModule

    def run(seed: int | None) -> tuple[list[int], list[str]]:
        monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
        if seed is not None:
            seed_everything(seed)  # as the CLI's --seed_everything
        dm = ClassificationDataModule(tiny_bert, train_file=str(sentiment_files["train"]), text_fields=["text"],
                                      validation_split=0.1, seed=42)  # fmt: skip
        dm.prepare_data()
        dm.setup("fit")
        return list(dm.train_dataloader().sampler), list(dm.rows["validation"]["text"])

    (order_42, held_out_42), (order_43, held_out_43), (order_unseeded, _) = run(42), run(43), run(None)
    assert order_43 != order_42 == order_unseeded  # without a run seed, --data.seed orders the batches
    assert held_out_43 == held_out_42  # every run seed is scored on the same held-out rows
