"""Between logging steps a training step never makes the host wait for the device: ftlit reads no value off the
device there, yet a non-finite loss is still caught, named by its first step, before any checkpoint takes it."""

import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from lightning import Callback, Trainer
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar, TQDMProgressBar

from conftest import sentiment_rows, write_jsonl
from ftlit.cli import main
from ftlit.training.callbacks import ShowsWindowLoss, use_training_progress_bar

HOST_READS = ("item", "tolist", "__bool__", "__int__", "__float__")  # each waits for the device on a GPU
STEADY_AFTER = 4  # steps of warm-up before reads are counted


def steady_between_logging(trainer) -> bool:
    """Whether the step about to run is past warm-up and not a logging step (those may read)."""
    step = trainer.global_step + 1
    return step > STEADY_AFTER and step % trainer.log_every_n_steps != 0


class HostReadWatcher(Callback):
    """Counts host reads of tensors by ftlit or Lightning code during steady steps between logging steps.

    On this CPU nothing waits, so the reads themselves are counted, by the code that makes them. Left out: reads of
    the batch before it moves to the device (``on_before_batch_transfer``: a host tensor on a GPU too) and torch's
    own (AdamW's step counter, a host tensor on a GPU too)."""

    reads: Counter = Counter()
    bar_metrics: dict = {}
    watching = False

    @classmethod
    def record(cls, name: str) -> None:
        caller = sys._getframe(2).f_code
        ours = "/ftlit/" in caller.co_filename or "/lightning/" in caller.co_filename
        if cls.watching and ours and caller.co_name != "on_before_batch_transfer":
            cls.reads[f"{name} in {Path(caller.co_filename).name}:{caller.co_name}"] += 1

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        HostReadWatcher.watching = steady_between_logging(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        HostReadWatcher.watching = False
        HostReadWatcher.bar_metrics = trainer.progress_bar_callback.get_metrics(trainer, pl_module)


@pytest.fixture
def counting_host_reads(monkeypatch):
    HostReadWatcher.reads.clear()
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            HostReadWatcher.record(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return HostReadWatcher.reads


def fit_args(tiny_bert: str, train: Path, root: Path, *extra: str) -> list[str]:
    return [
        "fit", "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", tiny_bert,
        "--data", "ftlit.ClassificationDataModule", "--data.train_file", str(train), "--data.max_length", "32",
        "--data.batch_size", "8", "--trainer.limit_val_batches", "0", "--trainer.default_root_dir", str(root),
        "--output_dir", str(root / "out"), *extra,
    ]  # fmt: skip


@pytest.mark.slow  # 21 steps: steady ones past the warm-up, between logging steps
def test_steady_steps_read_nothing_from_the_device_and_the_bar_still_shows_the_loss(
    tiny_bert, sentiment_files, tmp_path, counting_host_reads
):
    main(fit_args(tiny_bert, sentiment_files["train"], tmp_path, "--data.text_fields", "[text]",
                  "--trainer.max_steps", "21", "--trainer.log_every_n_steps", "5",
                  "--trainer.callbacks+=test_sync_free_step.HostReadWatcher"))  # fmt: skip
    assert dict(counting_host_reads) == {}
    loss = HostReadWatcher.bar_metrics["loss"]  # the mean of the last window read, steps 16–20
    assert 0 < float(loss) < 10


@pytest.mark.parametrize("bar", [TQDMProgressBar(refresh_rate=3), RichProgressBar(refresh_rate=3)])
def test_lightnings_progress_bars_are_replaced_by_ones_showing_the_read_loss(bar):
    trainer = Trainer(accelerator="cpu", callbacks=[bar], logger=False)
    use_training_progress_bar(trainer)
    replaced = trainer.progress_bar_callback
    assert isinstance(replaced, ShowsWindowLoss) and isinstance(replaced, type(bar))
    assert replaced.refresh_rate == 3
    assert sum(isinstance(c, ProgressBar) for c in trainer.callbacks) == 1


class LossRecorder(Callback):
    """The loss of every step, read at once (on the CPU that costs nothing): the truth the guard must name."""

    losses: dict[int, float] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        LossRecorder.losses[trainer.global_step] = float(outputs["loss"])


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_a_non_finite_loss_read_late_is_named_by_its_first_step_and_never_checkpointed(tiny_bert, tmp_path, capsys):
    rows = [{"sentence1": r["text"], "sentence2": "x", "label": i % 5} for i, r in enumerate(sentiment_rows(96, 3))]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    LossRecorder.losses.clear()
    # losses read every 5 steps, checkpoints every 3: whichever comes first after the bad step catches it
    args = fit_args(tiny_bert, train, tmp_path, "--data.task", "stsb", "--data.validation_file", str(train),
                    "--trainer.log_every_n_steps", "5",
                    "--model.checkpoint_every_n_steps", "3", "--trainer.max_epochs", "1",
                    "--trainer.callbacks+=test_sync_free_step.LossRecorder",
                    "--trainer.callbacks+=conftest.CorruptScore")  # fmt: skip
    with pytest.raises(SystemExit):
        main(args)
    message = capsys.readouterr().err.strip().splitlines()[-1]
    first_bad = min(step for step, loss in LossRecorder.losses.items() if not torch.isfinite(torch.tensor(loss)))
    assert f"became inf at step {first_bad} " in message
    caught_at = max(LossRecorder.losses)
    assert first_bad <= caught_at < first_bad + 3  # at the next checkpoint or logging step, not the epoch's end
    last = torch.load(tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt", weights_only=True)
    assert last["global_step"] < first_bad
    assert all(torch.isfinite(weights).all() for weights in last["state_dict"].values())
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_the_loss_is_written_at_every_logging_step_as_that_steps_loss(tiny_bert, sentiment_files, tmp_path):
    # handed to Lightning only at the steps it writes (each self.log costs host time): none missed, none stale
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    LossRecorder.losses.clear()
    main(fit_args(tiny_bert, sentiment_files["train"], tmp_path, "--data.text_fields", "[text]",
                  "--trainer.max_steps", "5", "--trainer.log_every_n_steps", "2",
                  "--trainer.callbacks+=test_sync_free_step.LossRecorder"))  # fmt: skip
    (events,) = tmp_path.glob("lightning_logs/version_*/events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    written = {event.step: event.value for event in accumulator.Scalars("train/loss")}
    assert [event.step for event in accumulator.Scalars("train/grad_norm")] == list(written) == [1, 3]
    # (LossRecorder keys a batch's loss by the step count after its optimizer step)
    assert written == pytest.approx({step: LossRecorder.losses[step + 1] for step in written}, rel=1e-6)


class BatchTypeRecorder(Callback):
    """The type of every batch the model receives, after Lightning moved it to the device."""

    types: set[type] = set()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        BatchTypeRecorder.types.add(type(batch))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        BatchTypeRecorder.types.add(type(batch))


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_batches_move_to_the_device_as_plain_dicts(tiny_bert, sentiment_files, tmp_path):
    # Lightning moves a collator's BatchEncoding with one blocking .to(device), which on a GPU waits for the step
    # before (seen on an H200); a plain dict's tensors it moves with non_blocking=True
    BatchTypeRecorder.types.clear()
    main(fit_args(tiny_bert, sentiment_files["train"], tmp_path, "--data.text_fields", "[text]",
                  "--data.validation_file", str(sentiment_files["dev"]), "--trainer.limit_val_batches", "2",
                  "--trainer.max_steps", "3",
                  "--trainer.callbacks+=test_sync_free_step.BatchTypeRecorder"))  # fmt: skip
    assert BatchTypeRecorder.types == {dict}


class SyncErrorBetweenLogging(Callback):
    """Makes any host↔device synchronisation an error during steady steps between logging steps."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        torch.cuda.set_sync_debug_mode("error" if steady_between_logging(trainer) else 0)

    def on_train_end(self, trainer, pl_module) -> None:
        torch.cuda.set_sync_debug_mode(0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_steady_gpu_steps_never_synchronise(tiny_bert, sentiment_files, tmp_path):
    # compiled: in eager mode transformers' SDPA mask check (padding_mask.all()) synchronises in every forward
    try:
        main(fit_args(tiny_bert, sentiment_files["train"], tmp_path, "--data.text_fields", "[text]",
                      "--trainer.accelerator", "gpu", "--model.compile", "true", "--data.pad_to_multiple_of", "32",
                      "--trainer.max_steps", "30", "--trainer.log_every_n_steps", "10",
                      "--trainer.callbacks+=test_sync_free_step.SyncErrorBetweenLogging"))  # fmt: skip
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert (tmp_path / "out/export").is_dir()
