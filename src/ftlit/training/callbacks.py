"""Callbacks the CLI adds to every run."""

import math
import shutil
import time
from pathlib import Path

import torch
from lightning import Trainer
from lightning.fabric.utilities.throughput import get_available_flops
from lightning.pytorch.callbacks import Callback, RichProgressBar, TQDMProgressBar
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info

from ftlit.errors import FtlitError
from ftlit.machine import describe, machine_record
from ftlit.training.dropout import CpuDropout
from ftlit.training.loggers import VERSIONED_FOLDERS, run_folder
from ftlit.training.outputs import check_free_space
from ftlit.training.resume import last_checkpoint_path


def flops_per_token(non_embedding_params: int, layers: int, hidden: int, sequence_length: float) -> float:
    """Training FLOPs (forward + backward) per token: 6 × non-embedding parameters + 12 × layers × seq × hidden."""
    return 6 * non_embedding_params + 12 * layers * sequence_length * hidden


class TrainingThroughput(Callback):
    """Samples/s, real (non-pad) tokens/s, padding fraction and model FLOP utilisation of training.

    Logged to TensorBoard under ``throughput/`` every ``log_every_n_steps``, printed at the end of fit, and kept in
    ``summary`` for results.json. The first ``warmup_steps`` steps (compilation, allocator warm-up) are timed apart
    and reported as the warm-up time. The device is synchronised only at window boundaries.

    Also the run's wall time (``train_time_s``, from ``run_started``, set by the CLI when fit starts). Both are kept
    in checkpoints, so that a resumed run reports the whole run, not its last part.
    """

    def __init__(self, warmup_steps: int = 3) -> None:
        self.warmup_steps = warmup_steps
        self.summary: dict[str, float] = {}
        self.total = {"time": 0.0, "samples": 0, "tokens": 0, "padded": 0, "flops": 0.0}
        self.run_started = time.perf_counter()
        self.earlier_time_s = 0.0  # of the run's earlier parts, when it was resumed

    def train_time_s(self) -> float:
        return self.earlier_time_s + time.perf_counter() - self.run_started

    def state_dict(self) -> dict:
        return {"total": dict(self.total), "train_time_s": self.train_time_s()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.total = dict(state_dict.get("total", self.total))
        self.earlier_time_s = state_dict.get("train_time_s", 0.0)

    def _now(self, trainer) -> float:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_start(self, trainer, pl_module) -> None:
        dtype = {"bf16": torch.bfloat16, "16": torch.float16}.get(str(trainer.precision).split("-")[0], torch.float32)
        if dtype == torch.float32 and torch.get_float32_matmul_precision() != "highest":
            dtype = "tf32"
        self.peak_flops = get_available_flops(trainer.strategy.root_device, dtype)
        model = pl_module.model
        # transformers maps num_hidden_layers/hidden_size onto each architecture's own names (n_layers, dim, …)
        self.shape = (
            sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name),
            model.config.num_hidden_layers,
            model.config.hidden_size,
        )
        self.started = self._now(trainer)
        self.first_step = trainer.global_step  # above 0 in a resumed run
        self.window = dict.fromkeys(self.total, 0)
        self.window_started = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step - self.first_step
        if step <= self.warmup_steps:
            if step == self.warmup_steps:
                self.window_started = self._now(trainer)
                self.warmup_time = self.window_started - self.started
            return
        counts = pl_module.train_batch_counts  # counted on the host: no wait for the device
        for key in ("samples", "tokens", "padded"):
            self.window[key] += counts[key]
        length = counts["tokens"] / counts["samples"]
        self.window["flops"] += counts["tokens"] * flops_per_token(*self.shape, sequence_length=length)
        if step % trainer.log_every_n_steps == 0:
            self._close_window(trainer, pl_module)

    def _close_window(self, trainer, pl_module, log: bool = True) -> None:
        if self.window_started is None or not self.window["samples"]:
            return
        now = self._now(trainer)
        self.window["time"] = now - self.window_started
        if log:  # (Lightning allows no logging from on_train_end: the last partial window is only counted)
            for name, value in self._rates(self.window).items():
                pl_module.log(f"throughput/{name}", value)
        for key in self.total:
            self.total[key] += self.window[key]
        self.window = dict.fromkeys(self.window, 0)
        self.window_started = now

    def _rates(self, counts: dict) -> dict[str, float]:
        seconds = max(counts["time"], 1e-9)
        rates = {
            "samples_per_sec": counts["samples"] / seconds,
            "tokens_per_sec": counts["tokens"] / seconds,
            "padding_fraction": 1 - counts["tokens"] / max(counts["padded"], 1),
        }
        if self.peak_flops:
            rates["mfu"] = counts["flops"] / seconds / self.peak_flops
        return rates

    def on_train_end(self, trainer, pl_module) -> None:
        self._close_window(trainer, pl_module, log=False)
        if not self.total["samples"]:
            return
        self.summary = {name: round(value, 4) for name, value in self._rates(self.total).items()}
        if hasattr(self, "warmup_time"):  # (a resumed run's last part may end within its warm-up)
            self.summary["warmup_time_s"] = round(self.warmup_time, 2)
        rank_zero_info(
            "Training throughput after warm-up: "
            + ", ".join(f"{name} {value:,.4g}" for name, value in self.summary.items())
        )


class NonFiniteLossGuard(Callback):
    """Stops training when the loss becomes NaN or infinite, before any checkpoint takes the broken weights,
    naming the first bad step and the last good checkpoint.

    Reading the loss on the host makes it wait for the device, so the losses are kept where they are and read
    together every ``log_every_n_steps`` steps (when Lightning reads the logged values anyway), before any checkpoint
    is written, and at the end of training.
    """

    def __init__(self) -> None:
        self.pending: list[tuple[torch.Tensor, int, int, int]] = []  # (loss, step, epoch, batch) not yet read
        self.window_loss: float | None = None  # the mean loss of the steps read last, for the progress bar

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        self.pending.append((loss.detach(), trainer.global_step, trainer.current_epoch, batch_idx))
        if trainer.global_step % trainer.log_every_n_steps == 0:
            self.check(trainer)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self.check(trainer)  # raising here stops the checkpoint before it is written

    def on_train_end(self, trainer, pl_module) -> None:
        self.check(trainer)

    def check(self, trainer) -> None:
        """Raise if any loss kept since the last check is not finite, naming the first."""
        if not self.pending:
            return
        losses = torch.stack([loss.float().reshape(()) for loss, *_ in self.pending]).tolist()  # one read
        pending, self.pending = self.pending, []
        bad = [i for i, loss in enumerate(losses) if not math.isfinite(loss)]
        if not bad:
            self.window_loss = sum(losses) / len(losses)
            return
        _, step, epoch, batch_idx = pending[bad[0]]
        last = last_checkpoint_path(trainer)
        good = f"The last good checkpoint is {last}" if last and last.is_file() else "No checkpoint was saved yet"
        raise FtlitError(
            f"The training loss became {losses[bad[0]]} at step {step} (epoch {epoch}, batch {batch_idx}); "
            f"training stopped rather than go on with broken weights. {good}. Usual fixes: a lower "
            "--model.learning_rate, --model.max_grad_norm 1.0, bf16-mixed instead of 16-mixed precision, or "
            "checking the data for extreme regression labels."
        )


class ShowsWindowLoss:
    """For a progress bar: show the mean training loss of the steps NonFiniteLossGuard read last (every
    ``log_every_n_steps``). Lightning would read a ``prog_bar=True`` loss on the host after every step, which on a
    GPU makes the host wait for the device."""

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        guard = next((c for c in trainer.callbacks if isinstance(c, NonFiniteLossGuard)), None)
        if guard is not None and guard.window_loss is not None:
            metrics["loss"] = f"{guard.window_loss:.4g}"
        return metrics


class TrainingProgressBar(ShowsWindowLoss, TQDMProgressBar):
    """Lightning's tqdm bar, with the loss of the last logging window."""


class RichTrainingProgressBar(ShowsWindowLoss, RichProgressBar):
    """Lightning's rich bar (its default where ``rich`` is installed), with the loss of the last logging window."""


def use_training_progress_bar(trainer: Trainer) -> None:
    """Lightning's default bar, replaced by the same bar showing the loss that NonFiniteLossGuard reads (without
    waiting for the device). A bar of the user's own stays."""
    bar = trainer.progress_bar_callback
    ours = {TQDMProgressBar: TrainingProgressBar, RichProgressBar: RichTrainingProgressBar}.get(type(bar))
    if ours is not None:
        trainer.callbacks[trainer.callbacks.index(bar)] = ours(refresh_rate=bar.refresh_rate)


class ValidationHistory(Callback):
    """ftlit's own record of the validation curves, whatever the logger: every ``val/`` score of each evaluation
    during fit, by step and epoch, for results.json (``ftlit compare`` draws it) and, as this callback's state, in
    every checkpoint, so that a resumed run keeps the earlier evaluations. Lightning calls checkpoint callbacks last:
    a checkpoint written at the end of an evaluation already holds it."""

    def __init__(self) -> None:
        self.entries: list[dict] = []

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            scores = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
            self.entries.append({"step": trainer.global_step, "epoch": trainer.current_epoch, **scores})

    def state_dict(self) -> dict:
        return {"entries": self.entries}

    def load_state_dict(self, state_dict: dict) -> None:
        self.entries = list(state_dict["entries"])


class DiscardUnstartedRun(Callback):
    """A run that fails before its first optimizer step (a setting its model refuses, say) leaves no log folder:
    it would hold nothing but the config and an empty event file. A folder with a checkpoint is always kept."""

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        # only a versioned folder made for this run (TensorBoard, CSV); MLflow's run folder is its store's record
        if trainer.global_step or not trainer.is_global_zero or not isinstance(trainer.logger, VERSIONED_FOLDERS):
            return
        run_dir = run_folder(trainer, every_device=False)
        if run_dir.is_dir() and not any(run_dir.rglob("*.ckpt")):
            shutil.rmtree(run_dir)


class DiskSpaceCheck(Callback):
    """Before the first step, refuse a run whose checkpoints and export will not fit on disk (rather than fail at
    the end with a half-written file)."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir

    def on_fit_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        parameters = list(pl_module.parameters())
        weights = sum(p.numel() * p.element_size() for p in parameters)
        trainable = sum(p.numel() * p.element_size() for p in parameters if p.requires_grad)
        needs = {self.output_dir: weights}  # the export
        last = last_checkpoint_path(trainer)
        if last is not None:
            # the best and the last checkpoint: what trains (everything, or LoRA's part) and AdamW's two moments
            saved = trainable if getattr(pl_module, "lora", None) is not None else weights
            needs[last.parent] = needs.get(last.parent, 0) + 2 * (saved + 2 * trainable)
        check_free_space(needs)


class MachineReport(Callback):
    """What the run chose for this machine (ftlit.machine), in ``record`` for results.json: logged in one line
    when training starts. ``pad_multiple`` and ``workers`` are the data module's, which the CLI hands over."""

    def __init__(self, pad_multiple: int, workers: int) -> None:
        self.pad_multiple, self.workers = pad_multiple, workers
        self.record: dict = {}

    def on_train_start(self, trainer, pl_module) -> None:
        self._note(trainer, pl_module)
        rank_zero_info(describe(self.record))

    def on_fit_end(self, trainer, pl_module) -> None:
        self._note(trainer, pl_module)  # (also where no training started: a finished run given --ckpt_path last)

    def _note(self, trainer, pl_module) -> None:
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        self.record = machine_record(
            precision=str(trainer.precision),
            pad_multiple=self.pad_multiple,
            workers=self.workers,
            fused=bool(optimizer and optimizer.defaults.get("fused")),
            cpu_kernels=pl_module.cpu_kernels,
            cpu_dropout_modules=sum(isinstance(module, CpuDropout) for module in pl_module.modules()),
            attention_switch=pl_module.switches_attention,
        )
