"""The Lightning internals behind ftlit._lightning, each checked against the installed Lightning: when a release
moves one, this fails (and pyproject.toml's upper bound on lightning keeps users off untested releases)."""

import logging
import re
import warnings

import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from conftest import Collected
from ftlit._lightning import (
    BENIGN_WARNINGS,
    QUIET_INFO,
    batches_done_in_epoch,
    is_last_batch,
    silence_known_noise,
    unrepeated,
)


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


class WithOwnCheckpoint(Recorder):
    """Returns its own checkpoint callback and predicts nothing, as ftlit's modules do."""

    def configure_callbacks(self):
        return [ModelCheckpoint()]

    def predict_step(self, batch, batch_idx):
        self.layer(batch[0])  # (kept in the module, not returned)


def test_silence_known_noise_drops_lightnings_tips_and_known_benign_lines_and_keeps_the_others(tmp_path):
    silence_known_noise()
    collected = Collected()
    logging.getLogger("lightning.pytorch").addHandler(collected)  # every Lightning message passes through it
    data = DataLoader(TensorDataset(torch.ones(2, 1)), batch_size=2)
    try:
        # the default logger (TensorBoard, no LitLogger) and checkpointing (no litmodels) are what the tips are about
        trainer = Trainer(max_steps=1, default_root_dir=tmp_path, enable_progress_bar=False)
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("default")  # (pytest's own filters out of the way)
            silence_known_noise()
            trainer.fit(WithOwnCheckpoint(), data)
            trainer.predict(WithOwnCheckpoint(), data)
    finally:
        logging.getLogger("lightning.pytorch").removeHandler(collected)
    assert any("GPU available" in message for message in collected.messages)  # the other messages still come
    assert not [m for m in collected.messages if m.startswith(QUIET_INFO)]
    assert not [w for w in warned if any(re.match(pattern, str(w.message)) for pattern in BENIGN_WARNINGS)]
