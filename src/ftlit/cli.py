"""The ``ftlit`` command: LightningCLI with fit/validate/test/predict, results.json and the Hugging Face export."""

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger

from ftlit.data.base import TransformerDataModule
from ftlit.errors import FtlitError, TrainingInterrupted
from ftlit.training.callbacks import DiscardUnstartedRun, NonFiniteLossGuard, TrainingThroughput
from ftlit.training.checkpoints import AtomicCheckpointIO, find_last_checkpoint, verify_checkpoint
from ftlit.training.module import TransformerModule
from ftlit.training.outputs import results_document, write_json
from ftlit.training.resume import ResumableTraining


class FtlitCLI(LightningCLI):
    """``ftlit fit|validate|test|predict --config configs/<name>.yaml [--section.key value ...]``."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--output_dir",
            type=str | None,
            default=None,
            help="Where export/, results.json and predictions go (default: the run's TensorBoard log dir).",
        )
        parser.add_argument(
            "--overwrite",
            type=bool,
            default=False,
            help="Replace the export/, results.json or predictions.jsonl that --output_dir already holds.",
        )
        # Data is always tokenised by the model's own tokenizer
        parser.link_arguments("model.init_args.model_name_or_path", "data.init_args.model_name_or_path")

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        # LightningCLI loads --ckpt_path right after parsing (for its hyperparameters): a checkpoint file is verified
        # here, once and before any work; "last" is found and verified once the trainer knows the log folder
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if path and path not in ("last", "best", "hpc") and "://" not in path:
            verify_checkpoint(path)

    def _setting(self, config, key: str, default=None):
        """``key`` of the running subcommand's section of ``config`` (the whole config outside a subcommand)."""
        section = config[self.subcommand] if self.subcommand else config
        return section.get(key, default)

    def instantiate_trainer(self, **kwargs):
        # The Trainer refuses impossible settings (an uninstalled strategy, fsdp without a GPU, …) with clear
        # messages: they are the user's to fix, so they end as one line, not a traceback
        try:
            trainer = super().instantiate_trainer(**kwargs)
        except (ValueError, ImportError, MisconfigurationException) as err:
            raise FtlitError(f"Trainer settings rejected: {err}") from err
        # the precision asked for: Lightning quietly turns 16-mixed on a CPU into bf16-mixed
        requested = (self._setting(self.config_init, "trainer") or {}).get("precision")
        check_precision(str(requested or trainer.precision), trainer.strategy.root_device)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # FSDP/DeepSpeed keep their own writers
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        return trainer

    def after_instantiate_classes(self) -> None:
        if self.subcommand is None:  # ftlit inspect: the data module alone is used
            return
        self._resolve_checkpoint()
        configured = self._setting(self.config, "output_dir")
        self.output_dir = Path(configured or self.trainer.log_dir or ".")
        check_outputs_free(self.output_dir, self.subcommand, self._setting(self.config, "overwrite"))
        self.throughput = TrainingThroughput()
        self.trainer.callbacks += [self.throughput, NonFiniteLossGuard(), ResumableTraining(), DiscardUnstartedRun()]

    def _resolve_checkpoint(self) -> None:
        """``--ckpt_path last`` means the newest last.ckpt of earlier runs (Lightning would look only in this new
        run's empty folder); a fit resumed from it continues that run's log folder."""
        arguments = self.config_init[self.subcommand]
        if arguments.get("ckpt_path") != "last":
            return
        logger = self.trainer.logger
        root = Path(logger.root_dir if isinstance(logger, TensorBoardLogger) else self.trainer.default_root_dir)
        found = find_last_checkpoint(root)
        if found is None:
            if self.subcommand != "fit":
                raise FtlitError(f"--ckpt_path last: there is no last.ckpt under {root}.")
            # so that a requeue script can always pass --ckpt_path last
            print(f"--ckpt_path last: no last.ckpt under {root} yet, so this is a new run.")
            arguments["ckpt_path"] = None
            return
        verify_checkpoint(found)
        run_dir = found.parent.parent
        if self.subcommand == "fit" and isinstance(logger, TensorBoardLogger) and run_dir.parent == root:
            self.trainer.logger = TensorBoardLogger(logger.save_dir, name=logger.name, version=run_dir.name)
        print(f"Resuming from {found}")
        arguments["ckpt_path"] = str(found)

    # ------------------------------------------------------------------------------------------------- hooks
    def before_fit(self) -> None:
        self.fit_started = time.perf_counter()

    def after_fit(self) -> None:
        train_time = time.perf_counter() - self.fit_started
        checkpoint = self.trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint else ""
        log_dir = self.trainer.log_dir  # on every device: Lightning broadcasts it
        # Re-evaluate the best checkpoint: its metrics go to results.json and its weights to export/
        # (with validation switched off there is no best checkpoint: the last weights are exported)
        if self.trainer.limit_val_batches != 0:
            # not logged: TensorBoard would draw the best checkpoint's scores at the last step of the curves
            loggers, self.trainer.loggers = self.trainer.loggers, []
            try:
                self.trainer.validate(self.model, datamodule=self.datamodule, ckpt_path=best or None)
            finally:
                self.trainer.loggers = loggers
        self.model.finish_training()
        if self.trainer.is_global_zero:
            self.model.export(self.output_dir / "export", self.datamodule.tokenizer)
            train = {"train_time_s": round(train_time, 2), "best_checkpoint": best or None,
                     "throughput": self.throughput.summary, "log_dir": log_dir}  # fmt: skip
            self._write_results("val", train)

    def after_validate(self) -> None:
        self._write_results("val")

    def after_test(self) -> None:
        self._write_results("test")

    def after_predict(self) -> None:
        if self.trainer.is_global_zero:
            write_json(self.output_dir / "predictions.jsonl", self.model.predictions, lines=True)

    # ------------------------------------------------------------------------------------------------- outputs
    def _write_results(self, stage: str, train: dict | None = None) -> None:
        if not self.trainer.is_global_zero:
            return
        metrics = {
            key.removeprefix(f"{stage}/"): round(value.item(), 6)
            for key, value in self.trainer.callback_metrics.items()
            if key.startswith(f"{stage}/")
        }
        results = results_document(
            metrics, self.model.eval_summary(), train or {}, self.model.describe_model(),
            self.config[self.subcommand].as_dict(),
        )  # fmt: skip
        for name, content in self.model.output_files().items():
            write_json(self.output_dir / name, content)
        write_json(self.output_dir / "results.json", results)
        print(f"Results written to {self.output_dir / 'results.json'}")


def check_outputs_free(output_dir: Path, subcommand: str, overwrite: bool) -> None:
    """Refuse, before any work, to replace the outputs of an earlier run unless ``--overwrite`` is given."""
    produces = {"fit": ["export", "results.json"], "validate": ["results.json"], "test": ["results.json"],
                "predict": ["predictions.jsonl"]}.get(subcommand, [])  # fmt: skip
    existing = [name for name in produces if (output_dir / name).exists()]
    if existing and not overwrite:
        raise FtlitError(
            f"{output_dir} already holds {', '.join(existing)} of an earlier run. Give another --output_dir, or "
            "--overwrite true to replace them."
        )


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run well: fp16 on a CPU, bf16 on a GPU without bfloat16."""
    if precision.startswith("16") and device.type == "cpu":
        raise FtlitError(
            f"--trainer.precision {precision} (float16) needs a CUDA GPU; on CPU use 32-true or bf16-mixed."
        )
    if precision.startswith("bf16") and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise FtlitError(
            f"--trainer.precision {precision}: {torch.cuda.get_device_name(device)} has no bfloat16 support; "
            "use 16-mixed."
        )


def default_precision() -> str:
    """bf16 mixed precision where the GPU has it, fp16 mixed on older GPUs, fp32 on CPU."""
    if not torch.cuda.is_available():
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def build_cli(args: list[str], run: bool = True) -> FtlitCLI:
    return FtlitCLI(
        TransformerModule,
        TransformerDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=42,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"precision": default_precision()},
        parser_kwargs={
            "epilog": "Also: `ftlit inspect --config X [--plot lengths.png]` (the data, no training) and "
            "`ftlit compare RUN_DIR... [--output_dir D]` (finished runs side by side)."
        },
        args=args,
        run=run,
    )


def inspect_command(args: list[str]) -> int:
    """``ftlit inspect --config X [--plot lengths.png] [--data.key value ...]``: no training; exit 1 if a check
    fails."""
    from ftlit.tools.inspection import format_reports, inspect_data, plot_lengths

    parser = argparse.ArgumentParser(prog="ftlit inspect", description=inspect_command.__doc__, add_help=False)
    parser.add_argument("--plot", type=Path, help="write a histogram of token lengths to this PNG")
    known, rest = parser.parse_known_args(args)
    cli = build_cli(rest, run=False)
    reports, problems = inspect_data(cli.datamodule)
    print(format_reports(reports, problems))
    if known.plot:
        plot_lengths(reports, known.plot)
        print(f"Length histogram written to {known.plot}")
    return 1 if problems or any(report.problems for report in reports) else 0


def compare_command(args: list[str]) -> int:
    from ftlit.tools.comparison import main as compare

    return compare(args)


COMMANDS = {"inspect": inspect_command, "compare": compare_command}


def main(args: list[str] | None = None) -> None:
    """Console entry point. Problems the user can fix end with one clear message and exit code 2 (``--debug`` or
    ``FTLIT_DEBUG=1``: the traceback instead)."""
    args = sys.argv[1:] if args is None else list(args)
    debug = "--debug" in args or os.environ.get("FTLIT_DEBUG") == "1"
    args = [arg for arg in args if arg != "--debug"]
    if torch.cuda.is_available():
        # TF32 matmuls for whatever stays in fp32. Not torch.backends.cuda.matmul.fp32_precision: with that API set,
        # torch.get_float32_matmul_precision() raises, and Lightning's Trainer.fit calls it.
        torch.set_float32_matmul_precision("high")
    try:
        if args and args[0] in COMMANDS:
            status = COMMANDS[args[0]](args[1:])
            if status:
                sys.exit(status)
        else:
            build_cli(args)
    except Exception as err:
        user_error = _find_user_error(err)
        if user_error is None or debug:
            raise
        kind = "stopped" if isinstance(user_error, TrainingInterrupted) else "error"
        print(f"ftlit: {kind}: {user_error}", file=sys.stderr)
        sys.exit(user_error.exit_code)


def _find_user_error(err: BaseException | None) -> FtlitError | None:
    """The FtlitError behind ``err``: jsonargparse wraps errors raised while instantiating classes in a ValueError."""
    while err is not None and not isinstance(err, FtlitError):
        err = err.__cause__ or err.__context__
    return err


if __name__ == "__main__":
    main()
