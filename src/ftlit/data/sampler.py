"""Length-grouped sampling: batches of similar lengths, so dynamic padding pads little."""

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class LengthGroupedSampler(Sampler[int]):
    """Shuffled indices arranged so that every run of ``group_size`` consecutive indices has similar lengths.

    Each epoch: a seeded permutation is cut into mega-batches of ``mega_batch_groups × group_size`` indices, each
    mega-batch is sorted by length (longest first) and cut into groups, and the groups are shuffled; full groups come
    first, so group boundaries stay at multiples of ``group_size``. The order depends only on (seed, epoch):
    deterministic, and an interrupted run resumed at an epoch boundary sees the same order.

    ``group_size`` is the global batch (batch size × number of devices): Lightning's distributed wrapper deals
    consecutive indices to the ranks in turn, so each rank's batch comes from one group.
    """

    def __init__(self, lengths: Sequence[int], group_size: int, seed: int = 0, mega_batch_groups: int = 50) -> None:
        self.lengths = np.asarray(lengths)
        self.group_size = group_size
        self.seed = seed
        self.mega_batch_groups = mega_batch_groups
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng((self.seed, self.epoch))
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
