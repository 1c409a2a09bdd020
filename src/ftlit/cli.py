"""The ``ftlit`` command: LightningCLI with fit/validate/test/predict, results.json and the Hugging Face export."""

import os
import sys
import time
from pathlib import Path

import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from ftlit.callbacks import PredictionWriter, TrainingThroughput
from ftlit.data.base import TransformerDataModule
from ftlit.errors import FtlitError
from ftlit.models.base import TransformerModule
from ftlit.outputs import write_json


class FtlitCLI(LightningCLI):
    """``ftlit fit|validate|test|predict --config configs/<name>.yaml [--section.key value ...]``."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--output_dir",
            type=str | None,
            default=None,
            help="Where export/, results.json and predictions go (default: the run's TensorBoard log dir).",
        )
        # Data is always tokenised by the model's own tokenizer
        parser.link_arguments("model.init_args.model_name_or_path", "data.init_args.model_name_or_path")

    def instantiate_trainer(self, **kwargs):
        # The Trainer refuses impossible settings (an uninstalled strategy, fsdp without a GPU, …) with clear
        # messages: they are the user's to fix, so they end as one line, not a traceback
        try:
            return super().instantiate_trainer(**kwargs)
        except (ValueError, ImportError, MisconfigurationException) as err:
            raise FtlitError(f"Trainer settings rejected: {err}") from err

    def after_instantiate_classes(self) -> None:
        configured = self._get(self.config, "output_dir")
        self.output_dir = Path(configured or self.trainer.log_dir or ".")
        self.throughput = TrainingThroughput()
        self.trainer.callbacks += [PredictionWriter(self.output_dir), self.throughput]

    # ------------------------------------------------------------------------------------------------- hooks
    def before_fit(self) -> None:
        self.fit_started = time.perf_counter()

    def after_fit(self) -> None:
        train_time = time.perf_counter() - self.fit_started
        checkpoint = self.trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint else ""
        # Re-evaluate the best checkpoint: its metrics go to results.json and its weights to export/
        # (with validation switched off there is no best checkpoint: the last weights are exported)
        if self.trainer.limit_val_batches != 0:
            self.trainer.validate(self.model, datamodule=self.datamodule, ckpt_path=best or None)
        if self.trainer.is_global_zero:
            self.model.export(self.output_dir / "export", self.datamodule.tokenizer)
            self._write_results(
                "val", train_time_s=round(train_time, 2), best_checkpoint=best or None,
                train_throughput=self.throughput.summary,
            )  # fmt: skip

    def after_validate(self) -> None:
        self._write_results("val")

    def after_test(self) -> None:
        self._write_results("test")

    # ------------------------------------------------------------------------------------------------- outputs
    def _write_results(self, stage: str, **extra) -> None:
        if not self.trainer.is_global_zero:
            return
        metrics = {
            key.removeprefix(f"{stage}/"): round(value.item(), 6)
            for key, value in self.trainer.callback_metrics.items()
            if key.startswith(f"{stage}/")
        }
        results = {
            **metrics,
            **extra,
            **self.model.summary(),
            "config": self.config[self.subcommand].as_dict(),
        }
        for name, content in self.model.output_files().items():
            write_json(self.output_dir / name, content)
        write_json(self.output_dir / "results.json", results)
        print(f"Results written to {self.output_dir / 'results.json'}")


def default_precision() -> str:
    """bf16 mixed precision where the GPU has it, fp16 mixed on older GPUs, fp32 on CPU."""
    if not torch.cuda.is_available():
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def main(args: list[str] | None = None) -> None:
    """Console entry point. Problems the user can fix end with one clear message and exit code 2."""
    if torch.cuda.is_available():
        # TF32 matmuls for whatever stays in fp32. Not torch.backends.cuda.matmul.fp32_precision: with that API set,
        # torch.get_float32_matmul_precision() raises, and Lightning's Trainer.fit calls it.
        torch.set_float32_matmul_precision("high")
    try:
        FtlitCLI(
            TransformerModule,
            TransformerDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            seed_everything_default=42,
            auto_configure_optimizers=False,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"precision": default_precision()},
            args=args,
        )
    except Exception as err:
        user_error = _find_user_error(err)
        if user_error is None or os.environ.get("FTLIT_DEBUG") == "1":
            raise
        print(f"ftlit: error: {user_error}", file=sys.stderr)
        sys.exit(2)


def _find_user_error(err: BaseException | None) -> FtlitError | None:
    """The FtlitError behind ``err``: jsonargparse wraps errors raised while instantiating classes in a ValueError."""
    while err is not None and not isinstance(err, FtlitError):
        err = err.__cause__ or err.__context__
    return err


if __name__ == "__main__":
    main()
