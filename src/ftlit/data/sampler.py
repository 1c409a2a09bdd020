"""Training orders that depend only on (seed, epoch) — so a resumed run sees the same batches — and the loader
that resumes part-way through an epoch."""

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import DataLoader, Sampler


class EpochSeededSampler(Sampler[int]):
    """Indices in an order that depends only on (seed, epoch). Unlike ``RandomSampler`` it draws from no shared
    generator, so an epoch's order is the same in a run resumed from a checkpoint."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def rng(self) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch))


class ShuffledSampler(EpochSeededSampler):
    """A seeded permutation per epoch."""

    def __iter__(self) -> Iterator[int]:
        return iter(self.rng().permutation(self.size).tolist())


class WeightedSampler(EpochSeededSampler):
    """As many indices as there are examples, drawn with replacement with probabilities proportional to
    ``weights`` (e.g. class-balanced sampling), seeded per epoch."""

    def __init__(self, weights: Sequence[float], seed: int = 0) -> None:
        super().__init__(len(weights), seed)
        self.probabilities = np.asarray(weights, dtype=np.float64) / np.sum(weights)

    def __iter__(self) -> Iterator[int]:
        return iter(self.rng().choice(self.size, size=self.size, p=self.probabilities).tolist())


class LengthGroupedSampler(EpochSeededSampler):
    """Shuffled indices arranged so that every run of ``group_size`` consecutive indices has similar lengths.

    Each epoch: a seeded permutation is cut into mega-batches of ``mega_batch_groups × group_size`` indices, each
    mega-batch is sorted by length (longest first) and cut into groups, and the groups are shuffled; full groups come
    first, so group boundaries stay at multiples of ``group_size``. The order depends only on (seed, epoch):
    deterministic, and an interrupted run resumed at an epoch boundary sees the same order.

    ``group_size`` is the global batch (batch size × number of devices): Lightning's distributed wrapper deals
    consecutive indices to the ranks in turn, so each rank's batch comes from one group.
    """

    def __init__(self, lengths: Sequence[int], group_size: int, seed: int = 0, mega_batch_groups: int = 50) -> None:
        super().__init__(len(lengths), seed)
        self.lengths = np.asarray(lengths)
        self.group_size = group_size
        self.mega_batch_groups = mega_batch_groups

    def __iter__(self) -> Iterator[int]:
        rng = self.rng()
        order = rng.permutation(len(self.lengths))
        mega = self.group_size * self.mega_batch_groups
        full, partial = [], []
        for start in range(0, len(order), mega):
            chunk = order[start : start + mega]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            for group in np.split(chunk, range(self.group_size, len(chunk), self.group_size)):
                (full if len(group) == self.group_size else partial).append(group)
        groups = [full[i] for i in rng.permutation(len(full))] + partial
        return iter(np.concatenate(groups).tolist() if groups else [])


def longest_first(lengths: Sequence[int]) -> list[int]:
    """Indices by decreasing length: evaluation batches pad little. Results are put back in order by index."""
    return np.argsort(-np.asarray(lengths), kind="stable").tolist()


class ResumableDataLoader(DataLoader):
    """A DataLoader whose first pass starts after ``skip_batches`` batches: those an interrupted run trained on
    before its checkpoint. Skipped at the iterator, after sampling and sharding, so each device skips exactly its
    own batches whatever wraps the sampler (Lightning's distributed sampler)."""

    def __init__(self, *args, skip_batches: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.skip_batches = skip_batches

    def __iter__(self):
        iterator = super().__iter__()
        for _ in range(self.skip_batches):
            next(iterator)
        self.skip_batches = 0
        return iterator
