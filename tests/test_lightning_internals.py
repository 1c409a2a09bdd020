"""The Lightning internals behind ftlit._lightning, each checked against the installed Lightning: when a release
moves one, this fails (and pyproject.toml's upper bound on lightning keeps users off untested releases)."""

import torch
from lightning import LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from ftlit._lightning import batches_done_in_epoch, is_last_batch, unrepeated


class Recorder(LightningModule):
    """Records, at every training batch, the batches done and whether the batch is the epoch's last."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.seen: list[tuple[int, int, bool]] = []

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.seen.append((batch_idx, batches_done_in_epoch(self.trainer), is_last_batch(self.trainer)))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_progress_counts_the_batches_of_the_current_epoch_and_flags_its_last():
    module = Recorder()
    trainer = Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)  # fmt: skip
    trainer.fit(module, DataLoader(TensorDataset(torch.ones(6, 1)), batch_size=2))
    # (batch index, batches processed so far in the epoch, last batch of the epoch?) — per epoch from 0 again
    assert module.seen == [(0, 1, False), (1, 2, False), (2, 3, True)] * 2


def test_unrepeated_sampler_deals_each_index_to_exactly_one_device():
    order = [5, 0, 3, 1, 4, 2, 6]
    shares = [list(unrepeated(order, num_replicas=3, rank=rank)) for rank in range(3)]
    assert sorted(index for share in shares for index in share) == list(range(7))  # none repeated, none lost
    assert [len(share) for share in shares] == [3, 2, 2]
